"""Scoring redaction on a labelled set of whole transcripts (the blind set in phi_blind/).

A line: {"id", "transcript", "phi": [{"type", "value"}], "keep": [{"kind", "value"}]}. Each transcript is
redacted the way the training mix redacts a trace: as the user message of a chat example whose assistant
answer carries the follow-up date, time and clinician the transcript books (the first of each kind in `keep`),
with the bundled task's rules. A PHI value counts as redacted when it no longer appears anywhere in the
redacted transcript; a kept value counts as kept when it appears as often as before. Precision: the share of
redacted spans that overlap a labelled PHI value (of any type), per detected type.

`python -m distill_pipeline_tests.phi_scoring [FILE ...]` prints the table (and the misses with --misses).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill_pipeline.core.redaction import PHI_TYPES, RedactionRules, find_phi_in_messages, redact_messages

BLIND_DIR = Path(__file__).parent / "phi_blind"


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _first(row: dict[str, Any], kind: str) -> str | None:
    return next((k["value"] for k in row["keep"] if k["kind"] == kind), None)


def as_trace(row: dict[str, Any]) -> list[dict[str, str]]:
    """The transcript as a chat example, with an answer that books its follow-up the way the teacher would."""
    follow_up = {"needed": _first(row, "follow_up_date") is not None, "date": _first(row, "follow_up_date"),
                 "time": _first(row, "time"), "clinician": _first(row, "clinician")}
    answer = {"intent": "book_follow_up", "soap": {"subjective": "", "objective": "", "assessment": "", "plan": ""},
              "icd10": [], "follow_up": follow_up}
    return [{"role": "system", "content": "Summarise this clinic call."},
            {"role": "user", "content": row["transcript"]},
            {"role": "assistant", "content": json.dumps(answer)}]


def _occurrences(text: str, value: str) -> list[tuple[int, int]]:
    out, start = [], text.find(value)
    while value and start != -1:
        out.append((start, start + len(value)))
        start = text.find(value, start + 1)
    return out


@dataclass
class Score:
    expected: Counter = field(default_factory=Counter)  # PHI values per type
    redacted: Counter = field(default_factory=Counter)  # of those, gone from the redacted transcript
    found: Counter = field(default_factory=Counter)  # redacted spans per detected type
    correct: Counter = field(default_factory=Counter)  # of those, overlapping a labelled PHI value
    keep_total: Counter = field(default_factory=Counter)
    keep_kept: Counter = field(default_factory=Counter)
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (id, type, value) left in the text
    false_positives: list[tuple[str, str, str]] = field(default_factory=list)  # (id, type, span text)
    lost: list[tuple[str, str, str]] = field(default_factory=list)  # (id, kind, value) no longer all there

    def recall(self, kind: str) -> float:
        return self.redacted[kind] / self.expected[kind] if self.expected[kind] else 1.0

    def precision(self, kind: str) -> float:
        return self.correct[kind] / self.found[kind] if self.found[kind] else 1.0

    def table(self, title: str) -> str:
        lines = [title, f"{'type':<8} {'values':>6} {'redacted':>8} {'recall':>7} {'spans':>6} {'precision':>9}"]
        for kind in PHI_TYPES:
            lines.append(f"{kind:<8} {self.expected[kind]:>6} {self.redacted[kind]:>8} {self.recall(kind):>7.3f} "
                         f"{self.found[kind]:>6} {self.precision(kind):>9.3f}")
        lines.append("kept: " + ", ".join(f"{k} {self.keep_kept[k]}/{self.keep_total[k]}"
                                          for k in sorted(self.keep_total)))
        return "\n".join(lines)


def score_rows(rows: list[dict[str, Any]], rules: RedactionRules) -> Score:
    score = Score()
    for row in rows:
        trace = as_trace(row)
        redacted, _ = redact_messages(trace, rules)
        before, after = row["transcript"], redacted[1]["content"]
        for phi in row["phi"]:
            score.expected[phi["type"]] += 1
            if phi["value"] in after:
                score.misses.append((row["id"], phi["type"], phi["value"]))
            else:
                score.redacted[phi["type"]] += 1
        for keep in row["keep"]:
            score.keep_total[keep["kind"]] += 1
            if after.count(keep["value"]) >= before.count(keep["value"]):
                score.keep_kept[keep["kind"]] += 1
            else:
                score.lost.append((row["id"], keep["kind"], keep["value"]))
        labelled = [span for phi in row["phi"] for span in _occurrences(before, phi["value"])]
        text, spans = find_phi_in_messages(trace, rules)[1]
        for span in spans:
            score.found[span.type] += 1
            if any(start < span.end and span.start < end for start, end in labelled):
                score.correct[span.type] += 1
            else:
                score.false_positives.append((row["id"], span.type, span.text))
    return score


def main(argv: list[str]) -> None:
    from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec

    rules = load_task_spec(default_task_spec_path()).redaction_rules
    show = "--misses" in argv
    for name in [a for a in argv if not a.startswith("--")] or [str(BLIND_DIR / "batch1.jsonl")]:
        score = score_rows(load_rows(Path(name)), rules)
        print(score.table(name))
        if show:
            for row_id, kind, value in score.misses:
                print(f"  MISS {kind:<8} {value!r} ({row_id})")
            for row_id, kind, value in score.false_positives:
                print(f"  FP   {kind:<8} {value!r} ({row_id})")
            for row_id, kind, value in score.lost:
                print(f"  LOST {kind:<8} {value!r} ({row_id})")


if __name__ == "__main__":
    main(sys.argv[1:])
