"""Mix: a leakage-free holdout and the 85/15 domain/general training set."""

import dataclasses
import json
from collections.abc import Generator, Iterator
from pathlib import Path

import dagster as dg

from distill_pipeline.backends.handoffs import Handoffs, holdout_line
from distill_pipeline.backends.storage import SortedSpill, sha256_file
from distill_pipeline.core.artifacts import MixEntry, MixRecord
from distill_pipeline.core.corpus import CorpusSize
from distill_pipeline.core.finetune_format import (
    OPENAI_BASE_MODEL,
    check_lines,
    example_token_limit,
    mix_cost_estimate,
)
from distill_pipeline.core.general import load_general_examples
from distill_pipeline.core.mix import (
    Mix,
    MixConfig,
    MixError,
    MixExample,
    TraceKey,
    build_mix,
    count_sources,
    domain_example,
    leaks,
    max_examples_for_train,
    messages_key,
    mix_sizes,
    ratio_verdict,
    split_holdout,
    to_jsonl,
)
from distill_pipeline.core.presets import DEFAULT_SEED, preset
from distill_pipeline.core.redaction import RedactionReport, redact_example
from distill_pipeline.defs.resources import PipelineSettings


class HoldoutConfig(dg.Config):
    share: float = 0.10
    minimum: int = 20
    general_share: float = 0.10
    general_minimum: int = 20


class MixSettings(dg.Config):
    general_share: float = 0.15
    validation_share: float = 0.10
    max_examples: int | None = None  # None: the most whose train part fits the preset's max_train_examples
    per_intent_cap: int | None = None
    seed: int = DEFAULT_SEED
    epochs: int | None = None  # for the cost estimate; None: the preset's
    openai_model: str = OPENAI_BASE_MODEL  # for the cost estimate when DISTILL_TRAINER=openai


KEY_COLUMNS = ("completion_id", "content_hash", "intent")


def pass_case_keys(pipeline: PipelineSettings) -> tuple[list[TraceKey], dict[str, str]]:
    """Every materialized pass case as a TraceKey (only the light columns are read, never the messages), in
    partition then file order, and each partition file's sha256 (its data version)."""
    layout = pipeline.layout
    keys: list[TraceKey] = []
    versions: dict[str, str] = {}
    intents: dict[str, str] = {}  # one string per intent, not one per row
    for day in layout.trace_partitions("pass_cases"):
        columns = layout.read_trace_columns("pass_cases", day, KEY_COLUMNS, few_values={"intent"})
        keys += [TraceKey(cid, digest, intents.setdefault(intent, intent))
                 for cid, digest, intent in zip(*(columns[c] for c in KEY_COLUMNS), strict=True)]
        versions[day] = sha256_file(layout.traces_path("pass_cases", day))
    return keys, versions


def _held_lines(layout: Handoffs, days: list[str], held: list[TraceKey], spill: SortedSpill) -> Iterator[bytes]:
    """The holdout file's lines, in split_holdout's order (content hash, then partition, then file order),
    fetching only the held rows a partition and a batch at a time; the spill keeps memory flat."""
    wanted = {k.content_hash for k in held}
    found = 0
    for p, day in enumerate(days):
        for position, row in layout.iter_traces_matching("pass_cases", day, wanted):
            spill.add(b"%s %06d %010d" % (row.content_hash.encode(), p, position), holdout_line(row).rstrip(b"\n"))
            found += 1
    if found != len(held):
        raise dg.Failure(f"pass_cases changed while eval_holdout was reading it ({found} held rows found, "
                         f"{len(held)} expected); materialize again")
    return (payload + b"\n" for payload in spill.payloads())


@dg.asset(
    kinds={"jsonl"},
    group_name="train",
    code_version="1",
    description="The general-purpose chat examples (the '15%' that stops the student forgetting), validated and "
    "de-duplicated by content.",
)
def general_examples(context: dg.AssetExecutionContext, pipeline: PipelineSettings) -> dg.MaterializeResult:
    source = Path(pipeline.general_examples)
    if not source.exists():
        raise dg.Failure(f"general examples file {source} does not exist (DISTILL_GENERAL_EXAMPLES)")
    result = load_general_examples(source.read_bytes().splitlines())
    written = pipeline.layout.write_general_examples(result.examples)
    if result.rejected:
        context.log.warning(f"{len(result.rejected)} general examples rejected; first: line "
                            f"{result.rejected[0].line}: {result.rejected[0].reason}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(result.examples),
            "input_rows": result.input_lines,
            "rejected_rows": len(result.rejected),
            "duplicate_rows": len(result.duplicates),
            "rejected": dg.MetadataValue.json([{"line": r.line, "reason": r.reason} for r in result.rejected[:20]]),
            "by_category": dg.MetadataValue.json(result.by_category()),
            "source": str(source),
            "path": written.path,
            "sha256": written.sha256,
        },
        data_version=dg.DataVersion(written.sha256),
    )


@dg.asset(
    deps=["pass_cases", general_examples],
    kinds={"jsonl"},
    group_name="train",
    code_version="1",
    description="A fixed slice of pass cases (and of the general examples) chosen by a stable hash of the content: "
    "a trace is always held out or never, so the student is never trained on what it is judged on.",
)
def eval_holdout(context: dg.AssetExecutionContext, config: HoldoutConfig,
                 pipeline: PipelineSettings) -> dg.MaterializeResult:
    keys, versions = pass_case_keys(pipeline)
    if not keys:
        raise dg.Failure("no pass cases are materialized yet: run capture_job for at least one day first")
    layout = pipeline.layout
    domain, _ = split_holdout(keys, share=config.share, minimum=config.minimum)
    general, _ = split_holdout(layout.read_general_examples(), share=config.general_share,
                               minimum=config.general_minimum)
    with SortedSpill(layout.holdout_dir()) as spill:
        domain_file = layout.write_holdout_domain(_held_lines(layout, list(versions), domain, spill))
    general_file = layout.write_holdout_general(general)
    intents: dict[str, int] = {}
    for r in domain:
        intents[r.intent] = intents.get(r.intent, 0) + 1
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(domain),
            "general_holdout_rows": len(general),
            "pass_cases_seen": len(keys),
            "share": config.share,
            "by_intent": dg.MetadataValue.json(dict(sorted(intents.items()))),
            "pass_case_partitions": dg.MetadataValue.json(versions),
            "domain_path": domain_file.path,
            "domain_sha256": domain_file.sha256,
            "general_path": general_file.path,
            "general_sha256": general_file.sha256,
        },
        data_version=dg.DataVersion(domain_file.sha256[:32] + general_file.sha256[:32]),
    )


def _mix_messages(layout: Handoffs, days: list[str], mix: Mix,
                  spill: SortedSpill) -> Generator[bytes, None, None]:
    """The messages (as JSON) of every train then validation example, in file order. General examples have
    theirs; a domain example's are fetched from the first partition holding its content hash (equal hashes,
    equal messages), reading only the matching rows a batch at a time."""
    wanted: dict[str, bytes] = {}
    for file, examples in enumerate((mix.train, mix.validation)):
        for position, example in enumerate(examples):
            key = b"%d %010d" % (file, position)
            if example.source == "domain":
                wanted[example.content_hash] = key
            else:
                spill.add(key, _messages_json(example.messages))
    for day in days:
        if not wanted:
            break
        for _, row in layout.iter_traces_matching("pass_cases", day, wanted):
            chosen = wanted.pop(row.content_hash, None)
            if chosen is not None:
                spill.add(chosen, _messages_json(domain_example(row).messages))
    if wanted:
        raise dg.Failure(f"pass_cases changed while training_mix was reading it ({len(wanted)} chosen examples "
                         "no longer found); materialize again")
    return spill.payloads()


def _messages_json(messages: list[dict]) -> bytes:
    return json.dumps(messages, separators=(",", ":")).encode("ascii")  # ASCII: no newline, any text round-trips


def _redacted_lines(examples: list[MixExample], messages: Iterator[bytes], report: RedactionReport) -> Iterator[bytes]:
    """The file's lines: each example with its fetched messages, redacted (counted in `report`) in file order."""
    for example in examples:
        full = dataclasses.replace(example, messages=json.loads(next(messages)))
        yield to_jsonl([redact_example(full, report.rules, report)])


def corpus_metadata(corpus: CorpusSize) -> dict:
    """The corpus figures as Dagster metadata (a range as JSON, an unknown as "none")."""
    return {k: (dg.MetadataValue.json(v) if isinstance(v, list) else "none" if v is None else v)
            for k, v in corpus.metadata().items()}


def mix_config(config: MixSettings, pipeline: PipelineSettings) -> MixConfig:
    max_examples = config.max_examples
    if max_examples is None:
        train_cap = preset(pipeline.preset).max_train_examples
        max_examples = (max_examples_for_train(train_cap, config.general_share, config.validation_share)
                        if train_cap else None)
    return MixConfig(general_share=config.general_share, validation_share=config.validation_share,
                     max_examples=max_examples, per_intent_cap=config.per_intent_cap, seed=config.seed)


@dg.asset(
    deps=["pass_cases", eval_holdout, general_examples],
    kinds={"jsonl"},
    group_name="train",
    code_version="3",
    description="Train and validation files in the OpenAI chat fine-tuning format: 85% domain pass cases "
    "(stratified by intent), 15% general examples, none of them held out, patient data redacted. Same inputs, "
    "same bytes.",
)
def training_mix(context: dg.AssetExecutionContext, config: MixSettings,
                 pipeline: PipelineSettings) -> dg.MaterializeResult:
    layout = pipeline.layout
    keys, versions = pass_case_keys(pipeline)
    holdout = {r.content_hash for r in layout.iter_holdout_domain()}
    general_holdout = {g.content_hash for g in layout.read_holdout_general()}
    domain = [k for k in keys if k.content_hash not in holdout]
    pass_cases = len(keys)
    del keys
    general = [g for g in layout.read_general_examples() if g.content_hash not in general_holdout]
    cfg = mix_config(config, pipeline)
    try:
        mix = build_mix(domain, general, cfg)
    except MixError as err:
        raise dg.Failure(str(err)) from None
    # Patient data is redacted before anything is written for training (and may leave the machine).
    redaction = RedactionReport(pipeline.load_task().redaction_rules)
    with SortedSpill(layout.mix_dir()) as spill:
        messages = _mix_messages(layout, list(versions), mix, spill)
        try:
            train = layout.write_mix_file("train", _redacted_lines(mix.train, messages, redaction))
            validation = layout.write_mix_file("validation", _redacted_lines(mix.validation, messages, redaction))
        finally:
            messages.close()
    # The corpus against the rule of thumb (1,000 pass cases at least), for the corpus_size check and the card.
    corpus = CorpusSize(domain_examples=mix.count("domain"), domain_available=mix.domain_available,
                        pass_cases=pass_cases,
                        pass_cases_by_day={day: layout.count_traces("pass_cases", day) for day in versions},
                        minimum=pipeline.load_task().min_domain_examples, max_examples=cfg.max_examples)
    # The ids of everything trained on, for the model card and `distill audit`.
    ids = layout.write_mix_examples([MixEntry(file=name, source=e.source, id=e.id, intent=e.intent,
                                              content_hash=e.content_hash)
                                     for name, examples in (("train", mix.train), ("validation", mix.validation))
                                     for e in examples])
    layout.write_mix_record(MixRecord(**dataclasses.asdict(cfg), trainer=pipeline.trainer, preset=pipeline.preset,
                                      pass_case_partitions=versions, redaction=redaction.card(),
                                      run_id=context.run.run_id, corpus=corpus.to_dict()))
    settings = preset(pipeline.preset)
    epochs = config.epochs or settings.epochs
    report = check_lines(layout.iter_mix_lines("train"),
                         max_tokens=example_token_limit(pipeline.trainer, settings.max_seq_len))
    cost = mix_cost_estimate(pipeline.trainer, report.billing_tokens, epochs, config.openai_model)
    meta = mix.metadata()
    context.log.info(f"mix: {meta['train_examples']} train + {meta['validation_examples']} validation "
                     f"({meta['domain_examples']} domain, {meta['general_examples']} general)")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": meta["train_examples"] + meta["validation_examples"],
            **{k: (dg.MetadataValue.json(v) if isinstance(v, dict) else v) for k, v in meta.items()},
            "train_sha256": train.sha256,
            "validation_sha256": validation.sha256,
            "examples_sha256": ids.sha256,
            "train_path": train.path,
            "validation_path": validation.path,
            "examples_path": ids.path,
            "general_share": cfg.general_share,
            "max_examples": cfg.max_examples if cfg.max_examples is not None else "none",
            "seed": cfg.seed,
            "train_tokens": dg.MetadataValue.json(report.token_stats()),
            "estimated_training_cost": dg.MetadataValue.json(cost),
            "pass_case_partitions": dg.MetadataValue.json(versions),
            **{k: (dg.MetadataValue.json(v) if isinstance(v, dict) else v)
               for k, v in redaction.metadata().items()},
            "planned_sizes": dg.MetadataValue.json(dict(zip(("domain", "general"), mix_sizes(
                mix.domain_available, cfg.general_share, cfg.max_examples), strict=True))),
            **corpus_metadata(corpus),
        },
        data_version=dg.DataVersion(train.sha256[:32] + validation.sha256[:32]),
    )


@dg.asset_check(asset=training_mix, blocking=True,
                description="Every line of both files passes the OpenAI chat fine-tuning format rules (roles, keys, "
                "non-empty content, an assistant message, the per-example token limit, at least 10 examples).")
def training_mix_format(pipeline: PipelineSettings) -> dg.AssetCheckResult:
    layout = pipeline.layout
    limit = example_token_limit(pipeline.trainer, preset(pipeline.preset).max_seq_len)
    train = check_lines(layout.iter_mix_lines("train"), max_tokens=limit)
    validation = check_lines(layout.iter_mix_lines("validation"), max_tokens=limit, min_examples=1)
    return dg.AssetCheckResult(passed=train.ok and validation.ok, metadata={
        "train": train.summary(), "validation": validation.summary(), "token_limit": limit,
        "errors_by_key": dg.MetadataValue.json({"train": train.counts, "validation": validation.counts})})


@dg.asset_check(asset=training_mix, blocking=True, additional_deps=[eval_holdout],
                description="No example in the train or validation file has the content hash of a holdout example.")
def training_mix_no_leakage(pipeline: PipelineSettings) -> dg.AssetCheckResult:
    layout = pipeline.layout
    holdout = {r.content_hash for r in layout.iter_holdout_domain()}
    holdout |= {g.content_hash for g in layout.read_holdout_general()}
    # The files are redacted, so compare the original content hashes recorded beside them, and the files'
    # own content too (a line planted in a file after the mix was written has no manifest entry).
    examples = [MixExample(e.source, e.intent, e.id, e.content_hash, []) for e in layout.read_mix_examples()]
    for name in ("train", "validation"):
        examples += [MixExample("domain", r.intent, r.completion_id, r.content_hash, [])
                     for r in layout.iter_mix_rows(name)]
    found = sorted({e.id for e in leaks(examples, holdout)})
    return dg.AssetCheckResult(passed=not found, metadata={"leaked": len(found), "leaked_ids": found[:20],
                                                          "holdout_hashes": len(holdout)},
                               description=f"{len(found)} holdout examples found in training files")


@dg.asset_check(asset=training_mix, blocking=True, additional_deps=[general_examples],
                description="The examples in train.jsonl and validation.jsonl themselves (a line is general when its "
                "messages are a general example's, as redacted) match the configured general share within one "
                "example, in both files together and in each; and examples.jsonl lists as many as each file holds.")
def training_mix_ratio(pipeline: PipelineSettings) -> dg.AssetCheckResult:
    layout = pipeline.layout
    share = layout.read_mix_record().general_share
    rules = pipeline.load_task().redaction_rules
    general = {messages_key(redact_example({"messages": g.messages}, rules)["messages"])
               for g in layout.read_general_examples()}
    files = {name: count_sources(layout.iter_mix_lines(name), general) for name in ("train", "validation")}
    ok, description = ratio_verdict(files, share)
    listed = {name: 0 for name in files}
    for entry in layout.read_mix_examples():
        listed[entry.file] = listed.get(entry.file, 0) + 1
    unlisted = [f"{name}.jsonl holds {counts.total} examples but examples.jsonl lists {listed[name]}"
                for name, counts in files.items() if counts.total != listed[name]]
    if unlisted:
        ok, description = False, f"{'; '.join(unlisted)}: the audit trail does not match the files. {description}"
    return dg.AssetCheckResult(passed=ok, description=description, metadata={
        **{f"{name}_{kind}": getattr(counts, kind) for name, counts in files.items() for kind in ("general", "total")},
        "domain": sum(c.total - c.general for c in files.values()),
        "general": sum(c.general for c in files.values()),
        "expected_general": round(sum(c.total for c in files.values()) * share, 2),
        "listed_in_examples_jsonl": dg.MetadataValue.json(listed)})


@dg.asset_check(asset=training_mix, blocking=False,
                description="Warns (never blocks) when the mix holds fewer domain examples than the task spec's "
                "min_domain_examples (default 1,000; 5,000-15,000 is ideal), and says how many more days of capture "
                "would reach it at the current daily pass-case rate.")
def corpus_size(pipeline: PipelineSettings) -> dg.AssetCheckResult:
    recorded = pipeline.layout.read_mix_record().corpus
    if recorded is None:
        raise dg.Failure("training_mix was materialized before it recorded its corpus size: materialize it again")
    corpus = CorpusSize.from_dict(recorded)
    return dg.AssetCheckResult(
        passed=not corpus.below_minimum, severity=dg.AssetCheckSeverity.WARN, description=corpus.description(),
        metadata={**corpus_metadata(corpus), "domain_available": corpus.domain_available})
