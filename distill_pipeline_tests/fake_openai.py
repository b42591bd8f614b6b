"""A fake OpenAI API for tests and benchmarks: the real `openai` SDK talks to it over HTTP on 127.0.0.1.

    with FakeOpenAI(latency_s=0.05) as fake:
        fake.add_stored_completion(record)            # the export shape: a stored completion + request_messages
        fake.add_fault(Fault.rate_limit(retry_after_s=0.01, path=r"/messages$"))
        client = fake.client()                         # openai.OpenAI(base_url=fake.base_url, ...)
        page = client.chat.completions.list(metadata={"agent": "post_call"}, order="asc")
        assert fake.requests(path=r"/messages$")[0].status == 429

Endpoint families: stored chat completions (list, retrieve, update, delete, messages), chat completion
creation (non-streaming and SSE streaming, logprobs, usage, `store: true`), files (upload, list, retrieve,
content, delete), fine-tuning jobs (create, list, retrieve with a deterministic state machine, events,
checkpoints, cancel) and models.

Every JSON body the fake serves is validated against the SDK's own pydantic types and dumped from them
(`exclude_unset`, so seeded objects come back exactly as seeded), so the shapes follow the installed SDK.
The one deliberate exception is `add_stored_completion(..., validate=False)`, which stores a malformed
object as-is so tests can check how clients cope with bad data.

Behaviour is configured by constructor keywords, which are also plain attributes that a test may change
while the server runs: `latency_s`, `responder`, `logprober`, `model_timing`, `fault_rate`, `random_faults`,
`random_fault_path`, `api_key`, `clock`, `job_polls_per_state`, `job_failure`, `training_available`.

Concurrency: `in_flight` is the number of requests being handled now, `max_in_flight` the most at once so far,
and `max_concurrent(method=..., path=...)` the most at once among the logged requests that match.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import openai
from openai.types import FileDeleted, FileObject, Model
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionDeleted,
    ChatCompletionStoreMessage,
    ChatCompletionTokenLogprob,
)
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

Responder = Callable[[list[dict[str, Any]], str], str]
"""(request messages, model) -> the assistant's answer text."""

Logprober = Callable[[list[dict[str, Any]], str, list[str]], list[float]]
"""(request messages, model, answer tokens) -> one logprob per token."""

FILE_PURPOSES = {"assistants", "assistants_output", "batch", "batch_output", "fine-tune", "fine-tune-results",
                 "vision", "user_data"}
JOB_STATES = ("validating_files", "queued", "running", "succeeded")
TERMINAL_JOB_STATES = {"succeeded", "failed", "cancelled"}
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano")
TRAINING_NOT_AVAILABLE = {
    "code": "training_not_available",
    "message": "Fine-tuning is not available for this organization: OpenAI no longer accepts new fine-tuning "
               "jobs from it.",
    "param": None,
    "type": "invalid_request_error",
}


# ---------------------------------------------------------------------------------------------------------------
# Faults, timing, the request log


@dataclass(frozen=True)
class Fault:
    """One scripted failure, for requests whose path matches `path` (a regex searched in the URL path).

    kind "status": answer `status` with an OpenAI error body (and Retry-After when `retry_after_s` is set);
    kind "reset": drop the connection with a TCP reset before answering;
    kind "delay": wait `delay_s` first, then answer normally (longer than the client timeout: a timeout).
    """

    kind: Literal["status", "reset", "delay"]
    status: int = 500
    retry_after_s: float | None = None
    delay_s: float = 0.0
    path: str | None = None
    method: str | None = None
    body: dict[str, Any] | None = None

    @classmethod
    def rate_limit(cls, retry_after_s: float | None = 1.0, *, path: str | None = None,
                   method: str | None = None) -> Fault:
        return cls("status", status=429, retry_after_s=retry_after_s, path=path, method=method)

    @classmethod
    def server_error(cls, status: int = 500, *, path: str | None = None, method: str | None = None,
                     retry_after_s: float | None = None) -> Fault:
        return cls("status", status=status, retry_after_s=retry_after_s, path=path, method=method)

    @classmethod
    def reset(cls, *, path: str | None = None, method: str | None = None) -> Fault:
        return cls("reset", path=path, method=method)

    @classmethod
    def slow(cls, delay_s: float, *, path: str | None = None, method: str | None = None) -> Fault:
        return cls("delay", delay_s=delay_s, path=path, method=method)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None

    def describe(self) -> str:
        if self.kind == "status":
            return f"status {self.status}"
        return f"delay {self.delay_s}s" if self.kind == "delay" else "reset"


@dataclass(frozen=True)
class ModelTiming:
    """Simulated generation speed of one model: time to first token, then time per further token."""

    ttft_s: float = 0.0
    per_token_s: float = 0.0


@dataclass
class LoggedRequest:
    """One request as the fake received it. The Authorization header is never kept, only whether it was sent."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    authorized: bool
    body: bytes = b""
    status: int | None = None  # None: no HTTP answer (connection reset)
    fault: str | None = None  # the injected fault, if any
    # When the fake read the request and when it began to answer (or reset), on time.monotonic(). The answer
    # is marked before its first byte is written, so a request the client sends after reading an answer
    # always starts after that answer: overlaps counted from these are never more than the client's.
    started: float = 0.0
    answered: float | None = None
    # set once the fake has stopped sending its answer; cut_off: the client hung up in the middle of a stream
    ended: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    cut_off: bool = False

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ApiError(Exception):
    """An OpenAI-style error answer."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        self.headers = headers or {}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes for a raw body
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[tuple[float, bytes]] | None = None  # SSE: (delay before, bytes) pairs


# ---------------------------------------------------------------------------------------------------------------
# Deterministic text helpers


def split_tokens(text: str) -> list[str]:
    """The fake's tokeniser: words with their leading whitespace; the tokens join back to the text."""
    tokens = re.findall(r"\s*\S+", text)
    rest = text[len("".join(tokens)):]
    return tokens + [rest] if rest else tokens


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return ""


def default_responder(messages: list[dict[str, Any]], model: str) -> str:
    """Echo the last user message, so a test can tell which request an answer belongs to."""
    last_user = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    return f"echo: {last_user}"


def default_logprober(messages: list[dict[str, Any]], model: str, tokens: list[str]) -> list[float]:
    """A stable logprob per token in [-0.5, -0.001], from a hash of the token."""
    return [-round(0.001 + int.from_bytes(hashlib.sha256(t.encode()).digest()[:2], "big") / 65535 * 0.499, 6)
            for t in tokens]


def _token_logprob(token: str, logprob: float, top: int) -> dict[str, Any]:
    alternatives = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
    for k in range(1, top):
        alt = f"{token}~{k}"
        alternatives.append({"token": alt, "logprob": logprob - k, "bytes": list(alt.encode())})
    entry = {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": alternatives[:top]}
    return ChatCompletionTokenLogprob.model_validate(entry).model_dump(mode="json", exclude_unset=True)


def _dump(model_type: Any, obj: dict[str, Any]) -> dict[str, Any]:
    """Validate a body against the SDK's type and dump it back: the SDK decides the shape."""
    return model_type.model_validate(obj).model_dump(mode="json", exclude_unset=True)


def _store_message(message: dict[str, Any], message_id: str) -> dict[str, Any]:
    """A message as GET /chat/completions/{id}/messages returns it (`message_id` unless it has an id).

    The SDK types `ChatCompletionStoreMessage.role` as "assistant" only, though the API returns every role;
    so the role is validated separately and everything else against the SDK type.
    """
    msg = {"id": message_id, **message}
    role = msg.get("role")
    if role not in {"system", "developer", "user", "assistant", "tool", "function"}:
        raise ValueError(f"message role {role!r} is not a chat role")
    if isinstance(msg.get("content"), list):
        parts = msg["content"]
        msg["content"] = message_text(msg)
        msg["content_parts"] = parts
    dumped = _dump(ChatCompletionStoreMessage, {**msg, "role": "assistant"})
    dumped["role"] = role
    return dumped


def _int_param(query: dict[str, list[str]], name: str, default: int, low: int = 1, high: int = 100) -> int:
    raw = query.get(name, [None])[0]
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid '{name}': expected an integer, got {raw!r}.", param=name) from None
    if not low <= value <= high:
        raise ApiError(400, f"Invalid '{name}': must be between {low} and {high}.", param=name)
    return value


def _metadata_filter(query: dict[str, list[str]]) -> dict[str, str]:
    out = {}
    for key, values in query.items():
        match = re.fullmatch(r"metadata\[(.+)\]", key)
        if match:
            out[match.group(1)] = values[-1]
    return out


def _page(items: list[dict[str, Any]], query: dict[str, list[str]], *, default_limit: int = 20,
          max_limit: int = 100) -> dict[str, Any]:
    """A cursor page over `items` (already in listing order): `after` is the id of the last item seen."""
    limit = _int_param(query, "limit", default_limit, high=max_limit)
    after = query.get("after", [None])[0]
    start = 0
    if after:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise ApiError(400, f"Invalid 'after': no object with id '{after}' in this list.", param="after")
        start = ids.index(after) + 1
    data = items[start:start + limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": start + limit < len(items),
    }


def _order(query: dict[str, list[str]], default: str) -> str:
    order = query.get("order", [default])[0]
    if order not in {"asc", "desc"}:
        raise ApiError(400, f"Invalid 'order': {order!r} is not one of 'asc', 'desc'.", param="order")
    return order


def _sort_key(completion: dict[str, Any]) -> tuple[float, str]:
    created = completion.get("created")
    number = created if isinstance(created, (int, float)) and not isinstance(created, bool) else 0
    return (number, str(completion.get("id", "")))


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form fields of a multipart/form-data body: name -> (filename, bytes)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ApiError(400, "Expected a multipart/form-data body with a boundary.")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.partition(b"\r\n\r\n")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = head.decode("utf-8", errors="replace")
        name = re.search(r'\bname="([^"]*)"', headers)
        filename = re.search(r'\bfilename="([^"]*)"', headers)
        if name:
            fields[name.group(1)] = (filename.group(1) if filename else None, content)
    return fields


# ---------------------------------------------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes; no 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


class FakeOpenAI:
    """A fake OpenAI API on 127.0.0.1 (ephemeral port) with in-memory state, a request log and fault injection."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        responder: Responder | None = None,
        logprober: Logprober | None = None,
        model_timing: dict[str, ModelTiming] | None = None,
        fault_rate: float = 0.0,
        fault_seed: int = 0,
        random_faults: Sequence[Fault] | None = None,
        random_fault_path: str | None = None,
        api_key: str | None = None,
        clock: Callable[[], float] = time.time,
        job_polls_per_state: int = 1,
        job_failure: dict[str, Any] | None = None,
        training_available: bool = True,
        models: Sequence[str] = DEFAULT_MODELS,
        cached_prompt_tokens: int = 0,
    ) -> None:
        self.latency_s = latency_s  # added to every request
        self.responder: Responder = responder or default_responder
        self.logprober: Logprober = logprober or default_logprober
        self.model_timing: dict[str, ModelTiming] = dict(model_timing or {})  # by model; "*" for any other
        self.fault_rate = fault_rate  # share of requests that get a random fault from `random_faults`
        self.random_faults: list[Fault] = list(random_faults or (
            Fault.server_error(500), Fault.server_error(503), Fault.rate_limit(0.01), Fault.reset()))
        self.random_fault_path = random_fault_path  # regex; random faults only for matching paths
        self.api_key = api_key  # when set, requests without "Bearer <api_key>" get 401
        self.clock = clock
        self.job_polls_per_state = job_polls_per_state  # retrieves per job state before the next one
        self.job_failure = job_failure  # {code, message, param}: jobs end failed with this error
        self.training_available = training_available  # False: job creation answers 403 training_not_available
        self.models = list(models)
        self.cached_prompt_tokens = cached_prompt_tokens  # reported as served from the prompt cache (at most all)

        self._lock = threading.RLock()
        self._rng = random.Random(fault_seed)
        self._faults: list[list[Any]] = []  # [fault, remaining]
        self._log: list[LoggedRequest] = []
        self.in_flight = 0  # requests read and not yet answered, now
        self.max_in_flight = 0  # the most at once since start (or clear_log)
        self._counters: dict[str, int] = {}
        self._completions: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._file_content: dict[str, bytes] = {}
        self._jobs: dict[str, dict[str, Any]] = {}  # id -> {"job", "polls", "events", "checkpoints"}
        self._server: _Server | None = None
        self._client: openai.OpenAI | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="fake-openai", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running: call start() or use it as a context manager")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def client(self, *, api_key: str | None = None, max_retries: int = 0, timeout: float = 10.0,
               **kwargs: Any) -> openai.OpenAI:
        """A real SDK client pointed at this fake (no retries unless asked, so faults surface in tests).

        Clients share one connection pool (creating an SDK client costs ~0.1 s of TLS set-up, even for http).
        """
        key = api_key or self.api_key or "sk-fake"
        if kwargs:
            return openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=max_retries, timeout=timeout,
                                 **kwargs)
        with self._lock:
            if self._client is None:
                self._client = openai.OpenAI(api_key=key, base_url=self.base_url)
        return self._client.with_options(api_key=key, max_retries=max_retries, timeout=timeout)

    # -- faults and the log ----------------------------------------------------------------------------------

    def add_fault(self, fault: Fault, times: int = 1) -> None:
        """Queue a fault for the next `times` matching requests (faults fire in the order they were added)."""
        with self._lock:
            self._faults.append([fault, times])

    def seed_faults(self, seed: int) -> None:
        """Restart the random-fault sequence (which requests `fault_rate` hits) from this seed."""
        with self._lock:
            self._rng = random.Random(seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return sum(remaining for _, remaining in self._faults)

    def requests(self, *, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """The request log, optionally only one method and paths matching a regex."""
        with self._lock:
            return [r for r in self._log
                    if (method is None or r.method == method.upper()) and (path is None or re.search(path, r.path))]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
            self.max_in_flight = self.in_flight

    def max_concurrent(self, *, method: str | None = None, path: str | None = None) -> int:
        """The most logged requests (optionally one method, paths matching a regex) in flight at once, counted
        from when the fake read each one to when it began to answer it. A request still unanswered counts as
        in flight until now."""
        edges: list[tuple[float, int]] = []
        for r in self.requests(method=method, path=path):
            edges += [(r.started, 1), (r.answered if r.answered is not None else float("inf"), -1)]
        most = current = 0
        for _, step in sorted(edges):  # at equal times an answer (-1) sorts before a start (+1)
            current += step
            most = max(most, current)
        return most

    def _begin(self, entry: LoggedRequest) -> None:
        with self._lock:
            entry.started = time.monotonic()
            self._log.append(entry)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _answer(self, entry: LoggedRequest) -> None:
        """Mark the request answered (once), before the first byte of the answer or the reset goes out."""
        with self._lock:
            if entry.answered is None:
                entry.answered = time.monotonic()
                self.in_flight -= 1

    def _next_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for entry in self._faults:
                fault, remaining = entry
                if remaining > 0 and fault.matches(method, path):
                    entry[1] -= 1
                    if entry[1] == 0:
                        self._faults.remove(entry)
                    return fault
            if self.fault_rate > 0 and (self.random_fault_path is None or re.search(self.random_fault_path, path)):
                if self._rng.random() < self.fault_rate:
                    return self._rng.choice(self.random_faults)
        return None

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            n = self._counters.get(prefix, 0) + 1
            self._counters[prefix] = n
        return f"{prefix}{n:06d}"

    def _now(self) -> int:
        return int(self.clock())

    # -- seeding and state -----------------------------------------------------------------------------------

    def add_stored_completion(self, record: dict[str, Any], *, validate: bool = True) -> str:
        """Store one completion given in the export shape (the stored completion plus `request_messages`).

        With validate=False the object is stored exactly as given, even malformed (for quarantine tests).
        Returns the completion id.
        """
        record = json.loads(json.dumps(record))  # a private deep copy
        messages = record.pop("request_messages", None)
        if validate:
            completion = _dump(ChatCompletion, record)
            completion_id = completion["id"]
            messages = [_store_message(m, f"{completion_id}-{i}") for i, m in enumerate(messages or [])]
        else:
            completion = record
            completion_id = completion.get("id") if isinstance(completion.get("id"), str) else None
            completion_id = completion_id or self._new_id("_noid-")
            messages = messages if isinstance(messages, list) else []
            for i, message in enumerate(messages):
                if isinstance(message, dict) and "id" not in message:
                    message["id"] = f"{completion_id}-{i}"
        with self._lock:
            self._completions[completion_id] = completion
            self._messages[completion_id] = messages
        return completion_id

    def load_export(self, path: str | Path, *, validate: bool = True) -> int:
        """Seed every line of a JSONL export file (or every *.jsonl in a directory); returns how many.

        Stored-completion lines go in as they are; chat-example lines ({"messages": [...]}) become stored
        completions whose last message is the answer.
        """
        path = Path(path)
        files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        count = 0
        for file in files:
            for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as err:
                    raise ValueError(f"{file}:{number}: not JSON ({err})") from None
                if isinstance(record, dict) and "messages" in record and "choices" not in record:
                    record = self._from_chat_example(record)
                self.add_stored_completion(record, validate=validate)
                count += 1
        return count

    def _from_chat_example(self, example: dict[str, Any]) -> dict[str, Any]:
        messages = list(example["messages"])
        answer = messages.pop()
        digest = hashlib.sha256(json.dumps(example, sort_keys=True).encode()).hexdigest()[:24]
        return {
            "id": example.get("id") or f"chatcmpl-{digest}",
            "object": "chat.completion",
            "created": example.get("created", self._now()),
            "model": example.get("model", "unknown"),
            "choices": [{"index": 0, "message": answer, "finish_reason": "stop", "logprobs": None}],
            "metadata": example.get("metadata") or {},
            "request_messages": messages,
        }

    @property
    def stored_completions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in sorted(self._completions.values(), key=_sort_key)]

    def stored_messages(self, completion_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._messages.get(completion_id, [])]

    def add_file(self, content: bytes, filename: str = "data.jsonl", purpose: str = "fine-tune") -> str:
        """Store a file as if uploaded; returns its id."""
        file_id = self._new_id("file-")
        obj = _dump(FileObject, {"id": file_id, "object": "file", "bytes": len(content), "created_at": self._now(),
                                 "filename": filename, "purpose": purpose, "status": "processed",
                                 "expires_at": None, "status_details": None})
        with self._lock:
            self._files[file_id] = obj
            self._file_content[file_id] = content
        return file_id

    def file_content(self, file_id: str) -> bytes:
        with self._lock:
            return self._file_content[file_id]

    @property
    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(j["job"]) for j in self._jobs.values()]

    # -- HTTP plumbing ---------------------------------------------------------------------------------------

    _ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        (m, re.compile(p), h) for m, p, h in [
            ("GET", r"/v1/chat/completions", "_list_completions"),
            ("POST", r"/v1/chat/completions", "_create_completion"),
            ("GET", r"/v1/chat/completions/([^/]+)", "_get_completion"),
            ("POST", r"/v1/chat/completions/([^/]+)", "_update_completion"),
            ("DELETE", r"/v1/chat/completions/([^/]+)", "_delete_completion"),
            ("GET", r"/v1/chat/completions/([^/]+)/messages", "_list_messages"),
            ("POST", r"/v1/files", "_upload_file"),
            ("GET", r"/v1/files", "_list_files"),
            ("GET", r"/v1/files/([^/]+)", "_get_file"),
            ("DELETE", r"/v1/files/([^/]+)", "_delete_file"),
            ("GET", r"/v1/files/([^/]+)/content", "_get_file_content"),
            ("POST", r"/v1/fine_tuning/jobs", "_create_job"),
            ("GET", r"/v1/fine_tuning/jobs", "_list_jobs"),
            ("GET", r"/v1/fine_tuning/jobs/([^/]+)", "_get_job"),
            ("POST", r"/v1/fine_tuning/jobs/([^/]+)/cancel", "_cancel_job"),
            ("GET", r"/v1/fine_tuning/jobs/([^/]+)/events", "_list_job_events"),
            ("GET", r"/v1/fine_tuning/jobs/([^/]+)/checkpoints", "_list_job_checkpoints"),
            ("GET", r"/v1/models", "_list_models"),
        ]
    ]

    def _handle(self, handler: _Handler) -> None:
        method = handler.command
        split = urlsplit(handler.path)
        path = split.path.rstrip("/") or "/"
        query = parse_qs(split.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        authorization = headers.pop("authorization", None)
        headers.pop("api-key", None)
        entry = LoggedRequest(method, path, query, headers, authorized=authorization is not None, body=body)
        self._begin(entry)
        try:
            self._answer_request(handler, entry, method, path, query, headers, body, authorization)
        finally:
            self._answer(entry)

    def _answer_request(self, handler: _Handler, entry: LoggedRequest, method: str, path: str,
                        query: dict[str, list[str]], headers: dict[str, str], body: bytes,
                        authorization: str | None) -> None:
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        fault = self._next_fault(method, path)
        if fault is not None:
            entry.fault = fault.describe()
            if fault.kind == "reset":
                self._answer(entry)
                self._reset(handler)
                return
            if fault.kind == "delay":
                time.sleep(fault.delay_s)
            else:
                body_out = fault.body or self._fault_body(fault.status)
                extra = {}
                if fault.retry_after_s is not None:
                    extra = {"retry-after": f"{fault.retry_after_s:g}",
                             "retry-after-ms": str(int(fault.retry_after_s * 1000))}
                self._send(handler, entry, Reply(fault.status, body_out, extra))
                return

        try:
            if self.api_key is not None and authorization != f"Bearer {self.api_key}":
                raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
            reply = self._route(method, path, query, headers, body)
        except ApiError as err:
            reply = Reply(err.status, err.body, err.headers)
        except Exception as err:  # a bug in the fake must surface as a 500 with the reason, not a hang
            reply = Reply(500, {"error": {"message": f"fake server error: {type(err).__name__}: {err}",
                                          "type": "server_error", "param": None, "code": None}})
        self._send(handler, entry, reply)

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: bytes) -> Reply:
        path_matched = False
        for route_method, pattern, name in self._ROUTES:
            match = pattern.fullmatch(path)
            if not match:
                continue
            path_matched = True
            if route_method == method:
                return getattr(self, name)(*match.groups(), query=query, headers=headers, body=body)
        if path_matched:
            raise ApiError(405, f"Method {method} not allowed on {path}.", code="method_not_allowed")
        raise ApiError(404, f"Unknown request URL: {method} {path}.", code="unknown_url")

    @staticmethod
    def _fault_body(status: int) -> dict[str, Any]:
        if status == 429:
            return {"error": {"message": "Rate limit reached for requests. Please try again later.",
                              "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
        return {"error": {"message": f"The server had an error while processing your request (HTTP {status}).",
                          "type": "server_error", "param": None, "code": None}}

    @staticmethod
    def _reset(handler: _Handler) -> None:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.close_connection = True
        try:
            handler.connection.close()
        except OSError:
            pass

    def _send(self, handler: _Handler, entry: LoggedRequest, reply: Reply) -> None:
        entry.status = reply.status
        self._answer(entry)
        headers = {"x-request-id": self._new_id("req_")}
        try:
            if reply.stream is not None:
                handler.send_response(reply.status)
                for k, v in {**headers, "content-type": "text/event-stream; charset=utf-8",
                             "cache-control": "no-cache", "connection": "close", **reply.headers}.items():
                    handler.send_header(k, v)
                handler.end_headers()
                handler.close_connection = True
                for delay, chunk in reply.stream:
                    if delay > 0:
                        time.sleep(delay)
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
                return
            if isinstance(reply.body, bytes):
                payload, content_type = reply.body, "application/octet-stream"
            else:
                payload, content_type = json.dumps(reply.body).encode(), "application/json"
            handler.send_response(reply.status)
            for k, v in {**headers, "content-type": content_type, "content-length": str(len(payload)),
                         **reply.headers}.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(payload)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            handler.close_connection = True  # the client gave up (e.g. its timeout fired first)
            entry.cut_off = reply.stream is not None
        finally:
            entry.ended.set()

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "We could not parse the JSON body of your request.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return data

    # -- stored chat completions -----------------------------------------------------------------------------

    def _completion(self, completion_id: str) -> dict[str, Any]:
        with self._lock:
            completion = self._completions.get(completion_id)
        if completion is None:
            raise ApiError(404, f"No chat completion found with id '{completion_id}'.", param="completion_id")
        return completion

    def _list_completions(self, *, query: dict[str, list[str]], **_: Any) -> Reply:
        wanted = _metadata_filter(query)
        model = query.get("model", [None])[0]
        with self._lock:
            items = sorted(self._completions.values(), key=_sort_key)
        items = [c for c in items
                 if (model is None or c.get("model") == model)
                 and all(isinstance(c.get("metadata"), dict) and c["metadata"].get(k) == v for k, v in wanted.items())]
        if _order(query, "asc") == "desc":
            items.reverse()
        return Reply(body=_page(items, query))

    def _get_completion(self, completion_id: str, **_: Any) -> Reply:
        return Reply(body=self._completion(completion_id))

    def _update_completion(self, completion_id: str, *, body: bytes, **_: Any) -> Reply:
        completion = self._completion(completion_id)
        data = self._json_body(body)
        updated = _dump(ChatCompletion, {**completion, "metadata": data.get("metadata")})
        with self._lock:
            self._completions[completion_id] = updated
        return Reply(body=updated)

    def _delete_completion(self, completion_id: str, **_: Any) -> Reply:
        self._completion(completion_id)
        with self._lock:
            self._completions.pop(completion_id, None)
            self._messages.pop(completion_id, None)
        return Reply(body=_dump(ChatCompletionDeleted, {"id": completion_id, "object": "chat.completion.deleted",
                                                        "deleted": True}))

    def _list_messages(self, completion_id: str, *, query: dict[str, list[str]], **_: Any) -> Reply:
        self._completion(completion_id)
        with self._lock:
            messages = list(self._messages.get(completion_id, []))
        if _order(query, "asc") == "desc":
            messages.reverse()
        return Reply(body=_page(messages, query))

    def _timing(self, model: str) -> ModelTiming:
        return self.model_timing.get(model) or self.model_timing.get("*") or ModelTiming()

    def _create_completion(self, *, body: bytes, **_: Any) -> Reply:
        request = self._json_body(body)
        model = request.get("model")
        messages = request.get("messages")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "you must provide a model parameter", param="model")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise ApiError(400, "'messages' must be a non-empty array of message objects.", param="messages")
        completion_id = self._new_id("chatcmpl-fake")
        try:
            stored_messages = [_store_message({"name": None, "content_parts": None, **m}, f"{completion_id}-{i}")
                               for i, m in enumerate(messages)]
        except ValueError as err:
            raise ApiError(400, f"Invalid 'messages': {err}.", param="messages") from None
        top = request.get("top_logprobs") or 0
        if not isinstance(top, int) or not 0 <= top <= 20:
            raise ApiError(400, "'top_logprobs' must be an integer between 0 and 20.", param="top_logprobs")
        want_logprobs = bool(request.get("logprobs"))
        n = request.get("n") or 1
        limit = request.get("max_completion_tokens") or request.get("max_tokens")

        text = self.responder(messages, model)
        tokens = split_tokens(text)
        finish = "stop"
        if isinstance(limit, int) and len(tokens) > limit:
            tokens, finish = tokens[:limit], "length"
            text = "".join(tokens)
        token_logprobs = []
        if want_logprobs:
            logprobs = [float(x) for x in self.logprober(messages, model, tokens)]
            if len(logprobs) != len(tokens):
                raise ValueError(f"the logprober gave {len(logprobs)} logprobs for {len(tokens)} tokens")
            token_logprobs = [_token_logprob(t, lp, top) for t, lp in zip(tokens, logprobs, strict=True)]
        prompt_tokens = sum(len(split_tokens(message_text(m))) + 3 for m in messages)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                 "total_tokens": prompt_tokens + len(tokens),
                 "prompt_tokens_details": {"cached_tokens": min(self.cached_prompt_tokens, prompt_tokens),
                                           "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                               "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        created = self._now()
        choices = [{"index": i, "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": {"content": token_logprobs, "refusal": None} if want_logprobs else None,
                    "finish_reason": finish} for i in range(n)]
        completion: dict[str, Any] = {
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": choices, "usage": usage, "service_tier": "default", "system_fingerprint": "fp_fake",
        }
        if request.get("metadata") is not None:
            completion["metadata"] = request["metadata"]
        completion = _dump(ChatCompletion, completion)
        if request.get("store"):
            with self._lock:
                self._completions[completion_id] = completion
                self._messages[completion_id] = stored_messages

        timing = self._timing(model)
        if not request.get("stream"):
            delay = timing.ttft_s + timing.per_token_s * max(len(tokens) - 1, 0)
            if delay > 0:
                time.sleep(delay)
            return Reply(body=completion)
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        return Reply(stream=self._chunks(completion, tokens, token_logprobs, n, want_logprobs, include_usage,
                                         timing))

    def _chunks(self, completion: dict[str, Any], tokens: list[str], token_logprobs: list[dict[str, Any]], n: int,
                want_logprobs: bool, include_usage: bool, timing: ModelTiming) -> Iterator[tuple[float, bytes]]:
        base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
                "model": completion["model"], "service_tier": "default", "system_fingerprint": "fp_fake"}
        if include_usage:
            base["usage"] = None

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            chunk = _dump(ChatCompletionChunk, {**base, "choices": choices, **extra})
            return f"data: {json.dumps(chunk)}\n\n".encode()

        def logprobs(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
            return {"content": entries, "refusal": None} if want_logprobs else None

        yield timing.ttft_s, event([{"index": i, "delta": {"role": "assistant", "content": "", "refusal": None},
                                     "logprobs": logprobs([]), "finish_reason": None} for i in range(n)])
        for k, token in enumerate(tokens):
            entries = [token_logprobs[k]] if want_logprobs else []
            yield (timing.per_token_s if k else 0.0), event(
                [{"index": i, "delta": {"content": token}, "logprobs": logprobs(entries), "finish_reason": None}
                 for i in range(n)])
        finish = completion["choices"][0]["finish_reason"]
        yield 0.0, event([{"index": i, "delta": {}, "logprobs": None, "finish_reason": finish} for i in range(n)])
        if include_usage:
            yield 0.0, event([], usage=completion["usage"])
        yield 0.0, b"data: [DONE]\n\n"

    # -- files -----------------------------------------------------------------------------------------------

    def _file(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            obj = self._files.get(file_id)
        if obj is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return obj

    def _upload_file(self, *, headers: dict[str, str], body: bytes, **_: Any) -> Reply:
        fields = _multipart(headers.get("content-type", ""), body)
        if "file" not in fields:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose not in FILE_PURPOSES:
            raise ApiError(400, f"'{purpose}' is not one of {sorted(FILE_PURPOSES)} - 'purpose'", param="purpose")
        filename, content = fields["file"]
        return Reply(body=self._file(self.add_file(content, filename or "upload", purpose)))

    def _list_files(self, *, query: dict[str, list[str]], **_: Any) -> Reply:
        purpose = query.get("purpose", [None])[0]
        with self._lock:
            files = sorted(self._files.values(), key=lambda f: (f["created_at"], f["id"]))
        files = [f for f in files if purpose is None or f["purpose"] == purpose]
        if _order(query, "desc") == "desc":
            files.reverse()
        return Reply(body=_page(files, query, default_limit=10000, max_limit=10000))

    def _get_file(self, file_id: str, **_: Any) -> Reply:
        return Reply(body=self._file(file_id))

    def _delete_file(self, file_id: str, **_: Any) -> Reply:
        self._file(file_id)
        with self._lock:
            self._files.pop(file_id, None)
            self._file_content.pop(file_id, None)
        return Reply(body=_dump(FileDeleted, {"id": file_id, "object": "file", "deleted": True}))

    def _get_file_content(self, file_id: str, **_: Any) -> Reply:
        self._file(file_id)
        with self._lock:
            return Reply(body=self._file_content[file_id])

    # -- fine-tuning -----------------------------------------------------------------------------------------

    def _job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            state = self._jobs.get(job_id)
        if state is None:
            raise ApiError(404, f"Could not find fine-tune job: {job_id}", param="fine_tuning_job_id")
        return state

    def _create_job(self, *, body: bytes, **_: Any) -> Reply:
        if not self.training_available:
            raise ApiError(403, TRAINING_NOT_AVAILABLE["message"], code=TRAINING_NOT_AVAILABLE["code"])
        request = self._json_body(body)
        model = request.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "Missing required parameter: 'model'.", param="model")
        for param in ("training_file", "validation_file"):
            file_id = request.get(param)
            if file_id is None and param == "validation_file":
                continue
            with self._lock:
                obj = self._files.get(file_id) if isinstance(file_id, str) else None
            if obj is None or obj["purpose"] != "fine-tune":
                raise ApiError(400, f"invalid {param}: {file_id!r} is not a file uploaded with purpose 'fine-tune'.",
                               param=param, code="invalid_file")
        auto = {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"}
        hyperparameters = {**auto, **(request.get("hyperparameters") or {})}
        method = request.get("method") or {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}
        if method.get("type") in method and isinstance(method[method["type"]], dict):
            hyperparameters = {**hyperparameters, **(method[method["type"]].get("hyperparameters") or {})}
        job_id = self._new_id("ftjob-")
        job = _dump(FineTuningJob, {
            "id": job_id, "object": "fine_tuning.job", "created_at": self._now(), "model": model,
            "organization_id": "org-fake", "status": "validating_files", "training_file": request["training_file"],
            "validation_file": request.get("validation_file"), "hyperparameters": hyperparameters,
            "method": method, "seed": request.get("seed") if request.get("seed") is not None else 42,
            "metadata": request.get("metadata"), "result_files": [], "fine_tuned_model": None, "finished_at": None,
            "trained_tokens": None, "error": None, "estimated_finish": None, "integrations": [],
            "user_provided_suffix": request.get("suffix"),
        })
        state = {"job": job, "polls": 0, "events": [], "checkpoints": [], "suffix": request.get("suffix")}
        self._job_event(state, f"Validating training file: {request['training_file']}")
        with self._lock:
            self._jobs[job_id] = state
        return Reply(body=job)

    def _job_event(self, state: dict[str, Any], message: str, *, level: str = "info",
                   data: dict[str, Any] | None = None) -> None:
        event = {"id": self._new_id("ftevent-"), "object": "fine_tuning.job.event", "created_at": self._now(),
                 "level": level, "message": message, "data": data or {}, "type": "metrics" if data else "message"}
        state["events"].append(_dump(FineTuningJobEvent, event))

    def _advance_job(self, state: dict[str, Any]) -> None:
        """One retrieve: move the job along validating_files -> queued -> running -> succeeded (or failed)."""
        job = state["job"]
        if job["status"] in TERMINAL_JOB_STATES:
            return
        state["polls"] += 1
        target = JOB_STATES[min(state["polls"] // max(self.job_polls_per_state, 1), len(JOB_STATES) - 1)]
        while job["status"] != target and job["status"] not in TERMINAL_JOB_STATES:
            next_status = JOB_STATES[JOB_STATES.index(job["status"]) + 1]
            if next_status == "queued":
                failure = self._training_file_problem(job["training_file"])
                if failure:
                    self._fail_job(state, {"code": "invalid_training_file", "message": failure,
                                           "param": "training_file"})
                    break
                self._job_event(state, "Files validated, moving job to queued state")
                job["status"] = "queued"
            elif next_status == "running":
                job["status"] = "running"
                resolved = {"batch_size": 1, "learning_rate_multiplier": 1.8, "n_epochs": 3}
                job["hyperparameters"] = {k: (resolved[k] if v == "auto" else v)
                                          for k, v in job["hyperparameters"].items()}
                job["estimated_finish"] = self._now() + 600
                self._job_event(state, "Fine-tuning job started")
            elif self.job_failure is not None:
                self._fail_job(state, self.job_failure)
            else:
                self._succeed_job(state)
        state["job"] = _dump(FineTuningJob, job)

    def _training_file_problem(self, file_id: str) -> str | None:
        with self._lock:
            content = self._file_content.get(file_id, b"")
        bad = []
        for number, line in enumerate(content.decode("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                example = json.loads(line)
            except ValueError:
                bad.append(number)
                continue
            if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
                bad.append(number)
        if bad:
            return f"Training file {file_id} has {len(bad)} invalid example(s), first on line {bad[0]}."
        return None

    def _fail_job(self, state: dict[str, Any], error: dict[str, Any]) -> None:
        job = state["job"]
        job["status"] = "failed"
        job["error"] = {"code": error.get("code", "error"), "message": error.get("message", "Job failed."),
                        "param": error.get("param")}
        job["finished_at"] = self._now()
        job["estimated_finish"] = None
        self._job_event(state, f"Job failed: {job['error']['message']}", level="error")

    def _succeed_job(self, state: dict[str, Any]) -> None:
        job = state["job"]
        with self._lock:
            content = self._file_content.get(job["training_file"], b"")
        epochs = job["hyperparameters"].get("n_epochs") or 3
        tokens = len(split_tokens(content.decode("utf-8", errors="replace"))) * int(epochs)
        short_id = job["id"].removeprefix("ftjob-")
        model_name = f"ft:{job['model']}:org:{state['suffix'] or ''}:{short_id}"
        steps = [1, 2, 3]
        rows = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
        for step in steps:
            loss = round(1.0 / step, 4)
            metrics = {"step": float(step), "train_loss": loss, "train_mean_token_accuracy": round(1 - loss / 2, 4),
                       "valid_loss": round(loss * 1.1, 4), "valid_mean_token_accuracy": round(1 - loss / 1.8, 4),
                       "full_valid_loss": round(loss * 1.1, 4),
                       "full_valid_mean_token_accuracy": round(1 - loss / 1.8, 4)}
            rows.append(f"{step},{loss},{metrics['train_mean_token_accuracy']},{metrics['valid_loss']},"
                        f"{metrics['valid_mean_token_accuracy']}")
            self._job_event(state, f"Step {step}/{len(steps)}: training loss={loss}",
                            data={"step": step, "train_loss": loss,
                                  "train_mean_token_accuracy": metrics["train_mean_token_accuracy"]})
            checkpoint = model_name if step == steps[-1] else f"{model_name}:ckpt-step-{step}"
            state["checkpoints"].append(_dump(FineTuningJobCheckpoint, {
                "id": self._new_id("ftckpt-"), "object": "fine_tuning.job.checkpoint", "created_at": self._now(),
                "fine_tuned_model_checkpoint": checkpoint, "fine_tuning_job_id": job["id"], "step_number": step,
                "metrics": metrics}))
        results = self.add_file(("\n".join(rows) + "\n").encode(), "step_metrics.csv", "fine-tune-results")
        job.update(status="succeeded", fine_tuned_model=model_name, finished_at=self._now(), trained_tokens=tokens,
                   result_files=[results], estimated_finish=None)
        self._job_event(state, f"New fine-tuned model created: {model_name}")
        self._job_event(state, "The job has successfully completed")
        with self._lock:
            if model_name not in self.models:
                self.models.append(model_name)

    def _list_jobs(self, *, query: dict[str, list[str]], **_: Any) -> Reply:
        wanted = _metadata_filter(query)
        with self._lock:
            jobs = [s["job"] for s in self._jobs.values()]
        jobs = [j for j in sorted(jobs, key=lambda j: (j["created_at"], j["id"]), reverse=True)
                if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        return Reply(body=_page(jobs, query))

    def _get_job(self, job_id: str, **_: Any) -> Reply:
        state = self._job(job_id)
        with self._lock:
            self._advance_job(state)
            return Reply(body=state["job"])

    def _cancel_job(self, job_id: str, **_: Any) -> Reply:
        state = self._job(job_id)
        with self._lock:
            job = state["job"]
            if job["status"] in TERMINAL_JOB_STATES:
                raise ApiError(400, f"Job {job_id} has already {job['status']} and cannot be cancelled.",
                               param="fine_tuning_job_id")
            job.update(status="cancelled", finished_at=self._now(), estimated_finish=None)
            self._job_event(state, "Fine-tuning job cancelled")
            state["job"] = _dump(FineTuningJob, job)
            return Reply(body=state["job"])

    def _list_job_events(self, job_id: str, *, query: dict[str, list[str]], **_: Any) -> Reply:
        state = self._job(job_id)
        with self._lock:
            events = list(reversed(state["events"]))  # newest first, as the API lists them
        return Reply(body=_page(events, query))

    def _list_job_checkpoints(self, job_id: str, *, query: dict[str, list[str]], **_: Any) -> Reply:
        state = self._job(job_id)
        with self._lock:
            checkpoints = list(reversed(state["checkpoints"]))
        return Reply(body=_page(checkpoints, query, default_limit=10))

    # -- models ----------------------------------------------------------------------------------------------

    def _list_models(self, **_: Any) -> Reply:
        with self._lock:
            models = [_dump(Model, {"id": m, "object": "model", "created": 0,
                                    "owned_by": "user" if m.startswith("ft:") else "system"}) for m in self.models]
        return Reply(body={"object": "list", "data": models})
