"""Cached input tokens: captured from both sources, kept through storage and the holdout, reported by the models."""

import json

import pyarrow.parquet as pq
import pytest

from distill_pipeline.backends.chat_models import OpenAIChatModel, ReplayTeacher
from distill_pipeline.backends.handoffs import holdout_line
from distill_pipeline.backends.openai_source import OpenAIStoredCompletionsSource, day_bounds
from distill_pipeline.backends.storage import TRACE_SCHEMA, StorageLayout
from distill_pipeline.core.capture import capture, iter_export_lines
from distill_pipeline.core.traces import TraceParseError, parse_line
from distill_pipeline_tests.fake_openai import FakeOpenAI

DAY = "2026-11-02"
START, _ = day_bounds(DAY)
ANSWER = '{"intent":"billing_question"}'
REQUEST = [{"role": "system", "content": "Return JSON."}, {"role": "user", "content": "Transcript: a bill"}]


def usage(cached: int | None = None, prompt: int = 1200) -> dict:
    out: dict = {"prompt_tokens": prompt, "completion_tokens": 80, "total_tokens": prompt + 80}
    if cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    return out


def stored(n: int = 1, cached: int | None = None, **overrides) -> dict:
    record = {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": START + n, "model": "gpt-4o-2024-08-06",
              "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                           "message": {"role": "assistant", "content": ANSWER, "refusal": None}}],
              "usage": usage(cached), "metadata": {"agent": "post_call", "intent": "billing_question"},
              "request_messages": [{"id": f"chatcmpl-{n}-0", **REQUEST[0]},
                                   {"id": f"chatcmpl-{n}-1", "role": "user", "content": f"Transcript: bill {n}"}]}
    record.update(overrides)
    return record


def export(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_a_stored_completion_in_an_export_keeps_its_cached_token_count():
    result = capture(iter_export_lines(f"{DAY}.jsonl", export(stored(1, cached=1024), stored(2))))
    assert [r.cached_tokens for r in result.rows] == [1024, 0]


def test_a_chat_example_keeps_the_cached_token_count_of_its_usage():
    example = {"messages": [*REQUEST, {"role": "assistant", "content": ANSWER}], "usage": usage(cached=512)}
    assert parse_line(json.dumps(example).encode()).cached_tokens == 512


def test_a_usage_without_details_or_with_null_details_has_no_cached_tokens():
    assert parse_line(json.dumps(stored(usage=usage())).encode()).cached_tokens == 0
    details_null = {**usage(), "prompt_tokens_details": None}
    assert parse_line(json.dumps(stored(usage=details_null)).encode()).cached_tokens == 0


@pytest.mark.parametrize(("details", "reason"), [
    ({"cached_tokens": 1201}, r"cached_tokens \(1201\) is more than usage.prompt_tokens \(1200\)"),
    ({"cached_tokens": -1}, r"usage.prompt_tokens_details.cached_tokens must be a non-negative integer"),
    ("1024", r"usage.prompt_tokens_details must be an object"),
])
def test_an_impossible_cached_token_count_is_quarantined_with_the_reason(details, reason):
    with pytest.raises(TraceParseError, match=reason):
        parse_line(json.dumps(stored(usage={**usage(), "prompt_tokens_details": details})).encode())


def test_the_openai_source_captures_cached_tokens_like_the_export_does():
    records = [stored(1, cached=1024), stored(2, cached=0), stored(3)]
    with FakeOpenAI() as fake:
        for record in records:
            fake.add_stored_completion(record)
        source = OpenAIStoredCompletionsSource(fake.client(timeout=5), {"agent": "post_call"}, page_size=2)
        from_api = capture(source.records(DAY))
    from_export = capture(iter_export_lines(f"{DAY}.jsonl", export(*records)))
    assert [r.cached_tokens for r in from_api.rows] == [1024, 0, 0]
    assert from_api.rows == from_export.rows


def test_cached_tokens_survive_the_parquet_trace_file(tmp_path):
    layout = StorageLayout(tmp_path)
    rows = capture(iter_export_lines(f"{DAY}.jsonl", export(stored(1, cached=1024), stored(2)))).rows
    layout.write_traces("teacher_traces", DAY, rows)
    assert [r.cached_tokens for r in layout.read_traces("teacher_traces", DAY)] == [1024, 0]
    assert layout.read_trace_columns("teacher_traces", DAY, ["cached_tokens"]) == {"cached_tokens": [1024, 0]}


def test_a_trace_table_written_before_the_column_existed_reads_and_rewrites_as_zero_cached_tokens(tmp_path):
    layout = StorageLayout(tmp_path)
    rows = capture(iter_export_lines(f"{DAY}.jsonl", export(stored(1, cached=7)))).rows
    layout.write_traces("teacher_traces", DAY, rows)
    old = layout.read_trace_table("teacher_traces", DAY).drop_columns(["cached_tokens"])
    pq.write_table(old, layout.traces_path("teacher_traces", DAY))
    assert layout.read_traces("teacher_traces", DAY)[0].cached_tokens == 0
    layout.write_trace_table("pass_cases", DAY, layout.read_trace_table("teacher_traces", DAY))
    assert layout.read_trace_table("pass_cases", DAY).schema.names == TRACE_SCHEMA.names
    assert layout.read_traces("pass_cases", DAY)[0].cached_tokens == 0


def test_the_holdout_line_keeps_the_cached_tokens_the_replayed_teacher_is_costed_with():
    row = parse_line(json.dumps(stored(1, cached=1024)).encode())
    assert parse_line(holdout_line(row)).cached_tokens == 1024
    uncached = parse_line(json.dumps(stored(2)).encode())
    assert "prompt_tokens_details" not in json.loads(holdout_line(uncached))["usage"]  # same bytes as before


def test_the_replay_teacher_reports_the_traces_cached_tokens():
    row = parse_line(json.dumps(stored(1, cached=1024, metadata={"ttft_ms": "600"})).encode())
    completion = ReplayTeacher([row]).complete(row.request_messages)
    assert (completion.prompt_tokens, completion.cached_tokens) == (1200, 1024)


def test_a_streamed_completion_reports_the_servers_cached_tokens():
    with FakeOpenAI(responder=lambda messages, model: ANSWER, cached_prompt_tokens=6) as fake:
        completion = OpenAIChatModel(fake.client(), "student").complete(REQUEST)
        fake.cached_prompt_tokens = 0
        uncached = OpenAIChatModel(fake.client(), "student").complete(REQUEST)
    assert completion.prompt_tokens > 6 and completion.cached_tokens == 6
    assert uncached.cached_tokens == 0

