"""Faults: with a share of every external call failing, the pipeline completes with the same outputs.

Every external call goes to the fake OpenAI server, once clean and once with `FAULT_RATE` (20%; set
DISTILL_FAULT_RATE to try another) of all calls failing at random: 429 with Retry-After, 500, 502, 503 and
connection resets, plus scripted timeouts. The outputs must be equal.

Fast tests cover each external call on its own: the Stored Completions source (through the teacher_traces
asset), the OpenAI fine-tuning trainer, and the chat models used to evaluate the student and to judge.
The whole pipeline runs twice in the default suite (about 40 s on 2 cores), capture to model card, every external
call through Dagster: once clean, once with FAULT_RATE of the calls failing (fault seed 11). `make test-slow`
repeats the faulty run with two more fault seeds, so the faults land on other calls.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from distill_pipeline import settings
from distill_pipeline.backends.chat_models import OpenAIChatModel
from distill_pipeline.backends.openai_trainer import OpenAITrainer
from distill_pipeline.core.graders import build_graders, grade_trace
from distill_pipeline.core.taskspec import load_task_spec
from distill_pipeline.core.traces import parse_line
from distill_pipeline.definitions import ASSET_CHECKS, ASSETS
from distill_pipeline.defs.automation import CAPTURE_ASSETS, RETRAIN_ASSETS
from distill_pipeline.defs.capture import teacher_traces
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
from distill_pipeline_tests.fake_openai import FakeOpenAI, Fault
from distill_pipeline_tests.specs import judged_task_spec

FAULT_RATE = float(os.environ.get("DISTILL_FAULT_RATE", "0.2"))
DAYS = ["2026-10-01", "2026-10-03"]  # days whose lines all carry their own `created`
CLOCK = 1_790_000_000.0  # the fake's clock: job and file timestamps equal in both runs
TIMEOUT_S = 1.0  # the client's timeout; a scripted slow answer takes longer
SLOW_S = TIMEOUT_S * 2.5
MAX_RETRIES = 8  # the SDK's retries: with 20% faults, 9 failures in a row are a 1-in-2-million event
RANDOM_FAULTS = (
    Fault.rate_limit(retry_after_s=0.01),
    Fault.server_error(500, retry_after_s=0.01),
    Fault.server_error(502),
    Fault.server_error(503, retry_after_s=0.01),
    Fault.reset(),
)
# Timeouts on reads and on stateless completions only: the fake still answers a slow request in the end, so a
# slow POST that creates something would really create it twice. (A create whose answer is lost is covered
# in test_openai_trainer.)
LISTING_TIMEOUT = Fault.slow(SLOW_S, path=r"^/v1/chat/completions$", method="GET")
MESSAGES_TIMEOUT = Fault.slow(SLOW_S, path=r"/messages$", method="GET")
JOB_TIMEOUT = Fault.slow(SLOW_S, path=r"^/v1/fine_tuning/jobs/ftjob-[^/]+$", method="GET")
COMPLETION_TIMEOUT = Fault.slow(SLOW_S, path=r"^/v1/chat/completions$", method="POST")
# Refusals before anything is created, where a random fault may not land in a short run.
TRAINER_FAULTS = (
    Fault.server_error(503, path=r"^/v1/files$", method="POST"),
    Fault.reset(path=r"^/v1/files$", method="GET"),
    Fault.rate_limit(retry_after_s=0.01, path=r"^/v1/fine_tuning/jobs$", method="POST"),
    Fault.server_error(500, path=r"/events$"),
)
LENIENT_GATE = {"ops": {"student_eval_report": {"config": {
    "tolerance": 1.0, "max_teacher_share": 1.0, "intent_floor": 0.0, "min_schema_pass_rate": 0.0,
    "structured_ratio": 0.0}}}}
TIMINGS = ("student_ttft_ms", "student_latency_ms")
STUDENT_ANSWER = json.dumps({"intent": "book_follow_up", "icd10": [], "follow_up": {
    "needed": False, "date": None, "time": None, "clinician": None},
    "soap": {"subjective": "", "objective": "", "assessment": "", "plan": ""}})


def responder(messages: list[dict[str, Any]], model: str) -> str:
    """The judge scores every answer 8/10; the student answers with a fixed JSON object."""
    if str(messages[0].get("content", "")).startswith("You grade"):
        return "The note is faithful.\nScore: 8"
    return STUDENT_ANSWER


def fake_openai(fault_rate: float, *scripted: Fault, fault_seed: int = 11) -> FakeOpenAI:
    """A fake whose random faults start once it is seeded (`arm`): seeding is set-up, not an external call."""
    fake = FakeOpenAI(clock=lambda: CLOCK, responder=responder, fault_seed=fault_seed, random_faults=RANDOM_FAULTS)
    fake.armed_rate, fake.armed_faults = fault_rate, scripted
    return fake


def arm(fake: FakeOpenAI) -> None:
    fake.fault_rate = fake.armed_rate
    if fake.armed_rate:
        for fault in fake.armed_faults:
            fake.add_fault(fault)


def bundled_lines(days: list[str]) -> list[str]:
    lines = []
    for day in days:
        for path in sorted(settings.DEFAULT_TRACES_DIR.glob(f"{day}*.jsonl")):
            lines += path.read_text(encoding="utf-8").splitlines()
    return lines


def seed(fake: FakeOpenAI, tmp: Path, days: list[str]) -> None:
    """Store the bundled days' completions in the fake, as the API would hold them (lines that are not JSON
    objects cannot be stored, so the API never lists them)."""
    kept = []
    tmp.mkdir(parents=True, exist_ok=True)
    for line in bundled_lines(days):
        try:
            if isinstance(json.loads(line), dict):
                kept.append(line)
        except ValueError:
            continue
    export = tmp / "stored.jsonl"
    export.write_text("\n".join(kept) + "\n", encoding="utf-8")
    fake.load_export(export, validate=False)


def bundled_traces(n: int) -> list:
    rows = []
    for line in bundled_lines(DAYS[:1]):
        try:
            rows.append(parse_line(line))
        except ValueError:
            continue
    return rows[:n]




def pipeline_settings(tmp: Path) -> PipelineSettings:
    return PipelineSettings(storage_root=str(tmp / "storage"), trace_source="openai",
                            traces_dir=str(settings.DEFAULT_TRACES_DIR), task_spec=str(judged_task_spec(tmp)),
                            general_examples=str(settings.DEFAULT_GENERAL_EXAMPLES), trainer="openai", preset="tiny")


def openai_resource(fake: FakeOpenAI) -> OpenAIResource:
    return OpenAIResource(api_key="sk-fake", base_url=fake.base_url, timeout_s=TIMEOUT_S, max_retries=MAX_RETRIES)


def faulted(fake: FakeOpenAI) -> Counter:
    return Counter(r.fault for r in fake.requests() if r.fault)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Each external call on its own


def capture_day(tmp: Path, fault_rate: float) -> tuple[dict[str, Any], FakeOpenAI]:
    with fake_openai(fault_rate, LISTING_TIMEOUT, MESSAGES_TIMEOUT) as fake:
        seed(fake, tmp, DAYS[:1])
        arm(fake)
        result = dg.materialize([teacher_traces], partition_key=DAYS[0],
                                resources={"pipeline": pipeline_settings(tmp), "openai": openai_resource(fake)})
    (event,) = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    return meta, fake


def test_capture_from_the_api_under_faults_writes_the_same_partition(tmp_path):
    clean, _ = capture_day(tmp_path / "clean", 0.0)
    faulty, fake = capture_day(tmp_path / "faulty", FAULT_RATE)
    assert faulty["sha256"] == clean["sha256"] and faulty["quarantine_sha256"] == clean["quarantine_sha256"]
    keys = ("dagster/row_count", "input_rows", "quarantined_rows", "duplicate_rows", "do_not_train_rows")
    assert [faulty[k] for k in keys] == [clean[k] for k in keys] and clean["dagster/row_count"] > 40
    assert faulted(fake)[f"delay {SLOW_S}s"] == 2 and sum(faulted(fake).values()) >= 3


def train(tmp: Path, fault_rate: float) -> tuple[dict[str, Any], FakeOpenAI]:
    examples = [row.chat_example() for row in bundled_traces(24)]
    train_path, validation_path = tmp / "train.jsonl", tmp / "validation.jsonl"
    tmp.mkdir(parents=True, exist_ok=True)
    train_path.write_text("".join(json.dumps(e) + "\n" for e in examples[:14]))
    validation_path.write_text("".join(json.dumps(e) + "\n" for e in examples[14:]))
    with fake_openai(fault_rate, JOB_TIMEOUT, *TRAINER_FAULTS) as fake:
        arm(fake)
        trainer = OpenAITrainer(fake.client(max_retries=MAX_RETRIES, timeout=TIMEOUT_S), log=lambda line: None,
                                sleep=lambda seconds: None)
        job = trainer.submit(train_path, validation_path, model="gpt-4o-mini-2024-07-18", suffix="distill",
                             key="faults-test")
        result = trainer.wait(job["id"])
    return result, fake


def test_the_trainer_under_faults_submits_one_job_and_returns_the_same_model(tmp_path):
    clean, clean_fake = train(tmp_path / "clean", 0.0)
    faulty, fake = train(tmp_path / "faulty", FAULT_RATE)
    assert faulty == clean and faulty["fine_tuned_model"].startswith("ft:gpt-4o-mini")
    assert len(fake.jobs) == len(clean_fake.jobs) == 1
    assert [f.status for f in fake.requests(method="POST", path=r"^/v1/files$")].count(200) == 2
    assert faulted(fake)[f"delay {SLOW_S}s"] == 1 and {"status 503", "status 429", "reset"} <= set(faulted(fake))


def answer_and_judge(tmp: Path, fault_rate: float) -> tuple[list, FakeOpenAI]:
    traces = bundled_traces(6)
    with fake_openai(fault_rate, COMPLETION_TIMEOUT) as fake:
        arm(fake)
        client = fake.client(max_retries=MAX_RETRIES, timeout=TIMEOUT_S)
        student = OpenAIChatModel(client, model="ft:gpt-4o-mini-2024-07-18:org:distill:000001")
        answers = [student.complete(t.request_messages) for t in traces]
        tmp.mkdir(parents=True, exist_ok=True)
        task = load_task_spec(judged_task_spec(tmp))
        judge = OpenAIChatModel(client, model="gpt-4o-2024-08-06")
        graders = [g for g in build_graders(task, judge=judge, judge_cache={}) if g.type == "llm_judge"]
        verdicts = [grade_trace(graders, t) for t in traces]
    return [((a.text, a.token_logprobs, a.prompt_tokens, a.completion_tokens), v)
            for a, v in zip(answers, verdicts, strict=True)], fake


def test_the_student_and_the_judge_under_faults_give_the_same_answers_and_verdicts(tmp_path):
    clean, _ = answer_and_judge(tmp_path / "clean", 0.0)
    faulty, fake = answer_and_judge(tmp_path / "faulty", FAULT_RATE)
    assert faulty == clean
    assert all(v[0].passed and v[0].score == 0.8 for _, v in faulty)
    assert faulted(fake)[f"delay {SLOW_S}s"] == 1 and sum(faulted(fake).values()) >= 2


# ---------------------------------------------------------------------------------------------------------------
# The whole pipeline, clean and under faults (in the default suite; more fault seeds in `make test-slow`)


def outputs(root: Path) -> dict[str, Any]:
    """What a run produced, minus what is wall-clock by nature (run ids, timestamps, measured latencies)."""
    got: dict[str, Any] = {}
    for day in DAYS:
        for asset, name in (("teacher_traces", "teacher_traces.parquet"), ("teacher_traces", "quarantine.parquet"),
                            ("trace_evals", "trace_evals.parquet"), ("pass_cases", "pass_cases.parquet")):
            got[f"{asset}/{day}/{name}"] = sha(root / asset / day / name)
    for name in ("train.jsonl", "validation.jsonl", "examples.jsonl"):
        got[f"training_mix/{name}"] = sha(root / "training_mix" / name)
    for name in ("domain.jsonl", "general.jsonl"):
        got[f"eval_holdout/{name}"] = sha(root / "eval_holdout" / name)
    job = json.loads((root / "fine_tune_job" / "job.json").read_text())
    got["fine_tune_job"] = {k: job[k] for k in ("job_id", "key", "status", "train_sha256", "validation_sha256")}
    student = json.loads((root / "student_model" / "student.json").read_text())
    got["student"] = student["student"]
    report = json.loads((root / "student_eval_report" / "report.json").read_text())
    got["eval_records"] = [{k: v for k, v in r.items() if k not in TIMINGS} for r in report["records"]]
    for record in got["eval_records"]:  # each step is (confidence, ms since the request): keep the confidences
        steps = record.get("student_confidence_steps") or {}
        record["student_confidence_steps"] = {signal: [c for c, _ in s] for signal, s in steps.items()}
    got["eval_scores"] = {k: report[k] for k in ("student_score", "teacher_score", "recommended_threshold")}
    policy = json.loads((root / "routing_policy" / "current.json").read_text())
    got["routing_policy"] = {k: policy[k] for k in ("student", "threshold", "promoted", "teacher_only_intents")}
    (card_traces,) = root.glob("model_card/*/training_traces.parquet")
    got["model_card/training_traces.parquet"] = sha(card_traces)
    got["llm_judge_cache"] = json.loads((root / "llm_judge_cache" / "cache.json").read_text())
    return got


def run_pipeline(tmp: Path, fault_rate: float, fault_seed: int = 11) -> tuple[dict[str, Any], FakeOpenAI]:
    """Capture and curate DAYS from the Stored Completions API, then train on OpenAI, evaluate and route."""
    scripted = (LISTING_TIMEOUT, MESSAGES_TIMEOUT, JOB_TIMEOUT, COMPLETION_TIMEOUT, *TRAINER_FAULTS)
    with fake_openai(fault_rate, *scripted, fault_seed=fault_seed) as fake:
        seed(fake, tmp, DAYS)
        arm(fake)
        resources = {"pipeline": pipeline_settings(tmp), "openai": openai_resource(fake)}
        with dg.instance_for_test() as instance:
            for day in DAYS:
                result = dg.materialize(ASSETS + ASSET_CHECKS, partition_key=day, resources=resources,
                                        instance=instance, selection=CAPTURE_ASSETS)
                assert result.success
            result = dg.materialize(ASSETS + ASSET_CHECKS, resources=resources, instance=instance,
                                    selection=RETRAIN_ASSETS, run_config=LENIENT_GATE)
            assert result.success
        return outputs(tmp / "storage"), fake


def run_with_instant_trainer(tmp: Path, fault_rate: float, fault_seed: int = 11) -> tuple[dict[str, Any], FakeOpenAI]:
    with pytest.MonkeyPatch.context() as patch:
        # The assets build the trainer with its production waits (30 s polls, back-off); here they are instant.
        defaults = OpenAITrainer.__init__.__kwdefaults__
        patch.setitem(defaults, "sleep", lambda seconds: None)
        patch.setitem(defaults, "poll_s", 0.01)
        patch.setitem(defaults, "max_poll_s", 0.01)
        return run_pipeline(tmp, fault_rate, fault_seed)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    return run_with_instant_trainer(tmp_path_factory.mktemp("clean"), 0.0)


# One faulty run in the default suite; two more fault sequences in `make test-slow`.
@pytest.fixture(scope="module", params=[11, pytest.param(12, marks=pytest.mark.slow),
                                        pytest.param(13, marks=pytest.mark.slow)], ids=lambda seed: f"seed{seed}")
def runs(request, tmp_path_factory, clean_run):
    clean, clean_fake = clean_run
    faulty, faulty_fake = run_with_instant_trainer(tmp_path_factory.mktemp("faulty"), FAULT_RATE, request.param)
    return clean, faulty, clean_fake, faulty_fake


def _family(method: str, path: str) -> str:
    if path.startswith("/v1/fine_tuning"):
        return "fine-tuning"
    if path.startswith("/v1/files"):
        return "files"
    if path == "/v1/chat/completions" and method == "POST":
        return "chat completions"  # the judge and the student
    return "stored completions"


def test_the_faults_hit_every_kind_of_external_call_of_the_pipeline(runs):
    _, _, clean_fake, faulty_fake = runs
    assert not faulted(clean_fake)
    calls = faulty_fake.requests()
    share = sum(r.fault is not None for r in calls) / len(calls)
    assert share >= FAULT_RATE * 0.6, f"only {share:.1%} of {len(calls)} calls failed"
    assert {"status 429", "status 500", "status 502", "status 503", "reset", f"delay {SLOW_S}s"} <= \
        set(faulted(faulty_fake))
    hit = {_family(r.method, r.path) for r in calls if r.fault}
    assert hit == {"stored completions", "fine-tuning", "files", "chat completions"}


def test_capture_and_curation_under_faults_write_the_same_files(runs):
    clean, faulty, _, _ = runs
    for key in clean:
        if key.startswith(("teacher_traces/", "trace_evals/", "pass_cases/")):
            assert faulty[key] == clean[key], key
    assert faulty["llm_judge_cache"] == clean["llm_judge_cache"]


def test_the_training_files_under_faults_are_the_same_bytes(runs):
    clean, faulty, _, _ = runs
    for key in clean:
        if key.startswith(("training_mix/", "eval_holdout/")):
            assert faulty[key] == clean[key], key


def test_faults_in_the_pipeline_never_submit_a_second_fine_tuning_job(runs):
    clean, faulty, clean_fake, faulty_fake = runs
    assert len(faulty_fake.jobs) == len(clean_fake.jobs) == 1
    assert faulty["fine_tune_job"] == clean["fine_tune_job"]
    assert faulty["student"] == clean["student"] and faulty["student"].startswith("ft:")
    assert [f.status for f in faulty_fake.requests(method="POST", path=r"^/v1/files$")].count(200) == 2


def test_the_evaluation_and_the_routing_policy_under_faults_are_the_same(runs):
    clean, faulty, _, _ = runs
    assert faulty["eval_records"] == clean["eval_records"]
    assert faulty["eval_scores"] == clean["eval_scores"]
    assert faulty["routing_policy"] == clean["routing_policy"]
    assert faulty["model_card/training_traces.parquet"] == clean["model_card/training_traces.parquet"]
