"""Task metrics: how close an answer is to a reference, field by field.

Answers are JSON objects; a field is a dotted path to a leaf (`soap.plan`,
`follow_up.date`). A list is one field whose value is the set of its items, so
`["I10", "R51.9"]` equals `["R51.9", "I10"]`. A prediction that is not a JSON
object scores 0 on every metric.

Also here: `filter_quality`, the table that says how well the graders separate
the teacher's wrong answers from its right ones on a labelled corpus.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

METRICS = ("field_f1", "exact_match", "judge")

# Longer answers are not parsed: no task answer is this long, and a runaway
# generation must not stall a grader or an evaluation.
MAX_ANSWER_CHARS = 100_000


def parse_answer(text: str) -> dict[str, Any] | None:
    """The answer as a JSON object, or None when it is not one (or is absurdly long)."""
    if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def flatten_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Leaf fields by dotted path; a list becomes a sorted tuple of its distinct items."""
    out: dict[str, Any] = {}
    _flatten(obj, "", out)
    return out


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and (value or not path):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        distinct = {_canonical(item): item for item in value}
        out[path] = tuple(distinct[key] for key in sorted(distinct))
    else:
        out[path] = value


def _canonical(value: Any) -> str:
    """A comparable form: strings normalised (NFC, whitespace), JSON types kept apart (1 != true)."""
    if isinstance(value, str):
        return json.dumps(_normalise_string(value), ensure_ascii=False)
    if isinstance(value, tuple):
        return json.dumps([_canonical(v) for v in value], ensure_ascii=False)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _normalise_string(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _same(a: Any, b: Any) -> bool:
    return _canonical(a) == _canonical(b)


def _excluded(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in prefixes)


def _fields(obj: Mapping[str, Any], exclude_prefixes: Sequence[str]) -> dict[str, Any]:
    return {path: value for path, value in flatten_fields(obj).items() if not _excluded(path, exclude_prefixes)}


def field_f1(pred: Mapping[str, Any], ref: Mapping[str, Any], *, exclude_prefixes: Sequence[str] = ()) -> float:
    """F1 over (field, value) pairs: precision over the prediction's fields, recall over the reference's."""
    pred_fields = _fields(pred, exclude_prefixes)
    ref_fields = _fields(ref, exclude_prefixes)
    if not pred_fields and not ref_fields:
        return 1.0
    matched = sum(1 for path, value in pred_fields.items() if path in ref_fields and _same(value, ref_fields[path]))
    if matched == 0:
        return 0.0
    precision = matched / len(pred_fields)
    recall = matched / len(ref_fields)
    return 2 * precision * recall / (precision + recall)


def field_accuracy(pred: Mapping[str, Any], ref: Mapping[str, Any], exclude_prefixes: Sequence[str] = ()) -> float:
    """Share of the reference's fields that the prediction gets exactly right."""
    ref_fields = _fields(ref, exclude_prefixes)
    if not ref_fields:
        return 1.0 if not _fields(pred, exclude_prefixes) else 0.0
    pred_fields = _fields(pred, exclude_prefixes)
    right = sum(1 for path, value in ref_fields.items() if path in pred_fields and _same(pred_fields[path], value))
    return right / len(ref_fields)


def exact_match(pred: Mapping[str, Any], ref: Mapping[str, Any], exclude_prefixes: Sequence[str] = ()) -> bool:
    """Every field equal and no field missing or extra (list order ignored)."""
    pred_fields = _fields(pred, exclude_prefixes)
    ref_fields = _fields(ref, exclude_prefixes)
    return pred_fields.keys() == ref_fields.keys() and all(_same(pred_fields[p], ref_fields[p]) for p in ref_fields)


def text_f1(pred: str, ref: str) -> float:
    """Token F1 between two free-text answers (case and punctuation ignored)."""
    pred_tokens = _tokens(pred)
    ref_tokens = _tokens(ref)
    if not pred_tokens and not ref_tokens:
        return 1.0
    common: dict[str, int] = {}
    for token in pred_tokens:
        common[token] = common.get(token, 0) + 1
    matched = 0
    for token in ref_tokens:
        if common.get(token, 0) > 0:
            common[token] -= 1
            matched += 1
    if matched == 0:
        return 0.0
    precision, recall = matched / len(pred_tokens), matched / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", unicodedata.normalize("NFC", text).casefold())


def task_score(metric: str, pred_text: str, ref_obj: Mapping[str, Any] | str) -> float:
    """The task metric for one prediction, in [0, 1].

    `ref_obj` is the reference answer: a JSON object for JSON tasks, a string for
    free-text tasks. The `judge` metric is the llm_judge grader's score, not
    computed here.
    """
    if metric == "judge":
        raise ValueError("metric 'judge' is scored by the llm_judge grader; task_score computes field_f1 and "
                         "exact_match only")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if isinstance(ref_obj, str):
        if len(pred_text) > MAX_ANSWER_CHARS:
            return 0.0
        if metric == "exact_match":
            return float(_normalise_string(pred_text) == _normalise_string(ref_obj))
        return text_f1(pred_text, ref_obj)
    pred = parse_answer(pred_text)
    if pred is None:
        return 0.0
    if metric == "exact_match":
        return float(exact_match(pred, ref_obj))
    return field_f1(pred, ref_obj)


# ---------------------------------------------------------------------------
# Filter quality: do the graders remove the teacher's wrong answers and keep the right ones?


def filter_quality(verdict_passed_by_id: Mapping[str, bool], labels: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Removed share of wrong answers (overall and per error kind) and kept share of right ones.

    `verdict_passed_by_id` maps completion id -> whether the trace passed the
    task's pass rule. `labels` are rows of a labelled corpus (`data/sample/labels.jsonl`):
    only `kind == "trace"` rows are graded; the others never reach the graders.
    A labelled trace with no verdict (or no completion id) is listed under
    `ungraded` (as its id, else `file:line`) and is neither removed nor kept, so
    a capture bug cannot flatter the table.
    """
    wrong = {"total": 0, "removed": 0}
    right = {"total": 0, "kept": 0}
    by_kind: dict[str, dict[str, int]] = {}
    ungraded: list[str] = []
    for label in labels:
        if label.get("kind") != "trace":
            continue
        completion_id = label.get("completion_id")
        if not completion_id or completion_id not in verdict_passed_by_id:
            ungraded.append(str(completion_id or f"{label.get('file', '?')}:{label.get('line', '?')}"))
            continue
        passed = bool(verdict_passed_by_id[completion_id])
        if label.get("teacher_correct"):
            right["total"] += 1
            right["kept"] += passed
        else:
            kind = str(label.get("error_kind") or "unlabelled")
            counts = by_kind.setdefault(kind, {"total": 0, "removed": 0})
            counts["total"] += 1
            counts["removed"] += not passed
            wrong["total"] += 1
            wrong["removed"] += not passed
    return {
        "wrong": {**wrong, "removed_share": _share(wrong["removed"], wrong["total"])},
        "right": {**right, "kept_share": _share(right["kept"], right["total"])},
        "by_error_kind": {
            kind: {**counts, "removed_share": _share(counts["removed"], counts["total"])}
            for kind, counts in sorted(by_kind.items())
        },
        "ungraded": sorted(ungraded),
    }


def _share(part: int, whole: int) -> float:
    """part / whole, and 1.0 when there is nothing to count (nothing was missed)."""
    return part / whole if whole else 1.0
