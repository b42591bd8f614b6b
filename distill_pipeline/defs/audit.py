"""Audit: a model card that traces the current student back to its traces."""

import subprocess

import dagster as dg

from distill_pipeline.core.artifacts import ModelCard
from distill_pipeline.core.audit import build_model_card, grader_summary, render_model_card
from distill_pipeline.defs.resources import PipelineSettings
from distill_pipeline.settings import REPO_ROOT

LINEAGE = ("general_examples", "eval_holdout", "training_mix", "fine_tune_job", "student_model",
           "student_eval_report")


def code_version() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


@dg.asset(
    deps=["student_eval_report", "student_model", "training_mix", "eval_holdout"],
    kinds={"markdown"},
    group_name="audit",
    code_version="1",
    description="What trained the current student, down to trace ids and file hashes: base model, trainer and "
    "hyperparameters, training files, pass-case partitions, graders, holdout, evaluation, gate and Dagster runs.",
)
def model_card(context: dg.AssetExecutionContext, pipeline: PipelineSettings) -> dg.MaterializeResult:
    layout = pipeline.layout
    student, job, report = layout.read_student(), layout.read_job(), layout.read_report()
    manifest = layout.read_training_manifest(job.job_id) or student.manifest or {}
    mix = layout.read_mix_record()
    partitions = mix.pass_case_partitions
    where = {}
    for day in partitions:
        for row in layout.read_traces("pass_cases", day):
            where[row.completion_id] = day
    examples = [e.to_dict() for e in layout.read_mix_examples()]
    eval_rows = [row for day in partitions for row in layout.read_trace_eval_rows(day)]
    run_ids = {}
    for asset in LINEAGE:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
        if event is not None:
            run_ids[asset] = event.run_id
    built = build_model_card(student=student.to_dict(), job=job.to_dict(), manifest=manifest,
                             training_examples=examples, pass_case_partitions=partitions,
                             graders=grader_summary(eval_rows), holdout=layout.holdout_summary(),
                             report=report.to_dict(), code_version=code_version(), run_ids=run_ids,
                             redaction=mix.redaction, corpus=mix.corpus)
    traces = layout.write_training_traces(job.job_id, [
        {**{k: e[k] for k in ("file", "source", "id", "intent", "content_hash")},
         "partition": where.get(e["id"]) if e["source"] == "domain" else None} for e in examples])
    card = ModelCard.from_dict({**built, "training_traces": {"path": traces.path, "sha256": traces.sha256}})
    markdown = render_model_card(card.to_dict())
    written = layout.write_model_card(card, markdown)
    return dg.MaterializeResult(metadata={
        "student": card.student, "job_id": card.job_id, "code_version": card.code_version,
        "training_examples": card.training_examples["total"], "card": dg.MetadataValue.md(markdown),
        **({"domain_examples": card.corpus["domain_examples"],
            "corpus_size_check": "passed" if card.corpus["check"]["passed"] else "WARN"} if card.corpus else {}),
        "path": written.path, "sha256": written.sha256, "training_traces_path": traces.path,
    }, data_version=dg.DataVersion(written.sha256))
