"""Curate: every grader's verdict per trace, and the traces the teacher got right."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from distill_pipeline.core.graders import Grader, Verdict, passes
from distill_pipeline.core.taskspec import PassRule
from distill_pipeline.core.traces import TraceRow, full_gc_paused


@dataclass(frozen=True)
class EvalRow:
    """One trace x one grader: the row of `trace_evals`."""

    completion_id: str
    content_hash: str
    intent: str
    grader: str
    grader_type: str
    grader_version: str
    required: bool
    passed: bool
    skipped: bool
    score: float
    reason: str

    def verdict(self) -> Verdict:
        return Verdict(self.grader, self.grader_version, self.passed, self.score, self.reason, self.skipped,
                       self.required)


EVAL_FIELDS = ("completion_id", "content_hash", "intent", "grader", "grader_type", "grader_version", "required",
               "passed", "skipped", "score", "reason")


def evaluate(graders: Sequence[Grader], traces: Iterable[TraceRow]) -> list[EvalRow]:
    rows = []
    with full_gc_paused():
        for trace in traces:
            for grader in graders:
                v = grader.grade(trace)
                rows.append(EvalRow(trace.completion_id, trace.content_hash, trace.intent, grader.name, grader.type,
                                    v.version, v.required, v.passed, v.skipped, float(v.score), v.reason))
    return rows


def eval_columns(rows: Sequence[EvalRow]) -> dict[str, list[Any]]:
    """The rows as columns, in EVAL_FIELDS order (what the trace_evals table is built from)."""
    with full_gc_paused():
        return {name: [getattr(row, name) for row in rows] for name in EVAL_FIELDS}


def passing_ids_from_columns(columns: Mapping[str, Sequence[Any]], rule: PassRule) -> set[str]:
    """`passing_ids` over stored verdict columns (completion_id, required, passed, skipped, score), without
    building a row object per verdict: skipped verdicts never count, every counted required one must pass,
    and under min_score the mean counted score must reach it."""
    failed: set[str] = set()
    totals: dict[str, list[float]] = {}
    for cid, required, passed, skipped, score in zip(columns["completion_id"], columns["required"],
                                                     columns["passed"], columns["skipped"], columns["score"],
                                                     strict=True):
        entry = totals.get(cid)
        if entry is None:
            entry = totals[cid] = [0.0, 0.0]
        if skipped:
            continue
        if required and not passed:
            failed.add(cid)
        entry[0] += score
        entry[1] += 1
    keep = set(totals) - failed
    if rule.kind == "min_score":
        floor = rule.min_score or 0.0
        keep = {cid for cid in keep if not totals[cid][1] or totals[cid][0] / totals[cid][1] >= floor}
    return keep


def verdicts_by_trace(rows: Iterable[EvalRow]) -> dict[str, list[Verdict]]:
    grouped: dict[str, list[Verdict]] = defaultdict(list)
    for row in rows:
        grouped[row.completion_id].append(row.verdict())
    return grouped


def _rows_by_trace(rows: Iterable[EvalRow]) -> dict[str, list[EvalRow]]:
    """Like verdicts_by_trace without building a Verdict per row: `passes` reads only skipped, passed,
    required and score, which an EvalRow carries under the same names."""
    grouped: dict[str, list[EvalRow]] = defaultdict(list)
    with full_gc_paused():
        for row in rows:
            grouped[row.completion_id].append(row)
    return grouped


def passing_ids(rows: Iterable[EvalRow], rule: PassRule) -> set[str]:
    return {cid for cid, verdicts in _rows_by_trace(rows).items() if passes(verdicts, rule)}


def select_passing(traces: Sequence[TraceRow], rows: Iterable[EvalRow], rule: PassRule) -> list[TraceRow]:
    """The traces whose verdicts satisfy the pass rule, in their original order."""
    keep = passing_ids(rows, rule)
    return [t for t in traces if t.completion_id in keep]


def pass_rates(rows: Sequence[EvalRow], rule: PassRule) -> dict[str, float]:
    """Overall (the pass rule) and per grader (skipped verdicts not counted)."""
    by_trace = _rows_by_trace(rows)
    rates: dict[str, float] = {"overall": (sum(passes(v, rule) for v in by_trace.values())
                                           / len(by_trace)) if by_trace else 0.0}
    per: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        if not row.skipped:
            per[row.grader].append(row.passed)
    for grader, outcomes in sorted(per.items()):
        rates[grader] = sum(outcomes) / len(outcomes)
    return rates


def failure_kind(row: EvalRow) -> str:
    """A reason without its specific values, so failures group by kind (e.g. 'grounded: follow_up.date')."""
    head = row.reason.split(":")[0] if row.grader_type == "json_schema" else row.reason.split(" ")[0]
    head = head.strip("'\"") if head else ""
    if row.grader_type == "json_schema" and not head.startswith(("invalid", "the answer")):
        head = "schema violation"
    return f"{row.grader}: {head}"[:80]


def failures(rows: Iterable[EvalRow]) -> tuple[Counter, dict[str, EvalRow]]:
    """Failure counts by kind and the first example of each kind."""
    counts: Counter = Counter()
    examples: dict[str, EvalRow] = {}
    for row in rows:
        if row.passed or row.skipped:
            continue
        kind = failure_kind(row)
        counts[kind] += 1
        examples.setdefault(kind, row)
    return counts, examples
