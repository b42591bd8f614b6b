"""The chat-model port: what every student and teacher returns, whoever serves it."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Protocol

# OpenAI reports -9999 for tokens whose logprob it did not compute; clamp so a
# single sentinel does not dominate a minimum or a mean.
LOGPROB_FLOOR = -20.0


def clamp_logprob(value: float) -> float:
    return max(float(value), LOGPROB_FLOOR)


@dataclass(frozen=True)
class Completion:
    text: str
    token_logprobs: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float = 0.0
    latency_ms: float = 0.0
    model: str = ""
    cached_tokens: int = 0  # of prompt_tokens, those the server reports as served from its prompt cache
    # where each token starts in `text` (chars), aligned with token_logprobs; empty when the server did not say.
    # The end-of-turn token starts at len(text). Lets the router read its confidence from chosen fields.
    token_offsets: list[int] = field(default_factory=list)
    # when each token was ready (ms since the request was sent), aligned with token_logprobs; empty when not timed.
    # Lets the evaluation find when a streaming router would have stopped the student.
    token_times_ms: list[float] = field(default_factory=list)

    @property
    def min_logprob(self) -> float:
        """The router's confidence: the least likely token the model chose."""
        return min(self.token_logprobs) if self.token_logprobs else 0.0

    @property
    def mean_logprob(self) -> float:
        return sum(self.token_logprobs) / len(self.token_logprobs) if self.token_logprobs else 0.0


class ChatModel(Protocol):
    def complete(self, messages: list[dict]) -> Completion: ...


@dataclass(frozen=True)
class TokenEvent:
    """One generated token, as it arrives: what a streaming router judges before the answer is complete."""

    text: str  # the characters this token adds to the answer ("" for end-of-turn, or half a multi-byte character)
    logprob: float
    offset: int  # where the token starts in the answer text
    elapsed_ms: float  # since the request was sent


class TokenStream:
    """The tokens of one answer as the model generates them.

    Iterate it for `TokenEvent`s; `close()` abandons the answer (the model stops generating, the connection is
    dropped); once the tokens are exhausted, `completion` holds the whole answer as `complete()` would return it.
    Wraps a generator of events that returns that Completion.
    """

    def __init__(self, events: Generator[TokenEvent, None, Completion]) -> None:
        self._events = events
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[TokenEvent]:
        return self

    def __next__(self) -> TokenEvent:
        try:
            return next(self._events)
        except StopIteration as end:
            self.completion = end.value
            raise StopIteration from None

    def close(self) -> None:
        self._events.close()

    def __enter__(self) -> TokenStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drain(self) -> Completion:
        """Read every remaining token; the whole answer."""
        for _ in self:
            pass
        if self.completion is None:  # pragma: no cover - a generator that returned nothing
            raise RuntimeError("the token stream ended without its completion")
        return self.completion


class StreamingChatModel(ChatModel, Protocol):
    """A chat model that can hand over its tokens as they are generated (the router falls back early on it)."""

    def stream(self, messages: list[dict]) -> TokenStream: ...
