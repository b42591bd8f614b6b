import pytest

from distill_pipeline.backends.chat_models import OpenAIChatModel, ReplayTeacher, UnseenRequestError, request_key
from distill_pipeline.capture import call_teacher
from distill_pipeline.core.chat import LOGPROB_FLOOR
from distill_pipeline.core.traces import parse_record
from distill_pipeline_tests.fake_openai import FakeOpenAI, Fault

MESSAGES = [{"role": "system", "content": "Summarise the call as JSON."},
            {"role": "user", "content": "Caller: my head cold is back."}]


def ticking_clock(*seconds: float):
    """A clock that returns these readings in turn: start, each chunk that brings a token, end."""
    readings = iter(seconds)
    return lambda: next(readings)


@pytest.fixture
def fake():
    with FakeOpenAI(responder=lambda messages, model: '{"intent": "symptom_report"}') as server:
        yield server


def test_streamed_completion_returns_text_logprobs_and_usage(fake: FakeOpenAI):
    completion = OpenAIChatModel(fake.client(), "ft:gpt-4o-mini:org::abc").complete(MESSAGES)
    assert completion.text == '{"intent": "symptom_report"}'
    assert len(completion.token_logprobs) == completion.completion_tokens == 2
    assert all(-0.5 <= lp < 0 for lp in completion.token_logprobs)
    assert completion.prompt_tokens > 0
    assert completion.model == "ft:gpt-4o-mini:org::abc"


def test_streamed_completion_asks_for_logprobs_and_usage(fake: FakeOpenAI):
    OpenAIChatModel(fake.client(), "student", max_tokens=64).complete(MESSAGES)
    body = fake.requests(method="POST", path=r"/chat/completions$")[0].json()
    assert body["stream"] is True and body["logprobs"] is True and body["top_logprobs"] == 3
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 64 and body["temperature"] == 0


def test_ttft_is_the_time_to_the_first_content_and_latency_to_the_end(fake: FakeOpenAI):
    model = OpenAIChatModel(fake.client(), "student", clock=ticking_clock(10.0, 10.045, 10.2, 10.3))
    completion = model.complete(MESSAGES)
    assert completion.ttft_ms == pytest.approx(45)
    assert completion.token_times_ms == pytest.approx([45, 200])  # when each token arrived
    assert completion.latency_ms == pytest.approx(300)


def test_measured_ttft_falls_within_the_call(fake: FakeOpenAI):
    completion = OpenAIChatModel(fake.client(), "student").complete(MESSAGES)
    assert 0 < completion.ttft_ms <= completion.latency_ms


def test_the_minus_9999_logprob_sentinel_is_clamped(fake: FakeOpenAI):
    fake.logprober = lambda messages, model, tokens: [-0.01] + [-9999.0] * (len(tokens) - 1)
    completion = OpenAIChatModel(fake.client(), "student").complete(MESSAGES)
    assert completion.token_logprobs == [-0.01, LOGPROB_FLOOR]
    assert completion.min_logprob == LOGPROB_FLOOR


def test_a_model_without_logprobs_leaves_them_out_of_the_request(fake: FakeOpenAI):
    completion = OpenAIChatModel(fake.client(), "o-teacher", temperature=None, logprobs=False).complete(MESSAGES)
    body = fake.requests(method="POST", path=r"/chat/completions$")[0].json()
    assert "logprobs" not in body and "temperature" not in body
    assert completion.token_logprobs == [] and completion.completion_tokens == 2


def test_a_server_error_reaches_the_caller(fake: FakeOpenAI):
    fake.add_fault(Fault.server_error(500))
    with pytest.raises(Exception, match="500"):
        OpenAIChatModel(fake.client(), "student").complete(MESSAGES)


def teacher_trace(metadata: dict[str, str], messages=MESSAGES, answer='{"intent": "symptom_report"}'):
    return parse_record({"id": "chatcmpl-t1", "created": 1_793_000_000, "model": "gpt-4o-2024-08-06",
                         "metadata": metadata, "request_messages": messages,
                         "choices": [{"message": {"role": "assistant", "content": answer}}],
                         "usage": {"prompt_tokens": 120, "completion_tokens": 30}})


def test_replay_teacher_returns_the_recorded_answer_usage_and_ttft():
    teacher = ReplayTeacher([teacher_trace({"ttft_ms": "640"})])
    completion = teacher.complete(MESSAGES)
    assert completion.text == '{"intent": "symptom_report"}'
    assert (completion.prompt_tokens, completion.completion_tokens) == (120, 30)
    assert completion.ttft_ms == 640
    assert completion.model == "gpt-4o-2024-08-06"


def test_replay_teacher_estimates_latency_from_ttft_and_output_tokens():
    teacher = ReplayTeacher([teacher_trace({"ttft_ms": "640"})], ms_per_output_token=20)
    assert teacher.complete(MESSAGES).latency_ms == 640 + 30 * 20


def test_replay_teacher_uses_a_recorded_latency_when_there_is_one():
    teacher = ReplayTeacher([teacher_trace({"ttft_ms": "640", "latency_ms": "1500"})])
    assert teacher.complete(MESSAGES).latency_ms == 1500


def test_replay_teacher_matches_requests_whatever_their_whitespace_or_content_parts():
    teacher = ReplayTeacher([teacher_trace({"ttft_ms": "640"})])
    parts = [{"type": "text", "text": "  Caller: my head cold is back.\n"}]
    rewritten = [MESSAGES[0], {"role": "user", "content": parts}]
    assert request_key(rewritten) == request_key(MESSAGES)
    assert teacher.complete(rewritten).ttft_ms == 640


def test_replay_teacher_refuses_a_request_it_has_not_seen():
    teacher = ReplayTeacher([teacher_trace({"ttft_ms": "640"})])
    with pytest.raises(UnseenRequestError, match="no recorded answer for this request .* 'Caller: a new call'"):
        teacher.complete([{"role": "user", "content": "Caller: a new call"}])


def test_replay_teacher_will_not_invent_an_unrecorded_ttft():
    with pytest.raises(ValueError, match="has no metadata.ttft_ms"):
        ReplayTeacher([teacher_trace({})]).complete(MESSAGES)
    assert ReplayTeacher([teacher_trace({})], default_ttft_ms=500).complete(MESSAGES).ttft_ms == 500


def test_call_teacher_stores_the_call_with_its_metadata_and_measured_ttft(fake: FakeOpenAI):
    call = call_teacher(fake.client(), "gpt-4o", MESSAGES, agent="healthcare-postcall", intent="symptom_report",
                        clock=ticking_clock(5.0, 5.32, 5.9))
    assert call.text == '{"intent": "symptom_report"}'
    assert call.ttft_recorded and (call.ttft_ms, call.latency_ms) == pytest.approx((320, 900))
    [stored] = fake.stored_completions
    assert stored["id"] == call.completion_id
    assert stored["metadata"] == {"agent": "healthcare-postcall", "intent": "symptom_report", "layer": "teacher",
                                  "ttft_ms": "320", "latency_ms": "900"}


def test_call_teacher_sends_the_metadata_with_store_true_at_request_time(fake: FakeOpenAI):
    call_teacher(fake.client(), "gpt-4o", MESSAGES, agent="a", intent="b", extra_metadata={"call_id": 7})
    body = fake.requests(method="POST", path=r"/chat/completions$")[0].json()
    assert body["store"] is True and body["stream"] is True
    assert body["metadata"] == {"agent": "a", "intent": "b", "layer": "teacher", "call_id": "7"}


def test_call_teacher_still_answers_when_recording_the_ttft_fails(fake: FakeOpenAI):
    fake.add_fault(Fault.server_error(404, path=r"/chat/completions/[^/]+$", method="POST"))
    call = call_teacher(fake.client(), "gpt-4o", MESSAGES, agent="a", intent="b")
    assert call.text and not call.ttft_recorded
    assert "ttft_ms" not in fake.stored_completions[0]["metadata"]


def test_call_teacher_refuses_metadata_over_the_apis_key_limit(fake: FakeOpenAI):
    with pytest.raises(ValueError, match="at most 16 keys"):
        call_teacher(fake.client(), "gpt-4o", MESSAGES, agent="a", intent="b",
                     extra_metadata={f"k{i}": "v" for i in range(12)})
    assert fake.requests() == []
