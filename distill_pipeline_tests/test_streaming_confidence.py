"""Confidence read while the answer streams in, and the latency figures built on it (pure, no models)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill_pipeline.core.chat import Completion
from distill_pipeline.core.fields import (
    FieldRules,
    PartialAnswer,
    RunningConfidence,
    confidence,
    confidence_steps,
    stop_ms,
    token_texts,
    value_spans,
)
from distill_pipeline.core.latency import ServedCall, routed_ttft_ms, served_latency

RULES = FieldRules({"soap": "token_f1"})
ANSWER = {"intent": "symptom_report",
          "soap": {"subjective": "Reports \"wheezing\", [asthma] {x}", "objective": "3 days",
                   "assessment": "Asthma", "plan": "Nurse to call back"},
          "icd10": ["J45.909", "R51.9"],
          "follow_up": {"needed": True, "date": None, "time": "09:30", "clinician": None, "extra": {}},
          "score": -1.5e3}
FAST = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def labels_from_spans(text: str) -> list[str | None]:
    spans = value_spans(text)
    assert spans is not None
    out: list[str | None] = [None] * len(text)
    for path, start, end in spans:
        for i in range(start, end):
            out[i] = path
    return out


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
@given(cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=40))
@FAST
def test_partial_labels_agree_with_the_whole_answers_spans_however_it_is_cut(separators, cuts):
    text = json.dumps(ANSWER, separators=separators)
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    answer = PartialAnswer()
    labels = [label for a, b in zip(bounds, bounds[1:], strict=False) for label in answer.feed(text[a:b])]
    expected = labels_from_spans(text)
    empty_object = text.index("{}")  # an empty nested object is known to be a leaf only at its closing brace
    expected[empty_object] = None
    assert labels == expected
    assert not answer.broken


@pytest.mark.parametrize("text, broken_at", [
    ("Sure! {", 0),
    ('{"intent": "x"} and more', 16),
    ('{"intent" "x"}', 10),
    ('{"icd10": [1, 2],}', 17),
    ('[1, 2]', 0),
])
def test_a_text_that_cannot_become_a_json_object_is_broken_from_the_first_bad_character(text, broken_at):
    answer = PartialAnswer()
    for i, c in enumerate(text):
        answer.feed(c)
        assert answer.broken == (i >= broken_at), (i, c)


def test_a_valid_prefix_is_not_broken_and_its_open_value_is_labelled():
    answer = PartialAnswer()
    text = '  {"follow_up": {"date": "2026-1'
    labels = answer.feed(text)
    assert not answer.broken
    quote = text.index('"2026')
    assert labels[quote:] == ["follow_up.date"] * (len(text) - quote) and set(labels[:quote]) == {None}


def tokens_of(text: str, cuts: list[int]) -> list[int]:
    return sorted({0, *(c for c in cuts if 0 < c < len(text))})


@given(cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=60),
       logprobs=st.lists(st.floats(min_value=-8, max_value=0), min_size=61, max_size=61),
       signal=st.sampled_from(["structured_fields", "whole_answer"]))
@FAST
def test_the_running_confidence_never_falls_below_the_final_one_and_ends_on_it(cuts, logprobs, signal):
    text = json.dumps(ANSWER, separators=(",", ":"))
    offsets = tokens_of(text, cuts) + [len(text)]  # the last token is end-of-turn, starting at the text's end
    chosen = logprobs[:len(offsets)]
    final = confidence(text, chosen, offsets, RULES, signal)
    running = RunningConfidence(RULES, signal)
    values = [running.add(piece, lp) for piece, lp in zip(token_texts(text, offsets), chosen, strict=True)]
    assert all(v is None or v >= final for v in values)
    assert values[-1] == final


def test_a_doubtful_soap_token_does_not_lower_the_structured_confidence_but_a_doubtful_code_does():
    running = RunningConfidence(RULES)
    assert running.add('{"intent":"', -0.01) == -0.01  # the opening quote is part of the value
    assert running.add('symptom_report",', -0.02) == -0.02
    assert running.add('"soap":{"subjective":"Cough', -4.0) == -0.02
    assert running.add('"},"icd10":["J4', -3.0) == -3.0
    assert RunningConfidence(RULES, "whole_answer").add('"soap":"x"', -4.0) == -4.0


def test_a_broken_answer_counts_every_token_from_then_on():
    running = RunningConfidence(RULES)
    assert running.add("Sure", -2.0) == -2.0
    assert running.answer.broken


def test_the_steps_say_when_a_streaming_router_stops_the_student():
    text = '{"intent":"x","soap":{"plan":"y"},"icd10":["Z"]}'
    pieces = ['{"intent":', '"x",', '"soap":{"plan":"y"},', '"icd10":["Z"]}', ""]
    offsets = [sum(len(p) for p in pieces[:i]) for i in range(len(pieces))]
    logprobs = [-0.1, -0.3, -5.0, -0.9, -0.2]
    times = [10.0, 20.0, 30.0, 40.0, 50.0]
    steps = confidence_steps(text, logprobs, offsets, times, RULES)
    assert steps == [(-0.3, 20.0), (-0.9, 40.0)]  # the soap token (-5.0) does not count
    assert stop_ms(steps, -0.5) == 40.0 and stop_ms(steps, -0.2) == 20.0 and stop_ms(steps, -1.0) is None
    assert confidence_steps(text, logprobs, offsets, [], RULES) == []  # not timed token by token


def call(confidence: float, steps=(), intent="book_follow_up") -> ServedCall:
    return ServedCall(intent=intent, student_ttft_ms=30.0, student_latency_ms=900.0, confidence=confidence,
                      steps=tuple(steps), teacher_ttft_ms=500.0)


def test_a_fallback_pays_the_deciding_token_and_the_teachers_first_token_not_the_whole_student_answer():
    assert routed_ttft_ms(call(-2.0, [(-0.1, 40.0), (-2.0, 120.0)]), threshold=-1.0) == (620.0, True)


def test_a_confident_answer_pays_only_the_students_first_token_and_a_teacher_only_call_only_the_teachers():
    assert routed_ttft_ms(call(-0.2, [(-0.2, 40.0)]), threshold=-1.0) == (30.0, False)
    assert routed_ttft_ms(call(-0.2), threshold=-1.0, teacher_only=True) == (500.0, True)


def test_a_fallback_no_token_decides_waits_for_the_whole_student_answer():
    # e.g. an answer whose structured values were all confident but which turned out not to be JSON at its end
    assert routed_ttft_ms(call(-3.0, [(-0.1, 40.0)]), threshold=-1.0) == (1400.0, True)


def test_served_latency_gives_the_contract_figures():
    calls = [call(-0.2, [(-0.2, 40.0)]), call(-2.0, [(-2.0, 100.0)]), call(-0.1, [], intent="referral_request")]
    served = served_latency(calls, -1.0, ["referral_request"], teacher_ttft_p50_ms=600.0, cost_ratio=0.1)
    assert served["student_ttft_single_p50_ms"] == 30.0 and served["student_ttft_single_p95_ms"] == 30.0
    assert served["routed_ttft_p50_ms"] == 500.0  # 30, 600 (100 + 500), 500 (teacher only)
    assert served["routed_fallback_ttft_p50_ms"] == 600.0
    assert served["ttft_ratio"] == pytest.approx(30.0 / 600.0) and served["cost_ratio"] == 0.1
    assert served["served"]["to_teacher"] == 2
    assert served_latency(calls, None)["routed_ttft_p50_ms"] is None


def test_a_served_call_reads_its_steps_from_the_streamed_completion():
    text = '{"intent":"x"}'
    completion = Completion(text=text, token_logprobs=[-0.1, -1.5, -0.2], token_offsets=[0, 10, len(text)],
                            token_times_ms=[25.0, 50.0, 75.0], ttft_ms=25.0, latency_ms=75.0)
    served = ServedCall.of("book_follow_up", completion, teacher_ttft_ms=400.0, rules=RULES)
    assert served.confidence == -1.5 and served.steps == ((-1.5, 50.0),)
    assert routed_ttft_ms(served, -1.0) == (450.0, True)


def test_the_sweep_charges_a_fallback_the_deciding_token_not_the_whole_student_answer():
    from distill_pipeline.core.evaluation import ExampleRecord, routing_sweep

    def record(steps: dict) -> ExampleRecord:
        return ExampleRecord(example_id="ex", intent="book_follow_up", student_score=0.0, teacher_score=1.0,
                             student_min_logprob=-3.0, student_confidence=-3.0, student_ttft_ms=20.0,
                             student_latency_ms=2000.0, teacher_ttft_ms=500.0, teacher_latency_ms=900.0,
                             student_cost=0.0, teacher_cost=0.01, student_confidence_steps=steps)

    timed = record({"structured_fields": ((-0.1, 20.0), (-3.0, 60.0)), "whole_answer": ((-3.0, 20.0),)})
    [row] = routing_sweep([timed], [-1.0], signal="structured_fields")
    assert row.teacher_share == 1.0 and row.blended_ttft_p50_ms == 560.0
    [row] = routing_sweep([timed], [-1.0], signal="whole_answer")
    assert row.blended_ttft_p50_ms == 520.0
    [row] = routing_sweep([record({})], [-1.0])  # not timed token by token: the whole answer, then the teacher
    assert row.blended_ttft_p50_ms == 2500.0


def test_the_served_summary_reads_the_reports_threshold_signal_and_teacher():
    from distill_pipeline.core.latency import served_summary

    text = '{"intent":"x","soap":"y"}'
    unsure_note = Completion(text=text, token_logprobs=[-0.1, -0.2, -4.0, -0.1], token_offsets=[0, 10, 14, 25],
                             token_times_ms=[30.0, 40.0, 50.0, 60.0], ttft_ms=30.0, latency_ms=60.0)
    summary = {"recommended_threshold": -1.0, "routing_signal": "structured_fields", "teacher_ttft_p50_ms": 600.0,
               "cost_ratio": 0.05, "teacher_only_intents": []}
    served = served_summary(summary, [("book_follow_up", unsure_note, 500.0)], RULES)
    assert served["routed_ttft_p50_ms"] == 30.0  # the doubtful token is in the note: the student answers
    served = served_summary({**summary, "routing_signal": "whole_answer"}, [("x", unsure_note, 500.0)], RULES)
    assert served["routed_ttft_p50_ms"] == 550.0 and served["ttft_ratio"] == pytest.approx(0.05)


def served_report() -> dict:
    return {"student_ttft_single_p50_ms": 42.0, "student_ttft_single_p95_ms": 61.0, "teacher_ttft_p50_ms": 588.0,
            "routed_ttft_p50_ms": 45.0, "routed_ttft_p95_ms": 700.0, "routed_fallback_ttft_p50_ms": 650.0,
            "ttft_ratio": 42.0 / 588.0, "cost_ratio": 0.031, "student_ttft_p50_ms": 6045.0,
            "served": {"requests": 20, "to_teacher": 3},
            "latency": {"teacher_ttft_ms": {"p50": 588.0, "p95": 900.0}}}


def test_the_report_puts_the_served_student_beside_the_teacher_with_both_ratios():
    from distill_pipeline.core.report import render_markdown

    markdown = render_markdown(served_report())
    assert "| student alone | n/a | 42 ms |" in markdown  # the headline's TTFT is one request's, not the batch's
    assert "student p50 **42 ms** (p95 61 ms), teacher p50 **588 ms**" in markdown
    assert "**0.07x** the teacher's, at **3.1%** of its cost per call" in markdown
    assert "Routed with early fallback: TTFT p50 **45 ms**" in markdown and "3 of 20 sent to the teacher" in markdown
    assert "| time to first token, batched (throughput) |" in markdown


def test_the_served_ttft_plot_is_written_beside_the_others(tmp_path):
    from distill_pipeline.backends.plots import write_report_plots

    plots = write_report_plots(served_report(), [6045.0], [588.0], tmp_path)
    assert plots["ttft_served"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ttft_served" not in write_report_plots({}, [6045.0], [588.0], tmp_path / "batch-only")
