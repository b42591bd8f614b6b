from datetime import date

import dagster as dg
import pytest

from distill_pipeline.core.automation import SensorState, advance, missing_days, retrain_decision
from distill_pipeline.defs.automation import new_traces_sensor
from distill_pipeline.defs.resources import AutomationSettings


def report_pass_cases(instance, day: str, rows: int) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization("pass_cases", partition=day, metadata={"dagster/row_count": rows}))


def report_mix(instance) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization("training_mix"))


def tick(instance, cursor=None, automation=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"automation": automation or AutomationSettings()})
    return new_traces_sensor(context), context.cursor


def test_the_threshold_is_the_automation_resources(instance):
    report_pass_cases(instance, "2026-10-01", 600)
    assert isinstance(tick(instance)[0], dg.SkipReason)  # the default: 1,000
    assert isinstance(tick(instance, automation=AutomationSettings(retrain_min_new_pass_cases=500))[0],
                      dg.RunRequest)


def test_the_automation_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DISTILL_RETRAIN_MIN_NEW_PASS_CASES", "250")
    monkeypatch.setenv("DISTILL_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    automation = AutomationSettings.from_env()
    assert automation.retrain_min_new_pass_cases == 250
    assert automation.alert_webhook_url == dg.EnvVar("DISTILL_ALERT_WEBHOOK_URL")  # read at run time, not shown
    monkeypatch.setenv("DISTILL_RETRAIN_MIN_NEW_PASS_CASES", "many")
    with pytest.raises(ValueError, match="DISTILL_RETRAIN_MIN_NEW_PASS_CASES must be a whole number"):
        AutomationSettings.from_env()


def test_below_the_threshold_the_sensor_skips_and_says_why(instance):
    report_pass_cases(instance, "2026-10-01", 600)
    result, _ = tick(instance)
    assert isinstance(result, dg.SkipReason)
    assert "600 new pass cases" in result.skip_message and "waiting for 1000" in result.skip_message


def test_above_the_threshold_the_sensor_requests_one_run_with_a_stable_run_key(instance):
    report_pass_cases(instance, "2026-10-01", 600)
    _, cursor = tick(instance)
    report_pass_cases(instance, "2026-10-02", 500)
    request, cursor = tick(instance, cursor)
    assert isinstance(request, dg.RunRequest)
    again, _ = tick(instance, cursor)
    # the same facts give the same run_key, so Dagster never launches the run twice
    assert isinstance(again, dg.RunRequest) and again.run_key == request.run_key


def test_only_pass_cases_after_the_last_training_mix_count(instance):
    report_pass_cases(instance, "2026-10-01", 900)
    report_mix(instance)
    report_pass_cases(instance, "2026-10-02", 300)
    result, _ = tick(instance)
    assert isinstance(result, dg.SkipReason) and "300 new pass cases" in result.skip_message


def test_the_sensor_does_not_start_a_second_run_while_one_is_in_progress(instance):
    report_pass_cases(instance, "2026-10-01", 2000)
    instance.add_run(dg.DagsterRun(job_name="retrain_job", run_id="r1", status=dg.DagsterRunStatus.STARTED))
    result, _ = tick(instance)
    assert isinstance(result, dg.SkipReason) and "still in progress" in result.skip_message


def test_the_cursor_means_each_event_is_counted_once(instance):
    report_pass_cases(instance, "2026-10-01", 400)
    _, cursor = tick(instance)
    result, cursor = tick(instance, cursor)
    assert "400 new pass cases" in result.skip_message
    assert SensorState.loads(cursor).new_pass_cases == 400


def test_a_new_training_mix_resets_the_count():
    state = advance(SensorState(), mix_storage_id=0, new_events=[(1, 700)])
    assert advance(state, mix_storage_id=5, new_events=[(6, 10)]).new_pass_cases == 10


def test_the_decision_explains_itself():
    assert retrain_decision(SensorState(new_pass_cases=5), 10, None) == (
        False, "5 new pass cases since the last training mix; waiting for 10")
    assert retrain_decision(SensorState(new_pass_cases=50), 10, None)[0]


def test_missing_days_lists_the_uncaptured_days_of_the_last_thirty():
    today = date(2026, 11, 10)
    captured = {f"2026-11-{d:02d}" for d in range(1, 10)} | {f"2026-10-{d:02d}" for d in range(11, 32)}
    assert missing_days(captured - {"2026-11-05"}, today) == ["2026-11-05"]
    assert missing_days(set(), today, first_day=date(2026, 11, 8)) == ["2026-11-08", "2026-11-09"]


# -- the threshold's edge and the cursor after a retrain run ---------------------------------------------------


@pytest.mark.parametrize(("rows", "starts"), [(999, False), (1000, True), (1001, True)])
def test_the_sensor_starts_a_run_at_exactly_the_threshold_and_not_one_pass_case_before(instance, rows,
                                                                                       starts):
    report_pass_cases(instance, "2026-10-01", rows - 1)
    report_pass_cases(instance, "2026-10-02", 1)
    result, cursor = tick(instance)
    assert isinstance(result, dg.RunRequest) is starts, result
    if not starts:
        assert f"{rows} new pass cases" in result.skip_message and "waiting for 1000" in result.skip_message
    assert SensorState.loads(cursor).new_pass_cases == rows


def test_after_the_retrain_run_the_cursor_starts_counting_from_its_training_mix(instance):
    report_pass_cases(instance, "2026-10-01", 1000)
    request, cursor = tick(instance)
    assert isinstance(request, dg.RunRequest)
    counted = SensorState.loads(cursor)
    # The requested run materializes training_mix (and the rest of retrain_job) and succeeds.
    instance.add_run(dg.DagsterRun(job_name="retrain_job", run_id="retrain-1", status=dg.DagsterRunStatus.SUCCESS,
                                   tags={"dagster/run_key": request.run_key}))
    report_mix(instance)
    mix_id = instance.fetch_materializations(dg.AssetKey("training_mix"), limit=1).records[0].storage_id

    after, cursor = tick(instance, cursor)
    assert isinstance(after, dg.SkipReason) and "0 new pass cases" in after.skip_message
    assert SensorState.loads(cursor) == SensorState(last_storage_id=counted.last_storage_id, mix_storage_id=mix_id,
                                                    new_pass_cases=0)

    report_pass_cases(instance, "2026-10-02", 999)
    waiting, cursor = tick(instance, cursor)
    assert isinstance(waiting, dg.SkipReason) and "999 new pass cases" in waiting.skip_message
    report_pass_cases(instance, "2026-10-03", 1)
    again, cursor = tick(instance, cursor)
    assert isinstance(again, dg.RunRequest) and again.run_key != request.run_key
    assert SensorState.loads(cursor).new_pass_cases == 1000 and SensorState.loads(cursor).mix_storage_id == mix_id
