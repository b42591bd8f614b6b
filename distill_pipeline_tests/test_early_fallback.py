"""The router streams the student and falls back the moment it is unsure, against OpenAI-compatible endpoints.

The student and the teacher are fake OpenAI servers that stream token by token at a scripted pace: the student
takes about two seconds for its whole answer, so a router that waits for it before calling the teacher is caught
by when the teacher's request arrives. This is also the serving test: the student is reached through
`Router.from_policy` and a policy's `student_endpoint`, as a vLLM or llama.cpp server would be.
"""

import json
import time
from pathlib import Path

import pytest

from distill_pipeline.routing import Router, write_policy
from distill_pipeline_tests.fake_openai import FakeOpenAI, ModelTiming

STUDENT = "student"
TEACHER = "gpt-4o"
WORDS = 30
ANSWER = json.dumps({"intent": "medication_refill",
                     "soap": {"subjective": " ".join(f"w{i}" for i in range(WORDS)), "objective": "none",
                              "assessment": "refill", "plan": "refill sent"},
                     "icd10": ["J45.909"],
                     "follow_up": {"needed": False, "date": None, "time": None, "clinician": None}})
TEACHER_ANSWER = '{"intent": "medication_refill"}'
STUDENT_TIMING = ModelTiming(ttft_s=0.02, per_token_s=0.05)
TOKENS = len(ANSWER.split())
STUDENT_WHOLE_S = STUDENT_TIMING.ttft_s + STUDENT_TIMING.per_token_s * (TOKENS - 1)  # about two seconds


def respond(messages, model):
    return ANSWER if model == STUDENT else TEACHER_ANSWER


def logprobs(messages, model, tokens):
    """Always one doubtful word in the SOAP note; when the caller says 'unsure', a doubtful intent too."""
    unsure = "unsure" in messages[-1]["content"]
    return [-3.0 if unsure and "medication_refill" in t else -4.0 if t.strip() == "w5" else -0.05 for t in tokens]


@pytest.fixture
def servers():
    with FakeOpenAI(responder=respond, logprober=logprobs, model_timing={STUDENT: STUDENT_TIMING}) as student, \
            FakeOpenAI(responder=respond, model_timing={TEACHER: ModelTiming(ttft_s=0.3)}) as teacher:
        yield student, teacher


def router_for(tmp_path: Path, servers, monkeypatch: pytest.MonkeyPatch, signal: str = "structured_fields") -> Router:
    """The router as deployed: built from the policy file, the student on its own endpoint, the teacher from the
    environment (OPENAI_BASE_URL)."""
    student, teacher = servers
    monkeypatch.setenv("OPENAI_BASE_URL", teacher.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    path = tmp_path / "routing_policy" / "current.json"
    write_policy(path, {"student": STUDENT, "student_endpoint": student.base_url, "teacher_model": TEACHER,
                        "threshold": -1.0, "promoted": True, "signal": signal, "field_rules": {"soap": "token_f1"}})
    return Router.from_policy(path)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_an_unsure_student_is_stopped_and_the_teacher_called_before_the_student_would_have_finished(
        tmp_path, servers, monkeypatch):
    student, teacher = servers
    router = router_for(tmp_path, servers, monkeypatch)
    started = time.monotonic()
    routed = router.route(ask("I am unsure which refill I need"))
    took = time.monotonic() - started
    [student_request] = student.requests(path=r"/chat/completions$")
    [teacher_request] = teacher.requests(path=r"/chat/completions$")
    # the intent is the answer's second token: the teacher is asked while the student still has ~2.5 s to go
    assert teacher_request.started - student_request.started < STUDENT_WHOLE_S / 2
    assert took < STUDENT_WHOLE_S  # the router did not read the student's stream to its end ...
    assert student_request.ended.wait(timeout=10) and student_request.cut_off  # ... it hung up on it
    assert (routed.model_used, routed.text) == ("teacher", TEACHER_ANSWER)
    assert "fell to -3.000 < threshold -1" in routed.reason and "stopped the student" in routed.reason
    assert routed.student_tokens == 2 and routed.decided_ms is not None and routed.decided_ms < 1000


def test_a_confident_student_answers_in_full_and_the_teacher_is_never_called(tmp_path, servers, monkeypatch):
    student, teacher = servers
    router = router_for(tmp_path, servers, monkeypatch)
    routed = router.route(ask("please refill my inhaler"))
    assert (routed.model_used, routed.text) == ("student", ANSWER)  # the doubtful SOAP word is not a field value
    assert routed.completion.completion_tokens == TOKENS == routed.student_tokens
    assert "-0.050 >= threshold -1" in routed.reason
    assert teacher.requests() == []
    [student_request] = student.requests(path=r"/chat/completions$")
    assert student_request.ended.wait(timeout=10) and not student_request.cut_off


def test_on_the_whole_answer_signal_the_doubtful_note_word_stops_the_student_where_it_appears(
        tmp_path, servers, monkeypatch):
    student, teacher = servers
    router = router_for(tmp_path, servers, monkeypatch, signal="whole_answer")
    routed = router.route(ask("please refill my inhaler"))
    [student_request] = student.requests(path=r"/chat/completions$")
    [teacher_request] = teacher.requests(path=r"/chat/completions$")
    assert teacher_request.started - student_request.started < STUDENT_WHOLE_S * 0.75
    assert routed.model_used == "teacher" and "min logprob fell to -4.000" in routed.reason
    assert routed.student_tokens == [t.strip() for t in ANSWER.split()].index("w5") + 1
