"""Secrets: the OpenAI key comes from the environment only and ends up in no file, log, metadata or run record.

`capture_job` runs in a child process, as `dagster` would run it: Definitions loaded from the environment, a
real (SQLite) Dagster instance under DAGSTER_HOME, the Stored Completions source and the LLM judge pointed at
the fake server, which accepts only the canary key. Afterwards every byte under DAGSTER_HOME and the storage
root, and everything the run printed, is searched for the key.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from distill_pipeline import settings
from distill_pipeline_tests.fake_openai import FakeOpenAI
from distill_pipeline_tests.specs import judged_task_spec

DAY = "2026-10-01"
CHILD = """
import sys
from dagster import DagsterInstance
from distill_pipeline.definitions import defs

job = defs.resolve_job_def("capture_job")
result = job.execute_in_process(partition_key=sys.argv[1], instance=DagsterInstance.get(), raise_on_error=False)
print("capture_job", "succeeded" if result.success else "failed", flush=True)
"""


def judge(messages: list[dict], model: str) -> str:
    return "Faithful summary.\nScore: 8"




def seed(fake: FakeOpenAI, tmp: Path) -> None:
    stored = tmp / "stored.jsonl"
    lines = []
    for path in sorted(settings.DEFAULT_TRACES_DIR.glob(f"{DAY}*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if isinstance(json.loads(line), dict):
                    lines.append(line)
            except ValueError:
                continue
    stored.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fake.load_export(stored, validate=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    canary = f"sk-test-CANARY-{secrets.token_hex(16)}"
    home, storage = tmp / "dagster_home", tmp / "storage"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with FakeOpenAI(api_key=canary, responder=judge) as fake:
        seed(fake, tmp)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENAI_", "DISTILL_", "DAGSTER_"))}
        env.update(OPENAI_API_KEY=canary, OPENAI_BASE_URL=fake.base_url, DISTILL_TRACE_SOURCE="openai",
                   DAGSTER_HOME=str(home), DISTILL_STORAGE_ROOT=str(storage), DISTILL_PRESET="tiny",
                   DISTILL_TASK_SPEC=str(judged_task_spec(tmp)))
        child = subprocess.run([sys.executable, "-c", CHILD, DAY], cwd=settings.REPO_ROOT, env=env,
                               capture_output=True, timeout=600)
        requests = fake.requests()
    return canary, home, storage, child, requests


def test_the_run_used_the_key_from_the_environment(run):
    canary, _, _, child, requests = run
    assert b"capture_job succeeded" in child.stdout, child.stderr[-3000:].decode(errors="replace")
    # The fake answers 401 to any other key: every answered call carried the canary.
    assert requests and all(r.authorized and r.status != 401 for r in requests)
    paths = {r.path for r in requests}
    assert "/v1/chat/completions" in paths and any(p.endswith("/messages") for p in paths)
    assert any(r.method == "POST" and r.path == "/v1/chat/completions" for r in requests)  # the judge


def test_the_key_is_in_no_file_under_dagster_home_or_the_storage_root(run):
    canary, home, storage, _, _ = run
    files = [p for root in (home, storage) for p in root.rglob("*") if p.is_file()]
    databases = [p for p in files if p.suffix == ".db"]
    assert any(DAY.encode() in p.read_bytes() for p in databases)  # a real SQLite instance, readable as bytes
    assert any(p.name == "teacher_traces.parquet" for p in files)
    token = canary.removeprefix("sk-test-CANARY-").encode()
    leaks = [str(p) for p in files if canary.encode() in p.read_bytes() or token in p.read_bytes()]
    assert leaks == []


def test_the_key_is_in_no_log_line_the_run_printed(run):
    canary, _, _, child, _ = run
    token = canary.removeprefix("sk-test-CANARY-").encode()
    output = child.stdout + child.stderr
    assert b"teacher_traces" in output  # the run's logs were captured
    assert canary.encode() not in output and token not in output
