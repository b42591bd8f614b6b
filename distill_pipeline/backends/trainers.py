"""The two trainers behind one small interface: submit a job, finish it into a student, load that student.

`fine_tuner(kind, ...)` is the one place that turns DISTILL_TRAINER's value (or the trainer a job or student
recorded) into a backend; the assets call its methods and never compare the name. Heavy dependencies (torch,
openai) are imported only by the method that needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from distill_pipeline.backends.handoffs import Handoffs
from distill_pipeline.core.artifacts import FineTuneJob, StudentInfo, TrainingFigures
from distill_pipeline.core.chat import ChatModel
from distill_pipeline.core.fields import FieldRules
from distill_pipeline.core.finetune_format import TrainerKind, job_key
from distill_pipeline.core.presets import DEFAULT_SEED, LoraSettings, preset

Log = Callable[[str], None]
JsonSchema = Callable[[list[dict]], dict[str, Any]] | None


@dataclass(frozen=True)
class JobRequest:
    """What fine_tune_job asks of a trainer: the training files and the settings that key the job."""

    train: Path
    validation: Path
    train_sha256: str
    validation_sha256: str
    preset: str
    openai_model: str  # the OpenAI trainer's base model
    suffix: str  # the OpenAI trainer's model-name suffix
    base_model: str | None  # the local trainer's base model; None: the preset's


@dataclass(frozen=True)
class Submitted:
    job_id: str
    status: str
    key: str
    hyperparameters: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    """A finished student and what student_model reports of it (plain values; `json` ones shown as JSON)."""

    student: StudentInfo
    data_version: str
    metadata: dict[str, Any] = field(default_factory=dict)
    json_metadata: dict[str, Any] = field(default_factory=dict)
    loss_curve: Path | None = None


class FineTuner(Protocol):
    kind: TrainerKind

    def submit(self, request: JobRequest) -> Submitted: ...

    def finish(self, job: FineTuneJob, layout: Handoffs, field_rules: FieldRules,
               export_merged: bool) -> Finished: ...

    def student(self, info: StudentInfo, settings: LoraSettings, json_schema: JsonSchema) -> ChatModel: ...

    def base(self, info: StudentInfo, settings: LoraSettings, json_schema: JsonSchema) -> ChatModel | None: ...


def is_local_adapter(reference: str) -> bool:
    """Whether a student reference (a policy's `student`) is a LoRA adapter folder that exists here."""
    return (Path(reference) / "adapter_config.json").is_file()


def local_student(info: StudentInfo, adapter: Path | None, settings: LoraSettings, log: Log | None,
                  json_schema: JsonSchema) -> ChatModel:
    """A local adapter (None: the untrained base model) on the base checkpoint `info` was trained from."""
    from distill_pipeline.backends.local_student import LocalStudent  # torch: only when a model is loaded

    if info.base_model_dir is None:
        raise ValueError(f"{info.student} is an OpenAI student: no local base model to load")
    return LocalStudent(Path(info.base_model_dir), adapter, settings, log=log, json_schema=json_schema)


class LocalFineTuner:
    """LoRA on an open model, in-process: the job is its key, student_model trains it."""

    kind: TrainerKind = "local"

    def __init__(self, log: Log) -> None:
        self.log = log

    def submit(self, request: JobRequest) -> Submitted:
        settings = preset(request.preset)
        if request.base_model:
            settings = settings.with_overrides(base_model=request.base_model)
        hyperparameters = settings.to_dict()
        key = job_key(self.kind, request.train_sha256, request.validation_sha256, hyperparameters)
        # A local job runs in-process in student_model; its id names its output folder.
        return Submitted(job_id=f"local-{key}", status="submitted", key=key, hyperparameters=hyperparameters)

    def finish(self, job: FineTuneJob, layout: Handoffs, field_rules: FieldRules,
               export_merged: bool) -> Finished:
        from distill_pipeline.backends.local_trainer import resolve_base_model, train_lora

        hyperparameters = job.hyperparameters
        settings = LoraSettings(**{**hyperparameters, "target_modules": tuple(hyperparameters["target_modules"])})
        base_dir = resolve_base_model(settings.base_model, layout.base_models_dir(), self.log)
        out_dir = layout.student_dir(job.job_id)
        manifest = layout.read_training_manifest(job.job_id)
        if manifest is not None:
            # Same files, same settings: the job already ran; never train (or pay) twice.
            self.log(f"{job.job_id} already trained; reusing {out_dir}")
        else:
            manifest = train_lora(Path(job.train_path), Path(job.validation_path), settings, base_dir, out_dir,
                                  log=self.log, field_rules=field_rules)
        merged = self._merged(job.job_id, layout, base_dir, settings) if export_merged else None
        student = StudentInfo(trainer="local", student=str(out_dir / "adapter"), base_model_dir=str(base_dir),
                              job_id=job.job_id, key=job.key, preset=job.preset,
                              merged=merged["path"] if merged else None)
        metadata: dict[str, Any] = {
            "base_model": str(manifest.get("base_model", base_dir)),
            "base_model_sha256": manifest.get("base_model_sha256", ""),
            "manifest_path": str(layout.training_manifest_path(job.job_id)),
            **TrainingFigures.from_manifest(manifest).to_dict(),
        }
        shown = {"manifest": {k: v for k, v in manifest.items() if k not in ("loss_curve",)}}
        if merged:
            metadata.update({"merged_model": merged["path"], "merged_dtype": merged["dtype"]})
            shown["merged_weights_sha256"] = merged["weights_sha256"]
        curve = out_dir / "loss_curve.png"
        return Finished(student=student, data_version=job.key, metadata=metadata, json_metadata=shown,
                        loss_curve=curve if curve.exists() else None)

    def _merged(self, job_id: str, layout: Handoffs, base_dir: Path, settings: LoraSettings) -> Mapping[str, Any]:
        """The adapter merged into the base weights in <student dir>/merged (exported once, then recorded)."""
        record = layout.read_merged_record(job_id)
        if record is not None:
            return record
        from distill_pipeline.backends.export import export_merged

        out_dir = layout.student_dir(job_id)
        record = export_merged(base_dir, out_dir / "adapter", out_dir / "merged", settings, log=self.log)
        layout.write_merged_record(job_id, record)
        return record

    def student(self, info: StudentInfo, settings: LoraSettings, json_schema: JsonSchema) -> ChatModel:
        return local_student(info, Path(info.student), settings, self.log, json_schema)

    def base(self, info: StudentInfo, settings: LoraSettings, json_schema: JsonSchema) -> ChatModel | None:
        return local_student(info, None, settings, self.log, json_schema)


class OpenAIFineTuner:
    """OpenAI supervised fine-tuning: a paid job, found again by its key so a retry never pays twice."""

    kind: TrainerKind = "openai"

    def __init__(self, client: Callable[[], Any], log: Log) -> None:
        self.client = client  # called only when the API is needed (the mix's checks and estimates need none)
        self.log = log

    def _trainer(self) -> Any:
        from distill_pipeline.backends.openai_trainer import OpenAITrainer

        return OpenAITrainer(self.client(), log=self.log)

    def submit(self, request: JobRequest) -> Submitted:
        hyperparameters = {"model": request.openai_model, "suffix": request.suffix, "seed": DEFAULT_SEED}
        key = job_key(self.kind, request.train_sha256, request.validation_sha256, hyperparameters)
        job = self._trainer().submit(request.train, request.validation, model=request.openai_model,
                                     suffix=request.suffix, key=key, seed=DEFAULT_SEED)
        return Submitted(job_id=job["id"], status=job["status"], key=key, hyperparameters=hyperparameters)

    def finish(self, job: FineTuneJob, layout: Handoffs, field_rules: FieldRules,
               export_merged: bool) -> Finished:
        result = self._trainer().wait(job.job_id)
        student = StudentInfo(trainer="openai", student=result["fine_tuned_model"], job_id=job.job_id, key=job.key,
                              manifest=result)
        return Finished(student=student, data_version=student.student,
                        metadata={"trained_tokens": result.get("trained_tokens") or 0})

    def student(self, info: StudentInfo, settings: LoraSettings, json_schema: JsonSchema) -> ChatModel:
        from distill_pipeline.backends.chat_models import OpenAIChatModel

        return OpenAIChatModel(self.client(), model=info.student)

    def base(self, info: StudentInfo, settings: LoraSettings, json_schema: JsonSchema) -> ChatModel | None:
        return None  # the OpenAI base model is not scored offline


def fine_tuner(kind: str, client: Callable[[], Any], log: Log) -> FineTuner:
    """The trainer of that kind (DISTILL_TRAINER's, or the one a job or student recorded: anything but "openai" is
    the local trainer); `client` gives the OpenAI client, asked for only when the OpenAI API is called."""
    return OpenAIFineTuner(client, log) if kind == "openai" else LocalFineTuner(log)
