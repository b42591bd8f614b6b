import json
from pathlib import Path

import openai
import pytest

from distill_pipeline.backends.chat_models import OpenAIChatModel
from distill_pipeline.routing import PolicyError, Router, RoutingPolicy, read_policy, write_policy
from distill_pipeline_tests.fake_openai import FakeOpenAI, Fault

STUDENT = "ft:gpt-4o-mini:org::student1"
TEACHER = "gpt-4o"


def answer(messages, model):
    return "student answer" if model == STUDENT else "teacher answer"


def confidence(messages, model, tokens):
    """The student is unsure (one token at -3.0) whenever the caller says 'unsure'."""
    unsure = "unsure" in messages[-1]["content"]
    return [-3.0 if unsure and i == 0 else -0.05 for i in range(len(tokens))]


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def student_server():
    with FakeOpenAI(responder=answer, logprober=confidence) as server:
        yield server


@pytest.fixture
def teacher_server():
    with FakeOpenAI(responder=answer) as server:
        yield server


def policy(**changes) -> RoutingPolicy:
    values = {"student": STUDENT, "teacher_model": TEACHER, "threshold": -1.0,
              "teacher_only_intents": ("referral_request",), "created_at": "2026-11-29T10:00:00+00:00",
              "promoted": True}
    return RoutingPolicy(**{**values, **changes})


@pytest.fixture
def router(tmp_path: Path, student_server: FakeOpenAI, teacher_server: FakeOpenAI) -> Router:
    path = tmp_path / "routing_policy" / "current.json"
    write_policy(path, policy())
    return Router.from_policy(path, student=OpenAIChatModel(student_server.client(), STUDENT),
                              teacher=OpenAIChatModel(teacher_server.client(), TEACHER, logprobs=False))


def test_a_confident_student_answer_stays_with_the_student(router: Router, teacher_server: FakeOpenAI):
    routed = router.route(ask("please refill my inhaler"), intent="medication_refill")
    assert (routed.text, routed.model_used) == ("student answer", "student")
    assert routed.student_min_logprob == pytest.approx(-0.05)
    assert "-0.050 >= threshold -1" in routed.reason
    assert teacher_server.requests() == []


def test_a_low_confidence_student_answer_goes_to_the_teacher(router: Router):
    routed = router.route(ask("I am unsure what I need"))
    assert (routed.text, routed.model_used) == ("teacher answer", "teacher")
    assert routed.student_min_logprob == pytest.approx(-3.0)
    assert "-3.000 < threshold -1" in routed.reason


def test_a_teacher_only_intent_never_reaches_the_student(router: Router, student_server: FakeOpenAI):
    routed = router.route(ask("I need a referral"), intent="referral_request")
    assert routed.model_used == "teacher"
    assert "referral_request" in routed.reason
    assert student_server.requests() == []


def test_a_student_server_error_falls_back_to_the_teacher(router: Router, student_server: FakeOpenAI):
    student_server.add_fault(Fault.server_error(500))
    routed = router.route(ask("please refill my inhaler"))
    assert (routed.text, routed.model_used) == ("teacher answer", "teacher")
    assert routed.reason.startswith("student failed (InternalServerError")
    assert routed.student_min_logprob is None


def test_a_teacher_error_reaches_the_caller(router: Router, teacher_server: FakeOpenAI):
    teacher_server.add_fault(Fault.server_error(503))
    with pytest.raises(openai.InternalServerError):
        router.route(ask("I am unsure what I need"))


def test_a_student_without_logprobs_is_not_trusted(router: Router, student_server: FakeOpenAI):
    router.student = OpenAIChatModel(student_server.client(), STUDENT, logprobs=False)
    routed = router.route(ask("please refill my inhaler"))
    assert routed.model_used == "teacher"
    assert "no token logprobs" in routed.reason


def test_an_unpromoted_policy_sends_everything_to_the_teacher(tmp_path: Path, teacher_server: FakeOpenAI):
    path = tmp_path / "current.json"
    write_policy(path, policy(promoted=False))
    router = Router.from_policy(path, teacher=OpenAIChatModel(teacher_server.client(), TEACHER, logprobs=False))
    assert router.route(ask("please refill my inhaler")).model_used == "teacher"


def test_router_builds_its_models_from_the_policy_and_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, student_server: FakeOpenAI, teacher_server: FakeOpenAI):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", teacher_server.base_url)
    path = tmp_path / "current.json"
    write_policy(path, policy(student_endpoint=student_server.base_url))
    router = Router.from_policy(path)
    assert router.route(ask("please refill my inhaler")).model_used == "student"
    assert router.route(ask("I am unsure what I need")).text == "teacher answer"
    assert json.loads(teacher_server.requests()[0].body)["model"] == TEACHER


def test_writing_a_policy_keeps_the_earlier_ones_in_history(tmp_path: Path):
    path = tmp_path / "routing_policy" / "current.json"
    write_policy(path, policy(threshold=-0.5, created_at="2026-11-28T09:00:00+00:00"))
    write_policy(path, policy(threshold=-1.0, created_at="2026-11-29T09:00:00+00:00"))
    history = sorted((path.parent / "history").iterdir())
    assert [read_policy(p).threshold for p in history] == [-0.5, -1.0]
    assert read_policy(path).threshold == -1.0


def test_writing_the_same_policy_twice_adds_no_history(tmp_path: Path):
    path = tmp_path / "current.json"
    assert write_policy(path, policy()) == write_policy(path, policy())
    assert len(list((tmp_path / "history").iterdir())) == 1


def test_a_policy_round_trips_through_its_file(tmp_path: Path):
    path = tmp_path / "current.json"
    written = policy(student_endpoint="http://vllm:8000/v1", report="reports/eval.md")
    write_policy(path, written)
    assert read_policy(path) == written


def test_a_policy_without_a_threshold_is_refused_with_the_file_named(tmp_path: Path):
    path = tmp_path / "current.json"
    path.write_text(json.dumps({"student": STUDENT, "teacher_model": TEACHER}))
    with pytest.raises(PolicyError, match=r"current\.json: missing threshold"):
        read_policy(path)


def test_a_student_directory_that_is_not_a_trained_adapter_is_refused(tmp_path: Path, teacher_server: FakeOpenAI):
    path = tmp_path / "current.json"
    write_policy(path, policy(student=str(tmp_path)))
    with pytest.raises(PolicyError, match="not a local student"):
        Router.from_policy(path, teacher=OpenAIChatModel(teacher_server.client(), TEACHER, logprobs=False))


def test_rollback_puts_the_previous_policy_back_and_leaves_the_history_alone(tmp_path: Path):
    from distill_pipeline.routing import policy_history, rollback_policy

    path = tmp_path / "routing_policy" / "current.json"
    first = {"student": "ft:one", "teacher_model": "gpt-4o", "threshold": -0.5, "promoted": True,
             "created_at": "2026-11-01T00:00:00+00:00"}
    second = {**first, "student": "ft:two", "created_at": "2026-11-02T00:00:00+00:00"}
    write_policy(path, first)
    first_text = path.read_bytes()
    write_policy(path, second)
    history = {p.name: p.read_bytes() for p in policy_history(path)}

    restored, source = rollback_policy(path)

    assert restored.student == "ft:one" and path.read_bytes() == first_text
    assert {p.name: p.read_bytes() for p in policy_history(path)} == history
    with pytest.raises(PolicyError, match="first policy"):
        rollback_policy(path)


def test_distill_policy_rollback_runs_from_the_shell(tmp_path: Path):
    import subprocess
    import sys

    root = tmp_path / "storage"
    path = root / "routing_policy" / "current.json"
    for day, student in (("01", "ft:one"), ("02", "ft:two")):
        write_policy(path, {"student": student, "teacher_model": "gpt-4o", "threshold": -0.5, "promoted": True,
                            "created_at": f"2026-11-{day}T00:00:00+00:00"})
    command = [sys.executable, "-m", "distill_pipeline.cli", "policy", "rollback", "--storage-root", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ft:one" in done.stdout and read_policy(path).student == "ft:one"
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "first policy" in again.stderr
