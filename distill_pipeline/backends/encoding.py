"""Training data for the local trainer: chat fine-tuning files to token ids, with the loss on the answers.

A prompt is tokenized exactly as the student tokenizes it at inference (`render_chat` with the generation
prompt), so training and serving see the same tokens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill_pipeline.core.fields import FieldRules, value_spans
from distill_pipeline.core.traces import message_text


def render_chat(tokenizer: Any, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool) -> str:
    plain = [{"role": m["role"], "content": message_text(m)} for m in messages]
    return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)



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
