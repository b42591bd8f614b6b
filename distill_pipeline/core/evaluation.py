"""Evaluation: student vs teacher on the held-out slice, the routing sweep and the promotion gate.

Everything here is pure: the evaluate asset runs the models, turns each held-out
example into an `ExampleRecord`, and hands the records to `summarise` and `gate`.

How the routed system is costed (the router in `distill_pipeline.routing`):
- a call of a teacher-only intent goes straight to the teacher: teacher cost and
  teacher TTFT only;
- any other call runs the student first, with logprobs. Below the threshold it
  is sent on to the teacher, so it pays both models. The router streams the
  student and stops it at the token that takes its running confidence below the
  threshold, so the call's first token arrives after that deciding token plus the
  teacher's TTFT (after the student's whole answer when it was not timed token by
  token, or when only the whole answer decides).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from distill_pipeline.core.chat import Completion
from distill_pipeline.core.fields import (
    CONFIDENCE_SIGNALS,
    FieldRules,
    all_structured_right,
    auroc,
    confidence,
    confidence_steps,
    field_scores,
    mean_field_score,
    stop_ms,
)
from distill_pipeline.core.graders import Grader, LlmJudgeGrader, Verdict, grade_trace, passes
from distill_pipeline.core.metrics import flatten_fields, parse_answer, task_score
from distill_pipeline.core.taskspec import Price, TaskSpec
from distill_pipeline.core.traces import TraceRow, content_hash

# Confidence over the structured fields sits close to 0 for a trained student (LOCAL-STUDENT.md), so the sweep is
# fine near 0.
DEFAULT_THRESHOLDS: tuple[float, ...] = (-0.05, -0.1, -0.15, -0.25, -0.5, -0.75, -1.0, -1.5, -2.0, -2.5, -3.0, -4.0,
                                         -5.0)

DEFAULT_SIGNAL = "structured_fields"

# Scores and costs are compared with this slack so that 0.98 >= 1.0 - 0.02 holds in floating point.
EPSILON = 1e-9


@dataclass(frozen=True)
class ExampleRecord:
    """One held-out example, answered by the student, the teacher and (optionally) the base model."""

    example_id: str
    intent: str
    student_score: float
    teacher_score: float
    student_min_logprob: float
    student_ttft_ms: float
    student_latency_ms: float
    teacher_ttft_ms: float
    teacher_latency_ms: float
    student_cost: float  # per call, in the task spec's currency
    teacher_cost: float
    student_schema_pass: bool = True  # the student's answer is valid JSON of the output contract
    student_grounded_pass: bool = True  # every code / date / time / name is grounded in the request
    base_score: float | None = None
    student_prompt_tokens: int = 0
    student_completion_tokens: int = 0
    teacher_prompt_tokens: int = 0
    teacher_completion_tokens: int = 0
    student_failed_graders: tuple[str, ...] = ()  # names of the graders the student's answer failed
    student_passes_graders: bool = True  # the task's pass rule, as applied to the teacher's traces
    # The routing signal (fields.confidence: the least likely token of the structured values); None: the whole
    # answer's minimum logprob stands in.
    student_confidence: float | None = None
    # Per answer field, the score under the task's field rules (empty for free-text tasks)
    student_fields: dict[str, float] = field(default_factory=dict)
    teacher_fields: dict[str, float] = field(default_factory=dict)
    base_fields: dict[str, float] | None = None
    # every structured (exact-scored) field right; None for free-text tasks
    student_structured_right: bool | None = None
    teacher_structured_right: bool | None = None
    base_structured_right: bool | None = None
    # mean score over the structured fields alone; None for free-text tasks
    student_structured_accuracy: float | None = None
    teacher_structured_accuracy: float | None = None
    student_answer: str = ""
    teacher_answer: str = ""
    # per confidence signal, fields.confidence_steps of the student's answer: when a streaming router stops it
    student_confidence_steps: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        """The structured-field confidence (the whole answer's minimum when it was not measured)."""
        return self.student_min_logprob if self.student_confidence is None else self.student_confidence

    def confidence_for(self, signal: str) -> float:
        """What the router compares with its threshold under a signal (fields.CONFIDENCE_SIGNALS)."""
        return self.student_min_logprob if signal == "whole_answer" else self.confidence

    @property
    def student_hallucinated(self) -> bool:
        """The student's answer would have been filtered out had the teacher written it."""
        return not (self.student_passes_graders and self.student_schema_pass and self.student_grounded_pass)


@dataclass(frozen=True)
class SweepRow:
    """The routed system at one logprob threshold."""

    threshold: float
    teacher_share: float
    blended_score: float
    blended_cost_per_call: float
    blended_ttft_p50_ms: float
    # structured fields under routing (the teacher's where routed to it); None for free-text tasks
    blended_structured_accuracy: float | None = None
    blended_all_structured_right: float | None = None


@dataclass(frozen=True)
class GateConfig:
    tolerance: float = 0.02  # routed score may trail the teacher by this much
    max_teacher_share: float = 0.5  # beyond this the student saves too little to be worth serving
    intent_floor: float = 0.8  # no intent's routed score may fall below this
    min_schema_pass_rate: float = 0.95  # share of student answers that are valid JSON of the contract
    champion_tolerance: float = 0.01  # a challenger may trail the student in force by this much on the task score


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # one sentence per failed check; empty when passed
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {passed, value, limit}

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "checks": dict(self.checks)}


# ---------------------------------------------------------------------------- small figures


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0-100), interpolating linearly between order statistics (numpy's default)."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile p must be between 0 and 100 (got {p})")
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Iterable[float]) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0


def cost_per_call(prompt_tokens: int, completion_tokens: int, price: Price | Mapping[str, Any],
                  cached_tokens: int = 0) -> float:
    """What one call costs, from its token usage and a price in USD per 1M tokens: the cached prompt tokens at
    the cached-input price (when the price has one), the other prompt tokens at the input price, the completion
    tokens at the output price."""
    if isinstance(price, Mapping):
        cached_input = price.get("cached_input")
        price = Price(float(price["input"]), float(price["output"]),
                      None if cached_input is None else float(cached_input))
    return price.cost(prompt_tokens, completion_tokens, cached_tokens)


# ---------------------------------------------------------------------------- records

SCHEMA_GRADERS = frozenset({"json_schema"})
GROUNDING_GRADERS = frozenset({"grounded", "code_set"})


def with_answer(trace: TraceRow, text: str) -> TraceRow:
    """The trace as if `text` had been the answer (content hash recomputed, so judge caches stay apart)."""
    response = {"role": "assistant", "content": text}
    return replace(trace, response_message=response, content_hash=content_hash(trace.request_messages, response))


def reference_answer(trace: TraceRow) -> dict[str, Any] | str:
    """What answers are scored against: the trace's reference when it has one, else the teacher's answer."""
    if trace.reference is not None:
        return trace.reference
    return parse_answer(trace.answer_text) or trace.answer_text


def answer_fields(task: TaskSpec, trace: TraceRow, text: str) -> dict[str, float]:
    """Per answer field, its score under the task's field rules; empty when the reference is free text."""
    reference = reference_answer(trace)
    if not isinstance(reference, Mapping):
        return {}
    return field_scores(parse_answer(text), reference, task.field_rules)


def answer_score(task: TaskSpec, trace: TraceRow, text: str, graders: Sequence[Grader] = ()) -> float:
    """The task metric of one answer to the trace's request; metric `judge` asks the llm_judge grader."""
    if task.metric == "fields":
        reference = reference_answer(trace)
        if isinstance(reference, Mapping):
            return mean_field_score(field_scores(parse_answer(text), reference, task.field_rules))
        return task_score("field_f1", text, reference)
    if task.metric == "judge":
        judge = next((g for g in graders if isinstance(g, LlmJudgeGrader)), None)
        if judge is None:
            raise ValueError("the task metric is 'judge' but no llm_judge grader was given")
        return judge.grade(with_answer(trace, text)).score
    return task_score(task.metric, text, reference_answer(trace))


def _all_passed(verdicts: Sequence[Verdict], graders: Sequence[Grader], types: frozenset[str]) -> bool:
    kinds = {g.name: g.type for g in graders}
    return all(v.passed for v in verdicts if not v.skipped and kinds.get(v.grader) in types)


def build_record(
    trace: TraceRow,
    *,
    student: Completion,
    teacher: Completion,
    task: TaskSpec,
    graders: Sequence[Grader],
    base: Completion | None = None,
) -> ExampleRecord:
    """One held-out trace, answered by the student, the teacher (and the base model), scored and costed.

    The student's answer goes through the same graders that filtered the teacher's traces.
    """
    verdicts = grade_trace(graders, with_answer(trace, student.text))
    rules = task.field_rules
    student_fields = answer_fields(task, trace, student.text)
    teacher_fields = answer_fields(task, trace, teacher.text)
    base_fields = answer_fields(task, trace, base.text) if base is not None else None
    structured = bool(student_fields)
    return ExampleRecord(
        example_id=trace.completion_id,
        intent=trace.intent,
        student_score=answer_score(task, trace, student.text, graders),
        teacher_score=answer_score(task, trace, teacher.text, graders),
        base_score=answer_score(task, trace, base.text, graders) if base is not None else None,
        student_min_logprob=student.min_logprob,
        student_ttft_ms=student.ttft_ms,
        student_latency_ms=student.latency_ms,
        teacher_ttft_ms=teacher.ttft_ms,
        teacher_latency_ms=teacher.latency_ms,
        student_cost=cost_per_call(student.prompt_tokens, student.completion_tokens, task.student_price,
                                   cached_tokens=student.cached_tokens),  # 0 unless its server reports a cache hit
        teacher_cost=cost_per_call(teacher.prompt_tokens, teacher.completion_tokens, task.teacher_price,
                                   cached_tokens=trace.cached_tokens),  # as the captured trace was billed
        student_schema_pass=_all_passed(verdicts, graders, SCHEMA_GRADERS),
        student_grounded_pass=_all_passed(verdicts, graders, GROUNDING_GRADERS),
        student_passes_graders=passes(verdicts, task.pass_rule),
        student_failed_graders=tuple(v.grader for v in verdicts if not v.passed and not v.skipped),
        student_prompt_tokens=student.prompt_tokens,
        student_completion_tokens=student.completion_tokens,
        teacher_prompt_tokens=teacher.prompt_tokens,
        teacher_completion_tokens=teacher.completion_tokens,
        student_confidence=confidence(student.text, student.token_logprobs, student.token_offsets, rules),
        student_confidence_steps={signal: tuple(confidence_steps(student.text, student.token_logprobs,
                                                                 student.token_offsets, student.token_times_ms,
                                                                 rules, signal))
                                  for signal in CONFIDENCE_SIGNALS},
        student_fields=student_fields,
        teacher_fields=teacher_fields,
        base_fields=base_fields,
        student_structured_right=all_structured_right(student_fields, rules) if structured else None,
        teacher_structured_right=all_structured_right(teacher_fields, rules) if structured else None,
        base_structured_right=(all_structured_right(base_fields, rules) if structured and base_fields is not None
                               else None),
        student_structured_accuracy=structured_accuracy(student_fields, rules) if structured else None,
        teacher_structured_accuracy=structured_accuracy(teacher_fields, rules) if structured else None,
        student_answer=student.text,
        teacher_answer=teacher.text,
    )


def structured_accuracy(scores: Mapping[str, float], rules: FieldRules) -> float:
    structured = [score for path, score in scores.items() if rules.structured(path)]
    return mean(structured) if structured else 1.0


def build_records(
    traces: Sequence[TraceRow],
    *,
    student: Sequence[Completion],
    teacher: Sequence[Completion],
    task: TaskSpec,
    graders: Sequence[Grader],
    base: Sequence[Completion] | None = None,
) -> list[ExampleRecord]:
    """`build_record` over aligned lists (the asset runs the models, batched, and hands their answers here)."""
    if len(student) != len(traces) or len(teacher) != len(traces) or (base is not None and len(base) != len(traces)):
        raise ValueError(f"answers do not line up with the {len(traces)} traces: student {len(student)}, "
                         f"teacher {len(teacher)}, base {len(base) if base is not None else '-'}")
    return [build_record(t, student=s, teacher=r, task=task, graders=graders, base=base[i] if base else None)
            for i, (t, s, r) in enumerate(zip(traces, student, teacher, strict=True))]


# ---------------------------------------------------------------------------- routing


def routed_to_teacher(record: ExampleRecord, threshold: float, teacher_only_intents: Iterable[str] = (),
                      signal: str = DEFAULT_SIGNAL) -> bool:
    return record.intent in set(teacher_only_intents) or record.confidence_for(signal) < threshold


@dataclass(frozen=True)
class _Call:
    to_teacher: bool
    score: float
    cost: float
    ttft_ms: float
    structured_accuracy: float | None
    structured_right: bool | None


def _routed_call(record: ExampleRecord, threshold: float, teacher_only: set[str], signal: str = DEFAULT_SIGNAL,
                 ) -> _Call:
    """One call under the router: who answered, its score, cost, TTFT and structured fields."""
    if record.intent in teacher_only:
        return _Call(True, record.teacher_score, record.teacher_cost, record.teacher_ttft_ms,
                     record.teacher_structured_accuracy, record.teacher_structured_right)
    if record.confidence_for(signal) < threshold:
        stopped = stop_ms(record.student_confidence_steps.get(signal, ()), threshold)  # early fallback
        ttft = (record.student_latency_ms if stopped is None else stopped) + record.teacher_ttft_ms
        return _Call(True, record.teacher_score, record.student_cost + record.teacher_cost, ttft,
                     record.teacher_structured_accuracy, record.teacher_structured_right)
    return _Call(False, record.student_score, record.student_cost, record.student_ttft_ms,
                 record.student_structured_accuracy, record.student_structured_right)


def _mean_or_none(values: Iterable[float | bool | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return mean(known) if known else None


def routed_score(records: Sequence[ExampleRecord], threshold: float, teacher_only_intents: Iterable[str] = (),
                 signal: str = DEFAULT_SIGNAL) -> float:
    """Mean task score of the routed system: the teacher's score where routed to it, else the student's."""
    teacher_only = set(teacher_only_intents)
    return mean(_routed_call(r, threshold, teacher_only, signal).score for r in records)


def routing_sweep(
    records: Sequence[ExampleRecord],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    teacher_only_intents: Iterable[str] = (),
    signal: str = DEFAULT_SIGNAL,
) -> list[SweepRow]:
    """The routed system's share, score, cost and TTFT at each threshold (confidence < threshold -> teacher)."""
    teacher_only = set(teacher_only_intents)
    rows = []
    for threshold in thresholds:
        calls = [_routed_call(r, threshold, teacher_only, signal) for r in records]
        rows.append(SweepRow(
            threshold=float(threshold),
            teacher_share=mean(c.to_teacher for c in calls),
            blended_score=mean(c.score for c in calls),
            blended_cost_per_call=mean(c.cost for c in calls),
            blended_ttft_p50_ms=percentile([c.ttft_ms for c in calls], 50) if calls else 0.0,
            blended_structured_accuracy=_mean_or_none(c.structured_accuracy for c in calls),
            blended_all_structured_right=_mean_or_none(c.structured_right for c in calls),
        ))
    return rows


def recommend_threshold(sweep: Sequence[SweepRow], teacher_score: float, tolerance: float,
                        min_structured_accuracy: float | None = None) -> float | None:
    """The cheapest threshold whose blended score is within `tolerance` of the teacher; None if none is.

    With `min_structured_accuracy`, the routed structured fields must also reach it (where the sweep has them).
    Ties in cost go to the lower teacher share; thresholds that route identically go to
    the highest (least negative) one, the safer choice on answers the sweep has not seen.
    """
    qualifying = [row for row in sweep if row.blended_score >= teacher_score - tolerance - EPSILON
                  and (min_structured_accuracy is None or row.blended_structured_accuracy is None
                       or row.blended_structured_accuracy >= min_structured_accuracy - EPSILON)]
    if not qualifying:
        return None
    best = min(qualifying, key=lambda row: (round(row.blended_cost_per_call, 12), round(row.teacher_share, 12),
                                            -row.threshold))
    return best.threshold


def sweep_row(sweep: Sequence[SweepRow], threshold: float) -> SweepRow:
    for row in sweep:
        if math.isclose(row.threshold, threshold):
            return row
    raise KeyError(f"threshold {threshold} is not in the sweep ({', '.join(str(r.threshold) for r in sweep)})")


# ---------------------------------------------------------------------------- the summary


def _intent_table(
    records: Sequence[ExampleRecord],
    threshold: float | None,
    teacher_only: set[str],
    rare_intent_share: float,
    signal: str = DEFAULT_SIGNAL,
) -> dict[str, dict[str, Any]]:
    by_intent: dict[str, list[ExampleRecord]] = {}
    for record in records:
        by_intent.setdefault(record.intent, []).append(record)
    table = {}
    for intent in sorted(by_intent):
        group = by_intent[intent]
        share = len(group) / len(records)
        base = [r.base_score for r in group if r.base_score is not None]
        table[intent] = {
            "examples": len(group),
            "share": share,
            "rare": share < rare_intent_share,
            "teacher_only": intent in teacher_only,
            "student_score": mean(r.student_score for r in group),
            "teacher_score": mean(r.teacher_score for r in group),
            "base_score": mean(base) if base else None,
            "routed_score": routed_score(group, threshold, teacher_only, signal) if threshold is not None else None,
            "teacher_share": (mean(routed_to_teacher(r, threshold, teacher_only, signal) for r in group)
                              if threshold is not None else None),
            "student_hallucination_rate": mean(r.student_hallucinated for r in group),
        }
    return table


def field_table(records: Sequence[ExampleRecord], rules: FieldRules) -> dict[str, dict[str, Any]]:
    """Per answer field: its rule and the mean score of the student, the teacher and the base model."""
    paths = sorted({path for r in records for path in r.student_fields})
    table = {}
    for path in paths:
        base = [r.base_fields[path] for r in records if r.base_fields is not None and path in r.base_fields]
        table[path] = {
            "rule": rules.rule(path),
            "student": mean(r.student_fields.get(path, 0.0) for r in records if r.student_fields),
            "teacher": mean(r.teacher_fields.get(path, 0.0) for r in records if r.teacher_fields),
            "base": mean(base) if base else None,
        }
    return table


def _field_value(text: str, path: str) -> Any:
    parsed = parse_answer(text)
    if parsed is None:
        return f"(not a JSON object) {text[:120]}"
    value = flatten_fields(parsed).get(path, "(missing)")
    return list(value) if isinstance(value, tuple) else value


def worst_fields(records: Sequence[ExampleRecord], table: Mapping[str, Mapping[str, Any]], n: int = 5,
                 examples: int = 3) -> list[dict[str, Any]]:
    """The n fields the student gets wrong most, each with a few wrong answers beside the teacher's."""
    ranked = sorted((path for path, row in table.items() if row["student"] < 1.0),
                    key=lambda path: (table[path]["student"], path))[:n]
    out = []
    for path in ranked:
        wrong = [r for r in records if r.student_fields.get(path, 0.0) < 1.0][:examples]
        out.append({
            "field": path,
            "rule": table[path]["rule"],
            "student": table[path]["student"],
            "wrong": sum(r.student_fields.get(path, 0.0) < 1.0 for r in records if r.student_fields),
            "examples": [{"example_id": r.example_id, "student": _field_value(r.student_answer, path),
                          "teacher": _field_value(r.teacher_answer, path)} for r in wrong],
        })
    return out


def routing_auroc(records: Sequence[ExampleRecord], signal: str = DEFAULT_SIGNAL) -> float | None:
    """AUROC of low confidence against "some structured field is wrong" (None without both kinds of answer)."""
    judged = [r for r in records if r.student_structured_right is not None]
    return auroc([r.confidence_for(signal) for r in judged if not r.student_structured_right],
                 [r.confidence_for(signal) for r in judged if r.student_structured_right])


def choose_signal(records: Sequence[ExampleRecord]) -> tuple[str, dict[str, float | None]]:
    """The signal that best separates answers with a wrong structured field (its AUROC), and every signal's AUROC.

    Ties and an unmeasurable AUROC (no wrong answer, or no right one) keep the structured-field signal.
    """
    aurocs = {signal: routing_auroc(records, signal) for signal in CONFIDENCE_SIGNALS}
    best = max(CONFIDENCE_SIGNALS, key=lambda s: (aurocs[s] if aurocs[s] is not None else -1.0,
                                                  s == DEFAULT_SIGNAL))
    return (best if aurocs[best] is not None else DEFAULT_SIGNAL), aurocs


def champion_summary(records: Sequence[ExampleRecord], student: str, rules: FieldRules) -> dict[str, Any]:
    """The student in force, scored on the same holdout: what a challenger must not fall below."""
    return {
        "student": student,
        "score": mean(r.student_score for r in records),
        "all_structured_right": _mean_or_none(r.student_structured_right for r in records),
        "structured_accuracy": _mean_or_none(r.student_structured_accuracy for r in records),
        "schema_pass_rate": mean(r.student_schema_pass for r in records),
        "field_accuracy": {path: row["student"] for path, row in field_table(records, rules).items()},
        "examples": len(records),
    }


def _latency(values: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


def summarise(
    records: Sequence[ExampleRecord],
    *,
    teacher_only_intents: Iterable[str] = (),
    rare_intent_share: float = 0.05,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    tolerance: float = 0.02,
    general_scores: Sequence[tuple[float, float]] = (),
    rules: FieldRules | None = None,
    structured_ratio: float = 0.99,
    champion: Mapping[str, Any] | None = None,
    prices: Mapping[str, Any] | None = None,  # the price table the costs used (TaskSpec.price_table), reported
) -> dict[str, Any]:
    """Every figure of the evaluation as one JSON-able dict.

    `general_scores` holds (base score, student score) per general-purpose holdout example:
    the forgetting check. The recommended threshold must also keep the routed structured fields at
    `structured_ratio` of the teacher's. `champion` is `champion_summary` of the student in force.
    The CONTRACTS.md headline keys sit at the top level.
    """
    if not records:
        raise ValueError("no held-out examples were evaluated; the eval holdout is empty")
    teacher_only = set(teacher_only_intents)
    student_score = mean(r.student_score for r in records)
    teacher_score = mean(r.teacher_score for r in records)
    base = [r.base_score for r in records if r.base_score is not None]
    rules = rules or FieldRules()
    signal, aurocs = choose_signal(records)
    sweep = routing_sweep(records, thresholds, teacher_only, signal)
    teacher_structured = _mean_or_none(r.teacher_structured_accuracy for r in records)
    threshold = recommend_threshold(sweep, teacher_score, tolerance,
                                    structured_ratio * teacher_structured if teacher_structured is not None else None)
    chosen = sweep_row(sweep, threshold) if threshold is not None else None
    student_cost = mean(r.student_cost for r in records)
    teacher_cost = mean(r.teacher_cost for r in records)
    fields = field_table(records, rules)
    failed_graders: dict[str, int] = {}
    for record in records:
        for name in record.student_failed_graders:
            failed_graders[name] = failed_graders.get(name, 0) + 1
    forgetting = None
    if general_scores:
        general_base = mean(b for b, _ in general_scores)
        general_student = mean(s for _, s in general_scores)
        forgetting = {"examples": len(general_scores), "base_score": general_base,
                      "student_score": general_student, "delta": general_student - general_base}
    return {
        # CONTRACTS.md: student_eval_report metadata
        "base_score": mean(base) if base else None,
        "student_score": student_score,
        "teacher_score": teacher_score,
        "routed_score": chosen.blended_score if chosen else None,
        "recommended_threshold": threshold,
        "teacher_share": chosen.teacher_share if chosen else None,
        "student_ttft_p50_ms": percentile([r.student_ttft_ms for r in records], 50),
        "teacher_ttft_p50_ms": percentile([r.teacher_ttft_ms for r in records], 50),
        "student_cost_per_call": student_cost,
        "teacher_cost_per_call": teacher_cost,
        # the rest of the report
        "examples": len(records),
        "tolerance": tolerance,
        "teacher_only_intents": sorted(teacher_only),
        "rare_intent_share": rare_intent_share,
        "routed_cost_per_call": chosen.blended_cost_per_call if chosen else None,
        "routed_ttft_p50_ms": chosen.blended_ttft_p50_ms if chosen else None,
        "cost_ratio": student_cost / teacher_cost if teacher_cost else None,  # student / teacher
        # field by field (CONTRACTS.md: field_accuracy, all_structured_right, routing_auroc, champion_score)
        "field_rules": rules.to_dict(),
        "field_accuracy": fields,
        "worst_fields": worst_fields(records, fields),
        "all_structured_right": _mean_or_none(r.student_structured_right for r in records),
        "all_structured_right_by_model": {
            "student": _mean_or_none(r.student_structured_right for r in records),
            "teacher": _mean_or_none(r.teacher_structured_right for r in records),
            "base": _mean_or_none(r.base_structured_right for r in records if r.base_score is not None),
        },
        "structured_accuracy": {
            "student": _mean_or_none(r.student_structured_accuracy for r in records),
            "teacher": teacher_structured,
            "routed": chosen.blended_structured_accuracy if chosen else None,
            "required_ratio": structured_ratio,
        },
        "routed_all_structured_right": chosen.blended_all_structured_right if chosen else None,
        "routing_signal": signal,  # chosen by measurement: the higher AUROC
        "routing_auroc": aurocs[signal],
        "routing_auroc_by_signal": aurocs,
        "champion": dict(champion) if champion else None,
        "champion_score": champion["score"] if champion else None,
        "intents": _intent_table(records, threshold, teacher_only, rare_intent_share, signal),
        "student_schema_pass_rate": mean(r.student_schema_pass for r in records),
        "student_grounded_pass_rate": mean(r.student_grounded_pass for r in records),
        "student_hallucination_rate": mean(r.student_hallucinated for r in records),
        "student_failed_graders": dict(sorted(failed_graders.items())),
        "forgetting": forgetting,
        "latency": {
            "student_ttft_ms": _latency([r.student_ttft_ms for r in records]),
            "teacher_ttft_ms": _latency([r.teacher_ttft_ms for r in records]),
            "student_latency_ms": _latency([r.student_latency_ms for r in records]),
            "teacher_latency_ms": _latency([r.teacher_latency_ms for r in records]),
        },
        "sweep": [asdict(row) for row in sweep],
        "prices": dict(prices) if prices is not None else None,
    }


# ---------------------------------------------------------------------------- the gate


def _check(checks: dict[str, dict[str, Any]], reasons: list[str], name: str, passed: bool, value: Any, limit: Any,
           reason: str) -> None:
    checks[name] = {"passed": bool(passed), "value": value, "limit": limit}
    if not passed:
        reasons.append(reason)


def gate(report: Mapping[str, Any], config: GateConfig | None = None) -> GateResult:
    """Judge the routed system at the recommended threshold; the student-alone score is reported beside it."""
    config = config or GateConfig()
    checks: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    teacher = float(report["teacher_score"])
    threshold = report.get("recommended_threshold")
    floor = teacher - config.tolerance
    if threshold is None:
        _check(checks, reasons, "recommended_threshold", False, None, None,
               f"no threshold in the sweep brings the routed score within {config.tolerance:.3f} of the teacher "
               f"({teacher:.3f}); the student is not good enough to serve even with a fallback")
    else:
        routed = float(report["routed_score"])
        share = float(report["teacher_share"])
        _check(checks, reasons, "routed_score", routed >= floor - EPSILON, routed, floor,
               f"routed score {routed:.3f} is below the teacher's {teacher:.3f} minus tolerance "
               f"{config.tolerance:.3f}")
        _check(checks, reasons, "teacher_share", share <= config.max_teacher_share + EPSILON, share,
               config.max_teacher_share,
               f"the router sends {share:.0%} of calls to the teacher at threshold {threshold} "
               f"(at most {config.max_teacher_share:.0%} allowed)")
        low = {intent: row["routed_score"] for intent, row in report.get("intents", {}).items()
               if row.get("routed_score") is not None and row["routed_score"] < config.intent_floor - EPSILON}
        worst = min(low.values()) if low else min(
            (row["routed_score"] for row in report.get("intents", {}).values() if row.get("routed_score") is not None),
            default=None)
        _check(checks, reasons, "intent_floor", not low, worst, config.intent_floor,
               "routed score below the floor of {:.2f} for: {}".format(
                   config.intent_floor, ", ".join(f"{i} ({s:.3f})" for i, s in sorted(low.items()))))
    schema = float(report["student_schema_pass_rate"])
    _check(checks, reasons, "student_schema_pass_rate", schema >= config.min_schema_pass_rate - EPSILON, schema,
           config.min_schema_pass_rate,
           f"only {schema:.1%} of student answers are valid JSON of the output contract "
           f"(at least {config.min_schema_pass_rate:.0%} required)")
    champion = report.get("champion_score")
    if champion is not None:
        challenger = float(report["student_score"])
        limit = float(champion) - config.champion_tolerance
        _check(checks, reasons, "champion", challenger >= limit - EPSILON, challenger, limit,
               f"the new student scores {challenger:.3f}, below the student in force "
               f"({report['champion']['student']}: {float(champion):.3f}) minus tolerance "
               f"{config.champion_tolerance:.3f}; the champion keeps serving")
    structured = report.get("structured_accuracy") or {}
    if threshold is not None and structured.get("routed") is not None and structured.get("teacher") is not None:
        floor_s = float(structured["teacher"]) * float(structured.get("required_ratio", 0.99))
        routed_s = float(structured["routed"])
        _check(checks, reasons, "routed_structured_accuracy", routed_s >= floor_s - EPSILON, routed_s, floor_s,
               f"routed structured-field accuracy {routed_s:.3f} is below {floor_s:.3f} "
               f"({float(structured.get('required_ratio', 0.99)):.0%} of the teacher's)")
    student = float(report["student_score"])
    checks["student_alone"] = {"passed": student >= floor - EPSILON, "value": student, "limit": floor,
                               "informational": True}
    return GateResult(passed=not reasons, reasons=reasons, checks=checks)
