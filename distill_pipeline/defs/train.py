"""Train: submit (or find) the fine-tuning job, then wait for the finished student."""

import dagster as dg

from distill_pipeline.backends.storage import sha256_file
from distill_pipeline.backends.trainers import JobRequest
from distill_pipeline.core.artifacts import FineTuneJob
from distill_pipeline.core.finetune_format import OPENAI_BASE_MODEL
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
from distill_pipeline.defs.util import png_markdown


class FineTuneConfig(dg.Config):
    openai_model: str = OPENAI_BASE_MODEL  # the OpenAI base model when DISTILL_TRAINER=openai
    suffix: str = "distill"
    base_model: str | None = None  # the local trainer's base model; None: the preset's (bundled SmolLM2)


class StudentModelConfig(dg.Config):
    # Also write the adapter merged into the base weights as a plain checkpoint (<student dir>/merged/): what
    # vLLM, llama.cpp's converter or transformers alone load. A few seconds and the base model's size on disk.
    export_merged: bool = True


@dg.asset(
    deps=["training_mix"],
    kinds={"python"},
    group_name="train",
    code_version="1",
    description="The fine-tuning job for the current training files: local LoRA or OpenAI supervised fine-tuning. "
    "Keyed by the files' sha256 and the hyperparameters, so a rerun finds the existing job.",
)
def fine_tune_job(context: dg.AssetExecutionContext, config: FineTuneConfig, pipeline: PipelineSettings,
                  openai: OpenAIResource) -> dg.MaterializeResult:
    layout = pipeline.layout
    train, validation = layout.mix_path("train"), layout.mix_path("validation")
    train_sha, validation_sha = sha256_file(train), sha256_file(validation)
    trainer = pipeline.fine_tuner(openai, context.log.info)
    submitted = trainer.submit(JobRequest(train=train, validation=validation, train_sha256=train_sha,
                                          validation_sha256=validation_sha, preset=pipeline.preset,
                                          openai_model=config.openai_model, suffix=config.suffix,
                                          base_model=config.base_model))
    job = FineTuneJob(job_id=submitted.job_id, status=submitted.status, trainer=trainer.kind, key=submitted.key,
                      hyperparameters=submitted.hyperparameters, preset=pipeline.preset, train_path=str(train),
                      validation_path=str(validation), train_sha256=train_sha, validation_sha256=validation_sha,
                      run_id=context.run.run_id)
    layout.write_job(job)
    context.log.info(f"fine-tuning job {job.job_id} ({job.trainer}) for train {train_sha[:12]}")
    return dg.MaterializeResult(metadata={
        "job_id": job.job_id, "trainer": job.trainer, "status": job.status, "key": job.key,
        "hyperparameters": dg.MetadataValue.json(dict(job.hyperparameters)),
        "train_sha256": train_sha, "validation_sha256": validation_sha,
    }, data_version=dg.DataVersion(job.key))


@dg.asset(
    deps=[fine_tune_job],
    kinds={"pytorch"},
    group_name="train",
    code_version="1",
    description="The finished student: a LoRA adapter directory (local) or an ft: model id (OpenAI), with the "
    "training manifest (base model hash, hyperparameters, file hashes, loss curve, tokens/s, wall time, memory).",
)
def student_model(context: dg.AssetExecutionContext, config: StudentModelConfig, pipeline: PipelineSettings,
                  openai: OpenAIResource) -> dg.MaterializeResult:
    layout = pipeline.layout
    job = layout.read_job()
    # the trainer that submitted the job finishes it, whatever DISTILL_TRAINER says now
    trainer = pipeline.fine_tuner(openai, context.log.info, kind=job.trainer)
    finished = trainer.finish(job, layout, pipeline.load_task().field_rules, export_merged=config.export_merged)
    layout.write_student(finished.student)
    metadata = {"student": finished.student.student, "trainer": trainer.kind, "job_id": job.job_id,
                **finished.metadata, **{k: dg.MetadataValue.json(v) for k, v in finished.json_metadata.items()}}
    if finished.loss_curve is not None:
        metadata["loss_curve"] = png_markdown(finished.loss_curve, "loss curve")
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(finished.data_version))
