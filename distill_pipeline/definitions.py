"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

import dagster as dg

from distill_pipeline.defs import capture, curate, mix
from distill_pipeline.defs.partitions import daily
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings

capture_job = dg.define_asset_job(
    "capture_job",
    selection=dg.AssetSelection.assets(capture.teacher_traces, curate.trace_evals, curate.pass_cases),
    partitions_def=daily,
    description="Capture and curate one day of teacher traces.",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(mix.general_examples, mix.eval_holdout, mix.training_mix),
    description="From the holdout and the training mix through the student, its report, the routing policy "
    "and the model card.",
)

# Stored completions expire after 30 days: capture every day, for the day before.
capture_daily = dg.build_schedule_from_partitioned_job(capture_job, hour_of_day=1, minute_of_hour=15)

defs = dg.Definitions(
    assets=[capture.teacher_traces, curate.trace_evals, curate.pass_cases,
            mix.general_examples, mix.eval_holdout, mix.training_mix],
    asset_checks=[curate.trace_evals_cover_every_trace, curate.teacher_pass_rate,
                  mix.training_mix_format, mix.training_mix_no_leakage, mix.training_mix_ratio],
    jobs=[capture_job, retrain_job],
    schedules=[capture_daily],
    resources={
        "pipeline": PipelineSettings.from_env(),
        "openai": OpenAIResource.from_env(),
    },
)
