"""Train: submit (or find) the fine-tuning job, then wait for the finished student."""

import base64
import json
from pathlib import Path

import dagster as dg

from distill_pipeline.backends.storage import atomic_write_json, sha256_file
from distill_pipeline.core.artifacts import StudentInfo, TrainingFigures
from distill_pipeline.core.finetune_format import OPENAI_BASE_MODEL, job_key
from distill_pipeline.core.presets import DEFAULT_SEED, preset
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings


class FineTuneConfig(dg.Config):
    openai_model: str = OPENAI_BASE_MODEL  # the OpenAI base model when DISTILL_TRAINER=openai
    suffix: str = "distill"
    base_model: str | None = None  # the local trainer's base model; None: the preset's (bundled SmolLM2)


class StudentModelConfig(dg.Config):
    # Also write the adapter merged into the base weights as a plain checkpoint (<student dir>/merged/): what
    # vLLM, llama.cpp's converter or transformers alone load. A few seconds and the base model's size on disk.
    export_merged: bool = True


def png_markdown(path: Path, title: str) -> dg.MetadataValue:
    """A PNG inlined in markdown, so the UI shows the picture itself."""
    data = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{data})")


def read_job(pipeline: PipelineSettings) -> dict:
    path = pipeline.layout.asset_dir("fine_tune_job") / "job.json"
    if not path.exists():
        raise dg.Failure("fine_tune_job has not been materialized: materialize it first")
    return json.loads(path.read_text())


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
    mix_dir = pipeline.layout.asset_dir("training_mix")
    train, validation = mix_dir / "train.jsonl", mix_dir / "validation.jsonl"
    train_sha, validation_sha = sha256_file(train), sha256_file(validation)
    if pipeline.trainer == "openai":
        from distill_pipeline.backends.openai_trainer import OpenAITrainer

        trainer = OpenAITrainer(openai.client(), log=context.log.info)
        hyperparameters = {"model": config.openai_model, "suffix": config.suffix, "seed": DEFAULT_SEED}
        key = job_key("openai", train_sha, validation_sha, hyperparameters)
        job = trainer.submit(train, validation, model=config.openai_model, suffix=config.suffix, key=key,
                             seed=DEFAULT_SEED)
        record = {"job_id": job["id"], "status": job["status"]}
    else:
        settings = preset(pipeline.preset)
        if config.base_model:
            settings = settings.with_overrides(base_model=config.base_model)
        hyperparameters = settings.to_dict()
        key = job_key("local", train_sha, validation_sha, hyperparameters)
        # A local job runs in-process in student_model; its id names its output folder.
        record = {"job_id": f"local-{key}", "status": "submitted"}
    job = {**record, "trainer": pipeline.trainer, "key": key, "hyperparameters": hyperparameters,
           "preset": pipeline.preset, "train_path": str(train), "validation_path": str(validation),
           "train_sha256": train_sha, "validation_sha256": validation_sha, "run_id": context.run.run_id}
    atomic_write_json(pipeline.layout.asset_dir("fine_tune_job") / "job.json", job)
    context.log.info(f"fine-tuning job {job['job_id']} ({pipeline.trainer}) for train {train_sha[:12]}")
    return dg.MaterializeResult(metadata={
        "job_id": job["job_id"], "trainer": pipeline.trainer, "status": job["status"], "key": key,
        "hyperparameters": dg.MetadataValue.json(hyperparameters),
        "train_sha256": train_sha, "validation_sha256": validation_sha,
    }, data_version=dg.DataVersion(key))


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
    job = read_job(pipeline)
    if job["trainer"] == "openai":
        from distill_pipeline.backends.openai_trainer import OpenAITrainer

        result = OpenAITrainer(openai.client(), log=context.log.info).wait(job["job_id"])
        student = StudentInfo(trainer="openai", student=result["fine_tuned_model"], job_id=job["job_id"],
                              key=job["key"], manifest=result)
        pipeline.layout.write_student(student)
        return dg.MaterializeResult(metadata={
            "student": student.student, "trainer": "openai", "job_id": job["job_id"],
            "trained_tokens": result.get("trained_tokens") or 0,
        }, data_version=dg.DataVersion(student.student))
    return _train_local(context, pipeline, job, export_merged=config.export_merged)


def _train_local(context: dg.AssetExecutionContext, pipeline: PipelineSettings, job: dict,
                 export_merged: bool = True) -> dg.MaterializeResult:
    from distill_pipeline.backends.local_trainer import resolve_base_model, train_lora
    from distill_pipeline.core.presets import LoraSettings

    settings = LoraSettings(**{**job["hyperparameters"],
                               "target_modules": tuple(job["hyperparameters"]["target_modules"])})
    layout = pipeline.layout
    base_dir = resolve_base_model(settings.base_model, layout.asset_dir("base_models"), context.log.info)
    out_dir = layout.asset_dir("student_model") / job["job_id"]
    manifest_path = out_dir / "manifest.json"
    if manifest_path.exists():
        # Same files, same settings: the job already ran; never train (or pay) twice.
        context.log.info(f"{job['job_id']} already trained; reusing {out_dir}")
        manifest = json.loads(manifest_path.read_text())
    else:
        manifest = train_lora(Path(job["train_path"]), Path(job["validation_path"]), settings, base_dir, out_dir,
                              log=context.log.info, field_rules=pipeline.load_task().field_rules)
    merged = _merged_checkpoint(out_dir, base_dir, settings, context.log.info) if export_merged else None
    student = StudentInfo(trainer="local", student=str(out_dir / "adapter"), base_model_dir=str(base_dir),
                          job_id=job["job_id"], key=job["key"], preset=job["preset"],
                          merged=merged["path"] if merged else None)
    layout.write_student(student)
    metadata = {
        "student": student.student,
        "trainer": "local",
        "job_id": job["job_id"],
        "base_model": str(manifest.get("base_model", base_dir)),
        "base_model_sha256": manifest.get("base_model_sha256", ""),
        "manifest_path": str(manifest_path),
        "manifest": dg.MetadataValue.json({k: v for k, v in manifest.items() if k not in ("loss_curve",)}),
    }
    metadata.update(TrainingFigures.from_manifest(manifest).to_dict())
    if merged:
        metadata.update({"merged_model": merged["path"], "merged_dtype": merged["dtype"],
                         "merged_weights_sha256": dg.MetadataValue.json(merged["weights_sha256"])})
    curve = out_dir / "loss_curve.png"
    if curve.exists():
        metadata["loss_curve"] = png_markdown(curve, "loss curve")
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(job["key"]))


def _merged_checkpoint(out_dir: Path, base_dir: Path, settings, log) -> dict:
    """The adapter merged into the base weights in <out_dir>/merged (exported once; its record in merged.json)."""
    record_path = out_dir / "merged.json"
    if record_path.exists() and (out_dir / "merged" / "config.json").is_file():
        return json.loads(record_path.read_text())
    from distill_pipeline.backends.export import export_merged

    record = export_merged(base_dir, out_dir / "adapter", out_dir / "merged", settings, log=log)
    atomic_write_json(record_path, record)
    return record

