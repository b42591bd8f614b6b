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
