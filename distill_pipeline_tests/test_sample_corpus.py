"""The bundled synthetic corpus: reproducible, and shaped the way the pipeline's tests rely on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE = DATA / "sample"
TRACES = SAMPLE / "traces"
GENERAL = DATA / "general" / "general_examples.jsonl"
ERROR_KINDS = {"invalid_json", "missing_field", "wrong_code", "ungrounded_date", "ungrounded_time",
               "ungrounded_clinician"}
INDICATORS = {
    "J02.9": ("sore throat",),
    "J06.9": ("head cold", "runny nose"),
    "I10": ("high blood pressure",),
    "E11.9": ("type 2 diabetes", "blood sugar"),
    "M54.50": ("low back pain",),
    "J45.909": ("asthma", "wheezing"),
    "N39.0": ("urinary tract infection", "burning when urinating"),
    "K21.9": ("acid reflux", "heartburn"),
    "F41.1": ("anxiety",),
    "R51.9": ("headache",),
}
INTENTS = {"book_follow_up", "medication_refill", "test_results", "billing_question", "symptom_report",
           "cancel_appointment", "insurance_update", "referral_request"}


@cache
def labels() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLE / "labels.jsonl").read_text(encoding="utf-8").splitlines()]


@cache
def export_lines() -> list[tuple[str, int, str]]:
    """(file, line number from 1, text) for every non-blank line, in file-name then line order."""
    out = []
    for path in sorted(TRACES.glob("*.jsonl")):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if text.strip():
                out.append((path.name, number, text))
    return out


def rows() -> list[dict[str, Any]]:
    return [lb for lb in labels() if lb["kind"] in ("trace", "do_not_train")]


def request_and_answer(text: str) -> tuple[str, str]:
    record = json.loads(text)
    if "choices" in record:
        return record["request_messages"][-1]["content"], record["choices"][0]["message"]["content"]
    return record["messages"][-2]["content"], record["messages"][-1]["content"]


def follows_the_contract(transcript: str, answer_text: str) -> bool:
    """CONTRACTS.md: valid JSON of the shape, indicated codes only, follow-up values found in the transcript."""
    try:
        answer = json.loads(answer_text)
        soap, codes, follow = answer["soap"], answer["icd10"], answer["follow_up"]
        shape_ok = (
            set(answer) == {"intent", "soap", "icd10", "follow_up"} and answer["intent"] in INTENTS
            and set(soap) == {"subjective", "objective", "assessment", "plan"}
            and all(isinstance(v, str) for v in soap.values())
            and isinstance(codes, list) and set(follow) == {"needed", "date", "time", "clinician"}
            and isinstance(follow["needed"], bool)
        )
    except (ValueError, KeyError, TypeError):
        return False
    if not shape_ok:
        return False
    text = transcript.lower()
    if not all(c in INDICATORS and any(w in text for w in INDICATORS[c]) for c in codes):
        return False
    patterns = {"date": r"\d{4}-\d{2}-\d{2}", "time": r"\d{2}:\d{2}", "clinician": r".+"}
    return all(follow[k] is None or (isinstance(follow[k], str) and re.fullmatch(p, follow[k]) is not None
                                     and follow[k] in transcript) for k, p in patterns.items())


def test_regenerating_the_sample_gives_byte_identical_files(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(DATA / "generate_sample.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    for folder in ("sample", "general"):
        committed = {p.relative_to(DATA) for p in (DATA / folder).rglob("*") if p.is_file()}
        fresh = {p.relative_to(tmp_path) for p in (tmp_path / folder).rglob("*") if p.is_file()}
        assert fresh == committed
        for rel in sorted(committed):
            assert (tmp_path / rel).read_bytes() == (DATA / rel).read_bytes(), f"{rel} differs when regenerated"


def test_the_export_covers_30_consecutive_days_with_three_second_parts() -> None:
    names = sorted(p.name for p in TRACES.glob("*.jsonl"))
    days = sorted({n[:10] for n in names})
    assert days[0] == "2026-10-01" and days[-1] == "2026-10-30" and len(days) == 30
    assert sum(n.endswith("-part2.jsonl") for n in names) == 3


def test_every_day_has_at_least_40_lines() -> None:
    per_day = Counter(name[:10] for name, _, _ in export_lines())
    assert min(per_day.values()) >= 40


def test_labels_cover_every_non_blank_line_in_file_then_line_order() -> None:
    assert [(lb["file"], lb["line"]) for lb in labels()] == [(f, n) for f, n, _ in export_lines()]
    assert all(lb["partition"] == lb["file"][:10] for lb in labels())


def test_wrong_answers_are_8_to_12_percent_of_traces() -> None:
    traces = [lb for lb in labels() if lb["kind"] == "trace"]
    wrong = sum(not lb["teacher_correct"] for lb in traces)
    assert 0.08 <= wrong / len(traces) <= 0.12


def test_every_error_kind_is_present() -> None:
    kinds = Counter(lb["error_kind"] for lb in rows() if lb["error_kind"])
    assert set(kinds) == ERROR_KINDS
    assert min(kinds.values()) >= 5


def test_quarantined_lines_are_under_5_percent_of_each_day() -> None:
    lines, quarantined = Counter(), Counter()
    for lb in labels():
        lines[lb["partition"]] += 1
        quarantined[lb["partition"]] += lb["kind"] == "quarantine"
    assert all(quarantined[day] / lines[day] < 0.05 for day in lines)
    assert sum(quarantined.values()) > 0


def test_intents_are_skewed_the_most_common_at_least_5x_the_rarest() -> None:
    counts = Counter(lb["intent"] for lb in rows())
    assert set(counts) == INTENTS
    assert max(counts.values()) >= 5 * min(counts.values())


def test_every_kind_of_line_is_planted() -> None:
    kinds = Counter(lb["kind"] for lb in labels())
    assert kinds["duplicate"] > 0 and kinds["do_not_train"] > 0 and kinds["quarantine"] > 0
    chat_examples = sum('"messages"' in text and '"choices"' not in text for _, _, text in export_lines())
    assert chat_examples > 0


def test_labelled_correctness_agrees_with_the_contract_rule() -> None:
    texts = {(f, n): t for f, n, t in export_lines()}
    for lb in rows():
        transcript, answer = request_and_answer(texts[lb["file"], lb["line"]])
        assert follows_the_contract(transcript, answer) == lb["teacher_correct"], (lb["file"], lb["line"])
        assert follows_the_contract(transcript, json.dumps(lb["reference"])), (lb["file"], lb["line"])


def test_trace_contents_are_unique_apart_from_planted_duplicates() -> None:
    texts = {(f, n): t for f, n, t in export_lines()}
    contents = Counter(request_and_answer(texts[lb["file"], lb["line"]]) for lb in rows())
    assert max(contents.values()) == 1


def test_every_line_parses_as_its_label_says() -> None:
    traces = pytest.importorskip("distill_pipeline.core.traces")
    label_of = {(lb["file"], lb["line"]): lb for lb in labels()}
    seen: dict[str, set[str]] = defaultdict(set)
    for name, number, text in export_lines():
        lb = label_of[name, number]
        try:
            row = traces.parse_line(text)
        except traces.TraceParseError:
            assert lb["kind"] == "quarantine", (name, number)
            continue
        assert lb["kind"] != "quarantine", (name, number)
        day = seen[name[:10]]
        duplicate = bool({row.completion_id, row.content_hash} & day)
        day |= {row.completion_id, row.content_hash}
        assert duplicate == (lb["kind"] == "duplicate"), (name, number)
        if not duplicate:
            assert row.do_not_train == (lb["kind"] == "do_not_train"), (name, number)
            assert row.intent == lb["intent"], (name, number)


def test_general_examples_answer_their_own_checks_with_three_duplicates() -> None:
    examples = [json.loads(line) for line in GENERAL.read_text(encoding="utf-8").splitlines()]
    assert 300 <= len(examples) <= 340
    assert len({e["id"] for e in examples}) == len(examples)
    assert len(examples) - len({json.dumps(e["messages"]) for e in examples}) == 3
    for example in examples:
        answer, check = example["messages"][-1]["content"], example["check"]
        assert answer == check["value"] if check["type"] == "exact" else check["value"] in answer, example["id"]
    assert {e["category"] for e in examples} == {"arithmetic", "date_arithmetic", "unit_conversion", "rewriting",
                                                  "list_tasks", "format_tasks"}
