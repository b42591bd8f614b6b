"""What one asset hands another, as types: one shape that the writer and every reader share.

A renamed field is one edit here, and the type checker finds every reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class TrainingFigures:
    """The local trainer's headline figures, as its manifest.json carries them (CONTRACTS.md: student_model)."""

    train_wall_s: float  # load + frozen-layer cache + training loop + validation, end to end
    peak_memory_mb: float  # peak resident memory of the training process
    tokens_per_s: float
    final_train_loss: float
    final_validation_loss: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> TrainingFigures:
        """The figures of a trainer manifest; a KeyError names the missing key (a writer/reader mismatch)."""
        missing = [f.name for f in fields(cls) if f.name not in manifest]
        if missing:
            raise KeyError(f"training manifest lacks {', '.join(missing)}; it was written by another version of "
                           "the trainer")
        return cls(**{f.name: float(manifest[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class StudentInfo:
    """The finished student as student_model hands it on (student.json): to the evaluation, the model card and
    the serving helpers."""

    trainer: str  # "local" (a LoRA adapter) or "openai" (a fine-tuned model)
    student: str  # the adapter directory, or the ft: model id
    job_id: str
    key: str  # the fine-tuning job's key (finetune_format.job_key)
    base_model_dir: str | None = None  # local: the base checkpoint the adapter applies to
    preset: str | None = None  # local: the preset it was trained (and is evaluated) with
    merged: str | None = None  # local: the adapter merged into the base weights, when exported
    manifest: Mapping[str, Any] | None = None  # openai: the finished job as OpenAI reports it

    @staticmethod
    def keys_for(trainer: str) -> tuple[str, ...]:
        """The fields student.json carries for a trainer: a local student has no manifest there, an OpenAI one
        no base model, preset or merged checkpoint."""
        common = ("trainer", "student", "job_id", "key")
        return common + (("base_model_dir", "preset", "merged") if trainer == "local" else ("manifest",))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.keys_for(self.trainer)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudentInfo:
        """The student of a student.json; a KeyError names what is missing (a writer/reader mismatch)."""
        missing = [name for name in cls.keys_for(data.get("trainer", "")) if name not in data]
        if missing:
            raise KeyError(f"student.json lacks {', '.join(missing)}; it was written by another version of "
                           "student_model")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
