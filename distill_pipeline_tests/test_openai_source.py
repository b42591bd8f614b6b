"""The Stored Completions trace source, driven through the real openai SDK against the fake server."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from distill_pipeline.backends.openai_source import (
    CAPTURE_ERROR_KEY,
    LISTING,
    OpenAIStoredCompletionsSource,
    StoredCompletionsError,
    day_bounds,
    make_client,
)
from distill_pipeline.core.capture import capture, iter_export_lines
from distill_pipeline.core.traces import trace_to_record
from distill_pipeline_tests.fake_openai import FakeOpenAI, Fault

DAY = "2026-11-02"
START, END = day_bounds(DAY)
LIST_PATH = r"^/v1/chat/completions$"
MESSAGES_PATH = r"/messages$"
FILTER = {"agent": "post_call"}


def stored_completion(n: int, created: int, *, agent: str = "post_call", model: str = "gpt-4.1") -> dict[str, Any]:
    """One completion in the export shape: the stored completion plus its request messages."""
    cid = f"chatcmpl-{n:04d}"
    answer = json.dumps({"intent": "book_follow_up", "n": n})
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": answer, "refusal": None, "annotations": []}}],
        "usage": {"prompt_tokens": 40 + n, "completion_tokens": 12, "total_tokens": 52 + n},
        "metadata": {"agent": agent, "intent": "book_follow_up", "ttft_ms": str(300 + n)},
        "service_tier": "default",
        "request_messages": [
            {"id": f"{cid}-0", "role": "system", "content": "Summarise the call as JSON.", "name": None,
             "content_parts": None},
            {"id": f"{cid}-1", "role": "user", "content": f"Caller {n}: I need a follow-up.", "name": None,
             "content_parts": None},
        ],
    }


def seed_days(fake: FakeOpenAI, before: int, during: int, after: int) -> list[dict[str, Any]]:
    """`before` completions the day before, `during` on DAY (two per second, so created ties occur), `after` later."""
    records = []
    n = 0
    for i in range(before):
        records.append(stored_completion(n := n + 1, START - 3600 + i))
    for i in range(during):
        records.append(stored_completion(n := n + 1, START + 60 + i // 2))
    for i in range(after):
        records.append(stored_completion(n := n + 1, END + 10 * i))
    for record in reversed(records):  # seeding order must not matter
        fake.add_stored_completion(record)
    return records


def on_day(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if START <= r["created"] < END]


def source(fake: FakeOpenAI, *, max_retries: int = 0, **kwargs: Any) -> OpenAIStoredCompletionsSource:
    options: dict[str, Any] = {"page_size": 5, "concurrency": 4, "backoff_s": 0.001, **kwargs}
    return OpenAIStoredCompletionsSource(fake.client(max_retries=max_retries, timeout=5), FILTER, **options)


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def test_yields_the_days_completions_in_created_then_id_order_across_pages(fake):
    records = seed_days(fake, before=3, during=12, after=4)
    got = list(source(fake).records(DAY))
    expected = sorted(on_day(records), key=lambda r: (r["created"], r["id"]))
    assert [r.raw["id"] for r in got] == [r["id"] for r in expected]
    assert [r.line for r in got] == list(range(1, 13))
    assert {r.file for r in got} == {LISTING}
    assert got[0].raw["request_messages"] == expected[0]["request_messages"]
    assert len(fake.requests(path=LIST_PATH)) >= 3  # 12 + 3 items at 5 a page: the listing really paged


def test_listing_stops_once_past_the_day(fake):
    seed_days(fake, before=3, during=12, after=30)  # 45 items = 9 pages of 5
    assert len(list(source(fake).records(DAY))) == 12
    listing = fake.requests(path=LIST_PATH)
    # pages 1-3 hold the day before and the day; page 4 starts past the day, so paging stops there
    assert len(listing) == 4
    assert all(r.query["order"] == ["asc"] and r.query["limit"] == ["5"] for r in listing)


def test_descending_listing_gives_the_same_records_from_the_other_end(fake):
    seed_days(fake, before=30, during=12, after=3)
    ascending = [(r.line, r.raw) for r in source(fake).records(DAY)]
    fake.clear_log()
    descending = [(r.line, r.raw) for r in source(fake, order="desc").records(DAY)]
    assert descending == ascending
    assert len(fake.requests(path=LIST_PATH)) == 4  # not the 6 pages of the day before


def test_only_completions_matching_the_metadata_and_model_filters_are_captured(fake):
    fake.add_stored_completion(stored_completion(1, START + 1))
    fake.add_stored_completion(stored_completion(2, START + 2, agent="intake"))
    fake.add_stored_completion(stored_completion(3, START + 3, model="gpt-4o"))
    assert [r.raw["id"] for r in source(fake).records(DAY)] == ["chatcmpl-0001", "chatcmpl-0003"]
    assert [r.raw["id"] for r in source(fake, model="gpt-4.1").records(DAY)] == ["chatcmpl-0001"]
    query = fake.requests(path=LIST_PATH)[-1].query
    assert query["metadata[agent]"] == ["post_call"] and query["model"] == ["gpt-4.1"]


def test_a_rate_limit_with_retry_after_is_waited_out_by_the_client(fake):
    seed_days(fake, before=0, during=3, after=0)
    fake.add_fault(Fault.rate_limit(retry_after_s=0.02, path=MESSAGES_PATH))
    got = list(source(fake, max_retries=2).records(DAY))
    assert all("request_messages" in r.raw for r in got)
    statuses = [r.status for r in fake.requests(path=MESSAGES_PATH)]
    assert statuses.count(429) == 1 and statuses.count(200) == 3


def test_a_rate_limit_after_the_clients_retries_is_retried_by_the_source(fake):
    seed_days(fake, before=0, during=2, after=0)
    fake.add_fault(Fault.rate_limit(retry_after_s=0.01, path=LIST_PATH), times=2)
    waits: list[float] = []
    got = list(source(fake, sleep=waits.append).records(DAY))
    assert len(got) == 2
    assert waits == [0.01, 0.01]  # the server's Retry-After, not the back-off


def test_server_errors_and_timeouts_are_retried_until_success(fake):
    seed_days(fake, before=0, during=4, after=0)
    fake.add_fault(Fault.server_error(500, path=LIST_PATH))
    fake.add_fault(Fault.server_error(502, path=MESSAGES_PATH))
    fake.add_fault(Fault.reset(path=MESSAGES_PATH))
    fake.add_fault(Fault.slow(1.0, path=MESSAGES_PATH))
    client = fake.client(max_retries=0, timeout=0.3)
    src = OpenAIStoredCompletionsSource(client, FILTER, page_size=5, concurrency=2, backoff_s=0.001)
    result = capture(src.records(DAY))
    assert len(result.rows) == 4 and not result.quarantined
    assert fake.pending_faults == 0


def test_a_completion_whose_messages_keep_failing_is_quarantined_with_the_reason(fake):
    seed_days(fake, before=0, during=3, after=0)
    fake.add_fault(Fault.server_error(503, path=r"chatcmpl-0002/messages$"), times=50)
    result = capture(source(fake, extra_attempts=2).records(DAY))
    assert [r.completion_id for r in result.rows] == ["chatcmpl-0001", "chatcmpl-0003"]
    [rejected] = result.quarantined
    assert rejected.reason.startswith("capture error: request_messages of chatcmpl-0002 could not be fetched")
    error = json.loads(rejected.raw)[CAPTURE_ERROR_KEY]
    assert "chatcmpl-0002" in error and "HTTP 503" in error and "3 attempts" in error
    assert result.balanced


def test_malformed_items_are_quarantined_with_a_reason_not_lost(fake):
    seed_days(fake, before=0, during=2, after=2)
    no_choices = stored_completion(10, START + 100)
    no_choices["choices"] = []
    fake.add_stored_completion(no_choices, validate=False)
    undated = stored_completion(11, START + 200)
    undated["created"] = "yesterday"  # lists first (no timestamp); belongs to the day of the first dated item
    fake.add_stored_completion(undated, validate=False)
    result = capture(source(fake).records(DAY))
    assert len(result.rows) == 2
    reasons = {json.loads(r.raw)["id"]: r.reason for r in result.quarantined}
    assert reasons == {"chatcmpl-0010": "stored completion has no choices",
                       "chatcmpl-0011": "created must be a Unix timestamp in seconds (got str)"}
    assert result.input_rows == 4 and result.balanced


def test_an_empty_day_yields_nothing(fake):
    seed_days(fake, before=3, during=0, after=3)
    assert list(source(fake).records(DAY)) == []
    assert list(source(fake).records("2026-10-01")) == []


def test_api_rows_equal_the_rows_of_a_jsonl_export_of_the_same_completions(fake):
    records = seed_days(fake, before=2, during=9, after=2)
    export = "\n".join(json.dumps(r) for r in on_day(records)[::-1]).encode() + b"\n"
    from_export = capture(iter_export_lines(f"{DAY}.jsonl", export))
    from_api = capture(source(fake).records(DAY))
    assert from_api.input_rows == from_export.input_rows == 9
    assert [trace_to_record(r) for r in from_api.rows] == [trace_to_record(r) for r in from_export.rows]


def test_random_faults_do_not_change_the_result():
    with FakeOpenAI(fault_seed=1) as fake:
        records = seed_days(fake, before=2, during=10, after=2)
        expected = [trace_to_record(r) for r in capture(source(fake).records(DAY)).rows]
        fake.fault_rate, fake.random_fault_path = 0.25, r"^/v1/chat/completions"
        got = [trace_to_record(r) for r in capture(source(fake, extra_attempts=8).records(DAY)).rows]
        assert got == expected and len(got) == len(on_day(records))
        assert sum(r.fault is not None for r in fake.requests()) >= 2


def test_a_listing_that_keeps_failing_fails_the_capture_clearly(fake):
    seed_days(fake, before=0, during=2, after=0)
    fake.add_fault(Fault.server_error(500, path=LIST_PATH), times=10)
    with pytest.raises(StoredCompletionsError, match=r"failed on page 1 after 3 attempts.*HTTP 500"):
        list(source(fake, extra_attempts=2).records(DAY))


def test_make_client_needs_a_key_and_never_logs_it(fake, caplog):
    with pytest.raises(ValueError, match="no OpenAI API key"):
        make_client(None, fake.base_url)
    fake.api_key = "sk-test-secret-123"
    seed_days(fake, before=0, during=2, after=0)
    caplog.set_level(logging.DEBUG)
    client = make_client("sk-test-secret-123", fake.base_url, timeout=5, max_retries=0)
    src = OpenAIStoredCompletionsSource(client, FILTER, log=logging.getLogger("capture-test"))
    assert len(list(src.records(DAY))) == 2
    assert "sk-test-secret-123" not in caplog.text and "sk-test-secret-123" not in repr(src)
    assert all(r.authorized for r in fake.requests())
    assert "messages 2/2 fetched" in caplog.text


def test_a_day_that_is_not_a_date_is_refused():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        day_bounds("02/11/2026")


def test_progress_can_go_to_a_plain_callable_such_as_context_log_info(fake):
    seed_days(fake, before=0, during=3, after=0)
    fake.add_fault(Fault.server_error(500, path=LIST_PATH))
    lines: list[str] = []
    assert len(list(source(fake, log=lines.append).records(DAY))) == 3
    assert any(line.startswith("WARNING: listing stored completions page 1: HTTP 500") for line in lines)
    assert any("page 1 listed 3" in line for line in lines) and lines[-1].endswith("messages 3/3 fetched")


# -- concurrency of the request-message fetches --------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [4, 1])
def test_request_messages_are_fetched_concurrently_never_more_at_once_than_configured(concurrency):
    with FakeOpenAI(latency_s=0.05) as fake:  # every request takes 50 ms: fetches overlap unless serial
        seed_days(fake, before=0, during=16, after=0)
        got = list(source(fake, concurrency=concurrency).records(DAY))
        assert len(got) == 16 and all("request_messages" in r.raw for r in got)
        fetches = fake.requests(path=MESSAGES_PATH)
        assert len(fetches) == 16
        # The listing (4 pages of 5) runs beside the fetches; the bound is on the fetches.
        assert fake.max_concurrent(path=MESSAGES_PATH) == concurrency
        assert fake.max_in_flight <= concurrency + 1 and fake.in_flight == 0


def test_the_fake_counts_overlapping_requests_from_when_it_read_them_to_when_it_answered():
    with FakeOpenAI(latency_s=0.05) as fake:
        client = fake.client()
        client.models.list()
        client.models.list()
        assert fake.max_concurrent() == 1 == fake.max_in_flight  # one after the other never overlaps
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda _: client.models.list(), range(3)))
        assert fake.max_concurrent() == 3 == fake.max_in_flight
        assert fake.max_concurrent(method="POST") == 0
