"""Jobs, schedules and sensors: keep capture current, retrain when enough new traces arrive."""

import json
import urllib.request
from datetime import UTC, datetime

import dagster as dg

from distill_pipeline.core.automation import SensorState, advance, missing_days, retrain_decision
from distill_pipeline.defs.partitions import daily
from distill_pipeline.defs.resources import AutomationSettings

CAPTURE_ASSETS = ["teacher_traces", "trace_evals", "pass_cases"]
RETRAIN_ASSETS = ["general_examples", "eval_holdout", "training_mix", "fine_tune_job", "student_model",
                  "student_eval_report", "routing_policy", "model_card"]
IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]

capture_job = dg.define_asset_job(
    "capture_job", selection=dg.AssetSelection.assets(*CAPTURE_ASSETS),
    description="Capture and curate one day of teacher traces (daily partitions, as its assets are).")

retrain_job = dg.define_asset_job(
    "retrain_job", selection=dg.AssetSelection.assets(*RETRAIN_ASSETS),
    description="From the holdout and the training mix through the student, its report, the routing policy and the "
    "model card.")

# Stored completions expire after 30 days: capture every day, for the day before.
capture_daily = dg.build_schedule_from_partitioned_job(capture_job, hour_of_day=1, minute_of_hour=15)

# The backstop: retrain weekly even when the sensor's threshold was not reached.
retrain_weekly = dg.ScheduleDefinition(job=retrain_job, cron_schedule="0 3 * * 0", execution_timezone="UTC",
                                       description="Weekly retraining backstop (Sunday 03:00 UTC).")


@dg.sensor(job=retrain_job, minimum_interval_seconds=300,
           description="Starts retrain_job when at least DISTILL_RETRAIN_MIN_NEW_PASS_CASES (default 1,000) new pass "
           "cases were materialized since the training mix. Reads row counts from materialization metadata, "
           "never the data files, so a tick costs the same however many traces exist.")
def new_traces_sensor(context: dg.SensorEvaluationContext, automation: AutomationSettings):
    instance = context.instance
    state = SensorState.loads(context.cursor)
    mix = instance.fetch_materializations(dg.AssetKey("training_mix"), limit=1).records
    mix_storage_id = mix[0].storage_id if mix else 0
    events: list[tuple[int, int]] = []
    cursor_id = max(state.last_storage_id, 0)
    while True:  # only the events newer than the cursor, a page at a time
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("pass_cases"), after_storage_id=cursor_id),
            limit=1000, ascending=True)
        for record in page.records:
            metadata = record.asset_materialization.metadata if record.asset_materialization else {}
            rows = metadata.get("dagster/row_count")
            count = rows.value if rows is not None else 0
            events.append((record.storage_id, int(count) if isinstance(count, (int, float)) else 0))
            cursor_id = record.storage_id
        if not page.has_more:
            break
    state = advance(state, mix_storage_id, events)
    running = instance.get_runs(dg.RunsFilter(job_name="retrain_job", statuses=IN_PROGRESS), limit=1)
    go, reason = retrain_decision(state, automation.retrain_min_new_pass_cases, running[0].run_id if running else None)
    context.update_cursor(state.dumps())
    if not go:
        return dg.SkipReason(reason)
    return dg.RunRequest(run_key=f"retrain-after-{state.last_storage_id}", tags={"distill/reason": reason})


@dg.sensor(minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Warns when any of the last 30 days has no materialized teacher_traces partition: stored "
           "completions expire after 30 days, so such a day will soon be lost for good.")
def capture_gap_sensor(context: dg.SensorEvaluationContext):
    materialized = context.instance.get_materialized_partitions(dg.AssetKey("teacher_traces"))
    gaps = missing_days(set(materialized), datetime.now(UTC).date(), first_day=daily.start.date())
    if gaps:
        context.log.warning(f"capture is behind: no teacher_traces for {', '.join(gaps)}; stored completions "
                            "expire after 30 days, backfill capture_job for these days now")
        return dg.SkipReason(f"{len(gaps)} of the last 30 days not captured: {', '.join(gaps[:10])}")
    return dg.SkipReason("every one of the last 30 days is captured")


@dg.run_failure_sensor(description="Records every failed run with its reason; posts to DISTILL_ALERT_WEBHOOK_URL "
                       "when it is set.")
def run_failure_alert(context: dg.RunFailureSensorContext, automation: AutomationSettings):
    message = f"run {context.dagster_run.run_id} of {context.dagster_run.job_name} failed: " \
              f"{context.failure_event.message}"
    context.log.error(message)
    url = automation.alert_webhook_url
    if url:
        request = urllib.request.Request(url, data=json.dumps({"text": message}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10)
        except OSError as err:
            context.log.warning(f"could not post the failure to the webhook: {err}")
