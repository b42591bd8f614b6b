import hashlib
import json
import random
from dataclasses import dataclass

import dagster as dg
import pytest

from distill_pipeline.backends.handoffs import holdout_line
from distill_pipeline.backends.storage import SortedSpill, StorageLayout
from distill_pipeline.core.finetune_format import check_lines
from distill_pipeline.core.general import GeneralExample, parse_general_example
from distill_pipeline.core.mix import (
    MixConfig,
    MixError,
    NotEnoughGeneralExamples,
    TraceKey,
    build_mix,
    holdout_score,
    leaks,
    max_examples_for_train,
    mix_sizes,
    ratio_ok,
    split_holdout,
    to_jsonl,
)
from distill_pipeline.core.redaction import RedactionReport, redact_example
from distill_pipeline.core.traces import TraceRow, parse_record
from distill_pipeline.defs.mix import HoldoutConfig, MixSettings, mix_config

INTENTS = ["book_follow_up", "medication_refill", "test_results", "billing_question"]


def trace(i: int, intent: str = "book_follow_up") -> TraceRow:
    return parse_record({
        "id": f"chatcmpl-{i:05d}",
        "metadata": {"intent": intent},
        "messages": [
            {"role": "system", "content": "Summarise the call as JSON."},
            {"role": "user", "content": f"Transcript {i}: caller asks about {intent}."},
            {"role": "assistant", "content": json.dumps({"intent": intent, "n": i})},
        ],
    })


def domain(n: int, intents: list[str] = INTENTS) -> list[TraceRow]:
    return [trace(i, intents[i % len(intents)]) for i in range(n)]


def general(n: int, categories: tuple[str, ...] = ("arithmetic", "spelling", "capitals")) -> list[GeneralExample]:
    return [parse_general_example({
        "id": f"gen-{i:04d}",
        "category": categories[i % len(categories)],
        "messages": [{"role": "user", "content": f"What is {i} + 1?"}, {"role": "assistant", "content": str(i + 1)}],
        "check": {"type": "exact", "value": str(i + 1)},
    }) for i in range(n)]


@dataclass(frozen=True)
class Item:
    content_hash: str


def items(n: int, start: int = 0) -> list[Item]:
    return [Item(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(start, start + n)]


# --- determinism ----------------------------------------------------------------------------


def test_the_same_inputs_give_byte_identical_files():
    first = build_mix(domain(120), general(40), MixConfig())
    second = build_mix(domain(120), general(40), MixConfig())
    assert to_jsonl(first.train) == to_jsonl(second.train)
    assert to_jsonl(first.validation) == to_jsonl(second.validation)


def test_inputs_in_another_order_give_byte_identical_files():
    rows, extras = domain(120), general(40)
    first = build_mix(rows, extras, MixConfig())
    random.Random(1).shuffle(rows)
    random.Random(2).shuffle(extras)
    second = build_mix(rows, extras, MixConfig())
    assert to_jsonl(first.train) == to_jsonl(second.train)
    assert to_jsonl(first.validation) == to_jsonl(second.validation)


def test_another_seed_gives_another_order():
    first = build_mix(domain(120), general(40), MixConfig(seed=7))
    second = build_mix(domain(120), general(40), MixConfig(seed=8))
    assert to_jsonl(first.train) != to_jsonl(second.train)


# --- sizes and ratio ------------------------------------------------------------------------


def test_the_default_mix_is_85_percent_domain_and_15_percent_general():
    mix = build_mix(domain(170), general(100), MixConfig())
    assert (mix.count("domain"), mix.count("general")) == (170, 30)


@pytest.mark.parametrize("total", [20, 100, 353, 1000])
def test_the_general_share_is_exact_to_within_one_example(total):
    mix = build_mix(domain(1000), general(200), MixConfig(max_examples=total))
    assert len(mix.examples) == total
    assert abs(mix.count("general") - total * 0.15) <= 1
    assert ratio_ok(mix, MixConfig(max_examples=total))[0]


@pytest.mark.parametrize("share", [0.0, 0.1, 0.15, 0.3, 0.5])
def test_a_configured_general_share_is_honoured(share):
    config = MixConfig(general_share=share, max_examples=353)
    mix = build_mix(domain(1000), general(200), config)
    assert abs(mix.count("general") - 353 * share) <= 1
    assert ratio_ok(mix, config)[0]


@pytest.mark.parametrize("n_domain", [7, 50, 333])
def test_the_domain_supply_sets_the_total_when_there_is_no_maximum(n_domain):
    mix = build_mix(domain(n_domain), general(200), MixConfig())
    assert mix.count("domain") == n_domain
    assert abs(mix.count("general") - len(mix.examples) * 0.15) <= 1


def test_sizes_never_ask_for_more_domain_examples_than_there_are():
    for available in range(0, 400):
        n_domain, n_general = mix_sizes(available, 0.15)
        assert n_domain <= available
        assert abs(n_general - (n_domain + n_general) * 0.15) <= 1


def test_max_examples_caps_train_and_validation_together():
    mix = build_mix(domain(500), general(200), MixConfig(max_examples=60))
    assert len(mix.train) + len(mix.validation) == 60


@pytest.mark.parametrize("general_share,validation_share", [(0.15, 0.10), (0.15, 0.0), (0.3, 0.25), (0.0, 0.1)])
def test_the_train_cap_is_the_most_a_mix_puts_in_train(general_share, validation_share):
    domain_rows, general_rows = domain(700), general(300)

    def train_size(max_examples: int) -> int:
        config = MixConfig(general_share=general_share, validation_share=validation_share, max_examples=max_examples)
        return len(build_mix(domain_rows, general_rows, config).train)

    for cap in (*range(1, 40), 64, 299, 300, 301):
        total = max_examples_for_train(cap, general_share, validation_share)
        assert train_size(total) <= cap, (cap, total)
        assert train_size(total + 1) > cap, (cap, total)  # the largest such total


def test_the_cpu_preset_trains_on_exactly_its_cap():
    # ceil(300 / 0.9) = 334 put 301 examples in train: each source rounds its own validation share.
    config = mix_config(MixSettings(), _Pipeline("cpu"))  # mix_config reads only the preset's name
    mix = build_mix(domain(700), general(300), config)
    assert config.max_examples == 333
    assert len(mix.train) == 300


@dataclass(frozen=True)
class _Pipeline:
    preset: str


def test_too_few_general_examples_raise_with_the_numbers_and_the_ways_out():
    with pytest.raises(NotEnoughGeneralExamples) as caught:
        build_mix(domain(170), general(10), MixConfig())
    message = str(caught.value)
    assert "needs 30 general examples" in message and "only 10" in message
    assert "add at least 20 general examples" in message
    assert "lower general_share to 0.05 or less" in message


def test_the_suggested_lower_share_really_fits_the_general_supply():
    with pytest.raises(NotEnoughGeneralExamples) as caught:
        build_mix(domain(170), general(10), MixConfig())
    mix = build_mix(domain(170), general(10), MixConfig(general_share=caught.value.suggested_share))
    assert mix.count("general") <= 10


def test_no_domain_examples_raise_a_clear_error():
    with pytest.raises(MixError, match="no domain examples"):
        build_mix([], general(10), MixConfig())


# --- stratification -------------------------------------------------------------------------


def test_rare_intents_survive_a_small_max_examples():
    rows = [trace(i, "book_follow_up") for i in range(300)]
    rows += [trace(1000 + i, "referral_request") for i in range(3)] + [trace(2000, "insurance_update")]
    mix = build_mix(rows, general(50), MixConfig(max_examples=20))
    intents = mix.metadata()["domain_by_intent"]
    assert intents["referral_request"] == 3 and intents["insurance_update"] == 1


def test_the_per_intent_cap_limits_an_over_represented_intent():
    rows = [trace(i, "book_follow_up") for i in range(200)] + [trace(1000 + i, "billing_question") for i in range(30)]
    mix = build_mix(rows, general(50), MixConfig(per_intent_cap=40))
    assert mix.metadata()["domain_by_intent"] == {"billing_question": 30, "book_follow_up": 40}
    assert mix.capped_out == 160


def test_validation_takes_its_share_of_each_source():
    mix = build_mix(domain(170), general(100), MixConfig(validation_share=0.1))
    assert mix.count("domain", mix.validation) == 17
    assert mix.count("general", mix.validation) == 3


def test_repeated_content_is_trained_on_once():
    rows = domain(40)
    copy = parse_record({"id": "chatcmpl-copy", "metadata": {"intent": rows[0].intent},
                         "messages": rows[0].request_messages + [rows[0].response_message]})
    mix = build_mix(rows + [copy], general(20), MixConfig())
    assert len({e.content_hash for e in mix.examples}) == len(mix.examples)
    assert mix.duplicates_dropped == 1


# --- the holdout ----------------------------------------------------------------------------


def test_a_holdout_score_is_stable_and_between_zero_and_one():
    scores = [holdout_score(i.content_hash) for i in items(1000)]
    assert scores == [holdout_score(i.content_hash) for i in items(1000)]
    assert all(0 <= s < 1 for s in scores)


def test_the_holdout_takes_the_configured_share_of_a_large_set():
    holdout, rest = split_holdout(items(5000), share=0.10, minimum=20)
    assert 400 <= len(holdout) <= 600
    assert len(holdout) + len(rest) == 5000


def test_the_holdout_does_not_depend_on_input_order():
    pool = items(400)
    shuffled = list(pool)
    random.Random(3).shuffle(shuffled)
    assert split_holdout(pool) == split_holdout(shuffled)


def test_a_small_set_is_topped_up_to_the_minimum_holdout():
    holdout, rest = split_holdout(items(50), share=0.10, minimum=20)
    assert len(holdout) == 20 and len(rest) == 30


def test_a_held_out_trace_stays_held_out_as_new_days_arrive():
    first, _ = split_holdout(items(400), share=0.10, minimum=20)
    assert sum(holdout_score(i.content_hash) < 0.10 for i in items(400)) >= 20  # past the minimum
    later, _ = split_holdout(items(400) + items(600, start=400), share=0.10, minimum=20)
    assert set(first) <= set(later)


def test_a_training_trace_never_moves_into_the_holdout_while_it_is_topped_up():
    _, rest = split_holdout(items(50), share=0.10, minimum=20)
    later, _ = split_holdout(items(80), share=0.10, minimum=20)
    assert not set(rest) & set(later)


def test_equal_content_is_held_out_together_or_not_at_all():
    pool = items(60) + items(60)
    holdout, rest = split_holdout(pool, share=0.10, minimum=20)
    assert not {i.content_hash for i in holdout} & {i.content_hash for i in rest}


# --- checks ---------------------------------------------------------------------------------


def test_the_leakage_check_catches_a_planted_leak():
    rows = domain(200)
    holdout, rest = split_holdout(rows)
    mix = build_mix(rest, general(60), MixConfig())
    assert leaks(mix.examples, {r.content_hash for r in holdout}) == []
    planted = build_mix(rest + [holdout[0]], general(60), MixConfig())
    assert [e.id for e in leaks(planted.examples, {r.content_hash for r in holdout})] == [holdout[0].completion_id]


def test_the_ratio_check_fails_a_mix_with_too_many_general_examples():
    mix = build_mix(domain(170), general(100), MixConfig(general_share=0.3))
    ok, detail = ratio_ok(mix, MixConfig(general_share=0.15))
    assert not ok and "expected" in detail


def test_mix_files_pass_the_fine_tuning_format_checks():
    mix = build_mix(domain(120), general(40), MixConfig())
    assert check_lines(to_jsonl(mix.train).splitlines()).ok
    assert check_lines(to_jsonl(mix.validation).splitlines(), min_examples=1).ok


def test_a_mix_file_has_one_chat_example_per_line():
    mix = build_mix(domain(30), general(10), MixConfig())
    lines = to_jsonl(mix.train).decode("utf-8").splitlines()
    assert len(lines) == len(mix.train)
    assert [json.loads(line) for line in lines] == [{"messages": e.messages} for e in mix.train]


def test_mix_metadata_has_the_contract_keys():
    meta = build_mix(domain(170), general(100), MixConfig()).metadata()
    assert {"domain_examples", "general_examples", "train_examples", "validation_examples"} <= meta.keys()
    assert meta["train_examples"] + meta["validation_examples"] == 200


# --- streaming: light keys, the spill, the assets -------------------------------------------


def key(row: TraceRow) -> TraceKey:
    return TraceKey(row.completion_id, row.content_hash, row.intent)


def test_the_holdout_and_the_mix_chosen_from_light_keys_are_those_chosen_from_full_rows():
    rows = domain(300, INTENTS + [""])
    rows.append(parse_record({"id": "chatcmpl-copy", "metadata": {"intent": rows[3].intent},
                              "messages": rows[3].request_messages + [rows[3].response_message]}))
    held, rest = split_holdout(rows)
    held_keys, rest_keys = split_holdout([key(r) for r in rows])
    assert [key(r) for r in held] == held_keys and [key(r) for r in rest] == rest_keys
    config = MixConfig(max_examples=120, per_intent_cap=40)
    full, light = build_mix(rest, general(60), config), build_mix(rest_keys, general(60), config)
    ids = [(e.source, e.id, e.intent, e.content_hash) for e in light.train + light.validation]
    assert ids == [(e.source, e.id, e.intent, e.content_hash) for e in full.train + full.validation]
    assert light.metadata() == full.metadata()
    assert all(e.messages == [] for e in light.examples if e.source == "domain")


@pytest.mark.parametrize("budget", [1, 300, 1 << 20])
def test_the_spill_gives_every_payload_back_in_key_order_and_cleans_up(tmp_path, budget):
    records = [(b"%08d" % i, b'{"n":%d,"tab":"\\t"}' % i) for i in range(500)]
    random.Random(5).shuffle(records)
    with SortedSpill(tmp_path, budget=budget) as spill:
        for k, payload in records:
            spill.add(k, payload)
        assert list(spill.payloads()) == [payload for _, payload in sorted(records)]
    assert list(tmp_path.iterdir()) == []


def test_the_spill_refuses_a_payload_with_a_newline(tmp_path):
    with SortedSpill(tmp_path) as spill, pytest.raises(ValueError):
        spill.add(b"k", b"two\nlines")


DAYS = ["2026-10-01", "2026-10-02", "2026-10-03"]


@pytest.fixture
def pass_cases(pipeline):
    """Three pass_cases partitions written straight from rows; one content is in two partitions."""
    rows = [trace(i, INTENTS[i % len(INTENTS)]) for i in range(150)]
    copy = parse_record({"id": "chatcmpl-again", "metadata": {"intent": rows[7].intent},
                         "messages": rows[7].request_messages + [rows[7].response_message]})
    parts = [rows[:50], rows[50:100] + [copy], rows[100:]]
    for day, part in zip(DAYS, parts, strict=True):
        pipeline.layout.write_traces("pass_cases", day, part)
    return pipeline


def _in_memory_mix(pipeline, holdout: HoldoutConfig, settings: MixSettings) -> dict[str, bytes]:
    """The holdout and mix files as they were written before streaming: every pass case in memory as a row."""
    layout = pipeline.layout
    rows = [r for day in DAYS for r in layout.read_traces("pass_cases", day)]
    held, _ = split_holdout(rows, share=holdout.share, minimum=holdout.minimum)
    general_all = pipeline.layout.read_general_examples()
    general_held, _ = split_holdout(general_all, share=holdout.general_share, minimum=holdout.general_minimum)
    held_hashes = {r.content_hash for r in held} | {g.content_hash for g in general_held}
    mix = build_mix([r for r in rows if r.content_hash not in held_hashes],
                    [g for g in general_all if g.content_hash not in held_hashes], mix_config(settings, pipeline))
    report = RedactionReport(pipeline.load_task().redaction_rules)
    return {"domain.jsonl": b"".join(holdout_line(r) for r in held),
            "train.jsonl": to_jsonl([redact_example(e, report.rules, report) for e in mix.train]),
            "validation.jsonl": to_jsonl([redact_example(e, report.rules, report) for e in mix.validation])}


@pytest.mark.parametrize("preset_name, budget", [("tiny", 64 << 20), ("gpu", 2_000)])
def test_the_streamed_holdout_and_mix_files_are_byte_identical_to_the_in_memory_ones(
        pass_cases, monkeypatch, preset_name, budget):
    from distill_pipeline.definitions import ASSET_CHECKS, ASSETS
    from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings

    pipeline = PipelineSettings(storage_root=pass_cases.storage_root, traces_dir=pass_cases.traces_dir,
                                task_spec=pass_cases.task_spec, general_examples=pass_cases.general_examples,
                                preset=preset_name)
    monkeypatch.setattr(SortedSpill.__init__, "__defaults__", (budget,))  # small: many runs on disk

    def no_full_partition_reads(*args, **kwargs):
        raise AssertionError("the mix assets must not read whole pass_cases partitions")

    monkeypatch.setattr(StorageLayout, "read_traces", no_full_partition_reads)
    result = dg.materialize(ASSETS + ASSET_CHECKS, selection=["general_examples", "eval_holdout", "training_mix"],
                            resources={"pipeline": pipeline, "openai": OpenAIResource()},
                            run_config={"ops": {"training_mix": {"config": {"general_share": 0.1}}}})
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations()
                                  if c.severity == dg.AssetCheckSeverity.ERROR)  # corpus_size warns: 150 cases
    monkeypatch.undo()
    expected = _in_memory_mix(pipeline, HoldoutConfig(), MixSettings(general_share=0.1))
    layout = pipeline.layout
    assert (layout.asset_dir("eval_holdout") / "domain.jsonl").read_bytes() == expected["domain.jsonl"]
    for name in ("train.jsonl", "validation.jsonl"):
        assert (layout.asset_dir("training_mix") / name).read_bytes() == expected[name]
    assert len(expected["train.jsonl"].splitlines()) > (100 if preset_name == "gpu" else 10)
    assert not [p for d in ("eval_holdout", "training_mix") for p in layout.asset_dir(d).iterdir()
                if p.name.startswith(".")]
