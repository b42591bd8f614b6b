"""The real SmolLM2 student, trained for a few minutes: it must beat its base model by a wide margin.

`make test-slow` runs it (about 5-8 minutes on 2 cores). It trains with the demo's recipe on a shorter schedule
(150 calls x 2 epochs) through bench/local_student.py and scores 24 held-out calls field by field, decoded as
the router decodes them.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("real-student")
    done = subprocess.run([sys.executable, str(REPO / "bench" / "local_student.py"), "--train", "150", "--eval", "24",
                           "--with-base", "--constrained", "--out", str(out)],
                          capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


def test_the_student_gets_far_more_calls_fully_right_than_its_base_model(summary: dict) -> None:
    student, base = summary["results"]["student"], summary["results"]["base"]
    assert student["all_structured_right"] >= base["all_structured_right"] + 0.5
    assert student["field_scores"]["intent"] >= 0.9 and student["field_scores"]["icd10"] >= 0.85


def test_every_student_answer_is_schema_valid_json(summary: dict) -> None:
    assert summary["results"]["student"]["valid_json"] == 1.0
    assert summary["results"]["student"]["soap_token_f1"] >= 0.8
