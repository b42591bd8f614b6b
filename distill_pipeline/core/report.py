"""The evaluation report as Markdown: what a reviewer reads before a student is promoted."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from distill_pipeline.core.evaluation import GateResult


def readable(value: Any) -> Any:
    """A figure at the precision a reader needs (the JSON report keeps full precision).

    Scores and shares keep 3 decimals; milliseconds and other figures above 10, 1 decimal; small amounts
    (a cost per call) 3 significant digits.
    """
    if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
        return value
    if value == 0 or abs(value) >= 10:
        return round(value, 1)
    if abs(value) >= 0.01:
        return round(value, 3)
    return float(f"{value:.3g}")


def _score(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.0f} ms"


def _usd(value: Any) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    return f"${value:.6f}" if value < 0.01 else f"${value:,.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _gate_dict(gate_result: GateResult | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if gate_result is None:
        return None
    if isinstance(gate_result, GateResult):
        return gate_result.to_dict()
    return dict(gate_result)


def render_markdown(summary: Mapping[str, Any], gate_result: GateResult | Mapping[str, Any] | None = None,
                    title: str = "Student evaluation") -> str:
    """A readable report of `evaluation.summarise`'s figures and the gate's verdict."""
    out: list[str] = [f"# {title}", ""]
    gate = _gate_dict(gate_result)
    threshold = summary.get("recommended_threshold")
    if gate is not None:
        out += [f"**Gate: {'PASSED' if gate['passed'] else 'FAILED'}**"
                + ("" if gate["passed"] else f" ({len(gate['reasons'])} check(s) failed)"), ""]
    out += [f"{summary.get('examples', 0)} held-out examples; tolerance {summary.get('tolerance', 0):.3f} "
            "below the teacher's score.", ""]

    out += ["## Headline", ""]
    share = summary.get("teacher_share")
    routed_label = (f"routed (threshold {threshold:g}, {_pct(share)} to teacher)" if threshold is not None
                    else "routed (no threshold qualifies)")
    out += _table(["system", "task score", "TTFT p50", "cost per call"], [
        ["base model", _score(summary.get("base_score")), "", ""],
        ["student alone", _score(summary.get("student_score")), _ms(_served_ttft(summary)),
         _usd(summary.get("student_cost_per_call"))],
        ["teacher", _score(summary.get("teacher_score")), _ms(summary.get("teacher_ttft_p50_ms")),
         _usd(summary.get("teacher_cost_per_call"))],
        [routed_label, _score(summary.get("routed_score")), _ms(summary.get("routed_ttft_p50_ms")),
         _usd(summary.get("routed_cost_per_call"))],
    ])
    out += [""] + _served_headline(summary)
    out += ["", f"Recommended threshold: **{'none' if threshold is None else f'{threshold:g}'}** "
            f"(a student answer whose confidence is below it goes to the teacher)."]
    out += [f"Student hallucination rate: **{_pct(summary.get('student_hallucination_rate'))}** of student answers "
            "fail the graders that filtered the teacher's traces "
            f"(valid JSON {_pct(summary.get('student_schema_pass_rate'))}, grounded "
            f"{_pct(summary.get('student_grounded_pass_rate'))}).", ""]
    failed = summary.get("student_failed_graders") or {}
    if failed:
        out += ["Student answers failing each grader: "
                + ", ".join(f"{name} {count}" for name, count in failed.items()) + ".", ""]

    out += _field_sections(summary)
    out += ["## By intent", ""]
    intents = summary.get("intents") or {}
    rows = []
    for intent, row in intents.items():
        flags = [flag for flag, on in (("rare", row.get("rare")), ("teacher-only", row.get("teacher_only"))) if on]
        rows.append([intent + (f" ({', '.join(flags)})" if flags else ""), str(row.get("examples", 0)),
                     _pct(row.get("share")), _score(row.get("base_score")), _score(row.get("student_score")),
                     _score(row.get("teacher_score")), _score(row.get("routed_score")),
                     _pct(row.get("teacher_share"))])
    out += _table(["intent", "examples", "share", "base", "student", "teacher", "routed", "to teacher"], rows)
    rare = [intent for intent, row in intents.items() if row.get("rare")]
    if rare:
        out += ["", f"Rare intents (under {summary.get('rare_intent_share', 0):.0%} of examples): "
                f"{', '.join(rare)}. Their scores rest on few examples; read them with care."]
    out.append("")

    out += ["## Routing sweep", ""]
    sweep_rows = []
    for row in summary.get("sweep") or []:
        chosen = threshold is not None and math.isclose(row["threshold"], threshold)
        mark = " **<- recommended**" if chosen else ""
        sweep_rows.append([f"{row['threshold']:g}{mark}", _pct(row["teacher_share"]), _score(row["blended_score"]),
                           _usd(row["blended_cost_per_call"]), _ms(row["blended_ttft_p50_ms"])])
    out += _table(["threshold", "to teacher", "blended score", "cost per call", "TTFT p50"], sweep_rows)
    out += ["", "A routed call sent on pays the student and then the teacher. The router streams the student and "
            "stops it at the token that takes its confidence below the threshold, so the call's first token waits "
            "for that token plus the teacher's TTFT (the sweep's TTFT uses the batched evaluation's token times, "
            "slower than one request at a time).", ""]

    out += ["## Latency and cost", ""]
    latency = summary.get("latency") or {}
    single = [
        ["time to first token, one request at a time", _ms(summary.get("student_ttft_single_p50_ms")),
         _ms(summary.get("student_ttft_single_p95_ms")), _ms(latency.get("teacher_ttft_ms", {}).get("p50")),
         _ms(latency.get("teacher_ttft_ms", {}).get("p95"))],
        ["whole answer, one request at a time", _ms(summary.get("student_latency_single_p50_ms")),
         _ms(summary.get("student_latency_single_p95_ms")), _ms(latency.get("teacher_latency_ms", {}).get("p50")),
         _ms(latency.get("teacher_latency_ms", {}).get("p95"))],
    ] if summary.get("student_ttft_single_p50_ms") is not None else []
    out += _table(["", "student p50", "student p95", "teacher p50", "teacher p95"], single + [
        ["time to first token, batched (throughput)", _ms(latency.get("student_ttft_ms", {}).get("p50")),
         _ms(latency.get("student_ttft_ms", {}).get("p95")), _ms(latency.get("teacher_ttft_ms", {}).get("p50")),
         _ms(latency.get("teacher_ttft_ms", {}).get("p95"))],
        ["whole answer, batched (throughput)", _ms(latency.get("student_latency_ms", {}).get("p50")),
         _ms(latency.get("student_latency_ms", {}).get("p95")), _ms(latency.get("teacher_latency_ms", {}).get("p50")),
         _ms(latency.get("teacher_latency_ms", {}).get("p95"))],
    ])
    ratio = summary.get("cost_ratio")
    out += ["", f"Cost per call: student {_usd(summary.get('student_cost_per_call'))}, teacher "
            f"{_usd(summary.get('teacher_cost_per_call'))}"
            + (f" (the student costs {ratio:.1%} of the teacher)." if ratio is not None else "."), ""]

    out += ["## Forgetting (general-purpose holdout)", ""]
    forgetting = summary.get("forgetting")
    if forgetting:
        delta = forgetting["delta"]
        out += [f"Base model {_score(forgetting['base_score'])}, student {_score(forgetting['student_score'])} "
                f"on {forgetting['examples']} general examples: {'+' if delta >= 0 else ''}{delta:.3f}.", ""]
    else:
        out += ["Not measured (no general-purpose holdout was given).", ""]

    if gate is not None:
        out += ["## Gate", "", f"Verdict: **{'PASSED' if gate['passed'] else 'FAILED'}**", ""]
        check_rows = []
        for name, check in gate["checks"].items():
            status = "info" if check.get("informational") else ("pass" if check["passed"] else "FAIL")
            check_rows.append([name, status, _fmt(check.get("value")), _fmt(check.get("limit"))])
        out += _table(["check", "result", "value", "limit"], check_rows)
        out.append("")
        if gate["reasons"]:
            out += ["Why it failed:", ""] + [f"- {reason}" for reason in gate["reasons"]] + [""]
    return "\n".join(out)


def _served_ttft(summary: Mapping[str, Any]) -> Any:
    """The student's TTFT as a caller waits for it: one request at a time when measured, else the batch's."""
    single = summary.get("student_ttft_single_p50_ms")
    return single if single is not None else summary.get("student_ttft_p50_ms")


def _served_headline(summary: Mapping[str, Any]) -> list[str]:
    """The latency a voice agent sees, and what the student costs, against the teacher."""
    served = summary.get("served") or {}
    if summary.get("student_ttft_single_p50_ms") is None:
        return ["The student's TTFT above is the batched evaluation's (throughput, not what one caller waits for)."]
    ratio, cost = summary.get("ttft_ratio"), summary.get("cost_ratio")
    lines = [f"Time to first token as served (the student one request at a time, streaming, after a warm-up; "
             f"{served.get('requests', 0)} held-out requests): student p50 "
             f"**{_ms(summary.get('student_ttft_single_p50_ms'))}** (p95 "
             f"{_ms(summary.get('student_ttft_single_p95_ms'))}), teacher p50 "
             f"**{_ms(summary.get('teacher_ttft_p50_ms'))}**"
             + (f": the student's TTFT is **{ratio:.2f}x** the teacher's" if ratio is not None else "")
             + (f", at **{cost:.1%}** of its cost per call." if cost is not None else ".")]
    if summary.get("routed_ttft_p50_ms") is not None:
        lines.append(f"Routed with early fallback: TTFT p50 **{_ms(summary.get('routed_ttft_p50_ms'))}** (p95 "
                     f"{_ms(summary.get('routed_ttft_p95_ms'))}; {served.get('to_teacher', 0)} of "
                     f"{served.get('requests', 0)} sent to the teacher, whose first token follows the student's "
                     f"deciding token: p50 {_ms(summary.get('routed_fallback_ttft_p50_ms'))} on those calls).")
    return lines


def _field_sections(summary: Mapping[str, Any]) -> list[str]:
    """Field by field: the per-field table, the calls with every structured field right, the worst fields."""
    fields = summary.get("field_accuracy") or {}
    if not fields:
        return []
    out = ["## Field by field", "",
           "Each field is scored by its rule: `exact` for enums, codes, booleans, dates, times and names (a wrong "
           "code is a billing error), `token_f1` for free text (a faithful paraphrase is not wrong). The teacher "
           "is scored against its own answer, so its 1.000 is true by construction: it is the reference, not "
           "evidence.", ""]
    out += _table(["field", "rule", "base", "student", "teacher"],
                  [[path, row["rule"], _score(row.get("base")), _score(row["student"]), _score(row["teacher"])]
                   for path, row in fields.items()])
    by_model = summary.get("all_structured_right_by_model") or {}
    structured = summary.get("structured_accuracy") or {}
    out += ["", f"Calls with every structured field right: student **{_pct(by_model.get('student'))}**, base "
            f"{_pct(by_model.get('base'))}; routed {_pct(summary.get('routed_all_structured_right'))}. "
            f"Structured-field accuracy: student {_score(structured.get('student'))}, routed "
            f"{_score(structured.get('routed'))} (at least {_pct(structured.get('required_ratio'))} of the "
            f"teacher's {_score(structured.get('teacher'))} is required of the recommended threshold).", ""]
    by_signal = summary.get("routing_auroc_by_signal") or {}
    names = {"structured_fields": "the least likely token of the structured values",
             "whole_answer": "the least likely token of the whole answer"}
    signal = summary.get("routing_signal") or "structured_fields"
    out += [f"Routing signal, chosen by measurement: {names.get(signal, signal)}. AUROC against \"some structured "
            "field wrong\": " + ", ".join(f"{names.get(k, k)} **{_score(v)}**" if k == signal else
                                           f"{names.get(k, k)} {_score(v)}" for k, v in by_signal.items()) + ".", ""]
    worst = summary.get("worst_fields") or []
    if worst:
        out += ["### The fields the student gets wrong most", ""]
        rows = []
        for item in worst:
            for example in item["examples"]:
                rows.append([item["field"], f"{item['wrong']} wrong ({_score(item['student'])})",
                             example["example_id"], _cell(example["student"]), _cell(example["teacher"])])
        out += _table(["field", "student", "example", "student said", "teacher said"], rows)
        out.append("")
    champion = summary.get("champion")
    if champion:
        out += ["## Champion and challenger", "",
                f"The student in force (`{champion['student']}`) on the same {champion['examples']} held-out calls:",
                ""]
        out += _table(["", "task score", "all structured right", "valid JSON"], [
            ["challenger (this student)", _score(summary.get("student_score")), _pct(by_model.get("student")),
             _pct(summary.get("student_schema_pass_rate"))],
            ["champion (in force)", _score(champion.get("score")), _pct(champion.get("all_structured_right")),
             _pct(champion.get("schema_pass_rate"))],
        ])
        out.append("")
    return out


def _cell(value: Any) -> str:
    text = "null" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
