"""Corpus size: is there enough to distil?

The rule of thumb: at least 1,000 pass cases, 5,000-15,000 ideal. Stored
completions are kept for 30 days, so a month of traffic is what an organisation
usually has: a corpus short of the minimum is a matter of days of capture, and
the warning says how many at the current rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MIN_RECOMMENDED = 1_000  # pass cases: below this a student rarely learns the task
IDEAL_RANGE = (5_000, 15_000)
RETENTION_DAYS = 30  # how long OpenAI keeps stored completions
RATE_WINDOW_DAYS = 7  # the current daily rate: the mean over the last week of captured days


def daily_pass_case_rate(pass_cases_by_day: Mapping[str, int], window: int = RATE_WINDOW_DAYS) -> float:
    """Pass cases per day over the last `window` captured days (partition keys sort by date)."""
    days = sorted(pass_cases_by_day)[-window:]
    return sum(pass_cases_by_day[day] for day in days) / len(days) if days else 0.0


def days_of_capture(shortfall: int, per_day: float) -> int | None:
    """Days of capture that bring `shortfall` more examples at `per_day` a day: 0 when nothing is short, None when
    nothing arrives (no number of days would do)."""
    if shortfall <= 0:
        return 0
    if per_day <= 0:
        return None
    return math.ceil(shortfall / per_day)


def corpus_band(examples: int, minimum: int = MIN_RECOMMENDED) -> str:
    """Where a count of domain examples stands against the rule of thumb."""
    if examples < minimum:
        return "below minimum"
    if examples < IDEAL_RANGE[0]:
        return "minimum"
    return "ideal" if examples <= IDEAL_RANGE[1] else "above ideal"


@dataclass(frozen=True)
class CorpusSize:
    """The domain examples a training mix holds, against the minimum, and what capture would take to reach it."""

    domain_examples: int  # in the mix (train + validation): what the student learns the task from
    domain_available: int  # pass cases the mix could use: de-duplicated, none held out
    pass_cases: int  # every captured pass case, the eval holdout's included
    pass_cases_by_day: dict[str, int] = field(default_factory=dict)
    minimum: int = MIN_RECOMMENDED  # the task spec's min_domain_examples
    max_examples: int | None = None  # the mix's cap (train + validation, both sources), if any

    @property
    def below_minimum(self) -> bool:
        return self.domain_examples < self.minimum

    @property
    def daily_pass_cases(self) -> float:
        return daily_pass_case_rate(self.pass_cases_by_day)

    @property
    def trainable_share(self) -> float:
        """Of the pass cases, the share the mix can use (the rest is held out or repeated content)."""
        return self.domain_available / self.pass_cases if self.pass_cases else 1.0

    @property
    def capture_short(self) -> bool:
        """The corpus itself holds fewer usable examples than the minimum (not only the mix's cap)."""
        return self.domain_available < self.minimum

    @property
    def days_to_minimum(self) -> int | None:
        """More days of capture until the corpus holds the minimum, at the current rate (0: it does already)."""
        return days_of_capture(self.minimum - self.domain_available, self.daily_pass_cases * self.trainable_share)

    def description(self) -> str:
        head = (f"training_mix holds {self.domain_examples:,} domain examples "
                f"({corpus_band(self.domain_examples, self.minimum)}: at least {self.minimum:,}, "
                f"{IDEAL_RANGE[0]:,}-{IDEAL_RANGE[1]:,} ideal)")
        if not self.below_minimum:
            return head + "."
        if not self.capture_short:
            cap = f" ({self.max_examples:,} examples in all)" if self.max_examples is not None else ""
            return (f"{head}. Capture is not what is short: the corpus holds {self.domain_available:,} usable pass "
                    f"cases, and the mix's max_examples{cap} left {self.domain_available - self.domain_examples:,} "
                    "of them out; raise max_examples (the preset's cap) to train on them.")
        rate = self.daily_pass_cases * self.trainable_share
        days = self.days_to_minimum
        if days is None:
            return (f"{head}. The corpus holds {self.domain_available:,} usable pass cases and none arrived in the "
                    f"last {RATE_WINDOW_DAYS} captured days: at this rate no amount of capture reaches "
                    f"{self.minimum:,}; check that capture is running and that the teacher's answers pass.")
        more = (f" That is longer than the {RETENTION_DAYS} days stored completions are kept: keep the daily "
                "capture running so no day expires uncaptured." if days > RETENTION_DAYS else "")
        return (f"{head}. The corpus holds {self.domain_available:,} usable pass cases; at the current "
                f"{rate:,.1f} a day ({self.daily_pass_cases:,.1f} pass cases a day over the last "
                f"{min(RATE_WINDOW_DAYS, len(self.pass_cases_by_day))} captured days, {self.trainable_share:.0%} "
                f"of them usable), {days:,} more days of capture would reach {self.minimum:,}.{more}")

    def metadata(self) -> dict[str, Any]:
        """The figures for the asset's metadata and the model card."""
        return {
            "domain_examples": self.domain_examples,
            "corpus_min_recommended": MIN_RECOMMENDED,
            "corpus_ideal_range": list(IDEAL_RANGE),
            "min_domain_examples": self.minimum,
            "corpus_band": corpus_band(self.domain_examples, self.minimum),
            "corpus_pass_cases": self.pass_cases,
            "corpus_daily_pass_cases": round(self.daily_pass_cases, 2),
            "corpus_days_to_minimum": self.days_to_minimum,
        }

    def to_dict(self) -> dict[str, Any]:
        """What training_mix records beside its files, for the corpus_size check and the model card."""
        return {"domain_examples": self.domain_examples, "domain_available": self.domain_available,
                "pass_cases": self.pass_cases, "pass_cases_by_day": dict(sorted(self.pass_cases_by_day.items())),
                "minimum": self.minimum, "max_examples": self.max_examples}

    @classmethod
    def from_dict(cls, recorded: Mapping[str, Any]) -> CorpusSize:
        return cls(domain_examples=int(recorded["domain_examples"]), domain_available=int(recorded["domain_available"]),
                   pass_cases=int(recorded["pass_cases"]),
                   pass_cases_by_day={str(k): int(v) for k, v in recorded.get("pass_cases_by_day", {}).items()},
                   minimum=int(recorded.get("minimum", MIN_RECOMMENDED)), max_examples=recorded.get("max_examples"))

    def verdict(self) -> dict[str, Any]:
        """The corpus_size check's verdict: WARN below the minimum, never blocking."""
        return {"check": "corpus_size", "passed": not self.below_minimum,
                "severity": "WARN" if self.below_minimum else None, "description": self.description()}
