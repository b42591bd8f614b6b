"""Latency as a caller feels it: the student served one request at a time, and the router's early fallback.

A voice agent waits for the first token of one answer, so the student's TTFT is measured one request at a time,
streaming, after a warm-up (batch figures measure throughput, not this). The router streams the student and
stops it the moment its running confidence (`fields.RunningConfidence`) falls below the threshold, so a routed
call that falls back waits for the deciding token, not the whole student answer, and then for the teacher's
first token. Everything here is pure: the per-token times come from the evaluation's streamed answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from distill_pipeline.core.chat import Completion
from distill_pipeline.core.evaluation import percentile
from distill_pipeline.core.fields import FieldRules, confidence, confidence_steps, stop_ms


@dataclass(frozen=True)
class ServedCall:
    """One held-out request, the student timed alone and streaming, beside the teacher's recorded timing."""

    intent: str
    student_ttft_ms: float
    student_latency_ms: float
    confidence: float  # the answer's routing confidence, as the router reads it from the whole answer
    steps: tuple[tuple[float, float], ...]  # confidence_steps of the streamed answer
    teacher_ttft_ms: float

    @classmethod
    def of(cls, intent: str, student: Completion, teacher_ttft_ms: float, rules: FieldRules,
           signal: str = "structured_fields") -> ServedCall:
        return cls(
            intent=intent, student_ttft_ms=student.ttft_ms, student_latency_ms=student.latency_ms,
            confidence=confidence(student.text, student.token_logprobs, student.token_offsets, rules, signal),
            steps=tuple(confidence_steps(student.text, student.token_logprobs, student.token_offsets,
                                         student.token_times_ms, rules, signal)),
            teacher_ttft_ms=teacher_ttft_ms)


def routed_ttft_ms(call: ServedCall, threshold: float, teacher_only: bool = False) -> tuple[float, bool]:
    """The routed call's time to first token, and whether the teacher answered it.

    Teacher-only: the teacher's TTFT. A confident student answer: the student's TTFT. A fallback: the time to
    the deciding token (the whole answer when no single token decides, e.g. a broken answer only known at its
    end) plus the teacher's TTFT.
    """
    if teacher_only:
        return call.teacher_ttft_ms, True
    if call.confidence >= threshold:
        return call.student_ttft_ms, False
    stopped = stop_ms(call.steps, threshold)
    return (call.student_latency_ms if stopped is None else stopped) + call.teacher_ttft_ms, True


def _p(values: Sequence[float], p: float) -> float | None:
    return percentile(values, p) if values else None


def served_latency(calls: Sequence[ServedCall], threshold: float | None, teacher_only_intents: Iterable[str] = (),
                   teacher_ttft_p50_ms: float | None = None, cost_ratio: float | None = None) -> dict[str, Any]:
    """The report's latency-as-served figures (CONTRACTS.md keys at the top level).

    `teacher_ttft_p50_ms` is the teacher's over the whole holdout (the ratio's denominator; by default the
    p50 of these calls). Without a threshold (no routed system qualifies) the routed figures are None.
    """
    teacher_only = set(teacher_only_intents)
    ttft = [c.student_ttft_ms for c in calls]
    total = [c.student_latency_ms for c in calls]
    teacher = teacher_ttft_p50_ms if teacher_ttft_p50_ms is not None else _p([c.teacher_ttft_ms for c in calls], 50)
    routed = ([routed_ttft_ms(c, threshold, c.intent in teacher_only) for c in calls]
              if threshold is not None else [])
    fallbacks = [ms for (ms, to_teacher), c in zip(routed, calls, strict=False)
                 if to_teacher and c.intent not in teacher_only]
    student_p50 = _p(ttft, 50)
    return {
        "student_ttft_single_p50_ms": student_p50,
        "student_ttft_single_p95_ms": _p(ttft, 95),
        "student_latency_single_p50_ms": _p(total, 50),
        "student_latency_single_p95_ms": _p(total, 95),
        "routed_ttft_p50_ms": _p([ms for ms, _ in routed], 50),
        "routed_ttft_p95_ms": _p([ms for ms, _ in routed], 95),
        "routed_fallback_ttft_p50_ms": _p(fallbacks, 50),  # the calls the student handed over, alone
        "ttft_ratio": student_p50 / teacher if student_p50 is not None and teacher else None,
        "cost_ratio": cost_ratio,
        "served": {"requests": len(calls), "threshold": threshold,
                   "to_teacher": sum(to_teacher for _, to_teacher in routed),
                   "student_ttft_ms": ttft, "routed_ttft_ms": [ms for ms, _ in routed]},
    }


def served_summary(summary: Mapping[str, Any], calls: Sequence[tuple[str, Completion, float]], rules: FieldRules,
                   ) -> dict[str, Any]:
    """`served_latency` for (intent, student's streamed answer, teacher's recorded TTFT) per request, at the
    summary's recommended threshold and routing signal; ratios against its teacher p50 and costs."""
    signal = summary.get("routing_signal") or "structured_fields"
    served = [ServedCall.of(intent, student, teacher_ttft, rules, signal) for intent, student, teacher_ttft in calls]
    return served_latency(served, summary.get("recommended_threshold"), summary.get("teacher_only_intents") or (),
                          teacher_ttft_p50_ms=summary.get("teacher_ttft_p50_ms"),
                          cost_ratio=summary.get("cost_ratio"))
