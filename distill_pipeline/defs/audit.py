"""Audit: a model card that traces the current student back to its traces."""

import json
import subprocess
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from distill_pipeline.backends.storage import atomic_write_bytes, atomic_write_json, sha256_file, write_records
from distill_pipeline.core.audit import build_model_card, grader_summary, render_model_card
from distill_pipeline.defs.curate import eval_path
from distill_pipeline.defs.evaluate import read_report
from distill_pipeline.defs.resources import PipelineSettings
from distill_pipeline.defs.train import read_job
from distill_pipeline.settings import REPO_ROOT

TRAINING_TRACES_SCHEMA = pa.schema([
    ("file", pa.string()), ("source", pa.string()), ("id", pa.string()), ("intent", pa.string()),
    ("content_hash", pa.string()), ("partition", pa.string()),
])
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


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
    student, job, report = layout.read_student(), read_job(pipeline), read_report(pipeline)
    manifest_path = layout.asset_dir("student_model") / job["job_id"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else student.manifest or {}
    mix_dir = layout.asset_dir("training_mix")
    mix = json.loads((mix_dir / "mix_config.json").read_text())
    partitions = mix["pass_case_partitions"]
    where = {}
    for day in partitions:
        for row in layout.read_traces("pass_cases", day):
            where[row.completion_id] = day
    examples = _jsonl(mix_dir / "examples.jsonl")
    eval_rows = []
    for day in partitions:
        if eval_path(pipeline, day).exists():
            eval_rows += pq.read_table(eval_path(pipeline, day)).to_pylist()
    holdout_dir = layout.asset_dir("eval_holdout")
    holdout = {"domain_sha256": sha256_file(holdout_dir / "domain.jsonl"),
               "general_sha256": sha256_file(holdout_dir / "general.jsonl"),
               "domain_examples": len(_jsonl(holdout_dir / "domain.jsonl"))}
    run_ids = {}
    for asset in LINEAGE:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
        if event is not None:
            run_ids[asset] = event.run_id
    card = build_model_card(student=student.to_dict(), job=job, manifest=manifest, training_examples=examples,
                            pass_case_partitions=partitions, graders=grader_summary(eval_rows), holdout=holdout,
                            report=report, code_version=code_version(), run_ids=run_ids,
                            redaction=mix.get("redaction"), corpus=mix.get("corpus"))
    out = layout.asset_dir("model_card") / job["job_id"]
    traces = write_records(out / "training_traces.parquet",
                           [{**{k: e[k] for k in ("file", "source", "id", "intent", "content_hash")},
                             "partition": where.get(e["id"]) if e["source"] == "domain" else None}
                            for e in examples], TRAINING_TRACES_SCHEMA)
    card["training_traces"] = {"path": traces.path, "sha256": traces.sha256}
    written = atomic_write_json(out / "model_card.json", card)
    markdown = render_model_card(card)
    atomic_write_bytes(out / "model_card.md", markdown.encode())
    return dg.MaterializeResult(metadata={
        "student": card["student"], "job_id": card["job_id"], "code_version": card["code_version"],
        "training_examples": card["training_examples"]["total"], "card": dg.MetadataValue.md(markdown),
        **({"domain_examples": card["corpus"]["domain_examples"],
            "corpus_size_check": "passed" if card["corpus"]["check"]["passed"] else "WARN"} if card["corpus"] else {}),
        "path": written.path, "sha256": written.sha256, "training_traces_path": traces.path,
    }, data_version=dg.DataVersion(written.sha256))
