"""Cost as the bill says it: cached input tokens at the cached-input price, today's figures without one."""

import json
from dataclasses import replace

import pytest

from distill_pipeline.core.chat import Completion
from distill_pipeline.core.evaluation import build_record, cost_per_call, routing_sweep, summarise
from distill_pipeline.core.graders import build_graders
from distill_pipeline.core.taskspec import (
    Price,
    TaskSpecError,
    default_task_spec_path,
    load_task_spec,
    parse_task_spec,
)
from distill_pipeline.core.traces import parse_record
from distill_pipeline_tests.specs import MINIMAL

GPT_4O = Price(input=2.50, output=10.00, cached_input=1.25)
ANSWER = {"intent": "billing_question", "soap": {"subjective": "bill", "objective": "", "assessment": "bill",
                                                 "plan": "call back"},
          "icd10": [], "follow_up": {"needed": False, "date": None, "time": None, "clinician": None}}


def test_a_call_with_cached_tokens_costs_less_by_exactly_the_cached_discount():
    full = GPT_4O.cost(1200, 80)
    cached = GPT_4O.cost(1200, 80, cached_tokens=1024)
    assert full - cached == pytest.approx(1024 * (2.50 - 1.25) / 1e6, rel=1e-12)
    assert cached == pytest.approx((176 * 2.50 + 1024 * 1.25 + 80 * 10.00) / 1e6, rel=1e-12)


def test_a_price_without_cached_input_gives_todays_figures_exactly():
    today = Price(input=2.50, output=10.00)
    for cached in (0, 1024):
        assert today.cost(1200, 80, cached_tokens=cached) == (1200 * 2.50 + 80 * 10.00) / 1_000_000
    assert cost_per_call(1200, 80, {"input": 2.5, "output": 10}, cached_tokens=1024) == (1200 * 2.5 + 80 * 10) / 1e6
    assert GPT_4O.cost(1200, 80) == (1200 * 2.50 + 80 * 10.00) / 1_000_000  # no cached tokens: nothing changes


def test_cost_per_call_takes_the_cached_input_price_from_a_mapping_too():
    mapping = {"input": 2.5, "cached_input": 1.25, "output": 10}
    assert cost_per_call(1200, 80, mapping, cached_tokens=1024) == GPT_4O.cost(1200, 80, cached_tokens=1024)


def test_never_more_tokens_are_discounted_than_the_prompt_had():
    assert GPT_4O.cost(100, 0, cached_tokens=500) == GPT_4O.cost(100, 0, cached_tokens=100) == 100 * 1.25 / 1e6


def test_the_task_spec_reads_an_optional_cached_input_price():
    task = load_task_spec(default_task_spec_path())
    assert task.teacher_price == GPT_4O
    assert task.student_price.cached_input is None


def test_a_price_table_without_cached_input_reads_as_none():
    assert parse_task_spec(MINIMAL).teacher_price == Price(2.5, 10.0, cached_input=None)


def test_a_cached_input_price_that_is_not_a_number_names_the_field():
    text = MINIMAL.replace("{input: 2.5, output: 10}", "{input: 2.5, cached_input: half, output: 10}")
    with pytest.raises(TaskSpecError, match=r"spec.yaml line 14: prices.big-model.cached_input must be a number"):
        parse_task_spec(text, "spec.yaml")


def test_a_misspelt_cached_input_key_is_named_with_the_right_one():
    text = MINIMAL.replace("{input: 2.5, output: 10}", "{input: 2.5, cache_input: 1, output: 10}")
    with pytest.raises(TaskSpecError, match=r"prices.big-model.cache_input is not a known price key; did you mean "
                       r"'cached_input'\?"):
        parse_task_spec(text, "spec.yaml")


def held_out(cached: int):
    return parse_record({"id": "chatcmpl-1", "created": 1_793_000_000, "model": "gpt-4o-2024-08-06",
                         "metadata": {"intent": "billing_question", "ttft_ms": "640"},
                         "choices": [{"message": {"role": "assistant", "content": json.dumps(ANSWER)}}],
                         "request_messages": [{"role": "user", "content": "Caller: a question about my bill."}],
                         "usage": {"prompt_tokens": 1200, "completion_tokens": 80,
                                   "prompt_tokens_details": {"cached_tokens": cached}}})


def record(cached: int, student_cached: int = 0, task=None):
    task = task or load_task_spec(default_task_spec_path())
    answer = json.dumps(ANSWER)
    student = Completion(answer, token_logprobs=[-0.1], prompt_tokens=1200, completion_tokens=80,
                         cached_tokens=student_cached)
    teacher = Completion(answer, prompt_tokens=1200, completion_tokens=80, ttft_ms=640)
    return build_record(held_out(cached), student=student, teacher=teacher, task=task, graders=build_graders(task))


def test_the_teachers_cost_per_call_uses_the_cached_tokens_of_its_trace():
    uncached, cached = record(cached=0), record(cached=1024)
    assert uncached.teacher_cost == (1200 * 2.50 + 80 * 10.00) / 1e6
    assert uncached.teacher_cost - cached.teacher_cost == pytest.approx(1024 * (2.50 - 1.25) / 1e6, rel=1e-12)


def test_without_a_cached_input_price_the_teachers_cost_is_todays():
    task = load_task_spec(default_task_spec_path())
    today = replace(task, prices={**task.prices, task.teacher_model: Price(2.50, 10.00)})
    assert record(cached=1024, task=today).teacher_cost == (1200 * 2.50 + 80 * 10.00) / 1e6


def test_the_students_cached_tokens_come_from_its_completion():
    task = load_task_spec(default_task_spec_path())
    priced = replace(task, prices={**task.prices, "student": Price(0.02, 0.04, cached_input=0.01)})
    assert record(0, student_cached=0, task=priced).student_cost == (1200 * 0.02 + 80 * 0.04) / 1e6
    assert record(0, student_cached=1000, task=priced).student_cost == pytest.approx(
        (200 * 0.02 + 1000 * 0.01 + 80 * 0.04) / 1e6, rel=1e-12)


def test_the_routing_sweep_blends_the_cached_teacher_cost():
    uncached, cached = record(cached=0), record(cached=1024)
    # threshold 0: every call (min logprob -0.1) goes on to the teacher, paying student + teacher
    full = routing_sweep([uncached], thresholds=[0.0])[0]
    cheaper = routing_sweep([cached], thresholds=[0.0])[0]
    assert full.teacher_share == cheaper.teacher_share == 1.0
    assert full.blended_cost_per_call - cheaper.blended_cost_per_call == pytest.approx(
        1024 * (2.50 - 1.25) / 1e6, rel=1e-9)


def test_the_summary_says_which_price_table_it_used():
    task = load_task_spec(default_task_spec_path())
    summary = summarise([record(cached=1024)], prices=task.price_table())
    assert summary["prices"]["teacher"] == {"model": "gpt-4o-2024-08-06", "input": 2.5, "cached_input": 1.25,
                                            "output": 10.0}
    assert summary["prices"]["student"] == {"input": 0.02, "cached_input": None, "output": 0.04}
    assert summary["prices"]["task_spec"] == str(default_task_spec_path())
    assert summary["teacher_cost_per_call"] == pytest.approx((176 * 2.50 + 1024 * 1.25 + 80 * 10.00) / 1e6)
