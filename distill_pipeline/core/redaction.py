"""Redaction: PHI in a trace becomes typed placeholders before training data leaves the machine.

Phone numbers, e-mail addresses, US social security numbers, medical record
numbers, dates of birth, street addresses and names become `[PHONE_1]`,
`[EMAIL_1]`, `[SSN_1]`, `[MRN_1]`, `[DOB_1]`, `[ADDRESS_1]`, `[NAME_1]`: the same
value gets the same placeholder everywhere in one trace (request and answer),
numbered per type in order of first appearance, so the student still sees who
said what without seeing who anyone is.

Precision matters as much as recall, because the student must still learn the
task: dates are redacted only next to a date-of-birth cue (follow-up dates
survive), identifiers only next to their cue (an MRN needs "MRN" or "medical
record number"; a claim or member number is left alone), and clinicians
("Dr. Okafor", "Nurse Patel"), times, ICD-10 codes and amounts are never touched.
Names are found by cue patterns: a few built in ("my name is ...") plus the task
spec's own, written for how its callers say their name; once found, a name is
replaced wherever it recurs in the trace, and so is its first or last name alone.
The values of the answer fields a task spec keeps (`keep_fields`, e.g. the
follow-up date, time and clinician) are never redacted anywhere in the trace.

The rules come from the task spec's `redaction:` section (see
data/tasks/healthcare.yaml); `RedactionRules.to_dict()` is what the model card records.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, TypeVar

PHI_TYPES = ("phone", "email", "ssn", "mrn", "dob", "address", "name")
DETECTORS_VERSION = "1"  # bump when a built-in detector changes what it finds; recorded in the model card
SPEC_KEYS = ("enabled", "types", "patterns", "keep_fields")

E = TypeVar("E")


class RedactionSpecError(ValueError):
    """A mistake in a task spec's `redaction:` section; `field` is relative to that section (`patterns.name[1]`)."""

    def __init__(self, field_path: str, problem: str):
        self.field = field_path
        self.problem = problem
        super().__init__(f"redaction.{field_path} {problem}" if field_path else f"redaction {problem}")


# ---------------------------------------------------------------------------
# The rules


@dataclass(frozen=True)
class RedactionRules:
    """What to redact. `patterns`: the spec's extra (type, regex) pairs; group 1 (or the whole match) is the value."""

    enabled: bool = True
    types: tuple[str, ...] = PHI_TYPES
    patterns: tuple[tuple[str, str], ...] = ()
    keep_fields: tuple[str, ...] = ()  # dotted paths in a JSON answer, e.g. follow_up.date

    @property
    def name_patterns(self) -> tuple[str, ...]:
        return tuple(regex for kind, regex in self.patterns if kind == "name")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> RedactionRules:
        """Rules from a task spec's `redaction:` mapping; no section means no redaction.

        Keys: `enabled` (default true), `types` (default all of PHI_TYPES), `patterns`
        (a mapping type -> list of regexes, or a plain list of name regexes) and
        `keep_fields` (dotted answer paths whose values are never redacted).
        """
        if spec is None:
            return cls(enabled=False)
        if not isinstance(spec, Mapping):
            raise RedactionSpecError("", f"must be a mapping like {{enabled: true, types: [phone, email]}} "
                                     f"(got {type(spec).__name__})")
        for key in spec:
            if key not in SPEC_KEYS:
                raise RedactionSpecError(str(key), f"is not a known redaction key{_did_you_mean(key, SPEC_KEYS)}")
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            raise RedactionSpecError("enabled", f"must be true or false (got {enabled!r})")
        types = _types(spec.get("types", list(PHI_TYPES)))
        patterns = _patterns(spec.get("patterns") or [], types)
        keep = _keep_fields(spec.get("keep_fields") or [])
        return cls(enabled=enabled, types=types, patterns=patterns, keep_fields=keep)

    def to_dict(self) -> dict[str, Any]:
        """The rules as the model card records them."""
        patterns: dict[str, list[str]] = {}
        for kind, regex in self.patterns:
            patterns.setdefault(kind, []).append(regex)
        return {"enabled": self.enabled, "types": list(self.types), "patterns": patterns,
                "keep_fields": list(self.keep_fields), "detectors_version": DETECTORS_VERSION}


def _did_you_mean(word: Any, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; use one of: {', '.join(choices)}"


def _types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise RedactionSpecError("types", f"must be a non-empty list of types from {', '.join(PHI_TYPES)} "
                                 "(set enabled: false to redact nothing)")
    seen: list[str] = []
    for i, kind in enumerate(value):
        if kind not in PHI_TYPES:
            raise RedactionSpecError(f"types[{i}]", f"{kind!r} is not a PHI type{_did_you_mean(kind, PHI_TYPES)}")
        if kind in seen:
            raise RedactionSpecError(f"types[{i}]", f"'{kind}' is listed twice; keep one")
        seen.append(kind)
    return tuple(k for k in PHI_TYPES if k in seen)  # canonical order: equal rules compare equal


def _patterns(value: Any, types: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    if isinstance(value, list):  # shorthand: a list of name patterns
        groups: list[tuple[str, str, Any]] = [("name", f"[{i}]", regex) for i, regex in enumerate(value)]
    elif isinstance(value, Mapping):
        groups = []
        for kind, regexes in value.items():
            if kind not in PHI_TYPES:
                raise RedactionSpecError(f"patterns.{kind}", f"is not a PHI type{_did_you_mean(kind, PHI_TYPES)}")
            if kind not in types:
                raise RedactionSpecError(f"patterns.{kind}", f"is given but '{kind}' is not in types; add it to "
                                         "types or remove these patterns")
            if not isinstance(regexes, list):
                raise RedactionSpecError(f"patterns.{kind}", "must be a list of regular expressions")
            groups += [(kind, f".{kind}[{i}]", regex) for i, regex in enumerate(regexes)]
    else:
        raise RedactionSpecError("patterns", "must be a mapping of type -> list of regular expressions, e.g. "
                                 "{name: ['my name is ([A-Z][a-z]+ [A-Z][a-z]+)']}")
    out = []
    for kind, where, regex in groups:
        path = f"patterns{where}"
        if not isinstance(regex, str) or not regex.strip():
            raise RedactionSpecError(path, "must be a non-empty regular expression (quote it in single quotes)")
        try:
            compiled = re.compile(regex)
        except re.error as err:
            raise RedactionSpecError(path, f"is not a valid regular expression ({err})") from None
        if compiled.fullmatch(""):
            raise RedactionSpecError(path, "matches the empty string; it would redact nothing useful")
        out.append((kind, regex))
    return tuple(out)


_FIELD_PATH = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*")


def _keep_fields(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RedactionSpecError("keep_fields", "must be a list of dotted answer paths like [follow_up.date]")
    for i, path in enumerate(value):
        if not isinstance(path, str) or not _FIELD_PATH.fullmatch(path):
            raise RedactionSpecError(f"keep_fields[{i}]", f"{path!r} must be a dotted answer path like "
                                     "follow_up.date")
    return tuple(value)


# ---------------------------------------------------------------------------
# Detectors


@dataclass(frozen=True)
class PhiSpan:
    """One PHI value in a text: `key` identifies the value (equal keys, equal placeholder)."""

    start: int
    end: int
    type: str
    text: str
    key: str


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    type: str
    priority: int  # lower wins an overlap: a value named by its cue beats one recognised by shape


_NAME_WORD = r"(?:[A-Z][A-Za-z'-]*[a-z])"
_NAME = rf"{_NAME_WORD}(?: {_NAME_WORD}){{0,2}}"
_FULL_NAME = rf"{_NAME_WORD}(?: {_NAME_WORD}){{1,2}}"

BUILTIN_NAME_PATTERNS = (
    rf"(?i:\bmy name is|\bmy name's|\bpatient(?:'s)? name is|\bpatient name:)\s+({_NAME})",
    rf"(?i:\bmy (?:mother|father|mom|dad|wife|husband|son|daughter|partner|grandmother|grandfather|sister|"
    rf"brother|child)(?:'s name is|,)?)\s+({_NAME})",
    rf"\b(?:I'm|I am)\s+({_FULL_NAME})(?=[,.;]| and\b| calling\b)",
    rf"(?i:\b(?:full |patient |caller )?name(?: is|:)?)\s+({_FULL_NAME})",  # "name: Maya Rivera", first and last
)

# Capitalised words that are not a person's name (a cue pattern can still catch them).
_NOT_NAME = frozenset("""
I Hi Hello Hey Thanks Thank Yes No Okay Ok Sure Good Morning Afternoon Evening Agent Caller Patient
Dr Doctor Nurse Mr Mrs Ms Miss Mx Prof Professor The A An My Your Our This That It
Monday Tuesday Wednesday Thursday Friday Saturday Sunday Today Tomorrow
January February March April May June July August September October November December
""".split())
# A name followed by one of these is the start of an organisation or a place, e.g. "Blue Harbor Health".
_ORG_WORDS = frozenset("""
Health Healthcare Clinic Clinics Centre Center Practice Surgery Medical Hospital Pharmacy Care Plan Plans Mutual
Insurance Assurance Group Partners Associates Bank Company Inc Ltd LLC Street Road Avenue Lane Drive Boulevard
Park Family Services Labs Laboratory University College School
""".split())
# First or last names that are also everyday words: only the full name is propagated for these.
_COMMON_WORDS = frozenset("""
Will May June April August Grace Hope Faith Joy Rose Young King Long White Black Brown Green Bill Mark Pat Art
Sue Page Case Wood Hill Lane Ray Dawn Rich Summer Winter Hunter Cook Price Law Best Good Love Bell Fox Day Ash
Brooks Park Street Field Storm Frost Stone Sky Reed Cash Major Miles Chase Cole Gray Grey
""".split())

_STAFF_RE = re.compile(rf"\b(?:Dr|Dra|Doctor|Nurse|Prof|Professor|Pharmacist|Therapist|Midwife|NP|PA)\.? "
                       rf"{_NAME_WORD}(?: {_NAME_WORD})?")
_TIME_RE = re.compile(r"(?<![\w:])\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp]\.?[Mm]\.?)?(?![\w:])")
_ICD10_RE = re.compile(r"\b[A-TV-Z]\d{2}(?:\.[0-9A-Z]{1,4})?\b")
_AMOUNT_RE = re.compile(r"[$€£]\s?\d[\d,]*(?:\.\d+)?")

_PHONE_RE = re.compile(r"""
    (?<![\w@/.+-])
    (?:\+?1[ .-]?)?
    (?:\(\d{3}\)[ ]?|\d{3}[ .-])
    \d{3}[ .-]\d{4}
    (?:\s?(?:ext\.?|x|extension)\s?\d{1,5})?
    (?![\w-]|\.\d)
""", re.VERBOSE | re.IGNORECASE)
_INTL_PHONE_RE = re.compile(r"(?<![\w+])\+[2-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-]|\.\d)")
_PHONE_CUE = re.compile(r"(?i:\b(?:phone|cell|mobile|landline|callback number|call me (?:back )?(?:at|on)|"
                        r"reach me (?:at|on)|text me (?:at|on))\b)")
_PHONE_VALUE = re.compile(rf"{_PHONE_RE.pattern}|(?<![\w-])(?:\d{{10}}|\d{{3}}[ .-]\d{{4}})(?![\w-]|\.\d)",
                          re.VERBOSE | re.IGNORECASE)  # the full shapes first, so a cue never takes half a number

_EMAIL_RE = re.compile(r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])")
_EMAIL_CUE = re.compile(r"(?i:\be-?mail\b)")
_SPOKEN_EMAIL = re.compile(r"(?i:(?<![\w.-])[a-z0-9]+(?:(?: dot | underscore | dash |[._-])[a-z0-9]+)* at "
                           r"[a-z0-9-]+(?: dot [a-z0-9-]+)* dot (?:com|org|net|edu|gov|us|io|co|info|me)\b)")

_SSN_RE = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_SSN_CUE = re.compile(r"(?i:\bsocial security(?: number| no\.?| #)?|\bSSN\b|\bsocial\b)")
_SSN_VALUE = re.compile(r"(?<![\w-])\d{3}[ -]?\d{2}[ -]?\d{4}(?![\w-])")

_MRN_CUE = re.compile(r"(?i:\bMRN\b|\bmedical record(?: number| no\.?| #)?|\bmedical records? #|"
                      r"\bchart (?:number|no\.?|#)|\bhospital number\b|\bpatient (?:ID|number|no\.?|#))")
_MRN_VALUE = re.compile(r"(?<![\w-])(?:[A-Z]{1,3}-?)?\d[\d-]{2,14}\d(?![\w-])")
_OTHER_ID_CUE = re.compile(r"(?i:\b(?:claim|member|policy|account|invoice|reference|confirmation|order|group|"
                           r"prescription|rx|npi|tracking|phone|ssn|social|insurance)\b)")

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DATE_RE = re.compile(
    r"(?<![\w/.-])(?:"
    r"\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{4}/\d{1,2}/\d{1,2}"
    r"|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})"
    rf"|(?i:{_MONTH})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?i:{_MONTH})\.?,?\s+\d{{4}}"
    r")(?![\w/-]|\.\d)")
_DOB_CUE = re.compile(r"(?i:\bdate\s+of\s+birth\b|\bbirth\s*date\b|\bD\.?O\.?B\b\.?|\bborn\b(?:\s+on\b)?)")
_DOB_AFTER = re.compile(r"\s*[(,–-]?\s*(?:(?:is|was|being|as|for|that's|that is|which is)\s+)?"
                        r"(?:(?:my|his|her|their|the|the\s+patient's|patient)\s+)?"
                        r"(?i:date\s+of\s+birth|birth\s*date|D\.?O\.?B\b)")  # "1985-03-04 is my date of birth"
_NOT_DOB_CUE = re.compile(r"(?i:\b(?:appointment|visit|book\w*|follow-up|see you|schedul\w*|reschedul\w*|"
                          r"cancel\w*|results?|test|refill|referral|bill\w*|payment|since|by|from|until|due|"
                          r"opening|slot|offer|available|next)\b)")
_WINDOW = 120  # the most characters between a cue and the end of its value
_REQUEST = re.compile(r"(?i:\b(?:please|confirm|tell me|give me|read me|what|need)\b)")
_SENTENCE_END = re.compile(r"\n|[!?]|\.(?=\s+[A-Z]|\s*$)")

_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
           r"Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Crescent|Close|Row|Alley|Loop|Pike)\b"
           r"(?:\.(?=[,#]| [a-z\d#]))?")  # "Rd., Apt 2" keeps its dot; a sentence's full stop is not the address's
_DIRECTION = r"(?:[NS][EW]?|[EW]|North|South|East|West|Northeast|Northwest|Southeast|Southwest)\.?"
_STREET_WORD = r"(?:[A-Z][a-z]+|\d{1,3}(?:st|nd|rd|th))"
_ADDRESS_RE = re.compile(
    r"(?<![\w:/.$,-])(?:"
    rf"\d{{1,6}}[A-Za-z]?(?:-\d{{1,4}})? (?:{_DIRECTION} )?{_STREET_WORD}(?: {_STREET_WORD}){{0,3}} {_SUFFIX}"
    rf"(?: {_DIRECTION}(?![\w]))?"
    r"|P\.? ?O\.? Box \d{1,6}"
    r")"
    r"(?:,? (?:Apt|Apartment|Unit|Suite|Ste|Floor|Fl)\.? ?#?[A-Za-z0-9-]+|,? #[A-Za-z0-9-]+)?"
    r"(?:, [A-Z][a-z]+(?: [A-Z][a-z]+){0,2}(?:,? [A-Z]{2}\b(?: \d{5}(?:-\d{4})?)?|(?=[.;\n]|$))"  # , City, ST 12345
    r"|,? [A-Z]{2} \d{5}(?:-\d{4})?)?"
)


@dataclass(frozen=True)
class _Compiled:
    types: frozenset[str]
    patterns: tuple[tuple[str, re.Pattern[str]], ...]


@lru_cache(maxsize=64)
def _compile(rules: RedactionRules) -> _Compiled:
    patterns = [("name", re.compile(p)) for p in BUILTIN_NAME_PATTERNS] if "name" in rules.types else []
    patterns += [(kind, re.compile(regex)) for kind, regex in rules.patterns]
    return _Compiled(frozenset(rules.types), tuple(patterns))


def _line_end(text: str, pos: int, horizon: int) -> int:
    found = text.find("\n", pos, horizon)
    return horizon if found == -1 else found


def _window_after(text: str, cue_end: int, *, reply: str) -> int:
    """Where a value that a cue introduces must end by.

    Within the cue's sentence or the next one in the same turn (line); also within
    the next line (the reply) when `reply` is "always", or when it is "question"
    and the cue's sentence asks for the value ("Can you confirm your date of birth?",
    "Date of birth, please." at the end of a turn).
    """
    horizon = min(len(text), cue_end + _WINDOW)  # every search stays within reach of the cue
    line_end = _line_end(text, cue_end, horizon)
    end = _SENTENCE_END.search(text, cue_end, line_end)
    newline = text.rfind("\n", max(0, cue_end - _WINDOW), cue_end)
    line_start = newline + 1 if newline != -1 else max(0, cue_end - _WINDOW)
    asks = end is not None and (end.group() == "?" or (
        _REQUEST.search(text, line_start, end.start()) is not None
        and _SENTENCE_END.search(text, end.end(), line_end) is None))  # "Date of birth, please." ends the turn
    if reply == "always" or (reply == "question" and asks):
        return _line_end(text, line_end + 1, horizon) if line_end < horizon else line_end
    if end is None:
        return line_end
    after = _SENTENCE_END.search(text, end.end(), line_end)
    return after.start() if after else line_end


def _after_cue(text: str, cue: re.Pattern[str], value: re.Pattern[str], kind: str,
               stop: re.Pattern[str] | None = None, reply: str = "always") -> list[_Candidate]:
    """The first value after each cue, within the cue's window, unless a stop word comes between them."""
    out = []
    for found in cue.finditer(text):
        limit = _window_after(text, found.end(), reply=reply)
        match = value.search(text, found.end(), limit)  # bounded: a long text with many cues stays linear
        whole = value.match(text, match.start()) if match else None
        if match is None or whole is None or whole.end() != match.end():
            continue  # nothing in the window, or the window cut a longer token short
        if stop is not None and stop.search(text, found.end(), match.start()):
            continue
        out.append(_Candidate(match.start(), match.end(), kind, 1))
    return out


def _shape(text: str, pattern: re.Pattern[str], kind: str, priority: int = 2) -> list[_Candidate]:
    return [_Candidate(m.start(), m.end(), kind, priority) for m in pattern.finditer(text)]


def _phones(text: str) -> list[_Candidate]:
    out = _shape(text, _PHONE_RE, "phone")
    out += [c for c in _shape(text, _INTL_PHONE_RE, "phone") if 8 <= len(re.sub(r"\D", "", text[c.start:c.end])) <= 15]
    return out + _after_cue(text, _PHONE_CUE, _PHONE_VALUE, "phone", stop=_OTHER_ID_CUE)


def _emails(text: str) -> list[_Candidate]:
    out = _shape(text, _EMAIL_RE, "email")
    for cue in _EMAIL_CUE.finditer(text):  # "maya dot rivera at mail dot com", only shortly after "e-mail"
        for spoken in _SPOKEN_EMAIL.finditer(text, cue.end(), min(len(text), cue.end() + 120)):
            if spoken.end() < len(text) and text[spoken.end()].isalnum():
                continue
            out.append(_Candidate(spoken.start(), spoken.end(), "email", 1))
    return out


def _ssns(text: str) -> list[_Candidate]:
    return _shape(text, _SSN_RE, "ssn") + _after_cue(text, _SSN_CUE, _SSN_VALUE, "ssn", stop=_OTHER_ID_CUE)


def _mrns(text: str) -> list[_Candidate]:
    found = _after_cue(text, _MRN_CUE, _MRN_VALUE, "mrn", stop=_OTHER_ID_CUE)
    return [c for c in found if sum(ch.isdigit() for ch in text[c.start:c.end]) >= 5]


def _dobs(text: str) -> list[_Candidate]:
    out = _after_cue(text, _DOB_CUE, _DATE_RE, "dob", stop=_NOT_DOB_CUE, reply="question")
    for found in _DATE_RE.finditer(text):  # "1985-03-04 is my date of birth", "03/04/1985 (DOB)"
        if _DOB_AFTER.match(text, found.end()):
            out.append(_Candidate(found.start(), found.end(), "dob", 1))
    return out


def _addresses(text: str) -> list[_Candidate]:
    return _shape(text, _ADDRESS_RE, "address")


def _plausible_name(text: str, start: int, end: int) -> bool:
    words = text[start:end].split()
    if not words or any(w.strip(".,") in _NOT_NAME or w in _ORG_WORDS for w in words):
        return False
    following = re.match(r"(?: [A-Z][A-Za-z'-]*)+", text[end:end + 200])
    return not (following and any(w in _ORG_WORDS for w in following.group().split()))


def _pattern_matches(text: str, compiled: _Compiled) -> list[_Candidate]:
    out = []
    for kind, pattern in compiled.patterns:
        for match in pattern.finditer(text):
            start, end = match.span(1) if pattern.groups else match.span()
            if start < 0 or start == end:
                continue
            if kind == "name" and not _plausible_name(text, start, end):
                continue
            out.append(_Candidate(start, end, kind, 1 if kind != "name" else 2))
    return out


_DETECTORS = {"phone": _phones, "email": _emails, "ssn": _ssns, "mrn": _mrns, "dob": _dobs, "address": _addresses}


def _protected(text: str, keep_values: Iterable[str]) -> list[tuple[int, int]]:
    """Spans never redacted: clinicians, times, ICD-10 codes, amounts, and the kept answer values."""
    spans = [m.span() for pattern in (_STAFF_RE, _TIME_RE, _ICD10_RE, _AMOUNT_RE) for m in pattern.finditer(text)]
    for value in keep_values:
        spans += _occurrences(text, value, whole_word=False)
    return spans


def _word_char(ch: str) -> bool:
    return ch != "" and (ch.isalnum() or ch in "_@-")


def _occurrences(text: str, value: str, *, whole_word: bool = True) -> list[tuple[int, int]]:
    """Where `value` occurs in `text` (as a whole token unless whole_word is False); str.find, no regex to compile."""
    out = []
    start = text.find(value)
    while start != -1:
        end = start + len(value)
        before, after = text[start - 1:start], text[end:end + 2]
        glued = (_word_char(before) or before == "." or _word_char(after[:1])
                 or (after[:1] == "." and after[1:2].isalnum()))  # "Maya" in "Mayan", "x.Maya", "Maya.Rivera"
        if not (whole_word and glued):
            out.append((start, end))
        start = text.find(value, start + 1)
    return out


class _Taken:
    """Disjoint intervals kept sorted, so an overlap check takes log time however long the text."""

    def __init__(self, spans: Iterable[tuple[int, int]] = ()):
        self.starts: list[int] = []
        self.ends: list[int] = []
        for start, end in sorted(spans):  # merge: protected spans may overlap each other
            if self.ends and start < self.ends[-1]:
                self.ends[-1] = max(self.ends[-1], end)
            else:
                self.starts.append(start)
                self.ends.append(end)

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self.starts, start)
        return (i > 0 and self.ends[i - 1] > start) or (i < len(self.starts) and self.starts[i] < end)

    def add(self, start: int, end: int) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


def _select(candidates: Iterable[_Candidate], blocked: _Taken) -> list[_Candidate]:
    """Non-overlapping candidates outside the blocked spans: cue-named first, then the longest, then the earliest."""
    chosen: list[_Candidate] = []
    taken = _Taken()
    for c in sorted(set(candidates), key=lambda c: (c.priority, c.start - c.end, c.start, c.type)):
        if not blocked.overlaps(c.start, c.end) and not taken.overlaps(c.start, c.end):
            chosen.append(c)
            taken.add(c.start, c.end)
    return sorted(chosen, key=lambda c: c.start)


# ---------------------------------------------------------------------------
# Value keys: two mentions of one value get one placeholder


def _iso_date(text: str) -> str | None:
    cleaned = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b|\bof\b|,", " ", text)
    parts = cleaned.replace("/", " ").replace("-", " ").replace(".", " ").split()
    months = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                           "nov", "dec"), start=1)}
    try:
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            a, b, c = (int(p) for p in parts)
            if len(parts[0]) == 4:
                return date(a, b, c).isoformat()
            year = c + (1900 if c >= 30 else 2000) if len(parts[2]) == 2 else c
            return date(year, a, b).isoformat()  # US order: month/day/year
        words = [p for p in parts if not p.isdigit()]
        numbers = [int(p) for p in parts if p.isdigit()]
        if len(words) == 1 and len(numbers) == 2 and words[0][:3].lower() in months:
            day, year = sorted(numbers)
            return date(year, months[words[0][:3].lower()], day).isoformat()
    except ValueError:
        return None
    return None


def _key(kind: str, text: str) -> str:
    if kind in ("phone", "ssn"):
        digits = re.sub(r"\D", "", re.split(r"(?i)x", text)[0])  # without the extension
        return digits[1:] if kind == "phone" and len(digits) == 11 and digits.startswith("1") else digits
    if kind == "email":
        spoken = re.sub(r" dot ", ".", re.sub(r" at ", "@", text.lower()))
        return re.sub(r" underscore ", "_", re.sub(r" dash ", "-", spoken)).replace(" ", "")
    if kind == "mrn":
        return re.sub(r"[^A-Z0-9]", "", text.upper())
    if kind == "dob":
        return _iso_date(text) or " ".join(text.lower().split())
    return " ".join(re.sub(r"[.,]", " ", text).lower().split())


# ---------------------------------------------------------------------------
# Finding PHI in a trace


def _trace_spans(texts: Sequence[str], rules: RedactionRules, keep_values: Sequence[str] = ()) -> list[list[PhiSpan]]:
    """PHI spans per text: detection in each text, then every recurrence of a found value across all of them."""
    compiled = _compile(rules)
    protected = [_Taken(_protected(t, keep_values)) for t in texts]
    selected = []
    for text, blocked in zip(texts, protected, strict=True):
        candidates = [c for kind, detect in _DETECTORS.items() if kind in compiled.types for c in detect(text)]
        candidates += [c for c in _pattern_matches(text, compiled) if c.type in compiled.types]
        selected.append(_select(candidates, blocked))
    # Every found value (and, for a name, each of its parts) is looked for again everywhere in the trace.
    recurring: dict[str, tuple[str, str]] = {}  # surface text -> (type, key)
    for text, chosen in zip(texts, selected, strict=True):
        for c in chosen:
            surface = text[c.start:c.end]
            key = _key(c.type, surface)
            recurring.setdefault(surface, (c.type, key))
            if c.type == "name":
                for part in surface.split():
                    if len(part) >= 3 and part not in _COMMON_WORDS and part not in _NOT_NAME:
                        recurring.setdefault(part, (c.type, key))
    out = []
    for text, chosen, blocked in zip(texts, selected, protected, strict=True):
        keys = {}
        for c in chosen:  # a value found on its own in one text takes the key it was first found with
            kind, key = recurring[text[c.start:c.end]]
            keys[(c.start, c.end)] = key if kind == c.type else _key(c.type, text[c.start:c.end])
        extra: list[_Candidate] = []
        taken = _Taken((c.start, c.end) for c in chosen)
        for surface in sorted(recurring, key=len, reverse=True):
            kind, key = recurring[surface]
            for start, end in _occurrences(text, surface):
                if not taken.overlaps(start, end):
                    extra.append(_Candidate(start, end, kind, 3))
                    taken.add(start, end)
                    keys[(start, end)] = key
        spans = _select(chosen + extra, blocked)
        out.append([PhiSpan(c.start, c.end, c.type, text[c.start:c.end], keys[(c.start, c.end)]) for c in spans])
    return out


def find_phi(text: str, rules: RedactionRules | None = None) -> list[PhiSpan]:
    """The PHI spans in one text, in order (what `redact_messages` replaces in a one-message trace)."""
    rules = rules or RedactionRules()
    return _trace_spans([text], rules)[0] if rules.enabled else []


# ---------------------------------------------------------------------------
# Redacting messages


def _field(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _kept_values(messages: Sequence[Mapping[str, Any]], keep_fields: Sequence[str]) -> list[str]:
    """The string values of the kept fields in every assistant message that is a JSON object."""
    values: list[str] = []
    for message in messages:
        if message.get("role") != "assistant" or not isinstance(message.get("content"), str) or not keep_fields:
            continue
        try:
            answer = json.loads(message["content"])
        except ValueError:
            continue
        for path in keep_fields:
            value = _field(answer, path)
            if isinstance(value, str) and len(value.strip()) >= 2 and value not in values:
                values.append(value)
    return values


def _text_slots(messages: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    """(container, key) of every string in the messages that can hold PHI: content, content parts, tool arguments."""
    slots: list[tuple[Any, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            slots.append((message, "content"))
        elif isinstance(content, list):
            for i, part in enumerate(content):
                if isinstance(part, str):
                    slots.append((content, i))
                elif isinstance(part, dict) and isinstance(part.get("text"), str):
                    slots.append((part, "text"))
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                slots.append((function, "arguments"))
    return slots


def placeholder(kind: str, number: int) -> str:
    return f"[{kind.upper()}_{number}]"


def redact_messages(messages: Sequence[Mapping[str, Any]],
                    rules: RedactionRules) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A redacted copy of one trace's messages, and how many spans of each enabled type were replaced.

    Placeholders are numbered per type in order of first appearance; equal values
    (a phone number written two ways, a name and its first name alone) share one.
    With redaction disabled the messages come back unchanged and the counts are empty.
    """
    out = [copy.deepcopy(dict(m)) for m in messages]
    if not rules.enabled:
        return out, {}
    slots = _text_slots(out)
    texts = [container[key] for container, key in slots]
    spans = _trace_spans(texts, rules, _kept_values(out, rules.keep_fields))
    numbers: dict[tuple[str, str], int] = {}
    per_type: dict[str, int] = {}
    counts = {kind: 0 for kind in rules.types}
    for (container, key), text, found in zip(slots, texts, spans, strict=True):
        pieces, last = [], 0
        for span in found:
            ident = (span.type, span.key)
            if ident not in numbers:
                per_type[span.type] = per_type.get(span.type, 0) + 1
                numbers[ident] = per_type[span.type]
            pieces += [text[last:span.start], placeholder(span.type, numbers[ident])]
            last = span.end
            counts[span.type] += 1
        container[key] = "".join(pieces) + text[last:]
    return out, counts


@dataclass
class RedactionReport:
    """Redaction counts summed over many examples: for asset metadata and the model card."""

    rules: RedactionRules
    examples: int = 0
    redacted_examples: int = 0  # examples with at least one placeholder
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in self.rules.types if self.rules.enabled else ():
            self.counts.setdefault(kind, 0)

    def add(self, counts: Mapping[str, int]) -> None:
        self.examples += 1
        self.redacted_examples += any(counts.values())
        for kind, n in counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def metadata(self) -> dict[str, Any]:
        """Asset metadata: whether redaction ran, the spans replaced by type, and how many examples had any."""
        return {"redaction_enabled": self.rules.enabled, "redaction_counts": dict(self.counts),
                "redacted_examples": self.redacted_examples}

    def card(self) -> dict[str, Any]:
        """The model card's `redaction` entry: the rules it ran with and what it replaced."""
        return {**self.rules.to_dict(), "examples": self.examples, "redacted_examples": self.redacted_examples,
                "counts": dict(self.counts)}


def redact_example(example: E, rules: RedactionRules, report: RedactionReport | None = None) -> E:
    """A copy of a chat example (a MixExample or any dataclass with `messages`, or a {"messages": [...]} dict)
    with its messages redacted; its counts are added to `report` when one is given. Ids and content hashes
    stay those of the original trace, so the audit trail and the holdout check still hold."""
    messages = example["messages"] if isinstance(example, Mapping) else example.messages  # type: ignore[attr-defined]
    redacted, counts = redact_messages(messages, rules)
    if report is not None:
        report.add(counts)
    if isinstance(example, Mapping):
        return {**example, "messages": redacted}  # type: ignore[return-value]
    return dataclasses.replace(example, messages=redacted)  # type: ignore[type-var]
