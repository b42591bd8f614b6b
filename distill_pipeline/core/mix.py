"""The training mix: the eval holdout, the domain/general split, and the train and validation files.

Everything here is deterministic: the holdout depends only on content hashes, and
the mix only on its inputs (in any order) and the seed, so a rerun writes the same bytes.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, TypeVar

from distill_pipeline.core.general import GeneralExample
from distill_pipeline.core.presets import DEFAULT_SEED
from distill_pipeline.core.traces import TraceRow

T = TypeVar("T")
Source = Literal["domain", "general"]
NO_INTENT = "unknown"


class MixError(ValueError):
    """The training mix cannot be built as configured."""


class NotEnoughGeneralExamples(MixError):
    """Too few general examples for the configured general share; the share is never changed silently."""

    def __init__(self, needed: int, available: int, total: int, general_share: float, suggested_share: float,
                 max_examples: int | None):
        self.needed, self.available, self.total = needed, available, total
        self.general_share, self.suggested_share = general_share, suggested_share
        ways = [f"add at least {needed - available} general examples to the general examples file",
                f"lower general_share to {suggested_share:g} or less"]
        if max_examples is not None:
            ways.append("lower max_examples")
        super().__init__(
            f"training_mix needs {needed} general examples (general_share {general_share:g} of {total} examples) "
            f"but only {available} are available after de-duplication and the general holdout. "
            f"To fix: {', or '.join(ways)}.")


@dataclass(frozen=True, slots=True)
class TraceKey:
    """A pass case without its messages: what the holdout and the mix are chosen from, so that choosing never
    holds every trace in memory. Its intent is the trace's `intent` ("" when it has none), as stored."""

    completion_id: str
    content_hash: str
    intent: str


# --- the eval holdout -----------------------------------------------------------------------


def _content_hash(item: Any) -> str:
    return item.content_hash


def holdout_score(content_hash: str) -> float:
    """A stable number in [0, 1) for a piece of content: the same content always gets the same score."""
    digest = hashlib.sha256(f"holdout:{content_hash}".encode()).hexdigest()
    return int(digest[:13], 16) / 16**13  # 52 bits: exact as a float, never rounds up to 1.0


def split_holdout(items: Iterable[T], key: Callable[[T], str] = _content_hash, share: float = 0.10,
                  minimum: int = 20) -> tuple[list[T], list[T]]:
    """Split items into (holdout, rest) by a stable hash of their content.

    An item is held out when its score is below `share`, so it is held out on every
    run and as new days arrive. While that gives fewer than `minimum` distinct
    contents (a young corpus), the lowest-scoring others top the holdout up to the
    minimum (or to everything, with fewer items than that); as items arrive, a
    topped-up item can return to training, but an item in training never moves to
    the holdout. Once the share alone reaches the minimum the split is fixed for
    good. Items with equal keys always land on the same side. Both lists are
    sorted by key, whatever the input order.
    """
    if not 0 <= share < 1:
        raise ValueError(f"holdout share must be in [0, 1), got {share}")
    materialised = list(items)
    distinct = {key(item) for item in materialised}
    held = {k for k in distinct if holdout_score(k) < share}
    wanted = min(minimum, len(distinct))
    if len(held) < wanted:  # a young corpus: the lowest-scoring contents top the holdout up to the minimum
        held = set(heapq.nsmallest(wanted, distinct, key=lambda k: (holdout_score(k), k)))
    ordered = sorted(materialised, key=key)
    return [i for i in ordered if key(i) in held], [i for i in ordered if key(i) not in held]


# --- the mix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixConfig:
    general_share: float = 0.15
    validation_share: float = 0.10
    max_examples: int | None = None  # train + validation, both sources
    per_intent_cap: int | None = None  # most domain examples taken from any one intent
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if not 0 <= self.general_share < 1:
            raise ValueError(f"general_share must be in [0, 1), got {self.general_share}")
        if not 0 <= self.validation_share < 1:
            raise ValueError(f"validation_share must be in [0, 1), got {self.validation_share}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"max_examples must be at least 1 (or None), got {self.max_examples}")
        if self.per_intent_cap is not None and self.per_intent_cap < 1:
            raise ValueError(f"per_intent_cap must be at least 1 (or None), got {self.per_intent_cap}")


@dataclass(frozen=True, slots=True)
class MixExample:
    source: Source
    intent: str  # the domain intent, or the general example's category
    id: str  # completion_id, or the general example id
    content_hash: str
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class Mix:
    train: list[MixExample]
    validation: list[MixExample]
    domain_available: int  # domain examples after de-duplication and the per-intent cap
    general_available: int
    capped_out: int  # domain examples left out by per_intent_cap
    duplicates_dropped: int  # repeated content (within domain, within general, or general equal to a domain trace)

    @property
    def examples(self) -> list[MixExample]:
        return self.train + self.validation

    def count(self, source: Source, examples: Sequence[MixExample] | None = None) -> int:
        return sum(e.source == source for e in (self.examples if examples is None else examples))

    def metadata(self) -> dict[str, Any]:
        """Counts for the asset metadata (CONTRACTS.md keys first), by source and by intent."""
        def by_intent(source: Source) -> dict[str, int]:
            counts: dict[str, int] = {}
            for e in self.examples:
                if e.source == source:
                    counts[e.intent] = counts.get(e.intent, 0) + 1
            return dict(sorted(counts.items()))

        return {
            "domain_examples": self.count("domain"),
            "general_examples": self.count("general"),
            "train_examples": len(self.train),
            "validation_examples": len(self.validation),
            "train_by_source": {s: self.count(s, self.train) for s in ("domain", "general")},
            "validation_by_source": {s: self.count(s, self.validation) for s in ("domain", "general")},
            "domain_by_intent": by_intent("domain"),
            "general_by_category": by_intent("general"),
            "domain_available": self.domain_available,
            "general_available": self.general_available,
            "domain_capped_out": self.capped_out,
            "duplicates_dropped": self.duplicates_dropped,
        }


def _fraction(value: float) -> Fraction:
    return Fraction(str(value))  # 0.15 means 3/20, not the nearest binary float


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def mix_sizes(domain_available: int, general_share: float, max_examples: int | None = None) -> tuple[int, int]:
    """(domain, general) counts: the largest total the domain supply and max_examples allow,
    with general = round(total x general_share), exact to within one."""
    share = _fraction(general_share)
    total = math.floor((domain_available + Fraction(1, 2)) / (1 - share))
    if max_examples is not None:
        total = min(total, max_examples)
    while total > 0 and total - _round_half_up(total * share) > domain_available:
        total -= 1
    general = _round_half_up(total * share)
    return total - general, general


def _train_size(total: int, general_share: float, validation_share: Fraction) -> int:
    """Train examples in a mix of `total` with ample domain supply: each source keeps all but its validation."""
    domain, general = mix_sizes(total, general_share, total)
    return sum(n - _validation_size(n, validation_share) for n in (domain, general))


def max_examples_for_train(train_cap: int, general_share: float, validation_share: float) -> int:
    """The largest max_examples (train + validation) whose train part is at most `train_cap`.

    Each source rounds its own validation count, so train_cap / (1 - validation_share), rounded
    either way, can leave one example too many in train (301 for a cap of 300)."""
    if train_cap < 1:
        raise ValueError(f"train_cap must be at least 1, got {train_cap}")
    share = _fraction(validation_share)
    # Each source's validation is at most n x share + 1/2, so train >= total x (1 - share) - 1: above this
    # total train is past the cap. The train size only grows with the total, so count down from there.
    total = math.floor((train_cap + 1) / (1 - share)) + 1
    while total > 1 and _train_size(total, general_share, share) > train_cap:
        total -= 1
    return total


def _largest_feasible_share(domain_available: int, general_available: int, config: MixConfig) -> float:
    hundredths = math.floor(_fraction(config.general_share) * 100)
    for h in range(hundredths, -1, -1):
        if mix_sizes(domain_available, h / 100, config.max_examples)[1] <= general_available:
            return h / 100
    return 0.0


def _shuffled(items: Sequence[T], rng: random.Random) -> list[T]:
    out = list(items)
    rng.shuffle(out)
    return out


def _round_robin(groups: dict[str, list[T]], n: int, rng: random.Random) -> list[T]:
    """Take n items one group at a time, so every group gives its k-th item before any gives its (k+1)-th:
    rare groups are taken whole before common ones are thinned."""
    order = _shuffled(sorted(groups), rng)
    taken: list[T] = []
    depth = 0
    while len(taken) < n:
        layer = [groups[g][depth] for g in order if depth < len(groups[g])]
        if not layer:
            break
        taken.extend(layer[:n - len(taken)])
        depth += 1
    return taken


def _grouped(items: Sequence[T], group: Callable[[T], str], seed: int, label: str) -> dict[str, list[T]]:
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(group(item), []).append(item)
    return {g: _shuffled(groups[g], random.Random(f"{seed}:{label}:{g}")) for g in sorted(groups)}


def _domain_example(row: TraceRow | TraceKey) -> MixExample:
    """A pass case as a mix example; from a TraceKey its messages are left empty, for the caller to fetch (a
    content hash fixes the messages: equal hashes, equal messages)."""
    messages = row.chat_example()["messages"] if isinstance(row, TraceRow) else []
    return MixExample("domain", row.intent or NO_INTENT, row.completion_id, row.content_hash, messages)


def domain_example(row: TraceRow) -> MixExample:
    """A pass case as the domain example the mix writes (its messages in the chat fine-tuning format)."""
    return _domain_example(row)


def _general_example(example: GeneralExample) -> MixExample:
    return MixExample("general", example.category, example.id, example.content_hash,
                      example.chat_example()["messages"])


def _unique(examples: Iterable[MixExample], taken: set[str]) -> tuple[list[MixExample], int]:
    """Drop repeated content (keeping the lowest id), sorted by content hash; adds kept hashes to `taken`."""
    kept, dropped = [], 0
    for example in sorted(examples, key=lambda e: (e.content_hash, e.id)):
        if example.content_hash in taken:
            dropped += 1
            continue
        taken.add(example.content_hash)
        kept.append(example)
    return kept, dropped


def _validation_size(n: int, share: Fraction) -> int:
    return _round_half_up(n * share)


def _split_validation(selected: list[MixExample], share: Fraction,
                      rng: random.Random) -> tuple[list[MixExample], list[MixExample]]:
    n_validation = _validation_size(len(selected), share)
    shuffled = _shuffled(selected, rng)
    return shuffled[n_validation:], shuffled[:n_validation]


def build_mix(domain: Sequence[TraceRow] | Sequence[TraceKey], general: Sequence[GeneralExample],
              config: MixConfig) -> Mix:
    """Choose the domain and general examples and split them into train and validation.

    `domain` is the pass cases outside the eval holdout (TraceRows, or TraceKeys: then the
    domain examples come without their messages), `general` the general examples
    outside the general holdout. The total is the most the domain supply (after the
    per-intent cap) and max_examples allow; general examples make up general_share
    of it, and too few of them raise NotEnoughGeneralExamples. The domain part is
    taken round-robin over intents, the general part round-robin over categories;
    validation takes validation_share of each source. Same inputs in any order and
    the same seed give the same mix.
    """
    seed = config.seed
    seen: set[str] = set()
    domain_items, domain_dupes = _unique((_domain_example(r) for r in domain), seen)
    general_items, general_dupes = _unique((_general_example(g) for g in general), seen)

    by_intent = _grouped(domain_items, lambda e: e.intent, seed, "domain")
    capped_out = 0
    if config.per_intent_cap is not None:
        capped_out = sum(max(len(v) - config.per_intent_cap, 0) for v in by_intent.values())
        by_intent = {k: v[:config.per_intent_cap] for k, v in by_intent.items()}
    domain_available = sum(len(v) for v in by_intent.values())
    if domain_available == 0:
        raise MixError("no domain examples to train on: pass_cases is empty, or every pass case is in the eval "
                       "holdout (lower the holdout minimum, or wait for more traces)")

    n_domain, n_general = mix_sizes(domain_available, config.general_share, config.max_examples)
    if n_general > len(general_items):
        total = n_domain + n_general
        raise NotEnoughGeneralExamples(n_general, len(general_items), total, config.general_share,
                                       _largest_feasible_share(domain_available, len(general_items), config),
                                       config.max_examples)

    by_category = _grouped(general_items, lambda e: e.intent, seed, "general")
    chosen_domain = _round_robin(by_intent, n_domain, random.Random(f"{seed}:domain-order"))
    chosen_general = _round_robin(by_category, n_general, random.Random(f"{seed}:general-order"))

    share = _fraction(config.validation_share)
    domain_train, domain_val = _split_validation(chosen_domain, share, random.Random(f"{seed}:validation:domain"))
    general_train, general_val = _split_validation(chosen_general, share, random.Random(f"{seed}:validation:general"))

    def ordered(examples: list[MixExample], label: str) -> list[MixExample]:
        return _shuffled(sorted(examples, key=lambda e: (e.content_hash, e.source, e.id)),
                         random.Random(f"{seed}:{label}"))

    return Mix(
        train=ordered(domain_train + general_train, "train"),
        validation=ordered(domain_val + general_val, "validation"),
        domain_available=domain_available,
        general_available=len(general_items),
        capped_out=capped_out,
        duplicates_dropped=domain_dupes + general_dupes,
    )


# --- files and checks -----------------------------------------------------------------------


def to_jsonl(examples: Iterable[MixExample]) -> bytes:
    """One OpenAI chat fine-tuning example per line; equal inputs give identical bytes."""
    return b"".join(
        json.dumps({"messages": e.messages}, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        for e in examples
    )


def leaks(examples: Iterable[MixExample], holdout_hashes: Iterable[str]) -> list[MixExample]:
    """Examples whose content is in a holdout: each one would make the evaluation score a lie."""
    held = set(holdout_hashes)
    return [e for e in examples if e.content_hash in held]


def ratio_ok(mix: Mix, config: MixConfig) -> tuple[bool, str]:
    """Does the general share match the configuration to within one example, overall and in each file?"""
    counts = {"train": SourceCounts(mix.count("general", mix.train), len(mix.train)),
              "validation": SourceCounts(mix.count("general", mix.validation), len(mix.validation))}
    return ratio_verdict(counts, config.general_share)


@dataclass(frozen=True)
class SourceCounts:
    """How many examples a training file holds, and how many of them are general examples."""

    general: int
    total: int


def messages_key(messages: Sequence[Any]) -> str:
    """One string per distinct list of chat messages (key order ignored)."""
    return json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def count_sources(lines: Iterable[bytes], general_messages: set[str]) -> SourceCounts:
    """Count a written training file's examples, and the general ones among them: those whose messages (as
    `messages_key`) are a general example's, as written to the files."""
    general = total = 0
    for line in lines:
        if not line.strip():
            continue
        total += 1
        record = json.loads(line)
        messages = record.get("messages") if isinstance(record, dict) else None
        general += isinstance(messages, list) and messages_key(messages) in general_messages
    return SourceCounts(general, total)


def ratio_verdict(files: dict[str, SourceCounts], general_share: float) -> tuple[bool, str]:
    """Is the general share `general_share` to within one example, over all files together and in each file?"""
    share = _fraction(general_share)
    overall = SourceCounts(sum(c.general for c in files.values()), sum(c.total for c in files.values()))
    failures, described = [], []
    for name, counts in {"overall": overall, **files}.items():
        described.append(f"{name} {counts.general}/{counts.total} general")
        if abs(counts.general - counts.total * share) > 1:
            failures.append(f"{name} has {counts.general} general of {counts.total}, expected "
                            f"{float(counts.total * share):.1f} +/- 1")
    target = f"configured general_share {general_share:g}"
    if failures:
        return False, f"{'; '.join(failures)} ({target})"
    if not overall.total:
        return False, f"the training files hold no examples ({target})"
    return True, f"{', '.join(described)} ({target})"
