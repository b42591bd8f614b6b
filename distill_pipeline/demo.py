"""`make demo`: the whole pipeline, offline, on the bundled corpus, in one process.

Every daily partition runs as its own in-process run of `capture_job` (so each
keeps its own counts in the UI), then `retrain_job` runs once over the result.
The runs land in DAGSTER_HOME, so `make ui` afterwards shows them.

`--prepare` is the set-up step `make demo` runs first: it turns the student's
bundled GGUF weights into a transformers checkpoint under the storage root
(once; 20-40 s), so the timed pipeline starts from installed weights, as it
does on every run after the first.
"""

from __future__ import annotations

import sys
import time

import dagster as dg

from distill_pipeline import settings
from distill_pipeline.backends.jsonl_source import JsonlExportSource


def _headline(instance: dg.DagsterInstance, asset: str, keys: tuple[str, ...]) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return f"{asset}: not materialized"
    metadata = event.asset_materialization.metadata
    parts = [f"{k}={metadata[k].value}" for k in keys if k in metadata]
    return f"{asset}: " + ", ".join(parts)


# The console shows progress (INFO and up); every event, DEBUG included, is still stored for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def prepare() -> int:
    """Set-up: the local student's base model, dequantised once into `<storage root>/base_models`."""
    from pathlib import Path

    if settings.trainer() != "local":
        return 0
    from distill_pipeline.backends.local_trainer import resolve_base_model
    from distill_pipeline.core.presets import preset

    base = preset(settings.preset_name()).base_model
    path = resolve_base_model(base, Path(settings.storage_root()) / "base_models", print)
    print(f"student base model ready: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    if "--prepare" in (sys.argv[1:] if argv is None else argv):
        return prepare()
    from distill_pipeline.definitions import defs

    if settings.trace_source() != "jsonl":
        print("make demo runs offline on a JSONL export; unset DISTILL_TRACE_SOURCE or set it to 'jsonl'.")
        return 2
    instance = dg.DagsterInstance.get()
    days = JsonlExportSource(settings.traces_dir()).days()
    if not days:
        print(f"No YYYY-MM-DD*.jsonl exports in {settings.traces_dir()}")
        return 2
    started = time.monotonic()
    capture_job = defs.resolve_job_def("capture_job")
    print(f"capture + curate: {len(days)} daily partitions, {days[0]} .. {days[-1]}", flush=True)
    for i, day in enumerate(days, start=1):
        result = capture_job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False,
                                               run_config=QUIET)
        if not result.success:
            print(f"  {day}: FAILED (see `make ui`, run {result.run_id})")
            return 1
        print(f"  [{i}/{len(days)}] {day} ok ({time.monotonic() - started:.0f}s)", flush=True)
    names = {job.name for job in defs.resolve_all_job_defs()}
    if "retrain_job" in names:
        print("mix, train, evaluate, route, audit: retrain_job", flush=True)
        result = defs.resolve_job_def("retrain_job").execute_in_process(instance=instance, raise_on_error=False,
                                                                        run_config=QUIET)
        if not result.success:
            gate = [c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate"]
            if not gate or gate[0].passed:
                print(f"retrain_job FAILED (see `make ui`, run {result.run_id})")
                return 1
            # The pipeline worked; the gate refused the student, so the previous policy stays in force.
            print(f"promotion gate FAILED: {gate[0].description}; no new routing policy was written")
    print(f"\nDone in {time.monotonic() - started:.0f}s. Headline figures:")
    for asset, keys in [
        ("teacher_traces", ("dagster/row_count", "input_rows", "quarantined_rows", "duplicate_rows")),
        ("pass_cases", ("dagster/row_count", "pass_rate")),
        ("training_mix", ("train_examples", "validation_examples", "domain_examples", "general_examples")),
        ("student_model", ("train_wall_s", "tokens_per_s", "final_validation_loss")),
        ("student_eval_report", ("base_score", "student_score", "teacher_score", "routed_score",
                                 "recommended_threshold", "teacher_share", "student_ttft_p50_ms",
                                 "teacher_ttft_p50_ms", "student_cost_per_call", "teacher_cost_per_call")),
        ("routing_policy", ("promoted", "student", "threshold")),
    ]:
        print("  " + _headline(instance, asset, keys))
    print("\nOpen the UI on these runs with `make ui` (DAGSTER_HOME=.dagster_home dagster dev).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
