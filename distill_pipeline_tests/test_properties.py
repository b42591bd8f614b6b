"""Bad input, property-based: whatever a line holds, the parsers account for it and never crash.

Every input is built from real lines (the bundled corpus, the general examples, the task spec) and then
mutated the way exports break in practice: truncated JSON, wrong types, huge strings, deep nesting,
invalid UTF-8, NUL bytes, duplicate keys, lone surrogates, missing roles, tool calls with broken arguments.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill_pipeline import settings as env_settings
from distill_pipeline.backends.jsonl_source import JsonlExportSource
from distill_pipeline.backends.local_trainer import read_chat_file
from distill_pipeline.backends.storage import StorageLayout, atomic_write_table, rejected_table, traces_table
from distill_pipeline.core.capture import MAX_RAW_KEPT, RawRecord, capture
from distill_pipeline.core.finetune_format import check_example, check_lines
from distill_pipeline.core.general import check_answer, load_general_examples
from distill_pipeline.core.taskspec import TaskSpec, TaskSpecError, _Document, parse_task_spec
from distill_pipeline.core.traces import TraceParseError, TraceRow, parse_line, trace_to_record
from distill_pipeline.defs.capture import teacher_traces
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings

DAY = "2026-10-02"
SPEC_TEXT = env_settings.DEFAULT_TASK_SPEC.read_text(encoding="utf-8")
FAST = settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


def _corpus_records(day: str, limit: int) -> list[dict[str, Any]]:
    records = []
    for path in sorted(env_settings.DEFAULT_TRACES_DIR.glob(f"{day}*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and parse_ok(line):
                records.append(record)
    return records[:limit]


def parse_ok(line: str) -> bool:
    try:
        parse_line(line)
    except TraceParseError:
        return False
    return True


TOOL_CALL_EXAMPLE = {
    "id": "tool-example-1", "created": 1759400000, "model": "gpt-4o-2024-08-06",
    "metadata": {"agent": "healthcare-postcall", "layer": "teacher", "intent": "book_follow_up"},
    "tools": [{"type": "function", "function": {"name": "book", "parameters": {"type": "object"}}}],
    "messages": [
        {"role": "system", "content": "Book the follow-up."},
        {"role": "user", "content": "Transcript: see Dr. Ito on 2026-10-20 at 09:30."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "book", "arguments": "{\"date\": \"2026-10-20\", \"time\": \"09:30\"}"}}]},
    ],
}
STORED = _corpus_records("2026-10-01", 4)
CHAT = _corpus_records("2026-10-02", 200)
CHAT = [r for r in CHAT if "messages" in r][:2] + [TOOL_CALL_EXAMPLE]
TRACE_BASES = STORED + CHAT
GENERAL_BASES = [json.loads(line) for line in
                 env_settings.DEFAULT_GENERAL_EXAMPLES.read_text(encoding="utf-8").splitlines()[:12]]

# ---------------------------------------------------------------------------------------------------------------
# Strategies: JSON values, paths into a record, mutations of a record and of its bytes

HOSTILE_TEXT = st.sampled_from(["", " ", "\u0000", "\ud800", "a\udfffb", "\u202e", "é", "e\u0301", "\ufeff",
                                "null", "{", "\"", "\\", "x" * 70_000, "🦜" * 1_000])
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**62, max_value=2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), HOSTILE_TEXT)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)

DEEP = "__deep_nesting__"


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON value (the root included)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += paths(child, (*prefix, index))
    return out


def set_at(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return value


def delete_at(value: Any, path: tuple) -> Any:
    if not path:
        return value
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return value


@st.composite
def mutated_record(draw: st.DrawFn, bases: list[dict[str, Any]]) -> Any:
    """A real record with up to three structural mutations."""
    record = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(paths(record)))
        kind = draw(st.sampled_from(["replace", "delete", "role", "tool_args", "huge", "deep", "surrogate",
                                     "big_int", "content_parts"]))
        if kind == "replace":
            record = set_at(record, where, draw(json_values))
        elif kind == "delete":
            record = delete_at(record, where)
        elif kind == "role":
            messages = [p for p in paths(record) if p and p[-1] == "role"]
            if messages:
                record = draw(st.sampled_from([
                    lambda r, p: delete_at(r, p),
                    lambda r, p: set_at(r, p, draw(json_values)),
                    lambda r, p: set_at(r, p, draw(st.sampled_from(["assistant", "user", "tool", "robot"]))),
                ]))(record, draw(st.sampled_from(messages)))
        elif kind == "tool_args":
            record = _break_tool_arguments(draw, record)
        elif kind == "huge":
            record = set_at(record, where, "x" * draw(st.integers(MAX_RAW_KEPT - 10, 3 * MAX_RAW_KEPT)))
        elif kind == "deep":
            record = set_at(record, where, DEEP)
        elif kind == "surrogate":
            record = set_at(record, where, draw(st.sampled_from(["\ud800", "ok \udc80 ok", "\udfff"])))
        elif kind == "big_int":
            record = set_at(record, where, draw(st.sampled_from([2**63, 10**30, -1, 10**4000])))
        elif kind == "content_parts":
            record = set_at(record, where, draw(st.lists(st.one_of(
                st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20)}), json_values),
                max_size=3)))
    return record


def _break_tool_arguments(draw: st.DrawFn, record: Any) -> Any:
    calls = [p for p in paths(record) if p and p[-1] == "arguments"]
    if not calls:  # give the answer a tool call first
        answers = [p for p in paths(record) if len(p) >= 1 and p[-1] == "message"] or \
            [p for p in paths(record) if p and p[-1] == "content"]
        if not answers:
            return record
        target = draw(st.sampled_from(answers))
        if target[-1] == "content":
            target = target[:-1]
        try:
            set_at(record, (*target, "tool_calls"), [{"id": "c", "type": "function",
                                                      "function": {"name": "f", "arguments": "{}"}}])
        except (KeyError, IndexError, TypeError):
            return record
        calls = [p for p in paths(record) if p and p[-1] == "arguments"]
    broken = draw(st.one_of(st.sampled_from(['{"date": ', "not json", "[1, 2", "{'single': 1}", "", "{}"]),
                            json_values))
    return set_at(record, draw(st.sampled_from(calls)), broken)


def to_bytes(record: Any, ascii_only: bool) -> bytes:
    text = json.dumps(record, ensure_ascii=ascii_only)
    text = text.replace(json.dumps(DEEP), "[" * 6000 + "]" * 6000)
    return text.encode("utf-8", errors="surrogatepass")  # a lone surrogate becomes CESU bytes: invalid UTF-8


@st.composite
def mutated_line(draw: st.DrawFn, bases: list[dict[str, Any]] = TRACE_BASES) -> bytes:
    """One export line: a mutated real record, then up to three byte-level mutations."""
    data = to_bytes(draw(mutated_record(bases)), draw(st.booleans()))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["truncate", "nul", "invalid_utf8", "duplicate_key", "insert"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            data = data[:at]
        elif kind == "nul":
            data = data[:at] + b"\x00" + data[at:]
        elif kind == "invalid_utf8":
            data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c"])) \
                + data[at:]
        elif kind == "duplicate_key":
            data = _duplicate_a_key(draw, data)
        else:
            data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    return data.replace(b"\n", b" ")  # one line stays one line


def _duplicate_a_key(draw: st.DrawFn, data: bytes) -> bytes:
    keys = [m for m in re.finditer(rb'[{,]\s*("[a-z_]+")\s*:', data)]
    if not keys:
        return data
    match = draw(st.sampled_from(keys))
    value = json.dumps(draw(json_scalars), ensure_ascii=True).encode()
    start = match.start(1)
    return data[:start] + match.group(1) + b":" + value + b"," + data[start:]


any_line = st.one_of(mutated_line(), st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                     json_values.map(lambda v: json.dumps(v).encode("utf-8", errors="surrogatepass")))
# Text already decoded (a caller's str), where a lone surrogate is a character rather than an escape.
any_text_line = st.one_of(mutated_record(TRACE_BASES).map(lambda r: json.dumps(r, ensure_ascii=False)),
                          json_values.map(lambda v: json.dumps(v, ensure_ascii=False)))


# ---------------------------------------------------------------------------------------------------------------
# The trace parser and the capture stage


@FAST
@given(line=st.one_of(any_line, any_text_line))
def test_the_trace_parser_turns_any_line_into_a_row_or_a_quarantine_reason(line):
    try:
        row = parse_line(line)
    except TraceParseError as err:
        assert str(err).strip()
        return
    assert isinstance(row, TraceRow) and row.completion_id and len(row.content_hash) == 64
    assert row.response_message["role"] == "assistant"
    traces_table([row])  # everything kept can be written to Parquet


@FAST
@given(record=st.one_of(mutated_record(TRACE_BASES), json_values))
def test_an_api_object_of_any_shape_is_a_row_or_a_quarantine_reason(record):
    """The Stored Completions source hands the parser decoded objects, not lines: same guarantee."""
    if DEEP in json.dumps(record):
        record = json.loads(json.dumps(record).replace(json.dumps(DEEP), "[" * 900 + "]" * 900))
    if not isinstance(record, dict):  # what the source does with a listed item that is not an object
        record = json.dumps(record)
    result = capture([RawRecord("openai:chat.completions", 1, record)])
    assert result.balanced and result.input_rows == 1
    for rejected in result.quarantined:
        assert rejected.reason and rejected.raw
        (rejected.reason + rejected.raw).encode("utf-8")


def export_lines(draw: st.DrawFn) -> list[bytes]:
    """A day's export: good and mutated lines, exact repeats, same content under a new id, blank lines."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["good", "mutated", "mutated", "any", "repeat", "same_content", "do_not_train",
                                     "blank"]))
        if kind == "good":
            lines.append(json.dumps(draw(st.sampled_from(TRACE_BASES))).encode())
        elif kind == "mutated":
            lines.append(draw(mutated_line()))
        elif kind == "any":
            lines.append(draw(any_line).replace(b"\n", b" "))
        elif kind == "repeat" and lines:
            lines.append(draw(st.sampled_from(lines)))
        elif kind == "same_content":
            record = copy.deepcopy(draw(st.sampled_from(TRACE_BASES)))
            record["id"] = f"renamed-{len(lines)}"
            lines.append(json.dumps(record).encode())
        elif kind == "do_not_train":
            record = copy.deepcopy(draw(st.sampled_from(TRACE_BASES)))
            record["metadata"] = {**record.get("metadata", {}), "do_not_train": "true"}
            record["id"] = f"dnt-{len(lines)}"
            lines.append(json.dumps(record).encode())
        elif kind == "blank":
            lines.append(draw(st.sampled_from([b"", b"   ", b"\r", b"\t"])))
    return lines


def non_blank(lines: list[bytes]) -> int:
    return sum(bool(line.rstrip(b"\r\n").strip()) for line in b"\n".join(lines).split(b"\n"))


@settings(FAST, max_examples=40)
@given(data=st.data())
def test_capture_accounts_for_every_line_and_stores_what_it_kept(data):
    lines = export_lines(data.draw)
    with tempfile.TemporaryDirectory() as tmp:
        exports = Path(tmp) / "exports"
        exports.mkdir()
        (exports / f"{DAY}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        result = capture(JsonlExportSource(exports).records(DAY))

        assert result.input_rows == non_blank(lines)
        assert result.input_rows == (len(result.rows) + len(result.quarantined) + len(result.duplicates)
                                     + len(result.do_not_train))
        kept = result.rows + result.do_not_train
        assert len({r.completion_id for r in kept}) == len({r.content_hash for r in kept}) == len(kept)
        assert all(r.do_not_train for r in result.do_not_train) and not any(r.do_not_train for r in result.rows)
        assert all(q.reason for q in result.quarantined + result.duplicates)

        layout = StorageLayout(Path(tmp) / "storage")
        layout.write_traces("teacher_traces", DAY, result.rows)
        quarantine = atomic_write_table(layout.partition_dir("teacher_traces", DAY) / "quarantine.parquet",
                                        rejected_table(result.quarantined, result.duplicates))
        read_back = layout.read_traces("teacher_traces", DAY)
        assert [trace_to_record(r) for r in read_back] == [trace_to_record(r) for r in result.rows]
        assert pq.read_table(quarantine.path).num_rows == len(result.quarantined) + len(result.duplicates)


@settings(FAST, max_examples=8)
@given(data=st.data())
def test_the_teacher_traces_asset_balances_its_counts_on_any_export(data):
    lines = export_lines(data.draw)
    with tempfile.TemporaryDirectory() as tmp:
        exports = Path(tmp) / "exports"
        exports.mkdir()
        (exports / f"{DAY}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        pipeline = PipelineSettings(storage_root=str(Path(tmp) / "storage"), traces_dir=str(exports),
                                    task_spec=str(env_settings.DEFAULT_TASK_SPEC),
                                    general_examples=str(env_settings.DEFAULT_GENERAL_EXAMPLES), preset="tiny")
        result = dg.materialize([teacher_traces], partition_key=DAY, raise_on_error=False,
                                resources={"pipeline": pipeline, "openai": OpenAIResource()})
        (event,) = result.get_asset_materialization_events()
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        assert meta["input_rows"] == non_blank(lines)
        assert meta["input_rows"] == (meta["dagster/row_count"] + meta["quarantined_rows"] + meta["duplicate_rows"]
                                      + meta["do_not_train_rows"])
        (check,) = result.get_asset_check_evaluations()
        share = meta["quarantined_rows"] / meta["input_rows"] if meta["input_rows"] else 0.0
        assert check.passed == (share <= 0.05)
        assert pq.read_table(meta["quarantine_path"]).num_rows == meta["quarantined_rows"] + meta["duplicate_rows"]


def test_each_kind_of_bad_line_is_quarantined_with_its_own_reason():
    good = json.dumps(STORED[0])
    no_role = copy.deepcopy(TOOL_CALL_EXAMPLE)
    del no_role["messages"][1]["role"]
    broken_args = copy.deepcopy(TOOL_CALL_EXAMPLE)
    broken_args["messages"][2]["tool_calls"][0]["function"]["arguments"] = '{"date": '
    huge_tokens = copy.deepcopy(STORED[0])
    huge_tokens["usage"]["prompt_tokens"] = 10**30
    cases = {
        b"truncated": (good[: len(good) // 2].encode(), "invalid JSON"),
        b"wrong type": (json.dumps({**STORED[0], "choices": "yes"}).encode(), "stored completion has no choices"),
        b"deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        b"utf8": (good.encode()[:40] + b"\xff" + good.encode()[40:], "not valid UTF-8 at byte 40"),
        b"nul": (good.encode()[:40] + b"\x00" + good.encode()[40:], "NUL"),
        b"dup": (b'{"id": "a", "id": "b"}', "duplicate JSON keys: id"),
        b"role": (json.dumps(no_role).encode(), "messages[1] has no valid role"),
        b"args": (json.dumps(broken_args).encode(), "function.arguments is not valid JSON"),
        b"surrogate": (good.replace('"content": "', '"content": "\\ud800', 1).encode(), "lone surrogate"),
        b"tokens": (json.dumps(huge_tokens).encode(), "usage.prompt_tokens is implausibly large"),
    }
    result = capture(RawRecord(f"{DAY}.jsonl", n, line) for n, (line, _) in enumerate(cases.values(), start=1))
    assert result.balanced and len(result.quarantined) == len(cases)
    for rejected, (_, reason) in zip(result.quarantined, cases.values(), strict=True):
        assert reason in rejected.reason
    rejected_table(result.quarantined, [])  # every reason and raw text can be written


def test_a_huge_line_is_kept_in_quarantine_only_as_a_prefix():
    line = b'{"messages": "' + b"x" * (5 * MAX_RAW_KEPT) + b'"}'
    (rejected,) = capture([RawRecord(f"{DAY}.jsonl", 1, line)]).quarantined
    assert len(rejected.raw) < MAX_RAW_KEPT + 40 and rejected.raw.endswith(f"[{len(line)} chars]")


# ---------------------------------------------------------------------------------------------------------------
# The general examples file


@st.composite
def general_lines(draw: st.DrawFn) -> list[bytes]:
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["good", "mutated", "mutated", "any", "repeat", "renamed", "reused_id"]))
        if kind == "good":
            lines.append(json.dumps(draw(st.sampled_from(GENERAL_BASES))).encode())
        elif kind == "mutated":
            lines.append(draw(mutated_line(GENERAL_BASES)))
        elif kind == "any":
            lines.append(draw(any_line).replace(b"\n", b" ").replace(b"\r", b" "))
        elif kind == "repeat" and lines:
            lines.append(draw(st.sampled_from(lines)))
        elif kind == "renamed":
            lines.append(json.dumps({**draw(st.sampled_from(GENERAL_BASES)), "id": f"gen-new-{len(lines)}"}).encode())
        elif kind == "reused_id":
            first, second = GENERAL_BASES[0], draw(st.sampled_from(GENERAL_BASES[1:]))
            lines.append(json.dumps({**second, "id": first["id"]}).encode())
    return lines


@FAST
@given(lines=general_lines())
def test_the_general_examples_loader_accounts_for_every_line_and_keeps_only_valid_examples(lines):
    result = load_general_examples(lines)
    assert result.input_lines == sum(_general_counted(line) for line in lines)
    assert result.balanced
    assert len({e.id for e in result.examples}) == len({e.content_hash for e in result.examples}) == \
        len(result.examples)
    for example in result.examples:
        assert check_example(example.chat_example()) == []
        assert check_answer(example.check, example.reference_answer)
    assert all(r.reason and r.line >= 1 for r in result.rejected)


def test_a_general_example_with_a_duplicate_key_is_rejected_not_read_last_wins():
    line = json.dumps(GENERAL_BASES[0])[:-1] + ', "id": "gen-other"}'
    (rejected,) = load_general_examples([line]).rejected
    assert rejected.line == 1 and "duplicate JSON keys: id" in rejected.reason


def _general_counted(line: bytes) -> bool:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return bool(text.rstrip("\r\n").strip())


# ---------------------------------------------------------------------------------------------------------------
# The task spec


SPEC_DATA = yaml.safe_load(SPEC_TEXT)
SPEC_LINES = SPEC_TEXT.count("\n") + 1


@st.composite
def mutated_spec_text(draw: st.DrawFn) -> str:
    lines = SPEC_TEXT.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "duplicate", "indent", "truncate", "garbage", "value", "tab"]))
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            break
        if kind == "delete":
            del lines[at]
        elif kind == "duplicate":
            lines.insert(at, lines[at])
        elif kind == "indent":
            lines[at] = " " * draw(st.integers(1, 5)) + lines[at]
        elif kind == "truncate":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
            del lines[at + 1:]
        elif kind == "garbage":
            lines.insert(at, draw(st.sampled_from(["{", "- ", ": :", "&a [*a]", "[" * 500, "\t- x", "? [a]",
                                                   "key: [1, 2", "!!python/object:os.system {}", "\x00"])))
        elif kind == "value" and ":" in lines[at]:
            key = lines[at].split(":", 1)[0]
            lines[at] = f"{key}: {draw(st.sampled_from(['', '[]', '{}', '7', 'true', 'null', '[a, b]', '{x: 1}']))}"
        elif kind == "tab":
            lines[at] = "\t" + lines[at]
    return "\n".join(lines) + "\n"


def _spec_leaves(value: Any, prefix: str = "", keys: tuple = ()) -> list[tuple[str, tuple]]:
    """(field path as errors write it, the keys to reach it) for every value in the spec."""
    out = [(prefix, keys)] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _spec_leaves(child, f"{prefix}.{key}" if prefix else str(key), (*keys, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _spec_leaves(child, f"{prefix}[{index}]", (*keys, index))
    return out


def _assert_names_line_and_field(err: TaskSpecError, text: str) -> None:
    message = str(err)
    assert message.startswith("task.yaml")
    if "nested too deeply" in message:
        return  # where YAML's own recursion gave out has no line
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = ...  # not YAML: the error still names the line the YAML parser stopped at
    if data is not None:
        assert err.line is not None and 1 <= err.line <= SPEC_LINES + 5, message
        assert f"line {err.line}:" in message
    if isinstance(data, dict):
        assert err.field, message  # a mapping document: the error names the field it is about
        assert message.split(": ", 1)[1].startswith(err.field)


@settings(FAST, max_examples=40)
@given(text=mutated_spec_text())
def test_a_mutated_task_spec_loads_or_fails_with_the_line_and_the_field(text):
    try:
        spec = parse_task_spec(text, "task.yaml")
    except TaskSpecError as err:
        _assert_names_line_and_field(err, text)
        return
    assert isinstance(spec, TaskSpec)


# A field whose value is checked against another one: the error names the other field, which is where to fix it.
CROSS_REFERENCES = {("teacher_model", "prices")}
WRONG_TYPES = [{"x": 1}, ["a", 1], 3.5, "not-a-choice", True, None]


@settings(FAST, max_examples=25)
@given(leaf=st.sampled_from(_spec_leaves(SPEC_DATA)), wrong=st.sampled_from(WRONG_TYPES))
def test_a_field_of_the_wrong_type_is_reported_at_its_own_line(leaf, wrong):
    path, keys = leaf
    data = copy.deepcopy(SPEC_DATA)
    set_at(data, keys, wrong)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    try:
        parse_task_spec(text, "task.yaml")
    except TaskSpecError as err:
        _assert_names_line_and_field(err, text)
        related = err.field == path or err.field.startswith(path) or path.startswith(err.field)
        assert related or (path, err.field) in CROSS_REFERENCES, str(err)
        assert err.line == _Document.parse(text, "task.yaml").line(err.field)


@pytest.mark.parametrize(("text", "expected"), [
    ("name: x\nfilter: " + "[" * 600 + "\n", "task.yaml: the task spec is nested too deeply"),
    ("name: x\ndescription: a\x00b\n", "task.yaml line 2: the task spec is not valid YAML: it contains the "
     "character U+0000"),
    (SPEC_TEXT.replace("required: [intent, soap,", "required: [1, soap,"),
     f"task.yaml line {SPEC_TEXT.splitlines().index('    required: [intent, soap, icd10, follow_up]') + 1}: "
     "output.schema.required[0] is not a valid JSON schema"),
])
def test_a_broken_spec_that_used_to_crash_or_lose_its_line_fails_clearly(text, expected):
    with pytest.raises(TaskSpecError) as caught:
        parse_task_spec(text, "task.yaml")
    assert str(caught.value).startswith(expected)


def test_nested_yaml_aliases_are_walked_once_not_exponentially():
    laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    with pytest.raises(TaskSpecError, match="line 1: a0 is not a known top-level key"):
        parse_task_spec(laughs, "task.yaml")


# ---------------------------------------------------------------------------------------------------------------
# Training files: the fine-tuning format check and the local trainer's reader


def _training_examples() -> list[dict[str, Any]]:
    examples = []
    for record in STORED + CHAT:
        examples.append(parse_line(json.dumps(record)).chat_example())
    examples += [{"messages": g["messages"]} for g in GENERAL_BASES[:4]]
    return examples


TRAINING_BASES = _training_examples()


@st.composite
def training_lines(draw: st.DrawFn, *, readable: bool = False) -> list[bytes]:
    lines = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["good", "mutated", "mutated", "any", "weight"]))
        if kind == "good":
            line = json.dumps(draw(st.sampled_from(TRAINING_BASES))).encode()
        elif kind == "weight":
            example = copy.deepcopy(draw(st.sampled_from(TRAINING_BASES)))
            example["messages"][-1]["weight"] = draw(st.sampled_from([0, 1, "1", None, [], 0.0]))
            line = json.dumps(example).encode()
        elif kind == "mutated":
            line = draw(mutated_line(TRAINING_BASES))
        else:
            line = draw(any_line)
        if readable:  # what the reader is specified for: UTF-8 text of ordinary depth
            line = line.decode("utf-8", errors="replace").encode("utf-8")
            line = re.sub(rb"\[{50,}", b"[", line)
        lines.append(line.replace(b"\n", b" ").replace(b"\r", b" "))
    return lines


@FAST
@given(lines=training_lines())
def test_the_format_check_reports_every_bad_training_line_and_never_raises(lines):
    report = check_lines(lines, min_examples=0)
    assert report.n_examples == len(lines)
    assert all(1 <= e.line <= len(lines) and e.key and e.detail for e in report.errors)
    assert report.summary()


@pytest.mark.parametrize(("line", "key"), [
    (b'{"messages": [{"role": ["user"], "content": "hi"}, {"role": "assistant", "content": "yes"}]}',
     "unrecognized_role"),
    (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    (b'{"messages": [{"role": "assistant", "content": "\xff"}]}', "invalid_json"),
])
def test_a_training_line_that_used_to_crash_the_format_check_is_reported(line, key):
    report = check_lines([line], min_examples=0)
    assert [e.key for e in report.errors] == [key] and report.errors[0].line == 1


@FAST
@given(examples=st.lists(st.sampled_from(TRAINING_BASES), min_size=10, max_size=14))
def test_well_formed_training_lines_pass_the_format_check(examples):
    assert check_lines([json.dumps(e).encode() for e in examples]).ok


@settings(FAST, max_examples=80)
@given(lines=training_lines(readable=True))
def test_the_local_trainer_reads_a_training_file_or_names_the_bad_line(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        try:
            conversations = read_chat_file(path)
        except ValueError as err:
            assert str(path) in str(err)
            return
        assert len(conversations) == sum(bool(line.decode("utf-8").strip()) for line in lines)
        assert all(any(m["role"] == "assistant" for m in c) for c in conversations)


def test_the_local_trainer_names_the_line_of_a_deeply_nested_training_example(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(TRAINING_BASES[0]).encode() + b"\n" + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    with pytest.raises(ValueError, match="line 2"):
        read_chat_file(path)


def test_the_local_trainer_names_the_line_of_invalid_utf8(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(TRAINING_BASES[0]).encode() + b"\n" + b'{"messages": "\xff"}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_chat_file(path)
