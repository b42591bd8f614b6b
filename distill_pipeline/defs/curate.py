"""Curate: grade every teacher trace, keep the ones the teacher got right."""


import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from distill_pipeline.core.curate import (
    eval_columns,
    evaluate,
    failures,
    pass_rates,
    passing_ids_from_columns,
)
from distill_pipeline.core.graders import build_graders, judge_model
from distill_pipeline.core.taskspec import TaskSpec
from distill_pipeline.defs.partitions import daily
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
from distill_pipeline.defs.util import markdown_table


def _judge(task: TaskSpec, openai: OpenAIResource):
    """A chat model for llm_judge graders when one is enabled and an endpoint is configured."""
    model = judge_model(task)
    if model is None or not openai.configured:
        return None
    from distill_pipeline.backends.chat_models import OpenAIChatModel

    return OpenAIChatModel(openai.client(), model=model)


@dg.asset(
    partitions_def=daily,
    deps=["teacher_traces"],
    kinds={"parquet"},
    group_name="curate",
    code_version="1",
    description="Every enabled grader's verdict on every teacher trace of the day (one row per trace x grader).",
)
def trace_evals(context: dg.AssetExecutionContext, pipeline: PipelineSettings,
                openai: OpenAIResource) -> dg.MaterializeResult:
    day = context.partition_key
    task = pipeline.load_task()
    traces = pipeline.layout.read_traces("teacher_traces", day)
    cache = pipeline.layout.judge_cache()
    graders = build_graders(task, judge=_judge(task, openai), judge_cache=cache)
    rows = evaluate(graders, traces)
    if any(g.type == "llm_judge" for g in graders):
        cache.save()
    written = pipeline.layout.write_trace_evals(day, eval_columns(rows))
    rates = pass_rates(rows, task.pass_rule)
    counts, examples = failures(rows)
    skipped = sorted({r.reason for r in rows if r.skipped})
    context.log.info(f"{day}: {len(traces)} traces x {len(graders)} graders, teacher pass rate {rates['overall']:.1%}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "traces": len(traces),
            "pass_rate": round(rates["overall"], 4),
            **{f"pass_rate/{name}": round(rate, 4) for name, rate in rates.items() if name != "overall"},
            "graders": dg.MetadataValue.json({g.name: {"type": g.type, "version": g.version,
                                                        "required": g.required} for g in graders}),
            "failures_by_kind": dg.MetadataValue.json(dict(counts.most_common())),
            "failure_examples": dg.MetadataValue.md(markdown_table(
                ("kind", "count", "trace", "reason"),
                [(kind, counts[kind], ex.completion_id, ex.reason[:160]) for kind, ex in examples.items()])),
            "skipped_notes": dg.MetadataValue.json(skipped[:5]),
            "path": written.path,
            "sha256": written.sha256,
        },
        data_version=dg.DataVersion(written.sha256),
    )


@dg.asset_check(asset=trace_evals, blocking=True, partitions_def=daily,
                description="Every row of teacher_traces has a verdict from every enabled grader: nothing skipped.")
def trace_evals_cover_every_trace(context: dg.AssetCheckExecutionContext,
                                  pipeline: PipelineSettings) -> dg.AssetCheckResult:
    day = context.partition_key
    ids = pipeline.layout.read_trace_columns("teacher_traces", day, ["completion_id"])["completion_id"]
    verdicts = pipeline.layout.read_trace_eval_columns(day, ["completion_id", "grader"])
    names = sorted({g.name for g in pipeline.load_task().enabled_graders})
    graded = set(zip(verdicts["completion_id"], verdicts["grader"], strict=True))
    missing = [cid for cid in ids if any((cid, name) not in graded for name in names)]
    return dg.AssetCheckResult(passed=not missing, metadata={
        "traces": len(ids), "graders": len(names), "missing": len(missing),
        "missing_ids": dg.MetadataValue.json(missing[:20])})


@dg.asset(
    partitions_def=daily,
    deps=["teacher_traces", trace_evals],
    kinds={"parquet"},
    group_name="curate",
    code_version="1",
    description="The day's traces that passed the task's pass rule: only the teacher's correct answers.",
)
def pass_cases(context: dg.AssetExecutionContext, pipeline: PipelineSettings) -> dg.MaterializeResult:
    day = context.partition_key
    task = pipeline.load_task()
    # The verdicts' few columns decide; the passing rows are then taken from the trace table as they are,
    # in their order, never turned into Python objects.
    verdicts = pipeline.layout.read_trace_eval_columns(day, ["completion_id", "required", "passed", "skipped",
                                                             "score"])
    keep = passing_ids_from_columns(verdicts, task.pass_rule)
    traces = pipeline.layout.read_trace_table("teacher_traces", day)
    passed = traces.filter(pc.is_in(traces.column("completion_id"), value_set=pa.array(list(keep), pa.string())))
    written = pipeline.layout.write_trace_table("pass_cases", day, passed)
    total, kept = traces.num_rows, passed.num_rows
    rate = kept / total if total else 0.0
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": kept,
            "pass_rate": round(rate, 4),
            "traces": total,
            "rejected": total - kept,
            "path": written.path,
            "sha256": written.sha256,
        },
        data_version=dg.DataVersion(written.sha256),
    )


@dg.asset_check(
    asset=pass_cases, partitions_def=daily,
    description="Warns when the teacher's pass rate falls below the task spec's min_teacher_pass_rate (default "
    "80%). If the teacher is wrong 20% of the time, fix the teacher (prompt, model, tools) first: distilling "
    "it will not help.")
def teacher_pass_rate(context: dg.AssetCheckExecutionContext, pipeline: PipelineSettings) -> dg.AssetCheckResult:
    day = context.partition_key
    task = pipeline.load_task()
    traces = pipeline.layout.count_traces("teacher_traces", day)
    passed = pipeline.layout.count_traces("pass_cases", day)
    rate = passed / traces if traces else 1.0
    return dg.AssetCheckResult(
        passed=rate >= task.min_teacher_pass_rate, severity=dg.AssetCheckSeverity.WARN,
        metadata={"pass_rate": round(rate, 4), "threshold": task.min_teacher_pass_rate},
        description=f"teacher pass rate {rate:.1%} (threshold {task.min_teacher_pass_rate:.0%})")
