"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

import dagster as dg

from distill_pipeline.defs import audit, automation, capture, curate, evaluate, mix, train
from distill_pipeline.defs.resources import AutomationSettings, OpenAIResource, PipelineSettings

ASSETS = [capture.teacher_traces, curate.trace_evals, curate.pass_cases,
          mix.general_examples, mix.eval_holdout, mix.training_mix,
          train.fine_tune_job, train.student_model,
          evaluate.student_eval_report, evaluate.routing_policy,
          audit.model_card]
ASSET_CHECKS = [curate.trace_evals_cover_every_trace, curate.teacher_pass_rate,
                mix.training_mix_format, mix.training_mix_no_leakage, mix.training_mix_ratio,
                mix.corpus_size]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=[automation.capture_job, automation.retrain_job],
    schedules=[automation.capture_daily, automation.retrain_weekly],
    sensors=[automation.new_traces_sensor, automation.capture_gap_sensor, automation.run_failure_alert],
    # Every backend is chosen here, once, from the environment (CONTRACTS.md): the trace source and the trainer
    # are typed fields of `pipeline`; assets and sensors receive these and never read the environment.
    resources={
        "pipeline": PipelineSettings.from_env(),
        "openai": OpenAIResource.from_env(),
        "automation": AutomationSettings.from_env(),
    },
)
