"""The OpenAI chat fine-tuning format: the checks every training file must pass, token counts, cost, and
what identifies a fine-tuning job.

The checks are the OpenAI cookbook's data-prep checks ("Data preparation and
analysis for chat model fine-tuning"), with the same error keys:

    data_type                          the line is not a JSON object (or a message is not one)
    missing_messages_list              no non-empty `messages` list
    message_missing_key                a message without `role` or `content`
    message_unrecognized_key           a message key outside the format's keys
    unrecognized_role                  a role outside system, user, assistant, tool, function
    missing_content                    content that is not a non-empty string
    example_missing_assistant_message  no assistant message in the example

plus three of ours: `invalid_json` (a line that does not decode), `too_many_tokens`
(an example over the per-example limit: 65,536 for OpenAI, the trainer's
max_seq_len for local LoRA) and `too_few_examples` (a file under 10 examples,
which OpenAI refuses).

Two deliberate widenings of the cookbook, both in today's OpenAI format: the
`tool` role with `tool_calls` / `tool_call_id` keys, and an assistant message
that carries `tool_calls` (or `function_call`) may have empty or null content.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, get_args

# The trainers (DISTILL_TRAINER): LoRA on an open model here, or OpenAI supervised fine-tuning.
TrainerKind = Literal["local", "openai"]
TRAINERS: tuple[TrainerKind, ...] = get_args(TrainerKind)

MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id"})
ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
OPENAI_MAX_TOKENS_PER_EXAMPLE = 65_536
MIN_EXAMPLES = 10

# Token overheads from the cookbook's num_tokens_from_messages: 3 per message, 1 per name, 3 to prime the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_EXAMPLE = 3

TIKTOKEN_ENCODING = "o200k_base"
# sha256 of each encoding file, as tiktoken_ext.openai_public expects it: a cached file that does not
# match makes tiktoken delete it and download it again, so we check first and never let it try.
TIKTOKEN_FILE_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
APPROX_METHOD = "approx ceil(chars/4) per value + 3 per message + 3 per example"

# OpenAI supervised fine-tuning prices, USD per 1M trained tokens (tokens x epochs).
# Taken from OpenAI's published price list as of PRICES_AS_OF; check
# https://openai.com/api/pricing before quoting a number to anyone.
TRAINING_PRICES_PER_1M_USD: dict[str, float] = {
    "gpt-4o-mini": 3.00,
    "gpt-4o": 25.00,
}
PRICES_AS_OF = "2026-04"
# The OpenAI base model a job fine-tunes (and the cost estimate prices) unless configured otherwise.
OPENAI_BASE_MODEL = "gpt-4o-mini-2024-07-18"
# The local LoRA trainer's throughput that the training mix's wall-time estimate assumes, tokens per second.
LOCAL_TOKENS_PER_SECOND = 450.0


@dataclass(frozen=True)
class FormatError:
    line: int  # 1-based; 0 for an error about the whole file (too_few_examples)
    key: str
    detail: str


@dataclass(frozen=True)
class FormatReport:
    errors: list[FormatError]
    n_examples: int
    max_tokens: int
    token_method: str
    tokens_per_example: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def counts(self) -> dict[str, int]:
        """Error counts by key."""
        return dict(sorted(Counter(e.key for e in self.errors).items()))

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens_per_example)

    @property
    def billing_tokens(self) -> int:
        """Tokens charged per epoch: each example counted up to the per-example limit (as the cookbook does)."""
        return sum(min(n, self.max_tokens) for n in self.tokens_per_example)

    def token_stats(self) -> dict[str, Any]:
        values = sorted(self.tokens_per_example)
        return {
            "method": self.token_method,
            "total": self.total_tokens,
            "billing": self.billing_tokens,
            "min": values[0] if values else 0,
            "max": values[-1] if values else 0,
            "mean": round(sum(values) / len(values), 1) if values else 0.0,
            "over_limit": sum(n > self.max_tokens for n in values),
        }

    def summary(self, limit: int = 5) -> str:
        """A short human message: counts by key and the first few errors with their lines."""
        if self.ok:
            return f"{self.n_examples} examples, no format errors"
        counts = ", ".join(f"{k}: {v}" for k, v in self.counts.items())
        first = "; ".join(f"line {e.line}: {e.key} ({e.detail})" for e in self.errors[:limit])
        return f"{len(self.errors)} format errors in {self.n_examples} examples ({counts}); first: {first}"


# --- token counting -------------------------------------------------------------------------


def _tiktoken_cache_file(encoding_name: str) -> str | None:
    """Where tiktoken keeps this encoding, mirroring tiktoken.load.read_file_cached; None if caching is off."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return None
    url = f"https://openaipublic.blob.core.windows.net/encodings/{encoding_name}.tiktoken"
    return os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())


@lru_cache(maxsize=4)
def _encoding(encoding_name: str) -> Any | None:
    """The tiktoken encoding if it can be loaded without the network, else None.

    tiktoken downloads an encoding on first use; we only ask it when the file is
    already in its cache, so an offline machine never waits on a download.
    """
    path = _tiktoken_cache_file(encoding_name)
    expected = TIKTOKEN_FILE_SHA256.get(encoding_name)
    if path is None or expected is None or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != expected:
                return None
        import tiktoken

        return tiktoken.get_encoding(encoding_name)
    except Exception:  # an unreadable cache or a tiktoken without this encoding: fall back
        return None


def token_count_method(encoding_name: str = TIKTOKEN_ENCODING) -> str:
    """How `count_tokens` counts on this machine: "tiktoken o200k_base" or the stated approximation."""
    return f"tiktoken {encoding_name}" if _encoding(encoding_name) is not None else APPROX_METHOD


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def count_tokens(messages: Iterable[Any], encoding_name: str = TIKTOKEN_ENCODING) -> int:
    """Tokens in one example, the cookbook's way (not exact, but what the cost estimate uses)."""
    encoding = _encoding(encoding_name)
    total = TOKENS_PER_EXAMPLE
    for message in messages:
        total += TOKENS_PER_MESSAGE
        if not isinstance(message, Mapping):
            continue
        for key, value in message.items():
            if value is None:
                continue
            text = _value_text(value)
            total += len(encoding.encode(text, disallowed_special=())) if encoding else math.ceil(len(text) / 4)
            if key == "name":
                total += TOKENS_PER_NAME
    return total


# --- format checks --------------------------------------------------------------------------


def _has_calls(message: Mapping[str, Any]) -> bool:
    return bool(message.get("tool_calls") or message.get("function_call"))


def check_example(example: Any, max_tokens: int = OPENAI_MAX_TOKENS_PER_EXAMPLE,
                  encoding_name: str = TIKTOKEN_ENCODING) -> list[tuple[str, str]]:
    """Every format error in one decoded example, as (key, detail) pairs; empty when it is valid."""
    if not isinstance(example, dict):
        return [("data_type", f"an example must be a JSON object, got {type(example).__name__}")]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return [("missing_messages_list", "no non-empty 'messages' list")]
    errors: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            errors.append(("data_type", f"{where} is not an object"))
            continue
        missing = [k for k in ("role", "content") if k not in message]
        if missing:
            errors.append(("message_missing_key", f"{where} has no {' or '.join(missing)}"))
        unknown = sorted(k for k in message if k not in MESSAGE_KEYS)
        if unknown:
            errors.append(("message_unrecognized_key", f"{where} has {', '.join(map(repr, unknown))}"))
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            errors.append(("unrecognized_role", f"{where} role {role!r} is not one of {', '.join(sorted(ROLES))}"))
        content = message.get("content")
        if _has_calls(message):
            if content is not None and not isinstance(content, str):
                errors.append(("missing_content", f"{where} content must be a string or null"))
        elif not isinstance(content, str) or not content.strip():
            errors.append(("missing_content", f"{where} content must be a non-empty string"))
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        errors.append(("example_missing_assistant_message", "no assistant message"))
    tokens = count_tokens(messages, encoding_name)
    if tokens > max_tokens:
        errors.append(("too_many_tokens", f"{tokens} tokens, over the {max_tokens} limit"))
    return errors


def _decode(raw: bytes | str) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    raw = raw.rstrip("\r\n")
    if not raw.strip():
        raise ValueError("blank line")
    return json.loads(raw)


def check_lines(lines: Iterable[bytes | str], max_tokens: int = OPENAI_MAX_TOKENS_PER_EXAMPLE,
                min_examples: int = MIN_EXAMPLES, encoding_name: str = TIKTOKEN_ENCODING) -> FormatReport:
    """Check a JSONL training file line by line (e.g. `data.splitlines()` or an open file)."""
    errors: list[FormatError] = []
    tokens: list[int] = []
    n = 0
    for n, raw in enumerate(lines, start=1):
        try:
            example = _decode(raw)
        except (ValueError, UnicodeDecodeError) as err:
            errors.append(FormatError(n, "invalid_json", str(err)))
            continue
        except RecursionError:
            errors.append(FormatError(n, "invalid_json", "JSON nested too deeply"))
            continue
        errors.extend(FormatError(n, key, detail) for key, detail in check_example(example, max_tokens, encoding_name))
        if isinstance(example, dict) and isinstance(example.get("messages"), list):
            tokens.append(count_tokens(example["messages"], encoding_name))
    if n < min_examples:
        errors.append(FormatError(0, "too_few_examples", f"{n} examples, at least {min_examples} are required"))
    return FormatReport(errors=errors, n_examples=n, max_tokens=max_tokens,
                        token_method=token_count_method(encoding_name), tokens_per_example=tokens)


# --- cost -----------------------------------------------------------------------------------


def example_token_limit(trainer: TrainerKind, max_seq_len: int) -> int:
    """The per-example token limit a training file is checked against: the local trainer's max_seq_len, else
    OpenAI's."""
    return max_seq_len if trainer == "local" else OPENAI_MAX_TOKENS_PER_EXAMPLE


def training_price_per_1m(model: str, prices: Mapping[str, float] = TRAINING_PRICES_PER_1M_USD) -> float | None:
    """The price for a base model (or a dated snapshot of it), by longest matching name prefix."""
    matches = [name for name in prices if model == name or model.startswith(name + "-")]
    return prices[max(matches, key=len)] if matches else None


def estimate_training_cost(total_tokens: int, epochs: int, trainer: str, *, model: str = "",
                           prices: Mapping[str, float] = TRAINING_PRICES_PER_1M_USD,
                           tokens_per_second: float | None = None) -> dict[str, Any]:
    """What a training run will cost: USD for OpenAI (trained tokens x price), $0 and a wall time for local.

    `total_tokens` is one epoch's billing tokens (`FormatReport.billing_tokens`).
    """
    trained = total_tokens * epochs
    if trainer == "openai":
        price = training_price_per_1m(model, prices)
        if price is None:
            raise ValueError(f"no training price for model {model!r}; known: {', '.join(sorted(prices))}. "
                             "Pass prices={model: usd_per_1m_tokens} or pick a listed model.")
        return {"trainer": trainer, "model": model, "epochs": epochs, "trained_tokens": trained,
                "usd_per_1m_trained_tokens": price, "prices_as_of": PRICES_AS_OF,
                "estimated_usd": round(trained * price / 1_000_000, 4)}
    if trainer == "local":
        wall = round(trained / tokens_per_second, 1) if tokens_per_second else None
        return {"trainer": trainer, "model": model, "epochs": epochs, "trained_tokens": trained,
                "estimated_usd": 0.0, "tokens_per_second": tokens_per_second, "estimated_wall_time_s": wall}
    raise ValueError(f"trainer {trainer!r} is not 'local' or 'openai'")


def mix_cost_estimate(trainer: TrainerKind, billing_tokens: int, epochs: int, openai_model: str) -> dict[str, Any]:
    """What training on a mix will cost, as training_mix records it: OpenAI prices `openai_model`; the local
    trainer is free and its wall time assumes LOCAL_TOKENS_PER_SECOND."""
    if trainer == "openai":
        return estimate_training_cost(billing_tokens, epochs, trainer, model=openai_model)
    return estimate_training_cost(billing_tokens, epochs, trainer, tokens_per_second=LOCAL_TOKENS_PER_SECOND)


# --- the job ------------------------------------------------------------------------------------------


def job_key(trainer: str, train_sha: str, validation_sha: str, hyperparameters: dict) -> str:
    """The job's identity: same files and settings, same job, so a retry never pays twice."""
    payload = json.dumps({"trainer": trainer, "train": train_sha, "validation": validation_sha,
                          "hyperparameters": hyperparameters}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
