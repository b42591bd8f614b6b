"""The curate assets' checks, which read only the columns they need."""

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distill_pipeline.defs.capture import teacher_traces
from distill_pipeline.defs.curate import (
    pass_cases,
    teacher_pass_rate,
    trace_evals,
    trace_evals_cover_every_trace,
)

DAY = "2026-10-05"


def _checks(result) -> dict:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_the_checks_pass_on_a_full_grading_and_report_the_pass_rate(pipeline, resources):
    result = dg.materialize([teacher_traces, trace_evals, pass_cases, trace_evals_cover_every_trace,
                             teacher_pass_rate], partition_key=DAY, resources=resources)
    checks = _checks(result)
    assert checks["trace_evals_cover_every_trace"].passed
    covered = checks["trace_evals_cover_every_trace"].metadata
    traces = pipeline.layout.count_traces("teacher_traces", DAY)
    assert covered["traces"].value == traces and covered["missing"].value == 0
    rate = checks["teacher_pass_rate"].metadata["pass_rate"].value
    assert rate == round(pipeline.layout.count_traces("pass_cases", DAY) / traces, 4)
    assert 0.5 < rate < 1.0


def test_the_coverage_check_names_a_trace_that_lost_a_verdict(pipeline, resources):
    assert dg.materialize([teacher_traces, trace_evals], partition_key=DAY, resources=resources).success
    path = pipeline.layout.trace_evals_path(DAY)
    table = pq.read_table(path)
    victim = table.column("completion_id")[0].as_py()
    grader = table.column("grader")[0].as_py()
    drop = pc.and_(pc.equal(table.column("completion_id"), victim), pc.equal(table.column("grader"), grader))
    pq.write_table(table.filter(pc.invert(drop)), path)
    # Run the check alone (with teacher_traces, which rewrites the same bytes): trace_evals keeps its gap.
    selection = dg.AssetSelection.assets(teacher_traces) | dg.AssetSelection.checks(trace_evals_cover_every_trace)
    result = dg.materialize([teacher_traces, trace_evals, trace_evals_cover_every_trace], partition_key=DAY,
                            resources=resources, selection=selection, raise_on_error=False)
    assert not result.success  # the check is blocking
    check = _checks(result)["trace_evals_cover_every_trace"]
    assert not check.passed
    assert check.metadata["missing"].value == 1 and check.metadata["missing_ids"].value == [victim]
