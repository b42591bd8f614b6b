"""The OpenAI trainer, driven through the real openai SDK against the fake server (no real back-off sleeps)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from distill_pipeline.backends.openai_trainer import (
    FineTuneFailed,
    OpenAIAccessDenied,
    OpenAITrainer,
    TrainingNotAvailable,
    upload_name,
)
from distill_pipeline_tests.fake_openai import FakeOpenAI, Fault

MODEL = "gpt-4o-mini-2024-07-18"
KEY = "0123456789abcdef"
JOB_PATH = r"^/v1/fine_tuning/jobs/ftjob-[^/]+$"


class Recorder:
    """An injected sleep that only records, and a log that keeps every line."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.lines: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def log(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    def write(name: str, count: int) -> Path:
        lines = [json.dumps({"messages": [
            {"role": "system", "content": "Summarise the call as JSON."},
            {"role": "user", "content": f"Caller {name} {i}: I need a follow-up."},
            {"role": "assistant", "content": json.dumps({"intent": "book_follow_up", "n": i})},
        ]}) for i in range(count)]
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        return path

    return write("train", 12), write("validation", 10)


def trainer(fake: FakeOpenAI, rec: Recorder, **kwargs) -> OpenAITrainer:
    options = {"poll_s": 30.0, "max_poll_s": 300.0, **kwargs}
    return OpenAITrainer(fake.client(), rec.log, sleep=rec.sleep, **options)


def submit(t: OpenAITrainer, files: tuple[Path, Path], key: str = KEY) -> dict:
    return t.submit(files[0], files[1], model=MODEL, suffix="distill", key=key,
                    hyperparameters={"n_epochs": 2})


def test_a_job_runs_to_success_and_returns_the_fine_tuned_model_id(fake, files):
    rec = Recorder()
    t = trainer(fake, rec)
    job = submit(t, files)
    result = t.wait(job["id"])
    assert result["fine_tuned_model"] == f"ft:{MODEL}:org:distill:{job['id'].removeprefix('ftjob-')}"
    assert result["job_id"] == job["id"] and result["status"] == "succeeded" and result["trained_tokens"] > 0
    assert [c["step"] for c in result["checkpoints"]] == [1, 2, 3]
    assert result["checkpoints"][-1]["metrics"]["train_loss"] == pytest.approx(1 / 3, abs=1e-3)
    assert result["events"][-1] == "The job has successfully completed"
    assert len(result["result_files"]) == 1


def test_the_job_is_created_with_the_files_seed_method_and_key(fake, files):
    job = submit(trainer(fake, Recorder()), files)
    body = fake.requests(method="POST", path=r"^/v1/fine_tuning/jobs$")[0].json()
    train_sha, train_name = upload_name(files[0], "train")
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
    assert body["seed"] == 7 and body["suffix"] == "distill" and body["model"] == MODEL
    assert body["metadata"]["distill_key"] == KEY and body["metadata"]["distill_train_sha256"] == train_sha
    names = {f.id: f.filename for f in fake.client().files.list(purpose="fine-tune")}
    assert names[job["training_file"]] == train_name == f"distill-{train_sha[:16]}-train.jsonl"
    assert names[job["validation_file"]] == upload_name(files[1], "validation")[1]
    assert fake.file_content(job["training_file"]) == files[0].read_bytes()


def test_a_second_submit_with_the_same_key_finds_the_existing_job(fake, files):
    first = submit(trainer(fake, Recorder()), files)
    again = submit(trainer(fake, Recorder()), files)
    assert again["id"] == first["id"]
    assert len(fake.jobs) == 1
    assert len(fake.requests(method="POST", path=r"^/v1/files$")) == 2  # train and validation, once each


def test_a_different_key_submits_a_new_job_but_reuses_the_uploaded_files(fake, files):
    first = submit(trainer(fake, Recorder()), files)
    second = submit(trainer(fake, Recorder()), files, key="fedcba9876543210")
    assert second["id"] != first["id"]
    assert (second["training_file"], second["validation_file"]) == (first["training_file"], first["validation_file"])
    assert len(fake.requests(method="POST", path=r"^/v1/files$")) == 2


def test_a_restart_in_the_middle_of_a_job_follows_the_same_job(fake, files):
    fake.job_polls_per_state = 3
    first = trainer(fake, Recorder(), poll_s=1.0, max_poll_s=1.0, timeout_s=2.0)
    job = submit(first, files)
    with pytest.raises(TimeoutError):
        first.wait(job["id"])  # the run dies while the job is still going
    assert fake.jobs[0]["status"] not in ("succeeded", "failed")
    rec = Recorder()
    restarted = trainer(fake, rec)
    resumed = submit(restarted, files)
    result = restarted.wait(resumed["id"])
    assert resumed["id"] == job["id"] and result["job_id"] == job["id"] and result["status"] == "succeeded"
    assert len(fake.jobs) == 1 and len(fake.requests(method="POST", path=r"^/v1/files$")) == 2


def test_a_failed_job_raises_with_openais_error_text(fake, files):
    fake.job_failure = {"code": "invalid_n_examples", "param": "training_file",
                        "message": "Training file has 12 example(s), but must have at least 50 examples"}
    t = trainer(fake, Recorder())
    job = submit(t, files)
    with pytest.raises(FineTuneFailed) as failed:
        t.wait(job["id"])
    text = str(failed.value)
    assert "invalid_n_examples" in text and "must have at least 50 examples" in text and "training_file" in text
    assert failed.value.status == "failed" and failed.value.code == "invalid_n_examples"


def test_a_failed_job_is_not_reused_by_the_next_submit(fake, files):
    fake.job_failure = {"code": "server_error", "message": "boom", "param": None}
    t = trainer(fake, Recorder())
    job = submit(t, files)
    with pytest.raises(FineTuneFailed):
        t.wait(job["id"])
    fake.job_failure = None
    retried = submit(t, files)
    assert retried["id"] != job["id"] and len(fake.jobs) == 2
    assert len(fake.requests(method="POST", path=r"^/v1/files$")) == 2


def test_training_not_available_raises_naming_the_local_trainer(fake, files):
    fake.training_available = False
    with pytest.raises(TrainingNotAvailable, match="DISTILL_TRAINER=local") as refused:
        submit(trainer(fake, Recorder()), files)
    assert isinstance(refused.value, RuntimeError)
    assert "2027-01-06" in str(refused.value) and "May 2026" in str(refused.value)
    assert fake.jobs == []


@pytest.mark.parametrize("code", ["unsupported_country_region_territory", None])
def test_a_403_with_another_code_names_the_refusal_and_the_next_step(fake, files, code):
    fake.add_fault(Fault("status", status=403, path=r"^/v1/fine_tuning/jobs$", method="POST", body={"error": {
        "message": "Your project is not allowed to create fine-tuning jobs.", "type": "invalid_request_error",
        "param": None, "code": code}}))
    with pytest.raises(OpenAIAccessDenied) as refused:
        submit(trainer(fake, Recorder()), files)
    message = str(refused.value)
    assert not isinstance(refused.value, openai.APIError)
    assert f"HTTP 403{' ' + code if code else ''}: Your project is not allowed" in message  # the cause
    assert "fine-tuning permission" in message and "rematerialize fine_tune_job" in message  # the next step
    assert "DISTILL_TRAINER=local" in message and "training_not_available" not in message
    assert fake.jobs == []


def test_a_401_on_submit_says_the_key_was_rejected_and_where_to_set_it(files):
    with FakeOpenAI(api_key="sk-the-right-key") as fake:
        t = OpenAITrainer(fake.client(api_key="sk-a-revoked-key"), Recorder().log, sleep=Recorder().sleep)
        with pytest.raises(OpenAIAccessDenied) as refused:
            submit(t, files)
    message = str(refused.value)
    assert "rejected the API key" in message and "HTTP 401 invalid_api_key" in message
    assert "OPENAI_API_KEY" in message and "rematerialize fine_tune_job" in message
    assert "sk-a-revoked-key" not in message


def test_a_401_while_following_a_job_says_to_resume_it_with_a_valid_key(fake, files):
    job = submit(trainer(fake, Recorder()), files)
    fake.api_key = "sk-rotated"  # the key was rotated while the job ran; the run still has the old one
    stale = OpenAITrainer(fake.client(api_key="sk-old"), Recorder().log, sleep=Recorder().sleep)
    with pytest.raises(OpenAIAccessDenied, match="rematerialize student_model to resume following the same job"):
        stale.wait(job["id"])
    assert len(fake.jobs) == 1


def test_a_401_fails_the_fine_tune_job_asset_with_the_clear_message(tmp_path):
    import dagster as dg

    from distill_pipeline import settings
    from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
    from distill_pipeline.defs.train import fine_tune_job

    pipeline = PipelineSettings(storage_root=str(tmp_path / "storage"), traces_dir=str(settings.DEFAULT_TRACES_DIR),
                                task_spec=str(settings.DEFAULT_TASK_SPEC), trainer="openai", preset="tiny",
                                general_examples=str(settings.DEFAULT_GENERAL_EXAMPLES))
    mix = pipeline.layout.asset_dir("training_mix")
    mix.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
    for name in ("train.jsonl", "validation.jsonl"):
        (mix / name).write_text(line + "\n")
    with FakeOpenAI(api_key="sk-the-right-key") as fake:
        result = dg.materialize([fine_tune_job], raise_on_error=False, resources={
            "pipeline": pipeline, "openai": OpenAIResource(api_key="sk-a-wrong-key", base_url=fake.base_url)})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.event_specific_data.error
    while error.cls_name != "OpenAIAccessDenied" and error.cause is not None:
        error = error.cause  # Dagster wraps what the asset raised
    assert error.cls_name == "OpenAIAccessDenied"
    assert "HTTP 401" in error.message and "OPENAI_API_KEY" in error.message


def test_a_rate_limit_with_retry_after_and_a_server_error_while_polling_are_survived(fake, files):
    rec = Recorder()
    t = trainer(fake, rec)
    job = submit(t, files)
    fake.add_fault(Fault.rate_limit(retry_after_s=7.0, path=JOB_PATH, method="GET"))
    fake.add_fault(Fault.server_error(500, path=JOB_PATH, method="GET"))
    result = t.wait(job["id"])
    assert result["status"] == "succeeded"
    assert [r.status for r in fake.requests(path=JOB_PATH)][:2] == [429, 500]
    assert 7.0 in rec.sleeps  # Retry-After was honoured
    assert any("HTTP 429" in line for line in rec.lines) and any("HTTP 500" in line for line in rec.lines)


def test_the_sdks_own_retries_come_first(fake, files):
    rec = Recorder()
    t = OpenAITrainer(fake.client(max_retries=2), rec.log, sleep=rec.sleep)
    job = submit(t, files)
    fake.add_fault(Fault.server_error(503, path=JOB_PATH, method="GET", retry_after_s=0.01), times=2)
    assert t.wait(job["id"])["status"] == "succeeded"
    assert not any("HTTP 503" in line for line in rec.lines)


def test_polling_backs_off_to_max_poll_s_and_restarts_at_each_new_status(fake, files):
    fake.job_polls_per_state = 4
    rec = Recorder()
    t = trainer(fake, rec, poll_s=1.0, max_poll_s=3.0)
    t.wait(submit(t, files)["id"])
    assert rec.sleeps[:7] == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 3.0]


def test_status_changes_and_events_are_logged_once_each(fake, files):
    rec = Recorder()
    t = trainer(fake, rec)
    t.wait(submit(t, files)["id"])
    events = [line for line in rec.lines if " event: " in line]
    assert len(events) == len(set(events))
    assert any("Fine-tuning job started" in line for line in events)
    assert any("Step 3/3" in line for line in events) and not any("Step 1/3" in line for line in events)
    assert any("running -> succeeded" in line for line in rec.lines)
    assert sum("checkpoint step 3" in line for line in rec.lines) == 1


def test_the_timeout_raises_with_the_resume_hint(fake, files):
    fake.job_polls_per_state = 1000
    rec = Recorder()
    t = trainer(fake, rec, poll_s=60.0, max_poll_s=300.0, timeout_s=900.0)
    job = submit(t, files)
    with pytest.raises(TimeoutError) as timed_out:
        t.wait(job["id"])
    text = str(timed_out.value)
    assert job["id"] in text and "still" in text and "student_model" in text and "no new job" in text
    assert rec.sleeps == [60.0, 120.0, 240.0, 300.0, 180.0]


def test_a_create_whose_answer_was_lost_does_not_submit_a_second_job(fake, files):
    fake.add_fault(Fault.slow(0.3, path=r"^/v1/fine_tuning/jobs$", method="POST"))
    created = threading.Event()

    def wait_for_the_server(seconds: float) -> None:
        # The fake creates the job after its delay; the retry looks only once it exists.
        for _ in range(200):
            if fake.jobs:
                created.set()
                return
            threading.Event().wait(0.01)

    t = OpenAITrainer(fake.client(timeout=0.1), Recorder().log, sleep=wait_for_the_server)
    job = submit(t, files)
    assert created.is_set()
    assert len(fake.jobs) == 1 and job["id"] == fake.jobs[0]["id"]
    assert len(fake.requests(method="POST", path=r"^/v1/fine_tuning/jobs$")) == 1
