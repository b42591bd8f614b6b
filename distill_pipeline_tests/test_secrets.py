"""Secrets: the OpenAI key comes from the environment only and ends up in no file, log, metadata or run record.

The whole pipeline runs in a child process, as `dagster` would run it: Definitions loaded from the environment,
a real (SQLite) Dagster instance under DAGSTER_HOME, every external call pointed at the fake server, which
accepts only the canary key: `capture_job` for two days (the Stored Completions source and the LLM judge), then
`retrain_job` (the mix, OpenAI fine-tuning with the tiny preset, the student's evaluation, the routing policy and
the model card). Afterwards every file under DAGSTER_HOME and the storage root is read back and its decoded
values are searched for the key: Parquet (zstd-compressed) column by column, JSONL line by line, JSON, and
every cell of the SQLite databases; the raw bytes of every file, and everything the run printed, too.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill_pipeline import settings
from distill_pipeline.backends.storage import write_records
from distill_pipeline.defs.automation import CAPTURE_ASSETS, RETRAIN_ASSETS
from distill_pipeline_tests.fake_openai import FakeOpenAI
from distill_pipeline_tests.specs import judged_task_spec
from distill_pipeline_tests.test_faults import LENIENT_GATE, responder
from distill_pipeline_tests.test_faults import seed as seed_stored_completions

DAYS = ["2026-10-01", "2026-10-03"]  # days whose lines all carry their own `created`
CHILD = """
import json, sys
from dagster import DagsterInstance
from distill_pipeline.backends.openai_trainer import OpenAITrainer
from distill_pipeline.definitions import defs

# The fake fine-tunes in a few polls; the trainer's production waits (30 s polls) would only slow the test.
OpenAITrainer.__init__.__kwdefaults__.update(sleep=lambda seconds: None, poll_s=0.01, max_poll_s=0.01)
instance = DagsterInstance.get()
for day in sys.argv[2:]:
    result = defs.resolve_job_def("capture_job").execute_in_process(
        partition_key=day, instance=instance, raise_on_error=False)
    print("capture_job", day, "succeeded" if result.success else "failed", flush=True)
result = defs.resolve_job_def("retrain_job").execute_in_process(
    run_config=json.loads(sys.argv[1]), instance=instance, raise_on_error=False)
print("retrain_job", "succeeded" if result.success else "failed", flush=True)
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    canary = f"sk-test-CANARY-{secrets.token_hex(16)}"
    home, storage = tmp / "dagster_home", tmp / "storage"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with FakeOpenAI(api_key=canary, responder=responder) as fake:
        seed_stored_completions(fake, tmp, DAYS)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENAI_", "DISTILL_", "DAGSTER_"))}
        env.update(OPENAI_API_KEY=canary, OPENAI_BASE_URL=fake.base_url, DISTILL_TRACE_SOURCE="openai",
                   DISTILL_TRAINER="openai", DISTILL_PRESET="tiny", DAGSTER_HOME=str(home),
                   DISTILL_STORAGE_ROOT=str(storage), DISTILL_TASK_SPEC=str(judged_task_spec(tmp)))
        child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(LENIENT_GATE), *DAYS],
                               cwd=settings.REPO_ROOT, env=env, capture_output=True, timeout=600)
        requests = fake.requests()
    return canary, home, storage, child, requests


# -- reading every file back -------------------------------------------------------------------------------------


def strings(value: Any) -> Iterator[str]:
    """Every string in a decoded value (keys included), and every other scalar as text."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", errors="replace")
    elif value is not None:
        yield str(value)


def decoded(path: Path) -> tuple[str, Iterator[str]]:
    """(how the file was read, its decoded values)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return "parquet", strings([table.schema.to_string(), table.to_pylist()])
    if path.suffix == ".jsonl":
        return "jsonl", (text for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
                         for text in strings(json.loads(line)))
    if path.suffix == ".json":
        return "json", strings(json.loads(path.read_text(encoding="utf-8")))
    if path.suffix == ".db":
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            cells = [cell for name in tables for row in db.execute(f'SELECT * FROM "{name}"') for cell in row]
        return "sqlite", strings(cells)
    return "text", iter([path.read_bytes().decode("utf-8", errors="replace")])


def leaks(roots: list[Path], secret: str) -> tuple[list[str], dict[str, int]]:
    """Files whose decoded values or raw bytes hold the secret (or its random part), and how many files were
    read each way."""
    token = secret.removeprefix("sk-test-CANARY-")
    found, read = [], {}
    for path in sorted(p for root in roots for p in root.rglob("*") if p.is_file()):
        kind, texts = decoded(path)
        read[kind] = read.get(kind, 0) + 1
        raw = path.read_bytes()
        if any(secret in t or token in t for t in texts) or secret.encode() in raw or token.encode() in raw:
            found.append(f"{path} ({kind})")
    return found, read


# -- the run -------------------------------------------------------------------------------------------------------


def test_the_whole_pipeline_ran_on_the_key_from_the_environment(run):
    canary, _, storage, child, requests = run
    printed = child.stdout.decode()
    for day in DAYS:
        assert f"capture_job {day} succeeded" in printed, child.stderr[-3000:].decode(errors="replace")
    assert "retrain_job succeeded" in printed, child.stderr[-3000:].decode(errors="replace")
    # The fake answers 401 to any other key: every answered call carried the canary.
    assert requests and all(r.authorized and r.status != 401 for r in requests)
    calls = {(r.method, r.path.rsplit("/", 1)[0] if r.path.startswith("/v1/fine_tuning/jobs/") else r.path)
             for r in requests}
    assert ("GET", "/v1/chat/completions") in calls and any(p.endswith("/messages") for _, p in calls)
    assert ("POST", "/v1/chat/completions") in calls  # the judge in curation, the student in evaluation
    assert ("POST", "/v1/files") in calls and ("POST", "/v1/fine_tuning/jobs") in calls
    student = json.loads((storage / "student_model" / "student.json").read_text())["student"]
    evaluated = [r.json() for r in requests if (r.method, r.path) == ("POST", "/v1/chat/completions")]
    assert any(body["model"] == student for body in evaluated)
    # Every step of the pipeline wrote its outputs under the storage root.
    assert {a for a in CAPTURE_ASSETS + RETRAIN_ASSETS if not (storage / a).is_dir()} == set()
    assert json.loads((storage / "routing_policy" / "current.json").read_text())["student"] == student


def test_the_key_is_in_no_decoded_value_of_any_file_under_dagster_home_or_the_storage_root(run):
    canary, home, storage, _, _ = run
    found, read = leaks([home, storage], canary)
    assert found == []
    # Every kind of file was really read back, decoded.
    assert read["parquet"] >= 3 * len(DAYS) + 1 and read["jsonl"] >= 4 and read["json"] >= 5 and read["sqlite"] >= 2


def test_the_key_is_in_no_log_line_the_run_printed(run):
    canary, _, _, child, _ = run
    token = canary.removeprefix("sk-test-CANARY-").encode()
    output = child.stdout + child.stderr
    assert b"teacher_traces" in output and b"routing_policy" in output  # the run's logs were captured
    assert canary.encode() not in output and token not in output


# -- the search itself -------------------------------------------------------------------------------------------


def test_the_search_finds_a_key_that_zstd_hides_from_a_byte_search(tmp_path):
    canary = "sk-test-CANARY-" + "0123456789abcdef" * 2
    rng = random.Random(3)
    words = "the caller asked about a refill for her blood pressure medication and a follow up next week".split()
    records = [{"id": f"row-{i}", "text": " ".join(rng.choice(words) for _ in range(40))} for i in range(400)]
    records[200]["text"] += f" key={canary}"
    path = tmp_path / "leaky.parquet"
    write_records(path, records, pa.schema([("id", pa.string()), ("text", pa.string())]))  # as the pipeline writes
    assert canary.encode() not in path.read_bytes()  # what the old canary test searched
    assert leaks([tmp_path], canary)[0] == [f"{path} (parquet)"]


def test_the_search_reads_every_sqlite_cell_and_json_string(tmp_path):
    canary = f"sk-test-CANARY-{secrets.token_hex(16)}"
    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute("CREATE TABLE event_logs (id INTEGER, event TEXT)")
        db.execute("INSERT INTO event_logs VALUES (1, ?)", (json.dumps({"config": {"api_key": canary}}),))
    db.close()
    escaped = "".join(f"\\u{ord(c):04x}" for c in canary)  # valid JSON; no byte of it spells the key
    (tmp_path / "metadata.json").write_text('{"key": "' + escaped + '"}')
    found, _ = leaks([tmp_path], canary)
    assert found == [f"{tmp_path / 'metadata.json'} (json)", f"{tmp_path / 'runs.db'} (sqlite)"]
