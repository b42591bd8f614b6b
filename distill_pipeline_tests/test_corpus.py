"""Corpus size: the mix's domain count against the rule of thumb, and a warning that says how long capture takes."""

import dagster as dg
import pytest

from distill_pipeline.core.audit import build_model_card, render_model_card
from distill_pipeline.core.corpus import (
    CorpusSize,
    corpus_band,
    daily_pass_case_rate,
    days_of_capture,
)
from distill_pipeline.core.taskspec import TaskSpecError, parse_task_spec
from distill_pipeline.definitions import ASSET_CHECKS, ASSETS
from distill_pipeline_tests.specs import MINIMAL

WEEKS = {f"2026-10-{d:02d}": n for d, n in zip(range(1, 15), [10] * 7 + [40] * 7, strict=True)}


def test_days_of_capture_is_the_shortfall_over_the_daily_rate_rounded_up():
    assert days_of_capture(800, 40.0) == 20
    assert days_of_capture(801, 40.0) == 21


def test_no_days_of_capture_are_needed_when_nothing_is_short():
    assert days_of_capture(0, 40.0) == 0
    assert days_of_capture(-5, 0.0) == 0


def test_no_number_of_days_helps_when_nothing_arrives():
    assert days_of_capture(800, 0.0) is None


def test_the_daily_rate_is_the_mean_of_the_last_seven_captured_days():
    assert daily_pass_case_rate(WEEKS) == 40.0  # the first week's 10 a day is history
    assert daily_pass_case_rate({"2026-10-02": 30, "2026-10-01": 10}) == 20.0
    assert daily_pass_case_rate({}) == 0.0


@pytest.mark.parametrize(("examples", "band"), [(999, "below minimum"), (1_000, "minimum"), (4_999, "minimum"),
                                                (5_000, "ideal"), (15_000, "ideal"), (15_001, "above ideal")])
def test_a_count_falls_in_the_band_the_rule_of_thumb_gives(examples, band):
    assert corpus_band(examples) == band


def short_corpus(**overrides) -> CorpusSize:
    figures = {"domain_examples": 200, "domain_available": 200, "pass_cases": 250, "pass_cases_by_day": WEEKS}
    return CorpusSize(**{**figures, **overrides})


def test_a_short_corpus_is_below_the_minimum_and_names_the_days_of_capture_that_would_reach_it():
    corpus = short_corpus()
    # 40 pass cases a day, 80% of them usable (200 of 250): 32 a day; 800 more take 25 days
    assert corpus.below_minimum and corpus.capture_short
    assert corpus.days_to_minimum == 25
    assert "training_mix holds 200 domain examples (below minimum: at least 1,000, 5,000-15,000 ideal)" in (
        corpus.description())
    assert "25 more days of capture would reach 1,000" in corpus.description()


def test_the_minimum_is_the_task_specs():
    corpus = short_corpus(minimum=180)
    assert not corpus.below_minimum and corpus.days_to_minimum == 0
    assert corpus.description() == ("training_mix holds 200 domain examples (minimum: at least 180, "
                                    "5,000-15,000 ideal).")


def test_a_mix_capped_below_the_minimum_says_capture_is_not_what_is_short():
    corpus = short_corpus(domain_examples=283, domain_available=1_171, pass_cases=1_300, max_examples=333)
    assert corpus.below_minimum and not corpus.capture_short and corpus.days_to_minimum == 0
    assert "Capture is not what is short" in corpus.description()
    assert "max_examples (333 examples in all) left 888 of them out" in corpus.description()


def test_more_days_than_stored_completions_are_kept_says_to_keep_capture_running():
    corpus = short_corpus(pass_cases_by_day={"2026-10-01": 10})
    assert corpus.days_to_minimum == 100  # 8 usable a day
    assert "longer than the 30 days stored completions are kept" in corpus.description()


def test_a_corpus_with_no_recent_pass_cases_says_no_amount_of_capture_reaches_the_minimum():
    corpus = short_corpus(pass_cases_by_day={"2026-10-01": 0})
    assert corpus.days_to_minimum is None
    assert "no amount of capture reaches 1,000" in corpus.description()


def test_the_recorded_figures_give_the_same_verdict_back():
    corpus = short_corpus(max_examples=333)
    assert CorpusSize.from_dict(corpus.to_dict()) == corpus


def test_min_domain_examples_defaults_to_1000_and_can_be_set():
    assert parse_task_spec(MINIMAL).min_domain_examples == 1_000
    assert parse_task_spec(MINIMAL + "min_domain_examples: 5000\n").min_domain_examples == 5_000


@pytest.mark.parametrize("value", ["0", "'1,000'", "1000.5", "true"])
def test_a_min_domain_examples_that_is_not_a_positive_whole_number_names_the_line(value):
    with pytest.raises(TaskSpecError, match=r"spec.yaml line 16: min_domain_examples must be a whole number"):
        parse_task_spec(MINIMAL + f"min_domain_examples: {value}\n", "spec.yaml")


def card(corpus: CorpusSize | None) -> dict:
    return build_model_card(student={"student": "adapter"}, job={"job_id": "job-1", "trainer": "local"}, manifest={},
                            training_examples=[], pass_case_partitions={}, graders={}, holdout={}, report={},
                            code_version="abc", run_ids={}, corpus=corpus.to_dict() if corpus else None)


def test_the_model_card_records_the_corpus_size_and_the_checks_verdict():
    recorded = card(short_corpus())["corpus"]
    assert recorded["domain_examples"] == 200 and recorded["min_domain_examples"] == 1_000
    assert recorded["corpus_ideal_range"] == [5_000, 15_000] and recorded["corpus_days_to_minimum"] == 25
    assert recorded["check"]["passed"] is False and recorded["check"]["severity"] == "WARN"
    markdown = render_model_card(card(short_corpus()))
    assert "- Corpus: 200 domain examples (at least 1,000, 5,000-15,000 ideal); corpus_size check WARN: " in markdown
    assert "corpus_size check passed" in render_model_card(card(short_corpus(minimum=100)))
    assert card(None)["corpus"] is None and "Corpus" not in render_model_card(card(None))


# ---------------------------------------------------------------------------- the check on the bundled corpus

DAYS = ["2026-10-01", "2026-10-02", "2026-10-03"]
MIX = ["general_examples", "eval_holdout", "training_mix"]


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    from distill_pipeline_tests.conftest import capture_days

    root = tmp_path_factory.mktemp("corpus")
    pipeline, _ = capture_days(root, DAYS)
    return pipeline, root


def mix_with_minimum(pipeline, root, minimum: int):
    from distill_pipeline import settings
    from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
    from distill_pipeline_tests.conftest import pipeline_fields

    spec = root / f"task-{minimum}.yaml"
    spec.write_text(settings.DEFAULT_TASK_SPEC.read_text().replace("min_domain_examples: 1000",
                                                                   f"min_domain_examples: {minimum}"))
    variant = PipelineSettings(**{**pipeline_fields(pipeline), "task_spec": str(spec)})
    result = dg.materialize(ASSETS + ASSET_CHECKS, resources={"pipeline": variant, "openai": OpenAIResource()},
                            selection=MIX)
    assert result.success  # a WARN never fails the run
    (mix,) = [e.materialization.metadata for e in result.get_asset_materialization_events()
              if e.asset_key.path[-1] == "training_mix"]
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "corpus_size"]
    return mix, check


def test_the_mix_records_its_domain_count_against_the_rule_of_thumb_and_the_check_warns_below_1000(captured):
    mix, check = mix_with_minimum(*captured, 1_000)
    assert mix["corpus_min_recommended"].value == 1_000 and mix["corpus_ideal_range"].value == [5_000, 15_000]
    assert mix["corpus_band"].value == "below minimum" and mix["min_domain_examples"].value == 1_000
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    days = mix["corpus_days_to_minimum"].value
    assert days > 0 and f"{days} more days of capture would reach 1,000" in check.description


def test_the_check_passes_once_the_mix_holds_the_task_specs_minimum(captured):
    pipeline, root = captured
    domain = mix_with_minimum(pipeline, root, 1_000)[0]["domain_examples"].value
    mix, check = mix_with_minimum(pipeline, root, domain)
    assert check.passed is True and mix["corpus_band"].value == "minimum"
    _, check = mix_with_minimum(pipeline, root, domain + 1)
    assert check.passed is False
