"""Calling the teacher in production so that every call becomes a usable trace.

    from distill_pipeline.capture import call_teacher
    call = call_teacher(client, "gpt-4o", messages, agent="post-call", intent="medication_refill")
    call.text, call.completion_id, call.ttft_ms

The call is stored (`store=True`) with the metadata the pipeline filters on
(agent, intent, layer). TTFT is only known once the first token has streamed
back, after the request (and its metadata) was sent, so it is added to the
stored completion's metadata afterwards with `chat.completions.update`. If that
update fails (a stored completion can take a moment to become visible), the
answer is still returned, with `ttft_recorded=False`: the caller's answer
matters more than the trace's timing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from distill_pipeline.backends.chat_models import read_stream
from distill_pipeline.core.chat import Completion

log = logging.getLogger(__name__)

# OpenAI's metadata limits: 16 keys, keys up to 64 characters, values up to 512.
MAX_METADATA_KEYS = 16
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512
RESERVED_KWARGS = ("store", "metadata", "stream", "stream_options", "model", "messages")


@dataclass(frozen=True)
class TeacherCall:
    text: str
    completion_id: str
    ttft_ms: float
    latency_ms: float
    metadata: dict[str, str]  # what the stored completion's metadata holds (if ttft_recorded)
    ttft_recorded: bool
    completion: Completion


def _metadata(values: Mapping[str, Any]) -> dict[str, str]:
    out = {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items() if v is not None}
    if len(out) > MAX_METADATA_KEYS:
        raise ValueError(f"stored completion metadata holds at most {MAX_METADATA_KEYS} keys (got {len(out)}: "
                         f"{', '.join(sorted(out))}); drop some extra_metadata")
    for key, value in out.items():
        if len(key) > MAX_KEY_CHARS or len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"metadata {key!r}: keys are at most {MAX_KEY_CHARS} characters and values at most "
                             f"{MAX_VALUE_CHARS}")
    return out


def call_teacher(
    client: Any,
    model: str,
    messages: list[dict],
    *,
    agent: str,
    intent: str,
    layer: str = "teacher",
    extra_metadata: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    **kwargs: Any,
) -> TeacherCall:
    """Call the teacher, stored and streamed, then record its TTFT and latency on the stored completion.

    `kwargs` go to `chat.completions.create` as they are (temperature, tools, ...).
    """
    reserved = sorted(set(kwargs) & set(RESERVED_KWARGS))
    if reserved:
        raise TypeError(f"call_teacher sets {', '.join(reserved)} itself; pass metadata as extra_metadata")
    metadata = _metadata({**(extra_metadata or {}), "agent": agent, "intent": intent, "layer": layer})
    _metadata({**metadata, "ttft_ms": "0", "latency_ms": "0"})  # fail now, not after a paid call
    start = clock()
    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        store=True,
        metadata=metadata,
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,
    )
    completion_id = ""

    def chunks():
        nonlocal completion_id
        for chunk in stream:
            completion_id = completion_id or (getattr(chunk, "id", "") or "")
            yield chunk

    completion = read_stream(chunks(), start=start, clock=clock, fallback_model=model)
    if hasattr(stream, "close"):
        stream.close()
    timed = {**metadata, "ttft_ms": f"{completion.ttft_ms:.0f}", "latency_ms": f"{completion.latency_ms:.0f}"}
    recorded = False
    if completion_id:
        try:
            client.chat.completions.update(completion_id, metadata=timed)
            recorded = True
        except Exception as err:  # the answer still goes back to the caller
            log.warning("could not record ttft_ms on stored completion %s: %s", completion_id, err)
    else:
        log.warning("the teacher's stream carried no completion id; ttft_ms not recorded")
    return TeacherCall(
        text=completion.text,
        completion_id=completion_id,
        ttft_ms=completion.ttft_ms,
        latency_ms=completion.latency_ms,
        metadata=timed if recorded else metadata,
        ttft_recorded=recorded,
        completion=completion,
    )
