"""Chat models behind the `ChatModel` port: any OpenAI-compatible endpoint, and the replayed teacher.

`OpenAIChatModel` streams, so it can time the first token (TTFT) the way a voice
agent feels it; it works for OpenAI models, `ft:` models and a vLLM server that
serves a LoRA adapter under a model name. `ReplayTeacher` answers a request it
has seen with the teacher's recorded answer, usage and latency: the offline
teacher for evaluation.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

from distill_pipeline.core.chat import Completion, TokenEvent, TokenStream, clamp_logprob
from distill_pipeline.core.traces import TraceRow, message_text

DEFAULT_MAX_TOKENS = 512


class OpenAIChatModel:
    """A chat model on an OpenAI-compatible endpoint, streamed, with token logprobs.

    `client` is an `openai.OpenAI` (or anything with its `chat.completions.create`).
    `temperature=None` and `logprobs=False` leave those parameters out, for models
    that refuse them (reasoning models as a teacher).
    """

    def __init__(
        self,
        client: Any,
        model: str,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float | None = 0,
        *,
        logprobs: bool = True,
        top_logprobs: int = 3,
        extra_body: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        json_schema: Mapping[str, Any] | Callable[[list[dict]], Mapping[str, Any]] | None = None,
    ):
        self.client = client
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        self.extra_body = dict(extra_body) if extra_body else None
        # a schema, or one per request (core/decoding.DecodingRules.for_messages)
        self.json_schema = json_schema
        self._clock = clock

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.model!r})"

    def request(self, messages: list[dict]) -> dict[str, Any]:
        """The keyword arguments of the streamed `chat.completions.create` call."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_completion_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = self.top_logprobs
        if self.json_schema:  # structured outputs: OpenAI, and vLLM's guided decoding, take the same field
            schema = self.json_schema(messages) if callable(self.json_schema) else dict(self.json_schema)
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        return kwargs

    def complete(self, messages: list[dict]) -> Completion:
        return self.stream(messages).drain()

    def stream(self, messages: list[dict]) -> TokenStream:
        """The answer token by token as the server streams it (one event per token with a logprob); closing
        the stream drops the connection, which stops a vLLM or llama.cpp server generating."""
        start = self._clock()
        chunks = self.client.chat.completions.create(**self.request(messages))
        return TokenStream(stream_events(chunks, start=start, clock=self._clock, fallback_model=self.model))


def read_stream(stream: Iterable[Any], *, start: float, clock: Callable[[], float] = time.perf_counter,
                fallback_model: str = "") -> Completion:
    """Collect a streamed chat completion: text, clamped token logprobs, usage, TTFT and latency."""
    return TokenStream(stream_events(stream, start=start, clock=clock, fallback_model=fallback_model)).drain()


def stream_events(stream: Iterable[Any], *, start: float, clock: Callable[[], float] = time.perf_counter,
                  fallback_model: str = "") -> Generator[TokenEvent, None, Completion]:
    """A streamed chat completion's tokens as they arrive (those with a logprob); returns the whole Completion.

    TTFT is the time to the first chunk that carries content (or a tool call), not
    to the first chunk, which some servers send empty with only the role. Closing the
    generator closes the HTTP stream.
    """
    parts: list[str] = []
    logprobs: list[float] = []
    offsets: list[int] = []  # where each logprob's token starts in the text: its tokens' lengths summed
    times: list[float] = []  # when each logprob's chunk arrived, ms since the request
    emitted = 0
    ttft_ms: float | None = None
    prompt_tokens = completion_tokens = cached_tokens = 0
    usage_seen = False
    model = ""
    try:
        for chunk in stream:
            model = model or (getattr(chunk, "model", "") or "")
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                usage_seen = True
                prompt_tokens = int(usage.prompt_tokens or 0)
                completion_tokens = int(usage.completion_tokens or 0)
                details = getattr(usage, "prompt_tokens_details", None)
                cached_tokens = int(getattr(details, "cached_tokens", 0) or 0)
            for choice in chunk.choices or []:
                if choice.index != 0:
                    continue
                delta = choice.delta
                tokens = choice.logprobs.content if choice.logprobs is not None else None
                first = delta is not None and bool(delta.content or delta.tool_calls) and ttft_ms is None
                # one clock reading per chunk that brings the first content or token logprobs
                arrived = (clock() - start) * 1000 if first or tokens else None
                if first:
                    ttft_ms = arrived
                if delta is not None and delta.content:
                    parts.append(delta.content)
                if tokens and arrived is not None:
                    for token in tokens:
                        logprobs.append(clamp_logprob(token.logprob))
                        offsets.append(emitted)
                        times.append(arrived)
                        yield TokenEvent(token.token or "", logprobs[-1], emitted, arrived)
                        emitted += len(token.token or "")
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
    latency_ms = (clock() - start) * 1000
    if not usage_seen:  # a server that ignores stream_options: count what came back
        completion_tokens = len(logprobs)
    return Completion(
        text="".join(parts),
        token_logprobs=logprobs,
        token_offsets=offsets,
        token_times_ms=times,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        ttft_ms=latency_ms if ttft_ms is None else ttft_ms,
        latency_ms=latency_ms,
        model=model or fallback_model,
    )


# ---------------------------------------------------------------------------- replay


def request_key(messages: Iterable[Mapping[str, Any]]) -> str:
    """The replay key of a request: sha256 of its messages' roles and normalised text.

    Text is NFC-normalised and stripped, as trace rows store it, so a request rebuilt
    from a trace row (or sent with content parts instead of a string) finds its answer.
    """
    normalised = [{"role": str(m.get("role", "")),
                   "content": unicodedata.normalize("NFC", message_text(dict(m))).strip()} for m in messages]
    payload = json.dumps(normalised, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class UnseenRequestError(KeyError):
    """The replay teacher was asked something no recorded trace answers."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else "unseen request"


class ReplayTeacher:
    """The teacher, offline: the recorded answer, usage and latency of a request it has seen.

    TTFT comes from the trace's `metadata["ttft_ms"]` (capture records it). Latency
    comes from `metadata["latency_ms"]` when recorded; otherwise it is estimated as
    TTFT + completion tokens x `ms_per_output_token` (default 20 ms: about 50 tokens/s,
    a typical streaming rate for a GPT-4o-class teacher). A trace without a recorded
    TTFT uses `default_ttft_ms`; left at None, such a trace is an error, so that an
    unknown TTFT never passes for a measured one.
    """

    def __init__(
        self,
        traces: Mapping[str, TraceRow] | Iterable[TraceRow],
        *,
        ms_per_output_token: float = 20.0,
        default_ttft_ms: float | None = None,
    ):
        if isinstance(traces, Mapping):
            self.traces: dict[str, TraceRow] = dict(traces)
        else:
            self.traces = {}
            for row in traces:
                self.traces.setdefault(request_key(row.request_messages), row)
        self.ms_per_output_token = ms_per_output_token
        self.default_ttft_ms = default_ttft_ms

    def __len__(self) -> int:
        return len(self.traces)

    def trace_for(self, messages: list[dict]) -> TraceRow:
        key = request_key(messages)
        try:
            return self.traces[key]
        except KeyError:
            first_user = next((message_text(m) for m in messages if m.get("role") == "user"), "")
            preview = " ".join(first_user.split())[:80]
            raise UnseenRequestError(
                f"the replay teacher has no recorded answer for this request (key {key[:12]}, "
                f"user message starting {preview!r}); it only answers requests from the {len(self.traces)} "
                "traces it was given: evaluate on requests taken from those traces, or use a live teacher"
            ) from None

    def complete(self, messages: list[dict]) -> Completion:
        row = self.trace_for(messages)
        ttft_ms = _metadata_ms(row, "ttft_ms")
        if ttft_ms is None:
            if self.default_ttft_ms is None:
                raise ValueError(f"trace {row.completion_id} has no metadata.ttft_ms, so its TTFT is unknown; "
                                 "capture it with distill_pipeline.capture.call_teacher, or pass default_ttft_ms")
            ttft_ms = self.default_ttft_ms
        latency_ms = _metadata_ms(row, "latency_ms")
        if latency_ms is None:
            latency_ms = ttft_ms + row.completion_tokens * self.ms_per_output_token
        return Completion(
            text=row.answer_text,
            token_logprobs=[],
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cached_tokens=row.cached_tokens,
            ttft_ms=ttft_ms,
            latency_ms=latency_ms,
            model=row.model,
        )


def _metadata_ms(row: TraceRow, key: str) -> float | None:
    raw = row.metadata.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"trace {row.completion_id} has metadata.{key} = {raw!r}, "
                         "not a number of milliseconds") from None
    if value < 0 or value != value:
        raise ValueError(f"trace {row.completion_id} has metadata.{key} = {raw!r}; it must be >= 0")
    return value
