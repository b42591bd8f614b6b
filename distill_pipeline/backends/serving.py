"""Time a chat model as it is served: one request at a time, streamed, after a warm-up.

The evaluation uses this for the student's TTFT and latency as a voice agent would feel them, on the path
the router uses (`stream()` when the model has it: the local student, any OpenAI-compatible endpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from distill_pipeline.core.chat import ChatModel, Completion


def answer_streaming(model: ChatModel, messages: list[dict]) -> Completion:
    """One request, read token by token when the model streams (each token's time recorded), else `complete`."""
    stream = getattr(model, "stream", None)
    if callable(stream):
        return stream(messages).drain()
    return model.complete(messages)


def time_single_requests(model: ChatModel, requests: Sequence[list[dict]], warmup: Sequence[list[dict]] = (),
                         log: Callable[[str], None] | None = None) -> list[Completion]:
    """Each request alone, in turn, after the warm-up requests (answered, not timed): what a caller waits for.

    The warm-up pays the first call's one-off costs (lazy initialisation, kernel selection, a grammar's first
    compilation) that no later caller sees.
    """
    for messages in warmup:
        answer_streaming(model, messages)
    answers = []
    for i, messages in enumerate(requests, 1):
        answers.append(answer_streaming(model, messages))
        if log and (i % 10 == 0 or i == len(requests)):
            log(f"timed {i}/{len(requests)} single requests (last: TTFT {answers[-1].ttft_ms:.0f} ms, "
                f"whole answer {answers[-1].latency_ms:.0f} ms)")
    return answers
