import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from distill_pipeline.backends.plots import write_report_plots
from distill_pipeline.core.chat import Completion
from distill_pipeline.core.evaluation import (
    ExampleRecord,
    GateConfig,
    build_record,
    cost_per_call,
    gate,
    percentile,
    recommend_threshold,
    routing_sweep,
    summarise,
)
from distill_pipeline.core.graders import build_graders
from distill_pipeline.core.report import render_markdown
from distill_pipeline.core.taskspec import Price, default_task_spec_path, load_task_spec
from distill_pipeline.core.traces import parse_record


def record(i: int, intent: str = "book_follow_up", *, student: float = 1.0, teacher: float = 1.0,
           logprob: float = -0.1, base: float | None = 0.0, schema: bool = True, grounded: bool = True,
           student_ttft: float = 50.0, student_latency: float = 400.0, teacher_ttft: float = 600.0,
           student_cost: float = 0.0001, teacher_cost: float = 0.01) -> ExampleRecord:
    return ExampleRecord(
        example_id=f"ex-{i}", intent=intent, student_score=student, teacher_score=teacher,
        student_min_logprob=logprob, student_ttft_ms=student_ttft, student_latency_ms=student_latency,
        teacher_ttft_ms=teacher_ttft, teacher_latency_ms=teacher_ttft + 1000, student_cost=student_cost,
        teacher_cost=teacher_cost, student_schema_pass=schema, student_grounded_pass=grounded, base_score=base,
    )


def confident_and_unsure() -> list[ExampleRecord]:
    """Eight confident right answers, two unsure wrong ones (min logprob -0.8 and -2.2)."""
    return [record(i) for i in range(8)] + [
        record(8, student=0.5, logprob=-0.8),
        record(9, student=0.0, logprob=-2.2),
    ]


def test_percentile_interpolates_between_order_statistics():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([40, 10, 30, 20], 95) == pytest.approx(38.5)
    assert percentile([7], 95) == 7


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_cost_per_call_uses_the_price_per_million_tokens():
    assert cost_per_call(1_000, 500, Price(input=2.5, output=10.0)) == pytest.approx(0.0075)
    assert cost_per_call(1_000, 500, {"input": 2.5, "output": 10.0}) == pytest.approx(0.0075)


def test_sweep_sends_calls_below_the_threshold_to_the_teacher():
    sweep = {row.threshold: row for row in routing_sweep(confident_and_unsure(), thresholds=(-0.5, -1.0, -3.0))}
    assert sweep[-0.5].teacher_share == pytest.approx(0.2)
    assert sweep[-1.0].teacher_share == pytest.approx(0.1)
    assert sweep[-3.0].teacher_share == 0.0


def test_sweep_blends_the_teachers_score_where_routed_and_the_students_elsewhere():
    sweep = {row.threshold: row for row in routing_sweep(confident_and_unsure(), thresholds=(-0.5, -1.0, -3.0))}
    assert sweep[-0.5].blended_score == pytest.approx(1.0)
    assert sweep[-1.0].blended_score == pytest.approx((8 + 0.5 + 1.0) / 10)
    assert sweep[-3.0].blended_score == pytest.approx((8 + 0.5 + 0.0) / 10)


def test_a_routed_call_pays_for_the_student_and_the_teacher():
    [row] = routing_sweep(confident_and_unsure(), thresholds=(-1.0,))
    assert row.blended_cost_per_call == pytest.approx((10 * 0.0001 + 0.01) / 10)


def test_a_routed_calls_first_token_waits_for_the_whole_student_answer_and_the_teachers_ttft():
    records = [record(0, logprob=-2.0, student_latency=400, teacher_ttft=600), record(1, logprob=-2.0)]
    [row] = routing_sweep(records, thresholds=(-1.0,))
    assert row.blended_ttft_p50_ms == 1000


def test_teacher_only_intents_go_to_the_teacher_without_paying_for_the_student():
    records = [record(0, intent="referral_request", student=0.0, student_cost=0.5, teacher_cost=0.01)]
    [row] = routing_sweep(records, thresholds=(-5.0,), teacher_only_intents=["referral_request"])
    assert (row.teacher_share, row.blended_score, row.blended_cost_per_call) == (1.0, 1.0, 0.01)
    assert row.blended_ttft_p50_ms == 600


def test_recommended_threshold_is_the_cheapest_within_tolerance():
    sweep = routing_sweep(confident_and_unsure(), thresholds=(-0.5, -1.0, -3.0))
    assert recommend_threshold(sweep, teacher_score=1.0, tolerance=0.0) == -0.5
    assert recommend_threshold(sweep, teacher_score=1.0, tolerance=0.05) == -1.0
    assert recommend_threshold(sweep, teacher_score=1.0, tolerance=0.2) == -3.0


def test_no_threshold_is_recommended_when_none_reaches_the_teacher():
    records = [record(0, student=0.0, logprob=-0.01), record(1, student=0.0, logprob=-0.01)]
    sweep = routing_sweep(records, thresholds=(-0.5, -1.0))
    assert recommend_threshold(sweep, teacher_score=1.0, tolerance=0.02) is None


def test_among_equal_costs_the_lower_teacher_share_is_recommended():
    records = [record(0, logprob=-0.8, student_cost=0.0, teacher_cost=0.0), record(1, student_cost=0.0,
                                                                                  teacher_cost=0.0)]
    sweep = routing_sweep(records, thresholds=(-0.5, -1.0))
    assert recommend_threshold(sweep, teacher_score=1.0, tolerance=0.0) == -1.0


def test_summary_carries_the_contract_headline_keys():
    summary = summarise(confident_and_unsure(), tolerance=0.05)
    for key in ("base_score", "student_score", "teacher_score", "routed_score", "recommended_threshold",
                "teacher_share", "student_ttft_p50_ms", "teacher_ttft_p50_ms", "student_cost_per_call",
                "teacher_cost_per_call"):
        assert key in summary
    assert summary["recommended_threshold"] == -1.0
    assert summary["routed_score"] == pytest.approx(0.95)
    assert summary["teacher_share"] == pytest.approx(0.1)
    json.dumps(summary)


def test_summary_flags_rare_intents():
    records = [record(i) for i in range(19)] + [record(19, intent="insurance_update")]
    summary = summarise(records, rare_intent_share=0.1)
    assert summary["intents"]["insurance_update"]["rare"] is True
    assert summary["intents"]["book_follow_up"]["rare"] is False


def test_hallucination_rate_counts_student_answers_that_fail_schema_or_grounding():
    records = [record(0, schema=False), record(1, grounded=False), record(2), record(3)]
    assert summarise(records)["student_hallucination_rate"] == 0.5


def test_forgetting_compares_base_and_student_on_the_general_holdout():
    summary = summarise([record(0)], general_scores=[(0.6, 0.5), (0.8, 0.7)])
    assert summary["forgetting"]["delta"] == pytest.approx(-0.1)


def test_gate_passes_a_student_that_routes_to_the_teacher_score():
    result = gate(summarise(confident_and_unsure(), tolerance=0.05), GateConfig(tolerance=0.05))
    assert result.passed, result.reasons
    assert result.checks["student_alone"]["value"] == pytest.approx(0.85)


def test_gate_fails_when_the_router_sends_too_much_to_the_teacher():
    records = [record(i, student=0.0, logprob=-0.8) for i in range(6)] + [record(i) for i in range(6, 10)]
    result = gate(summarise(records, tolerance=0.0), GateConfig(tolerance=0.0, max_teacher_share=0.5))
    assert not result.passed
    assert any("60%" in reason and "teacher" in reason for reason in result.reasons)


def test_gate_fails_an_intent_below_the_floor_even_when_the_mean_is_fine():
    records = [record(i) for i in range(19)] + [record(19, intent="test_results", student=0.3, teacher=0.3)]
    result = gate(summarise(records, tolerance=0.05), GateConfig(tolerance=0.05, intent_floor=0.8))
    assert not result.passed
    assert result.checks["routed_score"]["passed"]
    assert any("test_results (0.300)" in reason for reason in result.reasons)


def test_gate_fails_when_too_few_student_answers_are_valid_json():
    records = [record(i, schema=i > 1) for i in range(10)]
    result = gate(summarise(records), GateConfig(min_schema_pass_rate=0.95))
    assert not result.passed
    assert any("80.0% of student answers are valid JSON" in reason for reason in result.reasons)


def test_gate_fails_when_no_threshold_qualifies():
    result = gate(summarise([record(0, student=0.0, logprob=-0.01)]))
    assert not result.passed
    assert "no threshold" in result.reasons[0]


def test_markdown_report_shows_the_headline_figures_and_the_verdict():
    summary = summarise(confident_and_unsure(), tolerance=0.05)
    text = render_markdown(summary, gate(summary, GateConfig(tolerance=0.05)))
    assert "| student alone | 0.850 |" in text
    assert "| teacher | 1.000 |" in text
    assert "Recommended threshold: **-1**" in text
    assert "-1 **<- recommended**" in text
    assert "**Gate: PASSED**" in text


def test_markdown_report_lists_the_gates_reasons_when_it_fails():
    summary = summarise([record(0, student=0.0, logprob=-0.01)])
    text = render_markdown(summary, gate(summary))
    assert "**Gate: FAILED**" in text
    assert "- no threshold in the sweep" in text


def test_report_plots_are_written_as_png_files(tmp_path: Path):
    summary = summarise(confident_and_unsure(), tolerance=0.05)
    paths = write_report_plots(summary, [50, 60, 70], [500, 650, 900], tmp_path / "plots")
    assert sorted(paths) == ["routing_sweep", "scores_by_intent", "ttft"]
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "plots").iterdir() if p.suffix != ".png"]


TRANSCRIPT = ("Caller: I have had a sore throat for three days. Agent: Dr. Patel can see you on 2026-11-05 "
              "at 09:30.")
ANSWER = {"intent": "book_follow_up",
          "soap": {"subjective": "sore throat", "objective": "", "assessment": "pharyngitis", "plan": "visit"},
          "icd10": ["J02.9"],
          "follow_up": {"needed": True, "date": "2026-11-05", "time": "09:30", "clinician": "Dr. Patel"}}


def held_out_trace():
    return parse_record({"id": "chatcmpl-1", "created": int(datetime(2026, 11, 2, tzinfo=UTC).timestamp()),
                         "model": "gpt-4o-2024-08-06", "metadata": {"intent": "book_follow_up", "ttft_ms": "640"},
                         "choices": [{"message": {"role": "assistant", "content": json.dumps(ANSWER)}}],
                         "request_messages": [{"role": "user", "content": TRANSCRIPT}],
                         "usage": {"prompt_tokens": 1000, "completion_tokens": 100}})


def test_a_record_scores_and_grades_the_students_answer_against_the_teachers():
    task = load_task_spec(default_task_spec_path())
    invented = {**ANSWER, "follow_up": {**ANSWER["follow_up"], "date": "2026-11-06"}}
    student = Completion(json.dumps(invented), token_logprobs=[-0.1, -1.5], prompt_tokens=1000,
                         completion_tokens=100, ttft_ms=40, latency_ms=300)
    teacher = Completion(json.dumps(ANSWER), prompt_tokens=1000, completion_tokens=100, ttft_ms=640)
    built = build_record(held_out_trace(), student=student, teacher=teacher, task=task,
                         graders=build_graders(task), base=replace(student, text="not json"))
    # (the teacher is scored against its own answer here: 1.0 by construction, so not asserted as evidence)
    assert 0.8 < built.student_score < 1.0
    assert built.base_score == 0.0
    assert built.student_min_logprob == -1.5
    assert built.student_schema_pass and not built.student_grounded_pass
    assert built.student_failed_graders == ("follow_up_grounded",)
    assert built.teacher_cost == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)


# --- field by field, the routing signal and the champion ------------------------------------------------------


def field_record(i: int, *, code_right: bool, confidence: float, plan_f1: float = 1.0) -> ExampleRecord:
    """A record as build_record makes it for the bundled task: the code right or wrong, the plan paraphrased."""
    student = {"intent": 1.0, "icd10": float(code_right), "soap.plan": plan_f1, "follow_up.date": 1.0}
    teacher = dict.fromkeys(student, 1.0)
    structured = [v for k, v in student.items() if k != "soap.plan"]
    return replace(record(i, student=sum(student.values()) / 4, logprob=-0.05), student_confidence=confidence,
                   student_fields=student, teacher_fields=teacher, base_fields=dict.fromkeys(student, 0.0),
                   student_structured_right=code_right, teacher_structured_right=True, base_structured_right=False,
                   student_structured_accuracy=sum(structured) / 3, teacher_structured_accuracy=1.0,
                   student_answer=json.dumps({"intent": "x", "icd10": ["J45.909" if code_right else "J02.9"]}),
                   teacher_answer=json.dumps({"intent": "x", "icd10": ["J45.909"]}))


RULES = load_task_spec(default_task_spec_path()).field_rules


def fielded() -> list[ExampleRecord]:
    """Eight right and confident, two with the wrong code and unsure about it; every plan a paraphrase."""
    return ([field_record(i, code_right=True, confidence=-0.02, plan_f1=0.8) for i in range(8)]
            + [field_record(8 + i, code_right=False, confidence=-1.2, plan_f1=0.8) for i in range(2)])


def test_the_summary_reports_each_field_by_its_rule():
    summary = summarise(fielded(), rules=RULES)
    assert summary["field_accuracy"]["icd10"] == {"rule": "exact", "student": pytest.approx(0.8), "teacher": 1.0,
                                                  "base": 0.0}
    assert summary["field_accuracy"]["soap.plan"]["rule"] == "token_f1"
    assert summary["field_accuracy"]["soap.plan"]["student"] == pytest.approx(0.8)
    assert summary["all_structured_right"] == pytest.approx(0.8)


def test_the_worst_fields_come_with_the_students_and_the_teachers_answers():
    worst = summarise(fielded(), rules=RULES)["worst_fields"]
    assert [w["field"] for w in worst] == ["soap.plan", "icd10"]  # 0.8 each; ties by name
    icd10 = worst[1]
    assert icd10["wrong"] == 2
    assert icd10["examples"][0] == {"example_id": "ex-8", "student": ["J02.9"], "teacher": ["J45.909"]}


def test_the_routing_auroc_says_how_well_the_signal_finds_wrong_structured_fields():
    summary = summarise(fielded(), rules=RULES)
    assert summary["routing_auroc"] == 1.0  # every wrong answer is less confident than every right one
    assert summary["routing_auroc_by_signal"]["whole_answer"] == 0.5  # the whole answer's minimum is the same
    assert summary["routing_signal"] == "structured_fields"


def test_the_signal_that_separates_wrong_answers_better_is_the_one_routed_on():
    # the structured values look sure everywhere; the whole answer's minimum is low exactly where a field is wrong
    records = [replace(r, student_confidence=-0.01, student_min_logprob=-0.05 if r.student_structured_right else -2.0)
               for r in fielded()]
    summary = summarise(records, rules=RULES, tolerance=0.2)
    assert summary["routing_signal"] == "whole_answer"
    assert summary["routing_auroc"] == 1.0 and summary["routing_auroc_by_signal"]["structured_fields"] == 0.5
    assert summary["teacher_share"] == pytest.approx(0.2)  # both wrong codes go to the teacher, nothing else


def test_the_recommended_threshold_keeps_the_routed_structured_fields_at_the_teachers_level():
    summary = summarise(fielded(), rules=RULES, tolerance=0.2, structured_ratio=0.99)
    # every threshold from -0.05 to -1.0 catches both wrong codes at the same cost: the highest is the safer one
    assert summary["recommended_threshold"] == -0.05
    assert summary["structured_accuracy"]["routed"] == pytest.approx(1.0)
    lax = summarise(fielded(), rules=RULES, tolerance=0.2, structured_ratio=0.0)
    assert lax["recommended_threshold"] == -1.5  # score tolerance alone lets the wrong codes through


def test_the_gate_refuses_a_challenger_that_is_worse_than_the_champion():
    champion = {"student": "champion-adapter", "score": 0.99}
    report = summarise(confident_and_unsure(), tolerance=0.05, champion=champion)
    assert report["champion_score"] == 0.99
    verdict = gate(report, GateConfig(tolerance=0.05, champion_tolerance=0.01))
    assert not verdict.passed
    assert verdict.checks["champion"]["passed"] is False
    assert "champion-adapter" in " ".join(verdict.reasons)
    weaker = summarise(confident_and_unsure(), tolerance=0.05, champion={"student": "old", "score": 0.5})
    assert gate(weaker, GateConfig(tolerance=0.05)).checks["champion"]["passed"] is True


def test_the_markdown_report_shows_fields_worst_fields_and_the_champion():
    champion = {"student": "champion-adapter", "score": 0.9, "all_structured_right": 0.9, "schema_pass_rate": 1.0,
                "examples": 10}
    text = render_markdown(summarise(fielded(), rules=RULES, champion=champion))
    assert "## Field by field" in text and "| icd10 | exact |" in text
    assert "J02.9" in text and "J45.909" in text
    assert "## Champion and challenger" in text and "champion-adapter" in text


def test_a_record_of_the_bundled_task_reads_its_confidence_from_the_structured_fields():
    task = load_task_spec(default_task_spec_path())
    text = json.dumps(ANSWER, separators=(",", ":"))
    unsure_at = text.index("pharyngitis")  # unsure only inside the free-text assessment
    logprobs = [-3.0 if unsure_at <= i < unsure_at + 11 else -0.01 for i in range(len(text))]
    student = Completion(text, token_logprobs=logprobs, token_offsets=list(range(len(text))))
    teacher = Completion(json.dumps(ANSWER), ttft_ms=640)
    built = build_record(held_out_trace(), student=student, teacher=teacher, task=task, graders=build_graders(task))
    assert built.student_min_logprob == -3.0 and built.confidence == pytest.approx(-0.01)
    assert built.student_structured_right is True and built.student_fields["icd10"] == 1.0


def test_figures_are_shown_at_the_precision_a_reader_needs():
    from distill_pipeline.core.report import readable

    assert readable(0.8699999999999997) == 0.87
    assert readable(0.5666666666666667) == 0.567
    assert readable(0.0000076466666666) == 7.65e-06
    assert readable(6045.1234) == 6045.1
    assert readable(True) is True and readable(3) == 3 and readable(None) is None


def test_the_field_table_and_the_deferral_curve_are_drawn_when_the_task_has_fields(tmp_path: Path):
    paths = write_report_plots(summarise(fielded(), rules=RULES), [50, 60], [500, 650], tmp_path / "plots")
    for name in ("field_accuracy", "deferral_curve"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_general_holdout_is_answered_without_the_tasks_output_schema():
    from distill_pipeline.defs.evaluate import answer_all

    class Model:
        json_schema = staticmethod(lambda messages: {"type": "object"})
        seen: list = []

        def complete(self, messages):
            self.seen.append(self.json_schema)
            return messages[-1]["content"]

    model = Model()
    answer_all(model, [[{"role": "user", "content": "the value of day?"}]], lambda _: None, "general",
               constrained=False)
    answer_all(model, [[{"role": "user", "content": "a call"}]], lambda _: None, "domain")
    assert model.seen[0] is None and callable(model.seen[1]) and callable(model.json_schema)
