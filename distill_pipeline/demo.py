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
from pathlib import Path
from typing import Any

import dagster as dg

from distill_pipeline import settings
from distill_pipeline.backends.jsonl_source import JsonlExportSource
from distill_pipeline.core.report import readable

# Exit codes: the pipeline worked and promoted (0) or refused (3) the student; it broke (1); bad set-up (2).
EXIT_PROMOTED, EXIT_BROKE, EXIT_SETUP, EXIT_REFUSED = 0, 1, 2, 3


def _metadata(instance: dg.DagsterInstance, asset: str) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return {}
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def _partition_totals(instance: dg.DagsterInstance, asset: str, days: list[str], keys: tuple[str, ...]) -> dict:
    """Each key summed over every daily partition's latest materialization (the corpus, not its last day)."""
    totals = dict.fromkeys(keys, 0)
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=10 * len(days) + 100).records
    seen: set[str] = set()
    for record in records:  # newest first: the first record of a partition is its latest
        materialization = record.asset_materialization
        if materialization is None or materialization.partition in seen:
            continue
        seen.add(str(materialization.partition))
        for key in keys:
            value = materialization.metadata.get(key)
            totals[key] += int(value.value) if value is not None else 0  # type: ignore[arg-type]  # counts are ints
    return totals


def _line(label: str, figures: dict[str, Any]) -> str:
    return f"  {label}: " + ", ".join(f"{k}={readable(v)}" for k, v in figures.items() if v is not None)


# The console shows progress (INFO and up); every event, DEBUG included, is still stored for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
SILENT = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def prepare() -> int:
    """Set-up: the redaction's name list and the local student's base model, each built once and cached.

    The name list comes from the names-dataset gazetteer (about 30 s and 1.3 GB the first time, then a 7 MB
    cache); the base model is dequantised once into `<storage root>/base_models`.
    """
    from distill_pipeline.core.redaction import name_gazetteer

    print(f"redaction name list ready: {len(name_gazetteer()):,} names")
    if settings.trainer() != "local":
        return 0
    from distill_pipeline.backends.handoffs import Handoffs
    from distill_pipeline.backends.local_trainer import resolve_base_model
    from distill_pipeline.core.presets import preset

    base = preset(settings.preset_name()).base_model
    path = resolve_base_model(base, Handoffs(settings.storage_root()).base_models_dir(), print)
    print(f"student base model ready: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    if "--prepare" in (sys.argv[1:] if argv is None else argv):
        return prepare()
    from distill_pipeline.definitions import defs
    from distill_pipeline.defs.automation import RETRAIN_ASSETS

    if settings.trace_source() != "jsonl":
        print("make demo runs offline on a JSONL export; unset DISTILL_TRACE_SOURCE or set it to 'jsonl'.")
        return EXIT_SETUP
    instance = dg.DagsterInstance.get()
    days = JsonlExportSource(settings.traces_dir()).days()
    if not days:
        print(f"No YYYY-MM-DD*.jsonl exports in {settings.traces_dir()}")
        return EXIT_SETUP
    started = time.monotonic()
    capture_job = defs.resolve_job_def("capture_job")
    print(f"capture + curate: {len(days)} daily partitions, {days[0]} .. {days[-1]}", flush=True)
    for i, day in enumerate(days, start=1):
        result = capture_job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False,
                                               run_config=QUIET)
        if not result.success:
            print(f"  {day}: FAILED (see `make ui`, run {result.run_id})")
            return EXIT_BROKE
        print(f"  [{i}/{len(days)}] {day} ok ({time.monotonic() - started:.0f}s)", flush=True)
    retrain = defs.resolve_job_def("retrain_job")
    print("mix, train, evaluate, audit: retrain_job", flush=True)
    result = retrain.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET,
                                        asset_selection=[dg.AssetKey(a) for a in RETRAIN_ASSETS
                                                         if a != "routing_policy"])
    if not result.success:
        print(f"retrain_job FAILED (see `make ui`, run {result.run_id})")
        return EXIT_BROKE
    # The gate's own run: a refusal is an outcome, shown below in a few lines; the run and its failed check
    # stay in the UI as Dagster records them, only the console is spared the traceback.
    print("promotion gate: routing_policy", flush=True)
    result = retrain.execute_in_process(instance=instance, raise_on_error=False, run_config=SILENT,
                                        asset_selection=[dg.AssetKey("routing_policy")])
    gate = [c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate"]
    if not gate:
        print(f"routing_policy FAILED before the gate could judge (see `make ui`, run {result.run_id})")
        return EXIT_BROKE
    elapsed = time.monotonic() - started
    code = _report(instance, days, elapsed, promoted=gate[0].passed)
    print("\nOpen the UI on these runs with `make ui` (DAGSTER_HOME=.dagster_home dagster dev).")
    return code


def _report(instance: dg.DagsterInstance, days: list[str], elapsed: float, *, promoted: bool) -> int:
    traces = _partition_totals(instance, "teacher_traces", days,
                               ("dagster/row_count", "input_rows", "quarantined_rows", "duplicate_rows",
                                "do_not_train_rows"))
    passed = _partition_totals(instance, "pass_cases", days, ("dagster/row_count",))
    mix, student, report = (_metadata(instance, a) for a in ("training_mix", "student_model", "student_eval_report"))
    print(f"\nDone in {elapsed:.0f}s. Headline figures:")
    print(_line(f"teacher_traces (all {len(days)} days)", {"traces": traces["dagster/row_count"], **{
        k: traces[k] for k in ("input_rows", "quarantined_rows", "duplicate_rows", "do_not_train_rows")}}))
    pass_rate = passed["dagster/row_count"] / max(1, traces["dagster/row_count"])
    print(_line("pass_cases (all days)", {"pass_cases": passed["dagster/row_count"], "pass_rate": pass_rate}))
    print(_line("training_mix", {k: mix.get(k) for k in ("train_examples", "validation_examples", "domain_examples",
                                                         "general_examples")}))
    print(_line("student_model", {k: student.get(k) for k in ("train_wall_s", "tokens_per_s", "peak_memory_mb",
                                                              "final_validation_loss")}))
    print(_line("student_eval_report", {k: report.get(k) for k in (
        "base_score", "student_score", "all_structured_right", "routing_auroc", "recommended_threshold",
        "teacher_share", "routed_score", "champion_score", "student_ttft_single_p50_ms",
        "student_ttft_single_p95_ms", "teacher_ttft_p50_ms", "routed_ttft_p50_ms", "ttft_ratio",
        "student_cost_per_call", "teacher_cost_per_call", "cost_ratio")}))
    fields = report.get("field_accuracy") or {}
    if fields:
        print("  per field (student / base; exact fields: share right, soap: token F1):")
        for path, row in fields.items():
            print(f"    {path:<22} {row['rule']:<9} {readable(row['student'])!s:>6} / {readable(row['base'])}")
    policy = _metadata(instance, "routing_policy")
    if not promoted:
        reasons = policy.get("reasons") or []
        print("\nThe promotion gate REFUSED this student; the policy in force is unchanged:")
        for reason in reasons:
            print(f"  - {reason}")
        print(f"routing_policy: promoted=False (exit code {EXIT_REFUSED}: refused, not broken)")
        return EXIT_REFUSED
    print(_line("routing_policy", {k: policy.get(k) for k in ("promoted", "student", "threshold")}))
    _route_one(Path(str(policy["path"])))
    return EXIT_PROMOTED


def _route_one(policy_path: Path) -> None:
    """One held-out call through the Router, as a caller would use it (the teacher replays its recorded answer)."""
    from distill_pipeline.backends.chat_models import ReplayTeacher
    from distill_pipeline.backends.handoffs import Handoffs
    from distill_pipeline.routing import Router

    trace = next(Handoffs(settings.storage_root()).iter_holdout_domain())
    router = Router.from_policy(policy_path, teacher=ReplayTeacher([trace], default_ttft_ms=None))
    answer = router.route(trace.request_messages, intent=trace.intent)
    print(f"\nRouter.from_policy on held-out call {trace.completion_id}: answered by the {answer.model_used} "
          f"({answer.reason})\n  {answer.text[:300]}")


if __name__ == "__main__":
    sys.exit(main())
