"""Redaction on the blind labelled set (phi_blind/): transcripts written by a helper who never read the detectors.

batch1 is the working set (its misses may show which kinds of phrasing leak; no rule is fitted to one of its
cases), batch2 was held back until the detectors were done. Scoring is in phi_scoring.py: a PHI value counts
as redacted when it no longer appears in the redacted transcript, a kept value as kept when it appears as
often as before.
"""

import pytest

from distill_pipeline.core.redaction import PHI_TYPES, RedactionRules
from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec
from distill_pipeline_tests.phi_scoring import BLIND_DIR, Score, load_rows, score_rows

BATCHES = {"batch1": 200, "batch2": 80}  # file -> the fewest transcripts it was written with


def bundled_rules() -> RedactionRules:
    return load_task_spec(default_task_spec_path()).redaction_rules


@pytest.fixture(scope="module", params=sorted(BATCHES))
def batch(request) -> tuple[str, list[dict], Score]:
    rows = load_rows(BLIND_DIR / f"{request.param}.jsonl")
    score = score_rows(rows, bundled_rules())
    print("\n" + score.table(f"blind {request.param}"))
    return request.param, rows, score


def test_each_blind_batch_is_the_size_it_was_written_with_and_labels_every_type(batch):
    name, rows, score = batch
    assert len(rows) >= BATCHES[name]
    assert all(score.expected[kind] >= 20 for kind in PHI_TYPES)


@pytest.mark.parametrize("kind", PHI_TYPES)
def test_recall_on_the_blind_set_is_at_least_99_percent_for_every_type(batch, kind):
    _, _, score = batch
    assert score.recall(kind) >= 0.99, [m for m in score.misses if m[1] == kind]


def test_every_kept_value_of_the_blind_set_is_kept(batch):
    _, _, score = batch
    assert score.lost == []
    assert sum(score.keep_total.values()) >= 100


# batch3: written by a third helper, after the detectors were tuned on batch1 and batch2, from the task description
# alone; measured once and not tuned to. It falls short of the 0.99 goal for five types (README: the blind figures),
# so these are the measured figures, held as floors: a change that loses recall here fails, one that gains does
# not need this file to move. Fixing what it misses needs a fresh batch4 to measure the fix.
BATCH3_FLOORS = {"phone": 21 / 21, "email": 17 / 17, "ssn": 14 / 16, "mrn": 16 / 20, "dob": 31 / 36,
                 "address": 16 / 17, "name": 137 / 141}


@pytest.fixture(scope="module")
def batch3() -> Score:
    score = score_rows(load_rows(BLIND_DIR / "batch3.jsonl"), bundled_rules())
    print("\n" + score.table("blind batch3"))
    return score


@pytest.mark.parametrize("kind", PHI_TYPES)
def test_recall_on_the_fresh_blind_batch_does_not_fall_below_what_was_measured(batch3: Score, kind: str):
    assert batch3.recall(kind) >= BATCH3_FLOORS[kind] - 1e-9, [m for m in batch3.misses if m[1] == kind]


def test_the_fresh_blind_batch_keeps_every_clinician_date_time_code_and_amount(batch3: Score):
    assert not [lost for lost in batch3.lost if lost[1] in {"clinician", "follow_up_date", "time", "icd10", "amount"}]
