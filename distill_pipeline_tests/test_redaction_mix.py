"""Redaction proven on the real outputs: patient values planted in a corpus never reach the training files.

Every trace of two bundled days gets one more caller line holding made-up patient data, phrased the ways that
leaked before issue 16 (no "my name is", a title and a surname, "Last, First", a name spelled out, a UK number
with spaces, a day-first birth date with the month as a word, a bare record number). The pipeline then runs as
in the other asset tests (tiny preset): capture, graders, pass cases, holdout, mix. The decoded `train.jsonl`
and `validation.jsonl` must hold none of the planted values and every value the student must still learn.
"""

import json
import re
from pathlib import Path

import dagster as dg
import pytest

from distill_pipeline import settings
from distill_pipeline.definitions import ASSET_CHECKS, ASSETS
from distill_pipeline_tests.conftest import capture_days

DAYS = ["2026-10-01", "2026-10-02"]

# One line per trace, in turn; every value in PLANTED appears in at least one of them.
LINES = [  # short: the tiny preset's 256-token limit applies to every example
    "Caller: Mr. Quarshie, 07700 900 461.",
    "Caller: DOB 7 August 1969, record number 3318842.",
    "Caller: Under Vanterpool, Ximena Vanterpool.",
    "Caller: ximena.vp at example dot com",
    "Caller: V-A-N-T-E-R-P-O-O-L. Social 219 44 7781.",
    "Caller: 88 Hollyhock Lane. My wife Thandeka.",
    "Caller: +44 20 7946 0321. Nurse Patel said $412.35.",
]
PLANTED = ["Quarshie", "07700 900 461", "7 August 1969", "3318842", "Vanterpool", "Ximena",
           "ximena.vp at example dot com", "V-A-N-T-E-R-P-O-O-L", "219 44 7781", "88 Hollyhock Lane", "Thandeka",
           "+44 20 7946 0321"]
KEPT_PLANTED = ["$412.35", "Nurse Patel"]
PLACEHOLDER = re.compile(r"\[(?:PHONE|EMAIL|SSN|MRN|DOB|ADDRESS|NAME)_\d+\]")


def plant(source: Path, target: Path) -> int:
    """Copy a day's export with one planted line added to each transcript; returns how many were planted."""
    lines, planted = [], 0
    for raw in source.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(raw)
        except ValueError:
            lines.append(raw)  # the bundled day's deliberately broken lines stay as they are
            continue
        if not isinstance(row, dict):
            lines.append(raw)
            continue
        # A stored completion's request, or a chat example's messages before the answer.
        request = row.get("request_messages") or (row.get("messages") or [])[:-1]
        users = [m for m in request if isinstance(m, dict) and m.get("role") == "user"
                 and isinstance(m.get("content"), str)]
        if users:
            users[-1]["content"] += "\n" + LINES[planted % len(LINES)]
            planted += 1
        lines.append(json.dumps(row))
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return planted


@pytest.fixture(scope="module")
def mix_files(tmp_path_factory) -> list[dict]:
    root = tmp_path_factory.mktemp("planted")
    traces = root / "traces"
    traces.mkdir()
    assert sum(plant(settings.DEFAULT_TRACES_DIR / f"{day}.jsonl", traces / f"{day}.jsonl") for day in DAYS) >= 60
    pipeline, resources = capture_days(root, DAYS, traces)
    # The files are what leaves the machine, so they are read whatever the mix's checks say afterwards.
    result = dg.materialize(ASSETS + ASSET_CHECKS, resources=resources, raise_on_error=False,
                            selection=["general_examples", "eval_holdout", "training_mix"])
    assert "training_mix" in {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    mix = pipeline.layout.asset_dir("training_mix")
    return [json.loads(line) for name in ("train.jsonl", "validation.jsonl")
            for line in (mix / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def domain_examples(examples: list[dict]) -> list[dict]:
    return [e for e in examples if e["messages"][-2]["content"].startswith("Transcript:")]


def test_the_training_files_hold_the_planted_transcripts_redacted(mix_files):
    examples = domain_examples(mix_files)
    assert len(examples) >= 20  # the checks below are not vacuous: planted traces were trained on
    planted_lines = [e["messages"][-2]["content"].rsplit("\n", 1)[-1] for e in examples]
    assert [line for line in planted_lines if not PLACEHOLDER.search(line)] == []


def test_no_planted_patient_value_reaches_the_training_files(mix_files):
    text = "\n".join(m["content"] for e in mix_files for m in e["messages"])  # decoded, not the raw bytes
    assert [value for value in PLANTED if value in text] == []
    assert [value for value in PLANTED if value.lower() in text.lower()] == []


def test_every_value_the_student_must_learn_survives_in_the_training_files(mix_files):
    examples = domain_examples(mix_files)
    text = "\n".join(m["content"] for e in examples for m in e["messages"])
    assert all(value in text for value in KEPT_PLANTED)
    checked = 0
    for example in examples:
        request, answer = example["messages"][-2]["content"], json.loads(example["messages"][-1]["content"])
        for value in (answer.get("follow_up") or {}).values():
            if isinstance(value, str):  # the follow-up date, time and clinician: in the answer and the request
                assert not PLACEHOLDER.search(value) and value in request, (value, request)
                checked += 1
        for code in answer.get("icd10") or []:
            assert code in example["messages"][-1]["content"]
    assert checked >= 10
