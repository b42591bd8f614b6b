"""The student as serving engines load it: the LoRA adapter merged into the base weights, a plain checkpoint.

    export_merged(base_model_dir, adapter_dir, out_dir / "merged", settings)

writes a standard Hugging Face checkpoint (config, safetensors weights, generation config, tokenizer with its
chat template) that `transformers.AutoModelForCausalLM.from_pretrained(folder)` loads alone, and that vLLM
(`vllm serve folder`) and llama.cpp's GGUF converter take directly: no adapter, no base model, no peft.
The weights are merged at the precision the local student serves at and saved in the base checkpoint's own
dtype. Written to a temporary folder and renamed, so a killed export never leaves half a checkpoint.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distill_pipeline.backends.local_trainer import load_base, quiet_peft, resolve_device_dtype
from distill_pipeline.backends.storage import sha256_file
from distill_pipeline.core.presets import LoraSettings


def export_merged(base_model_dir: Path, adapter_dir: Path, out_dir: Path, settings: LoraSettings,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Merge the adapter into the base weights and save the result as a checkpoint folder; returns its record
    (path, dtype, weight file hashes, seconds) for the student's metadata."""
    import torch
    from peft import PeftModel

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} holds no LoRA adapter (no adapter_config.json); export the adapter/ "
                                "folder the trainer wrote")
    started = time.perf_counter()
    device, dtype = resolve_device_dtype(settings.dtype)
    tokenizer, model = load_base(Path(base_model_dir), dtype, device)
    saved_dtype = getattr(model.config, "dtype", None) or getattr(model.config, "torch_dtype", None) or dtype
    if isinstance(saved_dtype, str):
        saved_dtype = getattr(torch, saved_dtype)
    with quiet_peft():
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged = merged.to(saved_dtype).eval()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)  # with the chat template the student was trained on
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - started
    weights = {p.name: sha256_file(p) for p in sorted(out_dir.glob("*.safetensors"))}
    log(f"merged the adapter into {Path(base_model_dir).name} and saved it to {out_dir} in {seconds:.1f} s")
    return {"path": str(out_dir), "dtype": str(saved_dtype).removeprefix("torch."), "weights_sha256": weights,
            "export_s": round(seconds, 2)}
