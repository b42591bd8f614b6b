"""The scale fast paths decide exactly what the reference code decides.

Each fast path (orjson for trace JSON, jsonschema-rs for the schema grader, verdict columns for the pass
rule, an Arrow filter for pass_cases) sits beside the slower reference it replaced; these tests hold the
two to the same answers, byte for byte where bytes are stored.
"""

import copy
import json
import math
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from distill_pipeline import settings as settings_module
from distill_pipeline.backends.storage import StorageLayout
from distill_pipeline.core import traces as traces_module
from distill_pipeline.core.curate import EvalRow, passing_ids, passing_ids_from_columns, select_passing
from distill_pipeline.core.graders import JsonSchemaGrader
from distill_pipeline.core.taskspec import GraderSpec, PassRule, default_task_spec_path, load_task_spec
from distill_pipeline.core.traces import _dumps, _dumps_messages, loads_json, parse_record, trace_from_record
from distill_pipeline.defs.capture import teacher_traces
from distill_pipeline.defs.curate import pass_cases, trace_evals
from distill_pipeline_tests.test_properties import TRACE_BASES, mutated_record

SPEC = load_task_spec(default_task_spec_path())
SAMPLE_DIR = settings_module.DEFAULT_TRACES_DIR
FAST = settings(max_examples=300, deadline=None)

GOOD = {
    "intent": "book_follow_up",
    "soap": {"subjective": "Sore throat.", "objective": "None reported.", "assessment": "Pharyngitis.",
             "plan": "Follow-up visit."},
    "icd10": ["J02.9"],
    "follow_up": {"needed": True, "date": "2026-11-09", "time": "14:30", "clinician": "Dr. Amara Okafor"},
}

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
# Strings a schema pattern or enum reads differently across regex engines: Unicode digits, a trailing newline.
tricky = st.sampled_from(["2026-11-09", "2026-11-09\n", "٢٠٢٦-١١-٠٩", "14:30", "14:30\n", "１４:３０", "",
                          "book_follow_up", "book_follow_up\n", "BOOK_FOLLOW_UP"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), text, tricky)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(text | tricky, c, max_size=3),
                           max_leaves=12)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, prefix + (i,))
    return out


@st.composite
def near_valid_answers(draw: st.DrawFn) -> Any:
    """A valid answer with one to three places replaced, deleted or added to."""
    answer = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(answer)))
        if not path:
            return draw(json_values)
        parent = answer
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(text | tricky)] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return answer


def _trace(answer: Any):
    content = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
    return parse_record({"id": "chatcmpl-fast", "messages": [
        {"role": "user", "content": "Caller: sore throat. Agent: Dr. Amara Okafor, 2026-11-09 at 14:30."},
        {"role": "assistant", "content": content or "x"}]})


def _reference_schema_grader() -> JsonSchemaGrader:
    grader = JsonSchemaGrader(GraderSpec(name="schema", type="json_schema"), SPEC.output.schema or {})
    grader.fast = None  # jsonschema alone, as before the compiled fast path
    return grader


def test_the_compiled_validator_is_in_use_for_the_bundled_schema():
    assert JsonSchemaGrader(GraderSpec(name="schema", type="json_schema"), SPEC.output.schema or {}).fast is not None


@FAST
@given(answer=near_valid_answers())
def test_the_schema_grader_gives_the_same_verdict_as_jsonschema_alone(answer):
    fast = JsonSchemaGrader(GraderSpec(name="schema", type="json_schema"), SPEC.output.schema or {})
    assert fast.grade(_trace(answer)) == _reference_schema_grader().grade(_trace(answer))


@FAST
@given(answer=near_valid_answers())
def test_the_compiled_validator_never_accepts_what_jsonschema_rejects(answer):
    fast = JsonSchemaGrader(GraderSpec(name="schema", type="json_schema"), SPEC.output.schema or {})
    if fast.fast.is_valid(answer):
        assert fast.validator.is_valid(answer), answer


def test_answers_strict_json_refuses_are_still_decoded_as_json_loads_decodes_them():
    good = json.dumps(GOOD)
    nan = good.replace('"book_follow_up"', "NaN")
    huge = good.replace('"needed": true', f'"needed": {2**80}')
    lone = good.replace("Sore throat.", "\\ud800")
    deep = "[" * 3000 + "]" * 3000
    fast = JsonSchemaGrader(GraderSpec(name="schema", type="json_schema"), SPEC.output.schema or {})
    for answer in (nan, huge, lone, deep, "{not json"):
        assert fast.grade(_trace(answer)) == _reference_schema_grader().grade(_trace(answer)), answer
    assert fast.grade(_trace(nan)).reason.startswith("intent: nan is not of type")  # decoded, as json.loads does
    assert fast.grade(_trace(huge)).reason.startswith("follow_up.needed: 1208925819614629174706176 is not of")
    assert fast.grade(_trace(lone)).passed  # a lone surrogate is still a string to the schema
    assert "nested too deeply" in fast.grade(_trace(deep)).reason


@FAST
@given(value=st.recursive(st.none() | st.booleans() | text,
                          lambda c: st.lists(c, max_size=4) | st.dictionaries(text, c, max_size=4), max_leaves=20))
def test_message_json_is_the_reference_serialisation_byte_for_byte(value):
    # The content hash is taken over this text, so a single differing byte would change every hash.
    assert _dumps_messages(value) == _dumps(value)


def test_stored_json_that_strict_json_lacks_is_read_back_as_written():
    value = {"big": 2**80, "nan": math.nan, "inf": math.inf}
    back = loads_json(_dumps(value))
    assert back["big"] == 2**80 and math.isnan(back["nan"]) and back["inf"] == math.inf


def test_a_row_read_back_equals_the_row_written():
    row = _trace(GOOD)
    record = traces_module.trace_to_record(row)
    assert trace_from_record(record) == row


verdict_rows = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["g1", "g2", "g3"]),
                                  st.booleans(), st.booleans(), st.booleans(),
                                  st.floats(0, 1, allow_nan=False)), max_size=24)


@FAST
@given(rows=verdict_rows, rule=st.sampled_from([PassRule(), PassRule("min_score", 0.6), PassRule("min_score", None)]))
def test_the_pass_rule_over_verdict_columns_matches_the_rule_over_rows(rows, rule):
    eval_rows = [EvalRow(cid, "h", "i", grader, "t", "1", required, passed, skipped, score, "r")
                 for cid, grader, required, passed, skipped, score in rows]
    columns = {name: [getattr(r, name) for r in eval_rows]
               for name in ("completion_id", "required", "passed", "skipped", "score")}
    assert passing_ids_from_columns(columns, rule) == passing_ids(eval_rows, rule)


def test_pass_cases_writes_the_bytes_the_row_by_row_selection_wrote(pipeline, resources, tmp_path):
    day = "2026-10-05"  # a partition with wrong answers, duplicates and quarantined lines
    result = dg.materialize([teacher_traces, trace_evals, pass_cases], partition_key=day, resources=resources)
    assert result.success
    layout = pipeline.layout
    rows = layout.read_traces("teacher_traces", day)
    evals = [EvalRow(**r) for r in pq.read_table(pipeline.layout.trace_evals_path(day)).to_pylist()]
    expected = select_passing(rows, evals, SPEC.pass_rule)
    assert 0 < len(expected) < len(rows)
    # The old path: the selected TraceRows through traces_table, written by write_traces.
    old = StorageLayout(tmp_path / "old").write_traces("pass_cases", day, expected)
    assert layout.traces_path("pass_cases", day).read_bytes() == Path(old.path).read_bytes()
    assert [r.completion_id for r in layout.read_traces("pass_cases", day)] == [r.completion_id for r in expected]


def _outcome(parse, line: bytes):
    try:
        row = parse(line)
    except traces_module.TraceParseError as err:
        return "quarantined", str(err)
    return "row", row, row.content_hash, traces_module.trace_to_record(row)


@st.composite
def compact_lines(draw: st.DrawFn) -> bytes:
    """Export lines as compact exporters write them (the shape the orjson path takes), mutated: a duplicated
    key, a float or a huge integer, escapes, truncation."""
    record = draw(mutated_record(TRACE_BASES))
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=draw(st.booleans()))
    kind = draw(st.sampled_from(["none", "duplicate", "number", "truncate", "escape"]))
    if kind == "duplicate" and '"model":' in text:
        text = text.replace('"model":', '"model":"other","model":', 1)
    elif kind == "number":
        number = draw(st.sampled_from(["1.0", "1e2", str(2**70), "-0"]))
        text = text.replace('"completion_tokens":', f'"completion_tokens":{number},"x":', 1)
    elif kind == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    elif kind == "escape":
        text = text.replace("Agent", draw(st.sampled_from(["\\u0041gent", "\\ud800", "\\u0000", "Ag\\/ent"])), 1)
    return text.encode("utf-8", errors="surrogatepass")


@FAST
@given(line=compact_lines())
def test_the_orjson_line_path_decides_every_line_as_the_reference_parser_does(line):
    assert _outcome(traces_module.parse_line, line) == _outcome(traces_module._parse_line_reference, line)


def test_the_bundled_export_lines_take_the_orjson_path():
    lines = [line for line in (SAMPLE_DIR / "2026-10-01.jsonl").read_bytes().splitlines() if line.strip()]
    assert sum(traces_module._canonical_record(line) is not None for line in lines) >= len(lines) - 2
