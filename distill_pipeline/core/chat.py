"""The chat-model port: what every student and teacher returns, whoever serves it."""

from __future__ import annotations

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

    @property
    def min_logprob(self) -> float:
        """The router's confidence: the least likely token the model chose."""
        return min(self.token_logprobs) if self.token_logprobs else 0.0

    @property
    def mean_logprob(self) -> float:
        return sum(self.token_logprobs) / len(self.token_logprobs) if self.token_logprobs else 0.0


class ChatModel(Protocol):
    def complete(self, messages: list[dict]) -> Completion: ...
