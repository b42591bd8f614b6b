"""Trace rows: parsing export lines into the row contract, normalising, hashing.

A line is one of two shapes (see CONTRACTS.md): a stored completion plus its
`request_messages`, or a chat example `{"messages": [...], "metadata": {...}}`.
Anything else becomes a `Rejected` with a reason; nothing is dropped silently.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
MAX_TOKEN_COUNT = 2**63 - 1  # token counts are stored as int64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how a lone surrogate can get into a line of JSON
CHAT_EXAMPLE_SOURCE = "chat_example"
STORED_COMPLETION_SOURCE = "stored_completion"


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_thresholds = gc.get_threshold()


@contextmanager
def full_gc_paused() -> Iterator[None]:
    """No full (oldest-generation) garbage collection while a partition's rows are built or read.

    Rows, their message dicts and eval rows hold no reference cycles: reference counting frees them as
    before, and young collections still run (so short-lived cycles, e.g. an HTTP client's, are still
    collected). What the pause saves is the collector re-scanning every live row of the partition each
    time the heap has grown by a quarter: 20-45% of parsing and reading time on a 30,000-row partition.
    Pauses nest and may overlap across threads; the last one out restores the previous thresholds."""
    global _gc_pauses, _gc_thresholds
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_thresholds = gc.get_threshold()
            young, middle, _ = _gc_thresholds
            gc.set_threshold(young, middle, 1 << 30)
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0:
                gc.set_threshold(*_gc_thresholds)


class TraceParseError(ValueError):
    """A line that cannot become a trace row; the message is the quarantine reason."""


@dataclass(frozen=True)
class TraceRow:
    completion_id: str
    created_at: datetime  # UTC
    model: str
    metadata: dict[str, str]
    request_messages: list[dict[str, Any]]
    response_message: dict[str, Any]
    tools: list[dict[str, Any]] | None
    prompt_tokens: int
    completion_tokens: int
    content_hash: str
    source: str  # the line shape: stored_completion or chat_example (same for API and export)
    cached_tokens: int = 0  # prompt tokens billed at the cached-input price (usage.prompt_tokens_details)
    reference: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def intent(self) -> str:
        return self.metadata.get("intent", "")

    @property
    def answer_text(self) -> str:
        return message_text(self.response_message)

    @property
    def request_text(self) -> str:
        """Everything the teacher was shown, as one string (for grounding checks)."""
        return "\n".join(message_text(m) for m in self.request_messages)

    @property
    def do_not_train(self) -> bool:
        return self.metadata.get("do_not_train", "").strip().lower() in {"true", "1", "yes"}

    def chat_example(self) -> dict[str, Any]:
        """The row as one OpenAI chat fine-tuning example."""
        messages = [_training_message(m) for m in self.request_messages]
        messages.append(_training_message(self.response_message))
        return {"messages": messages}


@dataclass(frozen=True)
class Rejected:
    """A quarantined input line."""

    file: str
    line: int
    reason: str
    raw: str


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whether `content` is a string or a list of parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def _normalise_text(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _normalise_message(message: Any, index: int, where: str) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise TraceParseError(f"{where}[{index}] is not an object")
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise TraceParseError(f"{where}[{index}] has no valid role (got {role!r})")
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise TraceParseError(f"{where}[{index}].content must be a string, a list of parts or null")
    if isinstance(content, list) and not all(isinstance(p, (dict, str)) for p in content):
        raise TraceParseError(f"{where}[{index}].content parts must be objects or strings")
    normalised: dict[str, Any] = {"role": role, "content": _normalise_text(message_text(message))}
    if isinstance(message.get("name"), str):
        normalised["name"] = message["name"]
    tool_calls = message.get("tool_calls")
    if tool_calls:
        normalised["tool_calls"] = _normalise_tool_calls(tool_calls, f"{where}[{index}]")
    if isinstance(message.get("tool_call_id"), str):
        normalised["tool_call_id"] = message["tool_call_id"]
    return normalised


def _normalise_tool_calls(tool_calls: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(tool_calls, list):
        raise TraceParseError(f"{where}.tool_calls must be a list")
    calls = []
    for i, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise TraceParseError(f"{where}.tool_calls[{i}] has no function name")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            raise TraceParseError(f"{where}.tool_calls[{i}].function.arguments must be a string")
        try:
            json.loads(arguments or "{}")
        except ValueError:
            raise TraceParseError(f"{where}.tool_calls[{i}].function.arguments is not valid JSON") from None
        calls.append({"id": str(call.get("id", "")), "type": "function",
                      "function": {"name": function["name"], "arguments": arguments}})
    return calls


def _training_message(message: dict[str, Any]) -> dict[str, Any]:
    # The fine-tuning format predates the `developer` role; it means the same as `system` there.
    role = "system" if message["role"] == "developer" else message["role"]
    out: dict[str, Any] = {"role": role, "content": message.get("content", "")}
    for key in ("name", "tool_calls", "tool_call_id"):
        if key in message:
            out[key] = message[key]
    return out


def content_hash(request_messages: list[dict[str, Any]], response_message: dict[str, Any]) -> str:
    """sha256 of the normalised request + response: equal content, equal hash, whatever the id."""
    return _content_json(request_messages, response_message)[0]


def _content_json(request_messages: list[dict[str, Any]], response_message: dict[str, Any]) -> tuple[str, str, str]:
    """(content hash, request JSON, response JSON). The hashed payload is
    json.dumps({"request": ..., "response": ...}, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    assembled from the two compact JSON strings the Parquet row stores, so each is serialised once."""
    request_json, response_json = _dumps_messages(request_messages), _dumps_messages(response_message)
    payload = f'{{"request":{request_json},"response":{response_json}}}'
    return hashlib.sha256(payload.encode("utf-8")).hexdigest(), request_json, response_json


def _keep_json(row: TraceRow, request_json: str, response_json: str) -> TraceRow:
    """Remember the row's messages as stored JSON for trace_to_record (not a field: invisible to ==, repr and
    dataclasses.replace, which builds a new row without it)."""
    object.__setattr__(row, "_messages_json", (request_json, response_json))
    return row


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TraceParseError("metadata must be an object of strings")
    out = {}
    for key, value in raw.items():
        if not isinstance(value, (str, int, float, bool)):
            raise TraceParseError(f"metadata.{key} must be a string (got {type(value).__name__})")
        out[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return dict(sorted(out.items()))


def _created(raw: Any, *, required: bool) -> datetime:
    if raw is None and not required:
        return datetime(1970, 1, 1, tzinfo=UTC)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TraceParseError(f"created must be a Unix timestamp in seconds (got {type(raw).__name__})")
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise TraceParseError(f"created {raw!r} is not a valid timestamp") from None


def _int_field(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TraceParseError(f"usage.{key} must be a non-negative integer")
    if value > MAX_TOKEN_COUNT:
        raise TraceParseError(f"usage.{key} is implausibly large ({len(str(value))} digits)")
    return value


def _cached_tokens(usage: dict[str, Any], prompt_tokens: int) -> int:
    """usage.prompt_tokens_details.cached_tokens (OpenAI's count of prompt tokens served from its cache), 0 when
    the usage has none."""
    details = usage.get("prompt_tokens_details")
    if details is None:
        return 0
    if not isinstance(details, dict):
        raise TraceParseError("usage.prompt_tokens_details must be an object")
    try:
        cached = _int_field(details, "cached_tokens")
    except TraceParseError as err:
        raise TraceParseError(str(err).replace("usage.", "usage.prompt_tokens_details.", 1)) from None
    if cached > prompt_tokens:
        raise TraceParseError(f"usage.prompt_tokens_details.cached_tokens ({cached}) is more than "
                              f"usage.prompt_tokens ({prompt_tokens})")
    return cached


def _answer(message: dict[str, Any]) -> None:
    if message["role"] != "assistant":
        raise TraceParseError("the answer is not an assistant message")
    if not message["content"] and not message.get("tool_calls"):
        raise TraceParseError("the assistant answer is empty")


def _check_unicode(record: dict[str, Any]) -> None:
    """Every string must be valid Unicode: JSON can escape a lone surrogate (\\ud800) that UTF-8 cannot hold."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise TraceParseError(f"text is not valid Unicode: a lone surrogate (U+{ord(err.object[err.start]):04X}) "
                              "in a string") from None


def parse_record(record: Any) -> TraceRow:
    """Turn one decoded JSON value into a trace row, or raise TraceParseError with the reason."""
    if isinstance(record, dict):
        _check_unicode(record)
    return _parse_record(record)


def _parse_record(record: Any) -> TraceRow:
    if not isinstance(record, dict):
        raise TraceParseError(f"a line must be a JSON object (got {type(record).__name__})")
    if isinstance(record.get("capture_error"), str):  # the API source could not fetch part of this completion
        raise TraceParseError(f"capture error: {record['capture_error']}")
    if "choices" in record or "request_messages" in record:
        return _parse_stored_completion(record)
    if "messages" in record:
        return _parse_chat_example(record)
    raise TraceParseError("neither a stored completion (choices + request_messages) nor a chat example (messages)")


def _parse_stored_completion(record: dict[str, Any]) -> TraceRow:
    completion_id = record.get("id")
    if not isinstance(completion_id, str) or not completion_id.strip():
        raise TraceParseError("stored completion has no id")
    choices = record.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise TraceParseError("stored completion has no choices")
    response = _normalise_message(choices[0].get("message"), 0, "choices[].message")
    _answer(response)
    raw_request = record.get("request_messages")
    if not isinstance(raw_request, list) or not raw_request:
        raise TraceParseError("stored completion has no request_messages")
    request = [_normalise_message(m, i, "request_messages") for i, m in enumerate(raw_request)]
    model = record.get("model")
    if not isinstance(model, str) or not model:
        raise TraceParseError("stored completion has no model")
    usage = record.get("usage") or {}
    if not isinstance(usage, dict):
        raise TraceParseError("usage must be an object")
    tools = record.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise TraceParseError("tools must be a list")
    created_at = _created(record.get("created"), required=True)
    metadata = _metadata(record.get("metadata"))
    prompt_tokens = _int_field(usage, "prompt_tokens")
    completion_tokens = _int_field(usage, "completion_tokens")
    digest, request_json, response_json = _content_json(request, response)
    return _keep_json(TraceRow(
        completion_id=completion_id.strip(),
        created_at=created_at,
        model=model,
        metadata=metadata,
        request_messages=request,
        response_message=response,
        tools=tools or None,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        content_hash=digest,
        source=STORED_COMPLETION_SOURCE,
        cached_tokens=_cached_tokens(usage, prompt_tokens),
    ), request_json, response_json)


def _parse_chat_example(record: dict[str, Any]) -> TraceRow:
    raw = record.get("messages")
    if not isinstance(raw, list) or len(raw) < 2:
        raise TraceParseError("chat example needs at least a request message and the assistant answer")
    messages = [_normalise_message(m, i, "messages") for i, m in enumerate(raw)]
    request, response = messages[:-1], messages[-1]
    _answer(response)
    digest, request_json, response_json = _content_json(request, response)
    completion_id = record.get("id", digest)
    if not isinstance(completion_id, str) or not completion_id.strip():
        raise TraceParseError("chat example id must be a non-empty string")
    model = record.get("model", "unknown")
    if not isinstance(model, str):
        raise TraceParseError("model must be a string")
    usage = record.get("usage") or {}
    if not isinstance(usage, dict):
        raise TraceParseError("usage must be an object")
    prompt_tokens = _int_field(usage, "prompt_tokens")
    return _keep_json(TraceRow(
        completion_id=completion_id.strip(),
        created_at=_created(record.get("created"), required=False),
        model=model,
        metadata=_metadata(record.get("metadata")),
        request_messages=request,
        response_message=response,
        tools=record.get("tools") if isinstance(record.get("tools"), list) else None,
        prompt_tokens=prompt_tokens,
        completion_tokens=_int_field(usage, "completion_tokens"),
        content_hash=digest,
        source=CHAT_EXAMPLE_SOURCE,
        cached_tokens=_cached_tokens(usage, prompt_tokens),
    ), request_json, response_json)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise TraceParseError(f"duplicate JSON keys: {', '.join(dupes)}")
    return obj


def _canonical_record(raw: bytes) -> Any:
    """The line's JSON value when the line is exactly what orjson writes for that value, else None.

    Such a line (compact, keys in written order, UTF-8 text unescaped: how json.dumps(separators=(",", ":"),
    ensure_ascii=False) and most exporters write) has no duplicate keys (a collapsed key would make the
    rewrite shorter), valid UTF-8 and no lone surrogate (orjson refuses both), so json.loads with the
    duplicate-key check would give the same value; orjson decodes it several times faster. Any other line
    takes the reference path."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    try:
        return value if orjson.dumps(value) == raw else None
    except TypeError:  # nothing orjson decodes should fail to encode; if it does, the reference path decides
        return None


def parse_line(raw: bytes | str) -> TraceRow:
    """Decode one export line (bytes or text) into a trace row."""
    if isinstance(raw, bytes):
        record = _canonical_record(raw)
        if record is not None:
            try:
                return _parse_record(record)
            except RecursionError:
                raise TraceParseError("JSON nested too deeply") from None
    return _parse_line_reference(raw)


def _parse_line_reference(raw: bytes | str) -> TraceRow:
    """parse_line through json.loads with the duplicate-key check: the rule the fast path must agree with."""
    decoded = isinstance(raw, bytes)  # strict UTF-8 decoding leaves no lone surrogate outside a \u escape
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TraceParseError(f"not valid UTF-8 at byte {err.start}") from None
    if "\x00" in raw:
        raise TraceParseError("line contains a NUL character")
    try:
        record = json.loads(raw, object_pairs_hook=_reject_duplicate_keys)
    except TraceParseError:
        raise
    except RecursionError:
        raise TraceParseError("JSON nested too deeply") from None
    except ValueError as err:
        raise TraceParseError(f"invalid JSON: {err}") from None
    try:
        if isinstance(record, dict) and (not decoded or _SURROGATE_ESCAPE.search(raw)):
            _check_unicode(record)
        return _parse_record(record)
    except RecursionError:
        raise TraceParseError("JSON nested too deeply") from None


def trace_to_record(row: TraceRow) -> dict[str, Any]:
    """The Parquet row (the trace-row contract): JSON fields as compact strings."""
    kept = row.__dict__.get("_messages_json")  # serialised once already, when the row was parsed
    request_json, response_json = kept if kept else (_dumps_messages(row.request_messages),
                                                         _dumps_messages(row.response_message))
    return {
        "completion_id": row.completion_id,
        "created_at": row.created_at,
        "model": row.model,
        "intent": row.intent,
        "metadata": row.metadata,
        "request_messages": request_json,
        "response_message": response_json,
        "tools": _dumps(row.tools) if row.tools is not None else None,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "content_hash": row.content_hash,
        "source": row.source,
    }


def trace_from_record(record: dict[str, Any]) -> TraceRow:
    metadata = record["metadata"]
    if isinstance(metadata, list):  # pyarrow returns a map as (key, value) pairs
        metadata = dict(metadata)
    created = record["created_at"]
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return TraceRow(
        completion_id=record["completion_id"],
        created_at=created,
        model=record["model"],
        metadata=dict(metadata or {}),
        request_messages=_loads_messages(record["request_messages"]),
        response_message=_loads_messages(record["response_message"]),
        tools=loads_json(record["tools"]) if record.get("tools") else None,
        prompt_tokens=int(record["prompt_tokens"]),
        completion_tokens=int(record["completion_tokens"]),
        content_hash=record["content_hash"],
        source=record["source"],
        cached_tokens=int(record.get("cached_tokens") or 0),  # 0 in files written before the column existed
    )


_LONG_NUMBER = re.compile(r"\d{19}")  # orjson reads an integer past 64 bits as a float; json.loads keeps it exact


def loads_json(text: str | bytes) -> Any:
    """`json.loads(text)`, the same value or the same error, through orjson where that is sure to agree (several
    times faster): whatever strict JSON lacks (NaN, Infinity, lone surrogates, deep nesting), a run of 19 or
    more digits, or any error goes to json.loads, which decides as before."""
    try:
        if not _LONG_NUMBER.search(text if isinstance(text, str) else text.decode("utf-8", "replace")):
            return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    return json.loads(text)



def _loads_messages(text: str) -> Any:
    """Stored message JSON holds strings, lists and objects only (no numbers, see _normalise_message), so orjson
    reads it exactly; anything it refuses still goes to json.loads."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _dumps_messages(value: Any) -> str:
    """`_dumps` for normalised messages (strings, lists and objects only), through orjson: for such values its
    sorted compact output is the same text, byte for byte (the tests hold it to that), several times faster."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:  # not plain JSON after all (a lone surrogate, an odd type): the reference serialiser
        return _dumps(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
