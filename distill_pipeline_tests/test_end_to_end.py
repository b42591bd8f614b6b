"""The bundled pipeline end to end with the tiny model: capture to model card, then the audit questions."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from distill_pipeline import settings
from distill_pipeline.backends.handoffs import Handoffs
from distill_pipeline.backends.storage import StorageLayout
from distill_pipeline.cli import audit
from distill_pipeline.core.mix import domain_example, messages_key
from distill_pipeline.core.redaction import redact_example
from distill_pipeline.core.taskspec import load_task_spec
from distill_pipeline.definitions import ASSET_CHECKS, ASSETS
from distill_pipeline.defs.automation import CAPTURE_ASSETS, RETRAIN_ASSETS
from distill_pipeline.routing import policy_history

pytest.importorskip("peft")

DAYS = ["2026-10-01", "2026-10-02", "2026-10-03"]
# The tiny model cannot beat the teacher; open the gate so the whole chain runs.
LENIENT_GATE = {"ops": {"student_eval_report": {"config": {
    "tolerance": 1.0, "max_teacher_share": 1.0, "intent_floor": 0.0, "min_schema_pass_rate": 0.0,
    "structured_ratio": 0.0}}}}


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    from distill_pipeline import settings
    from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings

    root = tmp_path_factory.mktemp("e2e")
    pipeline = PipelineSettings(storage_root=str(root / "storage"), traces_dir=str(settings.DEFAULT_TRACES_DIR),
                                task_spec=str(settings.DEFAULT_TASK_SPEC),
                                general_examples=str(settings.DEFAULT_GENERAL_EXAMPLES), preset="tiny")
    resources = {"pipeline": pipeline, "openai": OpenAIResource()}
    assets, checks = ASSETS, ASSET_CHECKS
    with dg.instance_for_test() as instance:
        for day in DAYS:
            result = dg.materialize(assets + checks, partition_key=day, resources=resources, instance=instance,
                                    selection=CAPTURE_ASSETS)
            assert result.success
        result = dg.materialize(assets + checks, resources=resources, instance=instance, selection=RETRAIN_ASSETS,
                                run_config=LENIENT_GATE)
        assert result.success
        yield Path(pipeline.storage_root), result, resources, instance


def test_the_student_is_exported_merged_for_serving_engines(pipeline_run):
    root, result, *_ = pipeline_run
    student = json.loads((root / "student_model" / "student.json").read_text())
    merged = Path(student["merged"])
    assert merged.parent == Path(student["student"]).parent and merged.name == "merged"
    assert (merged / "config.json").is_file() and list(merged.glob("*.safetensors"))
    assert (merged / "tokenizer.json").is_file() and not (merged / "adapter_config.json").exists()
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("student_model")]
    assert event.materialization.metadata["merged_model"].value == str(merged)


def test_the_pipeline_writes_a_routing_policy_and_a_model_card(pipeline_run):
    root, result, *_ = pipeline_run
    policy = json.loads((root / "routing_policy" / "current.json").read_text())
    assert policy["promoted"] is True and policy["threshold"] is not None
    (card_path,) = root.glob("model_card/*/model_card.json")
    card = json.loads(card_path.read_text())
    assert card["training_files"]["train_sha256"]
    assert set(card["pass_case_partitions"]) == set(DAYS)


def test_the_eval_report_carries_the_contract_metadata(pipeline_run):
    _, result, *_ = pipeline_run
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey("student_eval_report")]
    metadata = event.materialization.metadata
    for key in ("base_score", "student_score", "teacher_score", "routed_score", "recommended_threshold",
                "teacher_share", "student_ttft_p50_ms", "teacher_ttft_p50_ms", "student_cost_per_call",
                "teacher_cost_per_call", "student_ttft_single_p50_ms", "student_ttft_single_p95_ms",
                "routed_ttft_p50_ms", "ttft_ratio", "cost_ratio"):
        assert key in metadata
    # the student timed one request at a time, streaming: a figure, and below the batch's wait for a first token
    assert 0 < metadata["student_ttft_single_p50_ms"].value <= metadata["student_ttft_single_p95_ms"].value
    assert "plot/ttft_served" in metadata
    # teacher_score is the teacher scored against its own answer: 1.0 by construction, so not evidence of anything
    # the UI shows rounded figures; report.json keeps full precision
    report = json.loads((pipeline_run[0] / "student_eval_report" / "report.json").read_text())
    assert metadata["student_score"].value == round(report["student_score"], 3)
    assert metadata["teacher_share"].value in ("none", round(report["teacher_share"] or 0, 3))


def test_audit_answers_what_trained_this_model(pipeline_run):
    root, *_ = pipeline_run
    (card_path,) = root.glob("model_card/*/model_card.json")
    card = json.loads(card_path.read_text())
    code, text = audit(card["student"], root)
    assert code == 0
    assert card["training_files"]["train_sha256"] in text and "training_traces.parquet" in text


def test_audit_answers_which_models_a_trace_trained(pipeline_run):
    root, *_ = pipeline_run
    (traces_path,) = root.glob("model_card/*/training_traces.parquet")
    rows = pq.read_table(traces_path).to_pylist()
    domain = next(r for r in rows if r["source"] == "domain")
    assert domain["partition"] in DAYS
    code, text = audit(domain["id"], root)
    assert code == 0 and "trained 1 model" in text
    holdout = json.loads((root / "eval_holdout" / "domain.jsonl").read_text().splitlines()[0])
    code, text = audit(holdout["id"], root)
    assert code == 1  # a held-out trace trained nothing


def test_every_training_trace_id_is_a_pass_case_and_none_is_held_out(pipeline_run):
    root, *_ = pipeline_run
    (traces_path,) = root.glob("model_card/*/training_traces.parquet")
    trained = {r["id"] for r in pq.read_table(traces_path).to_pylist() if r["source"] == "domain"}
    passed = set()
    for day in DAYS:
        passed |= set(pq.read_table(root / "pass_cases" / day / "pass_cases.parquet").column("completion_id")
                      .to_pylist())
    held = {json.loads(line)["id"] for line in (root / "eval_holdout" / "domain.jsonl").read_text().splitlines()}
    assert trained <= passed and not trained & held


# -- the audit trail, from the outside: the CLI as a user runs it, and the files themselves ---------------------


def distill_audit(ref: str, root: Path, *, via_env: bool) -> subprocess.CompletedProcess:
    """`distill audit <ref>` in a child process, as a user runs it (the console script when installed)."""
    script = Path(sys.executable).with_name("distill")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "distill_pipeline.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILL_")}
    if via_env:
        env["DISTILL_STORAGE_ROOT"] = str(root)
        args = ["audit", ref]
    else:
        args = ["audit", ref, "--storage-root", str(root)]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=300)


def the_card(root: Path) -> dict:
    (card_path,) = root.glob("model_card/*/model_card.json")
    return json.loads(card_path.read_text())


def listed_traces(root: Path) -> list[dict]:
    (traces_path,) = root.glob("model_card/*/training_traces.parquet")
    return pq.read_table(traces_path).to_pylist()


def test_distill_audit_of_the_student_prints_what_trained_it(pipeline_run):
    root, *_ = pipeline_run
    card = the_card(root)
    child = distill_audit(card["student"], root, via_env=False)
    assert child.returncode == 0, child.stderr
    assert f"# Model card: {card['student']}" in child.stdout and child.stderr == ""
    assert card["training_files"]["train_sha256"] in child.stdout and "training_traces.parquet" in child.stdout


def test_distill_audit_of_a_trace_names_the_model_it_trained_and_a_held_out_trace_none(pipeline_run):
    root, *_ = pipeline_run
    card = the_card(root)
    trained = next(r for r in listed_traces(root) if r["source"] == "domain")
    child = distill_audit(trained["id"], root, via_env=True)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith(f"Trace {trained['id']} trained 1 model(s):") and card["student"] in child.stdout
    held = json.loads((root / "eval_holdout" / "domain.jsonl").read_text().splitlines()[0])["id"]
    refused = distill_audit(held, root, via_env=True)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"{held!r} is neither a student" in refused.stderr and card["student"] in refused.stderr


def test_the_cards_training_file_hashes_are_those_of_the_files_on_disk(pipeline_run):
    root, *_ = pipeline_run
    files = the_card(root)["training_files"]
    mix = root / "training_mix"
    assert files["train_sha256"] == hashlib.sha256((mix / "train.jsonl").read_bytes()).hexdigest()
    assert files["validation_sha256"] == hashlib.sha256((mix / "validation.jsonl").read_bytes()).hexdigest()


def test_every_example_in_the_training_files_has_its_trace_id_listed(pipeline_run):
    """Each line of train.jsonl and validation.jsonl, matched by its (redacted) messages to the pass case or
    general example it came from, is listed in training_traces.parquet in file order: all of them, no more."""
    root, *_ = pipeline_run
    rules = load_task_spec(settings.DEFAULT_TASK_SPEC).redaction_rules
    layout = StorageLayout(root)
    origin: dict[str, set[tuple[str, str]]] = {}  # messages as written -> (source, id) it can come from
    for day in DAYS:
        for row in layout.read_traces("pass_cases", day):
            written = redact_example(domain_example(row), rules).messages
            origin.setdefault(messages_key(written), set()).add(("domain", row.completion_id))
    for example in Handoffs(root).read_general_examples():
        written = redact_example({"messages": example.messages}, rules)["messages"]
        origin.setdefault(messages_key(written), set()).add(("general", example.id))
    listed = listed_traces(root)
    for name in ("train", "validation"):
        lines = (root / "training_mix" / f"{name}.jsonl").read_text().splitlines()
        rows = [r for r in listed if r["file"] == name]
        assert len(rows) == len(lines) > 0
        for number, (line, row) in enumerate(zip(lines, rows, strict=True), start=1):
            sources = origin.get(messages_key(json.loads(line)["messages"]), set())
            assert (row["source"], row["id"]) in sources, f"{name}.jsonl line {number}: listed {row['id']}"
    assert len(listed) == the_card(root)["training_examples"]["total"]


def test_the_model_card_records_the_corpus_size_and_the_corpus_size_checks_verdict(pipeline_run):
    root, result = pipeline_run[:2]
    corpus = the_card(root)["corpus"]
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "corpus_size"]
    (mix,) = [e.materialization.metadata for e in result.get_asset_materialization_events()
              if e.asset_key == dg.AssetKey("training_mix")]
    assert corpus["domain_examples"] == mix["domain_examples"].value < 1_000
    assert corpus["check"]["passed"] is check.passed is False  # a WARN: the run still succeeded
    assert corpus["check"]["description"] == check.description


# The gate through the assets, after the tests above (they read the promoted run): the tiny model cannot beat the
# teacher, so the open gate promoted it and the default gate refuses it.
SMALL = {"max_examples": 6, "base_examples": 2, "general_examples": 2}
# The tiny model cannot beat the teacher: the open gate promotes it, the default gate refuses it.
OPEN_GATE = {"ops": {"student_eval_report": {"config": {
    "tolerance": 1.0, "max_teacher_share": 1.0, "intent_floor": 0.0, "min_schema_pass_rate": 0.0,
    "structured_ratio": 0.0, "champion_tolerance": 1.0, **SMALL}}}}
DEFAULT_GATE = {"ops": {"student_eval_report": {"config": SMALL}}}


def evaluate_and_gate(resources, instance, run_config) -> dg.ExecuteInProcessResult:
    return dg.materialize(ASSETS + ASSET_CHECKS, resources=resources, instance=instance,
                          selection=["student_eval_report", "routing_policy"], run_config=run_config,
                          raise_on_error=False)


def test_a_refused_student_leaves_the_policy_in_force_byte_identical(pipeline_run):
    root, _, resources, instance = pipeline_run
    current = root / "routing_policy" / "current.json"
    before = current.read_bytes()
    history_before = {p.name: p.read_bytes() for p in policy_history(current)}
    assert json.loads(before)["promoted"] is True

    result = evaluate_and_gate(resources, instance, DEFAULT_GATE)

    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate"]
    assert not check.passed
    reasons = check.metadata["reasons"].value
    assert reasons and any("teacher" in r or "threshold" in r or "valid JSON" in r for r in reasons)
    assert current.read_bytes() == before
    assert {p.name: p.read_bytes() for p in policy_history(current)} == history_before
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("routing_policy")]
    assert event.materialization.metadata["promoted"].value is False


def test_the_student_in_force_is_scored_beside_the_challenger(pipeline_run):
    root, _, resources, instance = pipeline_run
    current = root / "routing_policy" / "current.json"
    policy = json.loads(current.read_text())
    # The policy in force names another copy of the same adapter: a champion that is not the challenger.
    champion_dir = root / "champion"
    shutil.copytree(Path(policy["student"]).parent, champion_dir)
    current.write_text(json.dumps({**policy, "student": str(champion_dir / "adapter")}))

    result = evaluate_and_gate(resources, instance, OPEN_GATE)

    report = json.loads((root / "student_eval_report" / "report.json").read_text())
    assert report["champion"]["student"] == str(champion_dir / "adapter")
    # same weights, same held-out calls, same greedy decoding: the same score
    assert report["champion_score"] == pytest.approx(report["student_score"])
    assert report["gate"]["checks"]["champion"]["passed"] is True
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey("student_eval_report")]
    metadata = event.materialization.metadata
    assert metadata["champion_score"].value == pytest.approx(report["champion_score"], abs=1e-3)
    for key in ("field_accuracy", "all_structured_right", "routing_auroc"):
        assert key in metadata
    assert "Champion and challenger" in metadata["report"].value
