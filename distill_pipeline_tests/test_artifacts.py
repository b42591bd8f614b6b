"""What one asset hands another: one type, one writer, one reader."""

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest

import distill_pipeline.defs
from distill_pipeline import settings
from distill_pipeline.backends.handoffs import Handoffs, holdout_line
from distill_pipeline.core.artifacts import EvalReport, FineTuneJob, MixEntry, MixRecord, ModelCard, StudentInfo
from distill_pipeline.core.capture import capture, iter_export_lines
from distill_pipeline.core.mix import MixConfig

LOCAL = StudentInfo(trainer="local", student="/s/student_model/local-1/adapter", job_id="local-1", key="k1",
                    base_model_dir="/s/base_models/tiny-llama-v1", preset="tiny", merged=None)
OPENAI = StudentInfo(trainer="openai", student="ft:gpt-4o-mini-2024-07-18:org:distill:abc", job_id="ftjob-1",
                     key="k2", manifest={"fine_tuned_model": "ft:gpt-4o-mini-2024-07-18:org:distill:abc"})


@pytest.mark.parametrize("student", [LOCAL, OPENAI], ids=["local", "openai"])
def test_the_student_reads_back_as_it_was_written(tmp_path, student):
    layout = Handoffs(tmp_path)
    layout.write_student(student)
    assert layout.read_student() == student


def test_student_json_keeps_the_keys_each_trainer_wrote_before_the_type():
    assert LOCAL.to_dict() == {"trainer": "local", "student": LOCAL.student, "base_model_dir": LOCAL.base_model_dir,
                               "job_id": "local-1", "key": "k1", "preset": "tiny", "merged": None}
    assert OPENAI.to_dict() == {"trainer": "openai", "student": OPENAI.student, "job_id": "ftjob-1", "key": "k2",
                                "manifest": OPENAI.manifest}


# -- every hand-off: written by its one writer, read back the same by its one reader --------------------------

JOB = FineTuneJob(job_id="local-k1", status="submitted", trainer="local", key="k1",
                  hyperparameters={"rank": 8, "target_modules": ["q_proj", "v_proj"]}, preset="tiny",
                  train_path="/s/training_mix/train.jsonl", validation_path="/s/training_mix/validation.jsonl",
                  train_sha256="a" * 64, validation_sha256="b" * 64, run_id="run-1")
MIX = MixRecord(general_share=0.15, validation_share=0.1, max_examples=None, per_intent_cap=3, seed=7,
                trainer="local", preset="tiny", pass_case_partitions={"2026-10-01": "c" * 64}, run_id="run-1",
                redaction={"enabled": True, "counts": {"name": 2}}, corpus={"domain_examples": 60})
REPORT = EvalReport(summary={"student_score": 0.9, "teacher_score": 1.0, "recommended_threshold": -0.5},
                    gate={"passed": True, "reasons": [], "checks": {}}, gate_config={"tolerance": 0.02},
                    student=LOCAL, run_id="run-2", decoding=None, created_at="2026-12-01T00:00:00+00:00",
                    records=[{"example_id": "c1", "student_score": 0.9}], plots={"ttft": "/s/ttft.png"})


# (how the asset writes it, where, what to drop, how it is read back, the asset to materialize)
HANDOFFS = {
    "student.json": (lambda h: h.write_student(LOCAL), Handoffs.student_path, "preset", Handoffs.read_student,
                     "student_model"),
    "job.json": (lambda h: h.write_job(JOB), Handoffs.job_path, "key", Handoffs.read_job, "fine_tune_job"),
    "report.json": (lambda h: h.write_report(REPORT, ""), Handoffs.report_path, "gate_config", Handoffs.read_report,
                    "student_eval_report"),
}


@pytest.mark.parametrize("name", HANDOFFS)
def test_a_hand_off_missing_a_field_names_it(tmp_path, name):
    write, path, drop, read, _ = HANDOFFS[name]
    layout = Handoffs(tmp_path)
    write(layout)
    path(layout).write_text(json.dumps({k: v for k, v in json.loads(path(layout).read_text()).items() if k != drop}))
    with pytest.raises(KeyError, match=f"{name} lacks {drop}"):
        read(layout)


@pytest.mark.parametrize("name", HANDOFFS)
def test_reading_a_hand_off_never_written_says_which_asset_to_materialize(tmp_path, name):
    *_, read, asset = HANDOFFS[name]
    with pytest.raises(FileNotFoundError, match=f"{asset} has not been materialized"):
        read(Handoffs(tmp_path))


def _card(job_id: str = "local-k1", student: str = "/s/adapter") -> ModelCard:
    return ModelCard(student=student, job_id=job_id, trainer="local", base_model="/s/base", base_model_sha256="d",
                     hyperparameters={"rank": 8}, training_files={"train_sha256": "a", "validation_sha256": "b"},
                     training_examples={"total": 2, "domain": 1, "general": 1},
                     pass_case_partitions={"2026-10-01": "c"}, graders={}, holdout={"domain_examples": 1},
                     evaluation={"student_score": 0.9}, gate={"passed": True}, redaction=None, corpus=None,
                     code_version="abc", dagster_runs={"training_mix": "run-1"}, training={"train_wall_s": 1.0},
                     training_traces={"path": "/s/t.parquet", "sha256": "e"})


def test_the_job_reads_back_as_it_was_written(tmp_path):
    layout = Handoffs(tmp_path)
    layout.write_job(JOB)
    assert layout.read_job() == JOB
    assert json.loads(layout.job_path().read_text()) == JOB.to_dict()


def test_job_json_keeps_the_keys_fine_tune_job_wrote_before_the_type():
    assert set(JOB.to_dict()) == {"job_id", "status", "trainer", "key", "hyperparameters", "preset", "train_path",
                                  "validation_path", "train_sha256", "validation_sha256", "run_id"}


def test_the_mix_record_and_its_examples_read_back_as_written(tmp_path):
    layout = Handoffs(tmp_path)
    entries = [MixEntry(file="train", source="domain", id="c1", intent="refill", content_hash="h1"),
               MixEntry(file="validation", source="general", id="g1", intent="general", content_hash="h2")]
    layout.write_mix_record(MIX)
    layout.write_mix_examples(entries)
    assert layout.read_mix_record() == MIX
    assert layout.read_mix_examples() == entries
    # the bytes training_mix wrote before the types: one sorted-key JSON object a line
    assert layout.mix_dir().joinpath("examples.jsonl").read_bytes().splitlines()[0] == (
        b'{"content_hash": "h1", "file": "train", "id": "c1", "intent": "refill", "source": "domain"}')


def test_mix_config_json_keeps_the_mix_settings_and_what_training_mix_added():
    assert set(MIX.to_dict()) == {f.name for f in dataclasses.fields(MixConfig)} | {
        "trainer", "preset", "pass_case_partitions", "redaction", "run_id", "corpus"}


def test_a_mix_record_written_before_the_corpus_was_recorded_reads_as_none(tmp_path):
    layout = Handoffs(tmp_path)
    layout.write_mix_record(MIX)
    path = layout.mix_dir() / "mix_config.json"
    path.write_text(json.dumps({k: v for k, v in MIX.to_dict().items() if k not in ("corpus", "redaction")}))
    assert layout.read_mix_record().corpus is None


def test_the_holdout_and_the_general_examples_read_back_as_written(tmp_path):
    from distill_pipeline.core.general import load_general_examples

    layout = Handoffs(tmp_path)
    general = load_general_examples(settings.DEFAULT_GENERAL_EXAMPLES.read_bytes().splitlines()).examples[:5]
    rows = capture(iter_export_lines("2026-10-01.jsonl", (settings.DEFAULT_TRACES_DIR / "2026-10-01.jsonl")
                                     .read_bytes())).rows[:5]
    layout.write_general_examples(general)
    layout.write_holdout_general(general[:2])
    layout.write_holdout_domain(holdout_line(r) for r in rows)
    assert layout.read_general_examples() == general
    assert layout.read_holdout_general() == general[:2]
    assert [(r.completion_id, r.content_hash, r.intent) for r in layout.read_holdout_domain()] == [
        (r.completion_id, r.content_hash, r.intent) for r in rows]
    assert layout.holdout_summary()["domain_examples"] == 5


def test_the_report_reads_back_as_written_and_keeps_its_figures_at_the_top(tmp_path):
    layout = Handoffs(tmp_path)
    layout.write_report(REPORT, "# report\n")
    assert layout.read_report() == REPORT
    written = json.loads(layout.report_path().read_text())
    assert written["student_score"] == 0.9 and written["student"] == LOCAL.to_dict()  # the gate reads the top level
    assert (layout.report_dir() / "report.md").read_text() == "# report\n"


def test_the_policy_reads_back_as_written(tmp_path):
    from distill_pipeline.routing import RoutingPolicy

    layout = Handoffs(tmp_path)
    policy = RoutingPolicy(student="/s/adapter", teacher_model="gpt-4o", threshold=-0.5, promoted=True,
                           created_at="2026-12-01T00:00:00+00:00", extra={"preset": "tiny"})
    history = layout.write_policy(policy)
    assert layout.read_policy() == policy
    assert layout.policy_path() == tmp_path / "routing_policy" / "current.json"  # CONTRACTS.md
    assert history.read_text() == layout.policy_path().read_text()


def test_model_cards_read_back_as_written_with_their_training_traces(tmp_path):
    layout = Handoffs(tmp_path)
    cards = [_card("local-k1", "/s/a1"), _card("local-k2", "/s/a2")]
    for card in cards:
        layout.write_model_card(card, "# card\n")
    row = {"file": "train", "source": "domain", "id": "c1", "intent": "refill", "content_hash": "h1",
           "partition": "2026-10-01"}
    layout.write_training_traces("local-k1", [row])
    assert [card for card, _ in layout.read_model_cards()] == cards
    assert layout.read_training_traces("local-k1") == [row]


def test_the_model_card_type_holds_every_key_build_model_card_writes():
    from distill_pipeline.core.audit import build_model_card

    built = build_model_card(student={}, job={}, manifest={}, training_examples=[], pass_case_partitions={},
                             graders={}, holdout={}, report={}, code_version="", run_ids={})
    assert set(built) | {"training_traces"} == {f.name for f in dataclasses.fields(ModelCard)}


# -- the asset modules reach each other's files through the hand-offs, never through each other ----------------

SHARED_DEFS = {"resources", "partitions", "util"}  # what every asset module may import


def _defs_imports(path: Path) -> set[str]:
    """The distill_pipeline.defs modules that a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "distill_pipeline.defs":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("distill_pipeline.defs."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("distill_pipeline.defs.")}
    return found


def test_no_asset_module_imports_another_asset_modules_helpers():
    defs_dir = Path(distill_pipeline.defs.__file__).parent
    crossing = {f"{path.stem} imports defs.{name}" for path in sorted(defs_dir.glob("*.py"))
                for name in _defs_imports(path) - SHARED_DEFS - {path.stem}}
    assert not crossing, (f"{sorted(crossing)}: read another asset's files through backends/handoffs.py (one writer, "
                          "one reader each), not through its module")


def test_the_import_check_sees_a_crossing_import(tmp_path):
    module = tmp_path / "audit.py"
    module.write_text("from distill_pipeline.defs.evaluate import read_report\n"
                      "from distill_pipeline.defs import train, util\nimport distill_pipeline.defs.curate\n")
    assert _defs_imports(module) - SHARED_DEFS == {"evaluate", "train", "curate"}


def test_no_asset_module_spells_a_storage_path():
    defs_dir = Path(distill_pipeline.defs.__file__).parent
    spelled = {f"{path.name}:{number}" for path in sorted(defs_dir.glob("*.py"))
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if re.search(r"asset_dir\(|partition_dir\(|\"\w+\.(json|jsonl|parquet|md)\"", line)}
    assert not spelled, f"storage paths spelled in asset modules (they belong in backends/handoffs.py): {spelled}"
