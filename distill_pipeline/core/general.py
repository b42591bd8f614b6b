"""General-purpose chat examples: the share of the mix that keeps the student from forgetting.

The file is JSONL, one example a line:

    {"id": "gen-0001", "category": "arithmetic",
     "messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}],
     "check": {"type": "exact" | "contains", "value": "..."}}

`category` is optional ("general"). `check` says how to score a model's answer
to the same request, for the forgetting measure on the general holdout. Every
non-blank line is accounted for: input_lines = kept + rejected + duplicates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from distill_pipeline.core.finetune_format import check_example
from distill_pipeline.core.traces import TraceParseError, _reject_duplicate_keys, parse_record

CHECK_TYPES = ("exact", "contains")
DEFAULT_CATEGORY = "general"


class GeneralExampleError(ValueError):
    """Why one line of the general examples file cannot be used."""


@dataclass(frozen=True)
class GeneralExample:
    id: str
    category: str
    messages: list[dict[str, Any]]  # normalised exactly as trace rows are (NFC, stripped)
    check: dict[str, str]
    content_hash: str  # same recipe as TraceRow.content_hash, so domain and general hashes compare

    @property
    def request_messages(self) -> list[dict[str, Any]]:
        return self.messages[:-1]

    @property
    def reference_answer(self) -> str:
        return self.messages[-1].get("content") or ""

    def chat_example(self) -> dict[str, Any]:
        return {"messages": [dict(m) for m in self.messages]}


@dataclass(frozen=True)
class GeneralRejected:
    line: int  # 1-based line in the file
    reason: str
    raw: str


@dataclass(frozen=True)
class GeneralDuplicate:
    line: int
    id: str
    duplicate_of: str  # the id of the first example with the same content


@dataclass
class GeneralLoadResult:
    examples: list[GeneralExample] = field(default_factory=list)
    rejected: list[GeneralRejected] = field(default_factory=list)
    duplicates: list[GeneralDuplicate] = field(default_factory=list)
    input_lines: int = 0  # non-blank lines read

    @property
    def balanced(self) -> bool:
        return self.input_lines == len(self.examples) + len(self.rejected) + len(self.duplicates)

    def by_category(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for example in self.examples:
            counts[example.category] = counts.get(example.category, 0) + 1
        return dict(sorted(counts.items()))


def _normalise_answer(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def check_answer(check: dict[str, str], text: str) -> bool:
    """Does a model's answer pass the example's check?

    Case and runs of whitespace never matter. `exact`: the answer equals the value,
    ignoring trailing full stops and exclamation marks. `contains`: the value appears in it.
    """
    value = _normalise_answer(check["value"])
    answer = _normalise_answer(text)
    if check["type"] == "exact":
        return answer.rstrip(".!").rstrip() == value.rstrip(".!").rstrip()
    if check["type"] == "contains":
        return value in answer
    raise ValueError(f"check type {check['type']!r} is not one of {', '.join(CHECK_TYPES)}")


def _check(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise GeneralExampleError("check must be an object {\"type\": \"exact\"|\"contains\", \"value\": \"...\"}")
    kind, value = raw.get("type"), raw.get("value")
    if kind not in CHECK_TYPES:
        raise GeneralExampleError(f"check.type {kind!r} is not one of {', '.join(CHECK_TYPES)}")
    if not isinstance(value, str) or not value.strip():
        raise GeneralExampleError("check.value must be a non-empty string")
    return {"type": kind, "value": value}


def parse_general_example(record: Any) -> GeneralExample:
    """One decoded line into a GeneralExample, or GeneralExampleError with the reason."""
    if not isinstance(record, dict):
        raise GeneralExampleError(f"a line must be a JSON object (got {type(record).__name__})")
    example_id = record.get("id")
    if not isinstance(example_id, str) or not example_id.strip():
        raise GeneralExampleError("id must be a non-empty string")
    category = record.get("category", DEFAULT_CATEGORY)
    if not isinstance(category, str) or not category.strip():
        raise GeneralExampleError("category must be a non-empty string")
    if not isinstance(record.get("messages"), list):
        raise GeneralExampleError("messages must be a list")
    try:
        row = parse_record({"messages": record["messages"]})
    except TraceParseError as err:
        raise GeneralExampleError(str(err)) from None
    messages = row.chat_example()["messages"]
    format_errors = check_example({"messages": messages})
    if format_errors:
        key, detail = format_errors[0]
        raise GeneralExampleError(f"{key}: {detail}")
    check = _check(record.get("check"))
    if not check_answer(check, row.answer_text):
        raise GeneralExampleError(f"the assistant answer fails its own check ({check['type']} {check['value']!r})")
    return GeneralExample(id=example_id.strip(), category=category.strip(), messages=messages,
                          check=check, content_hash=row.content_hash)


def load_general_examples(lines: Iterable[bytes | str]) -> GeneralLoadResult:
    """Validate and de-duplicate (by content hash) the general examples file; the first of duplicates is kept."""
    result = GeneralLoadResult()
    seen_hash: dict[str, str] = {}
    seen_id: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                result.input_lines += 1
                result.rejected.append(GeneralRejected(number, f"not valid UTF-8 at byte {err.start}",
                                                       raw.decode("utf-8", errors="replace")))
                continue
        else:
            text = raw
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        result.input_lines += 1
        try:
            example = parse_general_example(json.loads(text, object_pairs_hook=_reject_duplicate_keys))
        except GeneralExampleError as err:
            result.rejected.append(GeneralRejected(number, str(err), text))
            continue
        except (ValueError, RecursionError) as err:
            result.rejected.append(GeneralRejected(number, f"invalid JSON: {err}", text))
            continue
        if example.content_hash in seen_hash:
            result.duplicates.append(GeneralDuplicate(number, example.id, seen_hash[example.content_hash]))
            continue
        if example.id in seen_id:
            reason = f"id {example.id!r} is already used on line {seen_id[example.id]} by different content"
            result.rejected.append(GeneralRejected(number, reason, text))
            continue
        seen_hash[example.content_hash] = example.id
        seen_id[example.id] = number
        result.examples.append(example)
    return result
