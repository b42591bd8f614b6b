"""Do the bundled graders separate the teacher's wrong answers from its right ones?

`data/sample/labels.jsonl` labels every line of the bundled corpus: what it is
(trace, quarantine, duplicate, do_not_train), whether the teacher was right,
and if not, which kind of error was planted.

The figures are pinned to what was measured on the bundled corpus (the README quotes them): all 147 wrong
answers removed, all 1,297 right ones kept. They are measured twice: through the `teacher_traces`,
`trace_evals` and `pass_cases` assets, partition by partition, as the pipeline keeps them, and through the
core graders alone. A grader that lets one wrong answer through, or drops one right answer, fails here.
"""

import json
from pathlib import Path

import dagster as dg
import pytest

from distill_pipeline import settings
from distill_pipeline.core.graders import build_graders, grade_trace, passes
from distill_pipeline.core.metrics import filter_quality
from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec
from distill_pipeline.core.traces import TraceParseError, TraceRow, parse_line
from distill_pipeline.defs.capture import teacher_traces
from distill_pipeline.defs.curate import pass_cases, trace_evals
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
ERROR_KINDS = ("invalid_json", "missing_field", "wrong_code", "ungrounded_date", "ungrounded_time",
               "ungrounded_clinician")
# Measured on the bundled corpus (data/sample, 30 days): wrong answers per planted error kind, and right ones.
MEASURED_WRONG = {"invalid_json": 24, "missing_field": 24, "ungrounded_clinician": 25, "ungrounded_date": 24,
                  "ungrounded_time": 25, "wrong_code": 25}
MEASURED_RIGHT = 1297


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


def labels_with_ids(rows: dict[tuple[str, int], TraceRow]) -> list[dict]:
    labels = []
    for entry in read_labels():
        row = rows.get((entry["file"], entry["line"]))
        if not entry["completion_id"] and row is not None:  # a chat example without an id: its id is its hash
            entry = {**entry, "completion_id": row.completion_id}
        labels.append(entry)
    return labels


@pytest.fixture(scope="module")
def core_quality() -> dict:
    """The graders alone, on every parsed line of the corpus."""
    spec = load_task_spec(default_task_spec_path())
    graders = build_graders(spec)
    rows = parse_corpus()
    passed = {row.completion_id: passes(grade_trace(graders, row), spec.pass_rule)
              for row in rows.values() if spec.filter.matches(row.metadata) and not row.do_not_train}
    return filter_quality(passed, labels_with_ids(rows))


@pytest.fixture(scope="module")
def asset_quality(tmp_path_factory) -> dict:
    """The pipeline's own verdict: a trace passed when the pass_cases asset kept it. Every partition of the
    bundled corpus goes through teacher_traces, trace_evals and pass_cases (the asset functions themselves)."""
    pipeline = PipelineSettings(storage_root=str(tmp_path_factory.mktemp("quality") / "storage"),
                                traces_dir=str(settings.DEFAULT_TRACES_DIR), task_spec=str(settings.DEFAULT_TASK_SPEC),
                                general_examples=str(settings.DEFAULT_GENERAL_EXAMPLES), preset="tiny")
    openai = OpenAIResource()
    days = sorted({path.name[:10] for path in (SAMPLE / "traces").glob("*.jsonl")})
    verdicts: dict[str, bool] = {}
    for day in days:
        teacher_traces(dg.build_asset_context(partition_key=day), pipeline=pipeline, openai=openai)
        trace_evals(dg.build_asset_context(partition_key=day), pipeline=pipeline, openai=openai)
        pass_cases(dg.build_asset_context(partition_key=day), pipeline=pipeline)
        captured = pipeline.layout.read_trace_columns("teacher_traces", day, ["completion_id"])["completion_id"]
        kept = set(pipeline.layout.read_trace_columns("pass_cases", day, ["completion_id"])["completion_id"])
        verdicts.update({cid: cid in kept for cid in captured})
    return filter_quality(verdicts, labels_with_ids(parse_corpus()))


@pytest.fixture(params=["asset", "core"])
def quality(request) -> dict:
    return request.getfixturevalue(f"{request.param}_quality")


def test_every_labelled_trace_is_graded(quality):
    assert quality["ungraded"] == []


def test_the_corpus_has_right_answers_and_every_kind_of_wrong_one(quality):
    assert quality["right"]["total"] > 0
    assert set(quality["by_error_kind"]) == set(ERROR_KINDS)


def test_the_filter_removes_all_147_wrong_answers(quality):
    assert quality["wrong"] == {"total": 147, "removed": 147, "removed_share": 1.0}


@pytest.mark.parametrize("kind", ERROR_KINDS)
def test_the_filter_removes_every_wrong_answer_of_each_kind(quality, kind):
    total = MEASURED_WRONG[kind]
    assert quality["by_error_kind"][kind] == {"total": total, "removed": total, "removed_share": 1.0}


def test_the_filter_keeps_all_1297_right_answers(quality):
    assert quality["right"] == {"total": MEASURED_RIGHT, "kept": MEASURED_RIGHT, "kept_share": 1.0}


def test_the_assets_and_the_graders_alone_agree_on_every_figure(asset_quality, core_quality):
    assert asset_quality == core_quality


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
