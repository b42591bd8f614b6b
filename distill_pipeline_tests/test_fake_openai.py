"""The fake OpenAI server speaks the real SDK's language, endpoint family by endpoint family."""

from __future__ import annotations

import json
import time

import openai
import pytest

from distill_pipeline_tests.fake_openai import FakeOpenAI, Fault, ModelTiming, split_tokens


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def stored(n: int, created: int, agent: str = "post_call", model: str = "gpt-4.1") -> dict:
    return {
        "id": f"chatcmpl-{n:03d}", "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": f"answer {n}"}}],
        "metadata": {"agent": agent},
        "request_messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"q{n}"}],
    }


def test_stored_completions_list_in_pages_with_filters_and_order(fake):
    for n in range(7):
        fake.add_stored_completion(stored(n, 1_000 + n, agent="post_call" if n != 3 else "intake"))
    client = fake.client()
    page = client.chat.completions.list(metadata={"agent": "post_call"}, limit=4, order="asc")
    assert [c.id for c in page.data] == ["chatcmpl-000", "chatcmpl-001", "chatcmpl-002", "chatcmpl-004"]
    assert page.has_more
    assert [c.id for c in page.get_next_page().data] == ["chatcmpl-005", "chatcmpl-006"]
    every = [c.id for c in client.chat.completions.list(metadata={"agent": "post_call"}, limit=2, order="desc")]
    assert every == ["chatcmpl-006", "chatcmpl-005", "chatcmpl-004", "chatcmpl-002", "chatcmpl-001", "chatcmpl-000"]
    assert client.chat.completions.list(model="gpt-4o").data == []
    assert fake.requests(path=r"^/v1/chat/completions$")[0].query["metadata[agent]"] == ["post_call"]


def test_stored_messages_come_back_paginated_with_ids(fake):
    record = stored(1, 1_000)
    record["request_messages"] = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    fake.add_stored_completion(record)
    client = fake.client()
    first = client.chat.completions.messages.list("chatcmpl-001", limit=2)
    assert [m.content for m in first.data] == ["m0", "m1"] and first.data[0].role == "user"
    assert [m.id for m in client.chat.completions.messages.list("chatcmpl-001")] == [
        f"chatcmpl-001-{i}" for i in range(5)]
    assert [m.content for m in client.chat.completions.messages.list("chatcmpl-001", limit=2, order="desc")] == [
        f"m{i}" for i in reversed(range(5))]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.messages.list("chatcmpl-nope")


def test_a_stored_created_completion_is_listed_later_with_its_metadata_and_messages(fake):
    client = fake.client()
    created = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hello"}],
                                             store=True, metadata={"agent": "post_call"})
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "not stored"}])
    [listed] = client.chat.completions.list(metadata={"agent": "post_call"}).data
    assert listed.id == created.id and listed.choices[0].message.content == "echo: hello"
    assert client.chat.completions.retrieve(created.id).metadata == {"agent": "post_call"}
    assert [m.content for m in client.chat.completions.messages.list(created.id)] == ["hello"]


def test_streaming_with_logprobs_and_usage_matches_the_plain_answer():
    def responder(messages, model):
        return f"{model} says hi to {messages[-1]['content']}"

    def logprober(messages, model, tokens):
        return [-0.1 * (i + 1) for i in range(len(tokens))]

    timing = {"student": ModelTiming(ttft_s=0.05)}
    with FakeOpenAI(responder=responder, logprober=logprober, model_timing=timing) as fake:
        client = fake.client()
        messages = [{"role": "user", "content": "Ann"}]
        plain = client.chat.completions.create(model="student", messages=messages, logprobs=True, top_logprobs=2)
        started = time.perf_counter()
        stream = client.chat.completions.create(model="student", messages=messages, logprobs=True, top_logprobs=2,
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        assert time.perf_counter() - started >= 0.05
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    logprobs = [lp for c in chunks if c.choices and c.choices[0].logprobs
                for lp in c.choices[0].logprobs.content or []]
    assert text == plain.choices[0].message.content == "student says hi to Ann"
    assert [lp.token for lp in logprobs] == split_tokens(text)
    assert [lp.logprob for lp in logprobs] == [lp.logprob for lp in plain.choices[0].logprobs.content]
    assert [lp.logprob for lp in logprobs] == pytest.approx([-0.1, -0.2, -0.3, -0.4, -0.5])
    assert len(logprobs[0].top_logprobs) == 2
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_files_upload_list_and_download(fake):
    client = fake.client()
    data = b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}\n'
    uploaded = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("train.jsonl", len(data), "fine-tune")
    assert [f.id for f in client.files.list(purpose="fine-tune")] == [uploaded.id]
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).content == data


def test_a_fine_tuning_job_walks_to_success_with_events_and_checkpoints(fake):
    client = fake.client()
    training = client.files.create(file=("t.jsonl", b'{"messages": []}\n'), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=training.id,
                                         suffix="soap", seed=7, metadata={"mix": "abc"})
    statuses = [job.status] + [client.fine_tuning.jobs.retrieve(job.id).status for _ in range(3)]
    assert statuses == ["validating_files", "queued", "running", "succeeded"]
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:org:soap:{job.id.removeprefix('ftjob-')}"
    assert done.seed == 7 and done.trained_tokens and done.result_files
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"mix": "abc"})] == [job.id]
    assert client.fine_tuning.jobs.list(metadata={"mix": "other"}).data == []
    events = list(client.fine_tuning.jobs.list_events(job.id))
    assert events[0].message == "The job has successfully completed"
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert [c.step_number for c in checkpoints] == [3, 2, 1] and checkpoints[0].metrics.train_loss is not None


def test_fine_tuning_failures_refusals_and_cancellation(fake):
    client = fake.client()
    training = client.files.create(file=("t.jsonl", b'{"messages": []}\n'), purpose="fine-tune")
    fake.job_failure = {"code": "invalid_n_examples", "message": "Too few examples.", "param": "training_file"}
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id)
    for _ in range(3):
        failed = client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed" and failed.error.code == "invalid_n_examples"

    cancelled = client.fine_tuning.jobs.cancel(client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=training.id).id)
    assert cancelled.status == "cancelled"

    fake.training_available = False
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id)
    assert refused.value.status_code == 403 and refused.value.code == "training_not_available"


def test_scripted_faults_and_the_request_log(fake):
    client = fake.client()
    fake.add_fault(Fault.reset(path="/models"))
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
    fake.add_fault(Fault.slow(0.5, path="/models"))
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.1).models.list()
    fake.add_fault(Fault.rate_limit(retry_after_s=0.01, path="/models"))
    assert client.with_options(max_retries=1).models.list().data  # the SDK waits the Retry-After and retries
    log = fake.requests(path="/models")
    assert [r.fault for r in log] == ["reset", "delay 0.5s", "status 429", None]
    assert log[2].status == 429 and log[-1].status == 200
    assert all(r.authorized and "authorization" not in r.headers for r in log)


def test_seeding_from_an_export_file(fake, tmp_path):
    path = tmp_path / "2026-11-02.jsonl"
    chat_example = {"id": "ex-1", "created": 5_000, "messages": [{"role": "user", "content": "q"},
                                                                {"role": "assistant", "content": "a"}]}
    path.write_text("\n".join(json.dumps(r) for r in [stored(1, 1_000), stored(2, 2_000), chat_example]) + "\n")
    assert fake.load_export(path) == 3
    client = fake.client()
    assert [c.id for c in client.chat.completions.list()] == ["chatcmpl-001", "chatcmpl-002", "ex-1"]
    assert [m.content for m in client.chat.completions.messages.list("ex-1")] == ["q"]
