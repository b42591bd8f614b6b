"""Field-aware scoring: each answer field is scored by its own rule, and confidence is read field by field.

A task spec's `scoring:` section names a rule per field (a dotted path; a rule on
`soap` applies to every field below it), and every field it does not name is
scored `exact`:

- `exact`: enums, codes, booleans, dates, times, names. A wrong ICD-10 code is a
  billing error, so it is right or wrong; a list is compared as a set.
- `token_f1`: free text (the SOAP note), where a faithful paraphrase should not
  count as wrong: the token F1 of the two strings (case and punctuation ignored).

Fields scored `exact` are the answer's *structured* fields: the ones a caller of
the student acts on, and the ones whose every value must be right for a call to
count as fully right (`all_structured_right`).

The router's confidence is read from the same fields: `value_spans` finds where
each leaf value sits in the answer text, and `span_confidence` takes the least
likely token among those that overlap the structured values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distill_pipeline.core.metrics import _same, flatten_fields, text_f1

FIELD_RULES = ("exact", "token_f1")
DEFAULT_RULE = "exact"


@dataclass(frozen=True)
class FieldRules:
    """The scoring rule of every answer field: the longest declared prefix wins, else `exact`."""

    rules: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = {path: rule for path, rule in self.rules.items() if rule not in FIELD_RULES}
        if bad:
            raise ValueError("unknown field scoring rule: " + ", ".join(f"{p}: {r!r}" for p, r in sorted(bad.items()))
                             + f"; use one of {', '.join(FIELD_RULES)}")

    def rule(self, path: str) -> str:
        best, best_len = DEFAULT_RULE, -1
        for prefix, rule in self.rules.items():
            if (path == prefix or path.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rule, len(prefix)
        return best

    def structured(self, path: str) -> bool:
        return self.rule(path) == "exact"

    def to_dict(self) -> dict[str, str]:
        return dict(sorted(self.rules.items()))


def field_scores(pred: Mapping[str, Any] | None, ref: Mapping[str, Any], rules: FieldRules) -> dict[str, float]:
    """Per field of the reference, the prediction's score in [0, 1]; a missing field or no answer scores 0."""
    ref_fields = flatten_fields(ref)
    pred_fields = flatten_fields(pred) if pred is not None else {}
    scores = {}
    for path, want in ref_fields.items():
        if path not in pred_fields:
            scores[path] = 0.0
        elif rules.rule(path) == "token_f1" and isinstance(want, str) and isinstance(pred_fields[path], str):
            scores[path] = text_f1(pred_fields[path], want)
        else:
            scores[path] = float(_same(pred_fields[path], want))
    return scores


def mean_field_score(scores: Mapping[str, float]) -> float:
    """The task score of one answer: the mean of its field scores (1.0 for an empty reference)."""
    return sum(scores.values()) / len(scores) if scores else 1.0


def all_structured_right(scores: Mapping[str, float], rules: FieldRules) -> bool:
    return all(score == 1.0 for path, score in scores.items() if rules.structured(path))


# ---------------------------------------------------------------------------- where values sit in the text


def value_spans(text: str) -> list[tuple[str, int, int]] | None:
    """(dotted path, start, end) of every leaf value of a JSON object answer, in text order; None if not one.

    A list is one leaf (its brackets included), as `flatten_fields` scores it.
    """
    try:
        value, end = json.JSONDecoder().raw_decode(text, _skip_ws(text, 0))
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or text[end:].strip():
        return None
    spans: list[tuple[str, int, int]] = []
    _walk_object(text, _skip_ws(text, 0), "", spans)
    return spans


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _end_of_value(text: str, i: int) -> int:
    return json.JSONDecoder().raw_decode(text, i)[1]


def _walk_object(text: str, i: int, path: str, spans: list[tuple[str, int, int]]) -> int:
    """Walks the object starting at text[i] == '{'; returns the index after its '}'."""
    i = _skip_ws(text, i + 1)
    if text[i] == "}":
        if path:
            spans.append((path, i - 1, i + 1))
        return i + 1
    while True:
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = _skip_ws(text, _skip_ws(text, i) + 1)  # past ':'
        child = f"{path}.{key}" if path else key
        if text[i] == "{":
            i = _walk_object(text, i, child, spans)
        else:
            end = _end_of_value(text, i)
            spans.append((child, i, end))
            i = end
        i = _skip_ws(text, i)
        if text[i] == "}":
            return i + 1
        i = _skip_ws(text, i + 1)  # past ','


def span_confidence(token_logprobs: Sequence[float], token_offsets: Sequence[int], spans: Iterable[tuple[int, int]],
                    ) -> float | None:
    """The least token logprob among tokens overlapping any of the char spans; None if no token does.

    Token i covers [offsets[i], offsets[i+1]) of the text (the last one runs to the end).
    """
    spans = list(spans)
    if not spans or not token_offsets:
        return None
    lowest = math.inf
    for i, start in enumerate(token_offsets):
        end = token_offsets[i + 1] if i + 1 < len(token_offsets) else math.inf
        if end <= start and i + 1 < len(token_offsets):
            continue  # a token that added no text (part of a multi-byte character)
        if any(start < s_end and s_start < end for s_start, s_end in spans):
            lowest = min(lowest, token_logprobs[i])
    return lowest if lowest != math.inf else None


CONFIDENCE_SIGNALS = ("structured_fields", "whole_answer")


def confidence(text: str, token_logprobs: Sequence[float], token_offsets: Sequence[int] | None, rules: FieldRules,
               signal: str = "structured_fields") -> float:
    """The router's confidence in an answer: the least likely token over the fields that decide correctness.

    `structured_fields` reads the tokens of the structured values; an answer that is not a JSON object, or a
    completion without token offsets, falls back to the whole answer. `whole_answer` is every token's minimum.
    """
    if signal not in CONFIDENCE_SIGNALS:
        raise ValueError(f"unknown confidence signal {signal!r}; use one of {', '.join(CONFIDENCE_SIGNALS)}")
    whole = min(token_logprobs) if token_logprobs else 0.0
    if signal == "whole_answer" or not token_offsets or len(token_offsets) != len(token_logprobs):
        return whole
    spans = value_spans(text)
    if spans is None:
        return whole
    structured = [(start, end) for path, start, end in spans if rules.structured(path)]
    value = span_confidence(token_logprobs, token_offsets, structured)
    return whole if value is None else value


# ---------------------------------------------------------------------------- confidence as tokens arrive

_WHITESPACE = frozenset(" \t\r\n")
_LITERAL_START = frozenset("-0123456789tfn")
_LITERAL_CHARS = frozenset("-+.0123456789eEtrufalsn")


class PartialAnswer:
    """A JSON object answer as it streams in: which leaf value each new character lies in.

    `feed(chunk)` returns, per character of the chunk, the dotted path of the leaf value it belongs to (as
    `value_spans` would place it once the answer is complete: quotes and list brackets included) or None
    (braces, keys, colons, commas, whitespace). The one exception: an empty nested object `{}` is a leaf, known
    only once its `}` arrives, so only that brace is labelled. `broken` turns True the moment no continuation can
    make the text one JSON object; from then on nothing is labelled.
    """

    def __init__(self) -> None:
        self.broken = False
        self._objects: list[str] = []  # paths of the objects open around the current position
        self._expect = "start"  # start | key_or_end | key | colon | value | comma_or_end | done
        self._key: list[str] | None = None  # the raw characters of the key being read, while inside it
        self._key_escape = False
        self._last_key = ""
        self._fresh = False  # the innermost object was opened by the previous structural character
        self._leaf: str | None = None  # path of the leaf value being read
        self._leaf_kind = ""  # string | literal | list
        self._escape = False
        self._depth = 0  # brackets open inside a list leaf
        self._in_string = False  # inside a string within a list leaf

    def feed(self, chunk: str) -> list[str | None]:
        return [self._char(c) for c in chunk]

    def _char(self, c: str) -> str | None:
        if self.broken:
            return None
        if self._leaf is not None:
            path = self._leaf
            if self._leaf_kind != "literal" or c in _LITERAL_CHARS:
                self._leaf_char(c)
                return path
            self._end_leaf()  # a literal ends at the first character that is not part of it
        if self._key is not None:
            self._key_char(c)
            return None
        if c in _WHITESPACE:
            return None
        fresh, self._fresh = self._fresh, False
        expect = self._expect
        if expect == "start" and c == "{":
            self._open("")
        elif expect in ("key_or_end", "key") and c == '"':
            self._key = []
        elif expect == "colon" and c == ":":
            self._expect = "value"
        elif expect == "value":
            return self._value(c)
        elif c == "}" and (expect == "comma_or_end" or expect == "key_or_end"):
            path = self._objects.pop()
            self._after_value()
            return path if fresh and path else None  # `{}` as a field's value is a leaf
        elif expect == "comma_or_end" and c == ",":
            self._expect = "key"
        else:
            self.broken = True
        return None

    def _open(self, path: str) -> None:
        self._objects.append(path)
        self._expect = "key_or_end"
        self._fresh = True

    def _value(self, c: str) -> str | None:
        parent = self._objects[-1]
        path = f"{parent}.{self._last_key}" if parent else self._last_key
        if c == "{":
            self._open(path)
            return None
        if c == '"':
            self._leaf_kind = "string"
        elif c == "[":
            self._leaf_kind, self._depth, self._in_string = "list", 1, False
        elif c in _LITERAL_START:
            self._leaf_kind = "literal"
        else:
            self.broken = True
            return None
        self._leaf, self._escape = path, False
        return path

    def _leaf_char(self, c: str) -> None:
        if self._leaf_kind == "literal":
            return
        if self._leaf_kind == "string" or self._in_string:
            if self._escape:
                self._escape = False
            elif c == "\\":
                self._escape = True
            elif c == '"':
                if self._leaf_kind == "string":
                    self._end_leaf()
                else:
                    self._in_string = False
            return
        if c == '"':
            self._in_string = True
        elif c in "[{":
            self._depth += 1
        elif c in "]}":
            self._depth -= 1
            if self._depth == 0:
                self._end_leaf()

    def _end_leaf(self) -> None:
        self._leaf = None
        self._after_value()

    def _after_value(self) -> None:
        self._expect = "comma_or_end" if self._objects else "done"

    def _key_char(self, c: str) -> None:
        assert self._key is not None
        if self._key_escape:
            self._key_escape = False
        elif c == "\\":
            self._key_escape = True
        elif c == '"':
            raw = "".join(self._key)
            try:
                self._last_key = json.loads(f'"{raw}"')
            except ValueError:
                self.broken = True
            self._key = None
            self._expect = "colon"
            return
        self._key.append(c)


class RunningConfidence:
    """The router's confidence while the answer streams in, token by token.

    `add(token_text, logprob)` returns the least logprob so far among the tokens the signal counts (None while
    none does): the structured values' tokens for `structured_fields` (every token once the text can no longer
    be a JSON object), every token for `whole_answer`. It never rises, and the final `confidence` of the whole
    answer is never above it: once it is below a threshold, the answer's confidence is too, so the router may
    stop the student there.
    """

    def __init__(self, rules: FieldRules, signal: str = "structured_fields") -> None:
        if signal not in CONFIDENCE_SIGNALS:
            raise ValueError(f"unknown confidence signal {signal!r}; use one of {', '.join(CONFIDENCE_SIGNALS)}")
        self.rules = rules
        self.signal = signal
        self.answer = PartialAnswer()
        self.tokens = 0
        self._whole = math.inf
        self._structured = math.inf

    def add(self, token_text: str, logprob: float) -> float | None:
        self.tokens += 1
        self._whole = min(self._whole, logprob)
        labels = self.answer.feed(token_text)
        if any(label is not None and self.rules.structured(label) for label in labels):
            self._structured = min(self._structured, logprob)
        return self.value

    @property
    def value(self) -> float | None:
        counted = self._whole if self.signal == "whole_answer" or self.answer.broken else self._structured
        return None if counted == math.inf else counted


def token_texts(text: str, token_offsets: Sequence[int]) -> list[str]:
    """The characters each token adds, from where each starts (the last runs to the end of the text)."""
    ends = [*token_offsets[1:], len(text)]
    return [text[start:max(start, end)] for start, end in zip(token_offsets, ends, strict=True)]


def confidence_steps(text: str, token_logprobs: Sequence[float], token_offsets: Sequence[int],
                     token_times_ms: Sequence[float], rules: FieldRules, signal: str = "structured_fields",
                     ) -> list[tuple[float, float]]:
    """(confidence, ms) each time a streaming router's running confidence falls, in order.

    The first step whose confidence is below a threshold is when the router stops the student. Empty when the
    completion was not timed token by token.
    """
    if not token_times_ms or not (len(token_logprobs) == len(token_offsets) == len(token_times_ms)):
        return []
    running = RunningConfidence(rules, signal)
    steps: list[tuple[float, float]] = []
    for piece, logprob, ms in zip(token_texts(text, token_offsets), token_logprobs, token_times_ms, strict=True):
        value = running.add(piece, logprob)
        if value is not None and (not steps or value < steps[-1][0]):
            steps.append((value, float(ms)))
    return steps


def stop_ms(steps: Sequence[tuple[float, float]], threshold: float) -> float | None:
    """When the router stops the student at this threshold: the first fall below it; None if it never falls."""
    return next((ms for value, ms in steps if value < threshold), None)


def auroc(scores_of_wrong: Sequence[float], scores_of_right: Sequence[float]) -> float | None:
    """How well low confidence picks out wrong answers: P(wrong < right), ties half; None if a side is empty."""
    if not scores_of_wrong or not scores_of_right:
        return None
    wins = 0.0
    for w in scores_of_wrong:
        for r in scores_of_right:
            wins += 1.0 if w < r else 0.5 if w == r else 0.0
    return wins / (len(scores_of_wrong) * len(scores_of_right))
