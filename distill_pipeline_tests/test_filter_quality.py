"""Do the bundled graders separate the teacher's wrong answers from its right ones?

`data/sample/labels.jsonl` labels every line of the bundled corpus: what it is
(trace, quarantine, duplicate, do_not_train), whether the teacher was right,
and if not, which kind of error was planted.
"""

import json
from pathlib import Path

import pytest

from distill_pipeline.core.graders import build_graders, grade_trace, passes
from distill_pipeline.core.metrics import filter_quality
from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec
from distill_pipeline.core.traces import TraceParseError, TraceRow, parse_line

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
ERROR_KINDS = ("invalid_json", "missing_field", "wrong_code", "ungrounded_date", "ungrounded_time",
               "ungrounded_clinician")


def read_labels() -> list[dict]:
    lines = (SAMPLE / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def parse_corpus() -> dict[tuple[str, int], TraceRow]:
    """(file, line) -> trace row, for every line the parser accepts (lines numbered from 1, as in the labels)."""
    rows = {}
    for path in sorted((SAMPLE / "traces").glob("*.jsonl")):
        for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                rows[(path.name, number)] = parse_line(raw)
            except TraceParseError:
                continue  # quarantined by capture; never graded
    return rows


@pytest.fixture(scope="module")
def quality() -> dict:
    spec = load_task_spec(default_task_spec_path())
    graders = build_graders(spec)
    rows = parse_corpus()
    passed = {row.completion_id: passes(grade_trace(graders, row), spec.pass_rule)
              for row in rows.values() if spec.filter.matches(row.metadata) and not row.do_not_train}
    labels = []
    for entry in read_labels():
        row = rows.get((entry["file"], entry["line"]))
        if not entry["completion_id"] and row is not None:  # a chat example without an id: its id is its hash
            entry = {**entry, "completion_id": row.completion_id}
        labels.append(entry)
    return filter_quality(passed, labels)


def test_every_labelled_trace_is_graded(quality):
    assert quality["ungraded"] == []


def test_the_corpus_has_right_answers_and_every_kind_of_wrong_one(quality):
    assert quality["right"]["total"] > 0
    assert set(quality["by_error_kind"]) == set(ERROR_KINDS)


def test_the_graders_remove_at_least_95_percent_of_wrong_answers(quality):
    assert quality["wrong"]["removed_share"] >= 0.95, quality["wrong"]


@pytest.mark.parametrize("kind", ERROR_KINDS)
def test_the_graders_remove_at_least_95_percent_of_each_kind_of_wrong_answer(quality, kind):
    counts = quality["by_error_kind"][kind]
    assert counts["removed_share"] >= 0.95, counts


def test_the_graders_keep_at_least_95_percent_of_right_answers(quality):
    assert quality["right"]["kept_share"] >= 0.95, quality["right"]


# -- the table itself, on hand-written labels ----------------------------------


def label(completion_id: str, correct: bool, error_kind: str | None = None, kind: str = "trace") -> dict:
    return {"kind": kind, "completion_id": completion_id, "teacher_correct": correct, "error_kind": error_kind}


def test_filter_quality_counts_removed_wrong_answers_per_error_kind():
    labels = [label("a", False, "wrong_code"), label("b", False, "wrong_code"), label("c", False, "invalid_json")]
    table = filter_quality({"a": False, "b": True, "c": False}, labels)
    assert table["by_error_kind"]["wrong_code"] == {"total": 2, "removed": 1, "removed_share": 0.5}
    assert table["by_error_kind"]["invalid_json"] == {"total": 1, "removed": 1, "removed_share": 1.0}
    assert table["wrong"] == {"total": 3, "removed": 2, "removed_share": pytest.approx(2 / 3)}


def test_filter_quality_counts_kept_right_answers():
    table = filter_quality({"a": True, "b": False}, [label("a", True), label("b", True)])
    assert table["right"] == {"total": 2, "kept": 1, "kept_share": 0.5}


def test_filter_quality_ignores_lines_that_never_reach_the_graders():
    labels = [label("q", False, kind="quarantine"), label("d", True, kind="duplicate"), label("a", True)]
    table = filter_quality({"a": True}, labels)
    assert table["right"]["total"] == 1 and table["wrong"]["total"] == 0


def test_filter_quality_lists_labelled_traces_that_were_not_graded():
    table = filter_quality({}, [label("lost", True)])
    assert table["ungraded"] == ["lost"] and table["right"]["total"] == 0
