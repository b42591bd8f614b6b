"""The mix assets on the bundled corpus: determinism, the blocking checks, the contract metadata."""

import dagster as dg
import pytest

from distill_pipeline.definitions import ASSET_CHECKS, ASSETS

DAYS = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
MIX = ["general_examples", "eval_holdout", "training_mix"]


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    from distill_pipeline_tests.conftest import capture_days

    return capture_days(tmp_path_factory.mktemp("mix"), DAYS)


def run_mix(resources, selection=MIX):
    result = dg.materialize(ASSETS + ASSET_CHECKS, resources=resources, selection=selection, raise_on_error=False)
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    return result, events, checks


def test_two_materializations_of_the_mix_write_the_same_bytes(captured):
    _, resources = captured
    _, first, _ = run_mix(resources)
    _, second, _ = run_mix(resources)
    for key in ("train_sha256", "validation_sha256", "examples_sha256"):
        assert first["training_mix"][key].value == second["training_mix"][key].value


def test_the_mix_reports_the_contract_keys_and_the_configured_ratio(captured):
    _, resources = captured
    result, events, checks = run_mix(resources)
    metadata = events["training_mix"]
    domain, general = metadata["domain_examples"].value, metadata["general_examples"].value
    assert metadata["train_examples"].value + metadata["validation_examples"].value == domain + general
    assert abs(general - 0.15 * (domain + general)) <= 1
    assert checks == {"training_mix_format": True, "training_mix_no_leakage": True, "training_mix_ratio": True,
                      "corpus_size": False}  # a WARN, not a failure: the tiny mix is far below 1,000


def test_the_leakage_check_catches_a_planted_holdout_example(captured):
    pipeline, resources = captured
    run_mix(resources)
    mix_dir = pipeline.layout.asset_dir("training_mix")
    holdout_line = (pipeline.layout.asset_dir("eval_holdout") / "domain.jsonl").read_bytes().splitlines()[0]
    train = mix_dir / "train.jsonl"
    train.write_bytes(train.read_bytes() + holdout_line + b"\n")
    result = dg.materialize(ASSETS + ASSET_CHECKS, resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks_for_assets("training_mix"))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["training_mix_no_leakage"] is False


def test_the_format_check_catches_a_broken_line(captured):
    pipeline, resources = captured
    run_mix(resources)
    train = pipeline.layout.asset_dir("training_mix") / "train.jsonl"
    train.write_bytes(train.read_bytes() + b'{"messages": [{"role": "user", "content": "no answer"}]}\n')
    result = dg.materialize(ASSETS + ASSET_CHECKS, resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks_for_assets("training_mix"))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["training_mix_format"] is False


def test_too_few_general_examples_fail_with_a_clear_message(captured, tmp_path):
    from distill_pipeline.defs.resources import PipelineSettings
    from distill_pipeline_tests.conftest import pipeline_fields

    pipeline, resources = captured
    few = tmp_path / "general.jsonl"
    few.write_bytes(b"".join(open(pipeline.general_examples, "rb").readlines()[:25]))
    starved = PipelineSettings(**{**pipeline_fields(pipeline), "general_examples": str(few)})
    result = dg.materialize(ASSETS + ASSET_CHECKS, resources={**resources, "pipeline": starved},
                            selection=MIX, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure and "training_mix" in (e.step_key or ""))
    assert "general examples" in failure.event_specific_data.error.message


def test_patient_names_are_redacted_and_do_not_train_traces_never_reach_a_training_file(captured):
    import json

    from distill_pipeline_tests.conftest import load_labels

    pipeline, resources = captured
    _, events, _ = run_mix(resources)
    counts = events["training_mix"]["redaction_counts"].value
    assert events["training_mix"]["redaction_enabled"].value is True and counts["name"] > 0
    mix_dir = pipeline.layout.asset_dir("training_mix")
    text = (mix_dir / "train.jsonl").read_text() + (mix_dir / "validation.jsonl").read_text()
    assert "[NAME_1]" in text
    trained = {json.loads(line)["id"] for line in (mix_dir / "examples.jsonl").read_text().splitlines()}
    excluded = {label["completion_id"] for label in load_labels()
                if label["kind"] == "do_not_train" and label["partition"] in DAYS}
    assert excluded and not trained & excluded


def check_mix(resources) -> dict:
    result = dg.materialize(ASSETS + ASSET_CHECKS, resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks_for_assets("training_mix"))
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_the_ratio_check_counts_general_examples_in_the_training_files_themselves(captured):
    import json

    pipeline, resources = captured
    run_mix(resources)
    mix_dir = pipeline.layout.asset_dir("training_mix")
    listed = [json.loads(line) for line in (mix_dir / "examples.jsonl").read_text().splitlines()]
    train = (mix_dir / "train.jsonl").read_bytes().splitlines()
    sources = [e["source"] for e in listed if e["file"] == "train"]
    assert len(sources) == len(train)
    general_line = train[sources.index("general")]
    # Five domain lines of train.jsonl become general ones; examples.jsonl and the line count stay as they were.
    swapped = set([i for i, s in enumerate(sources) if s == "domain"][:5])
    (mix_dir / "train.jsonl").write_bytes(b"".join(
        (general_line if i in swapped else line) + b"\n" for i, line in enumerate(train)))
    ratio = check_mix(resources)["training_mix_ratio"]
    assert ratio.passed is False
    general_before = sources.count("general")
    assert ratio.metadata["train_general"].value == general_before + 5
    assert ratio.metadata["train_total"].value == len(train)
    assert f"train has {general_before + 5} general of {len(train)}" in ratio.description


def test_the_ratio_check_fails_when_a_file_holds_examples_that_examples_jsonl_does_not_list(captured):
    pipeline, resources = captured
    run_mix(resources)
    validation = pipeline.layout.asset_dir("training_mix") / "validation.jsonl"
    validation.write_bytes(b"".join(line + b"\n" for line in validation.read_bytes().splitlines()[:-1]))
    ratio = check_mix(resources)["training_mix_ratio"]
    assert ratio.passed is False and "examples.jsonl lists" in ratio.description
    run_mix(resources)
    assert check_mix(resources)["training_mix_ratio"].passed is True  # rewritten: whole again
