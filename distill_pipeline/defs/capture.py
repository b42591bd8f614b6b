"""Capture: a day's teacher traces into the trace-row contract, every input line accounted for."""


from collections import Counter

import dagster as dg

from distill_pipeline.backends.storage import rejected_table
from distill_pipeline.core.capture import CaptureResult, capture
from distill_pipeline.defs.partitions import daily
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
from distill_pipeline.defs.util import markdown_table


def capture_metadata(result: CaptureResult) -> dict:
    return {
        "dagster/row_count": len(result.rows),
        "input_rows": result.input_rows,
        "quarantined_rows": len(result.quarantined),
        "duplicate_rows": len(result.duplicates),
        "do_not_train_rows": len(result.do_not_train),
        "quarantine_share": round(result.quarantine_share, 4),
        "quarantine_reasons": dg.MetadataValue.json(result.reasons()),
        "rows_by_intent": dg.MetadataValue.json(dict(sorted(Counter(r.intent for r in result.rows).items()))),
    }


@dg.asset(
    partitions_def=daily,
    kinds={"parquet"},
    group_name="capture",
    code_version="1",
    description="The day's teacher traces in the trace-row contract; bad lines quarantined with a reason, "
    "duplicates and do-not-train rows counted and kept out.",
    check_specs=[dg.AssetCheckSpec(
        "quarantine_share_below_limit", asset="teacher_traces", blocking=True,
        description="Fails the partition when more than the task spec's quarantine_max_share (default 5%) of "
        "its input lines were quarantined: the export is probably broken.")],
)
def teacher_traces(context: dg.AssetExecutionContext, pipeline: PipelineSettings,
                   openai: OpenAIResource) -> dg.MaterializeResult:
    day = context.partition_key
    task = pipeline.load_task()
    source = pipeline.trace_source_backend(openai, context.log.info)
    result = capture(source.records(day))
    if not result.balanced:  # a bug, not bad data: never publish counts that do not add up
        raise dg.Failure(f"capture counts do not add up for {day}")
    layout = pipeline.layout
    written = layout.write_traces("teacher_traces", day, result.rows)
    rejected = layout.write_quarantine(day, rejected_table(result.quarantined, result.duplicates))
    context.log.info(f"{day}: {result.input_rows} lines -> {len(result.rows)} rows, {len(result.quarantined)} "
                     f"quarantined, {len(result.duplicates)} duplicates, {len(result.do_not_train)} do-not-train")
    limit = task.quarantine_max_share
    samples = [(q.file, q.line, q.reason[:120]) for q in result.quarantined[:10]]
    return dg.MaterializeResult(
        metadata={
            **capture_metadata(result),
            "source": pipeline.trace_source,
            "path": written.path,
            "sha256": written.sha256,
            "quarantine_path": rejected.path,
            "quarantine_sha256": rejected.sha256,
            "do_not_train_ids": dg.MetadataValue.json(sorted(r.completion_id for r in result.do_not_train)),
            "quarantine_examples": dg.MetadataValue.md(markdown_table(("file", "line", "reason"), samples)),
        },
        data_version=dg.DataVersion(written.sha256),
        check_results=[dg.AssetCheckResult(
            check_name="quarantine_share_below_limit",
            passed=result.quarantine_share <= limit,
            metadata={"quarantine_share": round(result.quarantine_share, 4), "limit": limit,
                      "quarantined_rows": len(result.quarantined), "input_rows": result.input_rows},
            description=f"{len(result.quarantined)} of {result.input_rows} lines quarantined (limit {limit:.0%})",
        )],
    )
