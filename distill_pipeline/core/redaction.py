"""Redaction: PHI in a trace becomes typed placeholders before training data leaves the machine.

Phone numbers, e-mail addresses, US social security numbers, medical record
numbers, dates of birth, street addresses and names become `[PHONE_1]`,
`[EMAIL_1]`, `[SSN_1]`, `[MRN_1]`, `[DOB_1]`, `[ADDRESS_1]`, `[NAME_1]`: the same
value gets the same placeholder everywhere in one trace (request and answer),
numbered per type in order of first appearance, so the student still sees who
said what without seeing who anyone is.

What the libraries do (all installed from the package index, nothing downloaded at run time):

- Microsoft Presidio (`presidio-analyzer`) runs the recognisers: its AnalyzerEngine with its NoOpNlpEngine
  (the default spaCy NLP engine needs a model that is not on the package index) and two recognisers, its own
  PhoneRecognizer (Google's libphonenumber through `phonenumbers`: "+44 20 7946 0958", "07700 900 123",
  "(415) 555-0132") and the gazetteer name recogniser below.
- `names-dataset` is the name gazetteer: a capitalised word is a name when it is a first or last name ranked in
  the top NAMES_MAX_RANK of any country, so a caller's name is found however they introduce it. Its tables take
  over a gigabyte to load, so the list is derived once per installed version and cached on disk.
- `english-words` (Webster's 2nd, GCIDE) and spaCy's English stop words say which capitalised words are
  ordinary words ("Will you...", "Sure", "Grace" at the start of a sentence needs more evidence).

What stays hand-written, because no library does it for call transcripts (each is a regex or a word list here):

- names: the rules around the gazetteer: where a sentence starts, organisation words ("Maple Street Clinic"),
  a determiner or a place before a word ("my X-ray", "in London"), neighbours joining a name ("Wei Mbeki"),
  titles ("Mr. Okonkwo"), cue phrases and relatives for names the gazetteer lacks ("the name is ...", "my son,
  ..."), "Last, First" ("Jung, Seojun"), names spelled letter by letter ("R-I-V-E-R-A"), names in lower case
  right after a name cue (speech-to-text output), a sentence's first word that no English lexicon knows, and
  every later mention of a found name (or of its first or last name alone, with or without its accents); plus
  the task spec's own name patterns;
- phone: which of libphonenumber's possible numbers are phone numbers here (not a date, an SSN, a record or
  claim number), and a short number right after a phone cue;
- e-mail (the address shape, and a spoken "maya dot rivera at mail dot com"), SSN (the 3-2-4 shape, or nine
  digits after a social security cue, also read digit by digit), MRN (an id of letter and digit groups after
  "MRN", "record number", "chart number", "patient ID"), date of birth (a date, numeric or with the month as a
  word, day, month or year first, or a Spanish, Portuguese, French, German or Italian month, next to a birth
  cue; and any full date two or more years before the appointments the call books), street address (a number,
  street words and a street suffix, a county road or highway, a PO box or rural route box). Typeset dashes and
  spaces are read as "-" and " ". Presidio's own recognisers for these
  reject the sample SSNs people read out, fetch the public-suffix list on first use, or find every date; these
  rules are the ones the labelled sets measure.

Precision matters as much as recall, because the student must still learn the task: dates are redacted only
next to a date-of-birth cue (follow-up dates survive), identifiers only next to their cue (a claim or member
number is left alone), and clinicians ("Dr. Okafor", "Nurse Patel", and their surname wherever it recurs),
times, ICD-10 codes and amounts are never touched. The values of the answer fields a task spec keeps
(`keep_fields`, e.g. the follow-up date, time and clinician) are never redacted anywhere in the trace.

The rules come from the task spec's `redaction:` section (see data/tasks/healthcare.yaml);
`RedactionRules.to_dict()` is what the model card records, with the libraries, their versions and the
hand-written rules (`detectors`).
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import difflib
import importlib.metadata
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

PHI_TYPES = ("phone", "email", "ssn", "mrn", "dob", "address", "name")
DETECTORS_VERSION = "3"  # bump when a built-in detector changes what it finds; recorded in the model card
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
                "keep_fields": list(self.keep_fields), "detectors_version": DETECTORS_VERSION,
                "detectors": detectors()}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def detectors() -> dict[str, Any]:
    """What finds PHI, for the model card: the libraries with their versions, and the hand-written rules."""
    return {
        "version": DETECTORS_VERSION,
        "libraries": {
            "presidio-analyzer": f"{_version('presidio-analyzer')}: AnalyzerEngine with NoOpNlpEngine (no spaCy "
                                 f"model); PhoneRecognizer (regions {', '.join(PHONE_REGIONS)}, possible numbers) "
                                 "and a gazetteer PERSON recogniser",
            "phonenumbers": f"{_version('phonenumbers')}: libphonenumber, through Presidio's PhoneRecognizer",
            "names-dataset": f"{_version('names-dataset')}: first and last names ranked in the top "
                             f"{NAMES_MAX_RANK} of any country",
            "english-words": f"{_version('english-words')}: web2 and gcide lower-case words",
            "spacy": f"{_version('spacy')}: English stop words only",
            "pycountry": f"{_version('pycountry')}: country and region names (places, not people)",
        },
        "hand_written": {
            "name": "gazetteer rules (sentence starts, organisation words, determiners and places before a word, "
                    "neighbouring words), titles (Mr./Mrs./Ms.), cue phrases and relatives, 'Last, First', "
                    "names spelled letter by letter, lower-case names after a cue, later mentions (also without "
                    "accents), the task spec's name patterns",
            "phone": "libphonenumber's candidates filtered against dates, SSNs and other ids; a short number "
                     "after a phone cue; an area code; seven or more digits said in words",
            "email": "address shape; spoken 'name at domain dot com'; a spoken address right after an e-mail cue",
            "ssn": "3-2-4 shape; nine digits after a social security cue (also digit by digit or in words); "
                   "the last four after a social cue, or of an SSN found earlier",
            "mrn": "an id of letter and digit groups after MRN, record/chart/patient/hospital/NHS number, "
                   "wristband, or anywhere when it has letters; read character by character; read back whole; "
                   "any number of four digits or more after a cue of a PHI type (not a claim or invoice number)",
            "dob": "a date or its day and month (numeric, month names in five languages, words, year first) "
                   "after a birth cue, in the answer to a date-of-birth question; any full date two years or "
                   "more before the appointments the call books",
            "address": "house number (digits or words), street words and a street suffix (unit, city, state, ZIP), "
                       "county roads and highways; PO box and rural route; UK, Canadian and Australian postcodes; "
                       "Irish Eircodes; a street someone lives on",
            "kept": "clinicians with a title and their surnames, times, ICD-10 codes, amounts, keep_fields values",
        },
    }


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
_TIME_RE = re.compile(r"(?<![\w:])\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp]\.?[Mm]\.?)?(?![\w:])")
_ICD10_RE = re.compile(r"\b[A-TV-Z]\d{2}(?:\.[0-9A-Z]{1,4})?\b")
_CURRENCY = r"(?:USD|US\$|CAD|AUD|NZD|EUR|GBP|INR|NGN|ZAR|PHP|MXN|VND|JPY|CNY|KES|PLN|Rs\.?|₹|₦|₱)"
_AMOUNT_RE = re.compile(rf"[$€£]\s?\d[\d,]*(?:\.\d+)?|{_CURRENCY}\s?\d[\d,]*(?:\.\d+)?"
                        rf"|(?<![\d,.])\d[\d,]*(?:\.\d+)?\s?(?:{_CURRENCY}|(?i:dollars|pounds|euros|rupees|pesos|naira|rand|dong|"
                        r"shillings|zloty)\b)")  # "$45.00", "USD 45.25", "1,200,000 VND", "120 dollars"

_PHONE_RE = re.compile(r"""
    (?<![\w@/.+-])
    (?:\+?1[ .-]?)?
    (?:\(\d{3}\)[ ]?|\d{3}[ .-])
    \d{3}[ .-]\d{4}
    (?:\s?(?:ext\.?|x|extension)\s?\d{1,5})?
    (?![\w-]|\.\d)
""", re.VERBOSE | re.IGNORECASE)
_PHONE_CUE = re.compile(r"(?i:\b(?:phone|cell|mobile|landline|callback number|call me (?:back )?(?:at|on)|"
                        r"reach me (?:at|on)|text me (?:at|on))\b)")
_PHONE_VALUE = re.compile(rf"{_PHONE_RE.pattern}|(?<![\w-])(?:\d{{10}}|\d{{3}}[ .-]\d{{4}})(?![\w-]|\.\d)",
                          re.VERBOSE | re.IGNORECASE)  # the full shapes first, so a cue never takes half a number

_EMAIL_RE = re.compile(r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])")
_SPOKEN_AT = r"(?:at sign|at the rate(?: of)?|at)"
_SPOKEN_DOT = r"(?:dot|full stop|period|point)"
_SPOKEN_JOIN = rf"(?: {_SPOKEN_DOT} | underscore | dash | hyphen |[._-])"
_SPOKEN_EMAIL = re.compile(rf"(?i:(?<![\w.-])[a-z0-9]+(?:{_SPOKEN_JOIN}[a-z0-9]+)* {_SPOKEN_AT} "
                           rf"[a-z0-9-]+(?:(?: hyphen | dash )[a-z0-9-]+)*(?: {_SPOKEN_DOT} [a-z0-9-]+)* {_SPOKEN_DOT} "
                           r"[a-z]{2,12}\b)")  # "priya full stop menon at yahoo full stop co full stop in"

_SSN_RE = re.compile(r"(?<![\w.-])\d{3}([-.])\d{2}\1\d{4}(?![\w-]|\.\d)")
_SSN_CUE = re.compile(r"(?i:\bsocial security(?: number| no\.?| #)?|\bSSN\b|\bsocial\b)")
_SSN_VALUE = re.compile(r"(?<![\w.-])(?:\d{3}(?:[ .-]?|, )\d{2}(?:[ .-]?|, )\d{4}"
                        r"|\d(?: \d){2} ?[.-]? ?\d \d ?[.-]? ?\d(?: \d){3})(?![\w-]|\.\d)")  # or digit by digit

_MRN_CUE = re.compile(r"(?i:\bMRN\b|\b(?:medical |health |patient |hospital |clinic )?records?"
                      r"(?: number| no\.?| #| ID)?|\bchart(?: (?:number|no\.?|#|ID))?\b|\bhospital (?:number|ID)\b|"
                      r"\b(?:NHS|CHI|UR|URN|health card|wristband|bracelet)(?: (?:number|no\.?|#))?\b|"
                      r"\bnumber (?:with|at) (?:you|us|the (?:clinic|practice|surgery|hospital))\b|"
                      r"\bpatient (?:ID|number|no\.?|#|card)|\bnumber on (?:the|my|your) (?:patient |hospital )?card)")
_ID_GROUP = r"[A-Z]{0,4}\d+[A-Z]{0,3}"  # digits, maybe with letters before or after: "CFH0091127", "12C"
# An identifier: letter and digit groups joined by "-", "/" or "." ("RH-0092-XK", "CDC/448/2291", "55-AB-9012"),
# or digit groups read with a space between them ("SV 448 210", "4821 0093").
_MRN_VALUE = re.compile(rf"(?<![\w-])(?:(?!(?:ID|MRN|NO|PIN) )[A-Z]{{1,4}}[-/.]?(?= ?\d) ?)?{_ID_GROUP}"
                        rf"(?:[-/.]{_ID_GROUP}|[-/.][A-Z]{{1,4}}(?![\w])|(?<=\d) (?=\d){_ID_GROUP})*(?![\w-])")
_OTHER_ID_CUE = re.compile(r"(?i:\b(?:claim|member|policy|account(?= (?:number|no\b|#|id\b))|invoice|reference|"
                           r"confirmation|order|group|prescription|rx|npi|tracking|phone|ssn|social|insurance|"
                           r"case|statement|authori[sz]ation|ticket|booking)\b)")

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DATE_RE = re.compile(
    r"(?<![\w/.-])(?:"
    r"\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{4}/\d{1,2}/\d{1,2}"
    r"|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})"
    rf"|(?i:{_MONTH})\.?\s+(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:\d{{4}}|'\d{{2}})"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?i:{_MONTH})\.?,?\s+(?:\d{{4}}|'\d{{2}})"
    rf"|\d{{1,2}}-(?i:{_MONTH})-(?:\d{{4}}|\d{{2}})"
    r")(?![\w/-]|\.\d)")
# A date said in words: "the fourteenth of March, nineteen eighty-five", "March the 3rd, two thousand and one".
_UNITS = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_ORDINAL_WORD = (r"(?:(?:twenty|thirty)[- ])?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|tenth|"
                 r"eleventh|twelfth|(?:thir|four|fif|six|seven|eigh|nine)teenth|twentieth|thirtieth")
_YEAR_WORDS = (r"(?:nineteen|twenty)[- ](?:hundred|oh[- ]" + _UNITS + r"|ten|eleven|twelve|(?:thir|four|fif|six|seven|"
               r"eigh|nine)teen|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ]" + _UNITS + r")?)"
               r"|two thousand(?:(?: and)? (?:" + _UNITS + r"|ten|eleven|twelve|(?:thir|four|fif|six|seven|eigh|nine)"
               r"teen|twenty(?:[- ]" + _UNITS + r")?))?")
_DAY = rf"(?:{_ORDINAL_WORD}|\d{{1,2}}(?:st|nd|rd|th)?)"
_YEAR = rf"(?:{_YEAR_WORDS}|\d{{4}})"
_DAY_MONTH = rf"(?:{_DAY}\s+(?:of\s+)?{_MONTH}|{_MONTH}\s+(?:the\s+)?{_DAY}|{_DAY}\s+of\s+the\s+{_DAY}(?:\s+month)?)"
# Month names callers say in Spanish, Portuguese, French, German or Italian: "19 de mayo de 1986".
_OTHER_MONTH = ("(?:enero|febrero|marzo|abril|mayo|junio|julio|agosto|sep?tiembre|octubre|noviembre|diciembre|"
                "janeiro|fevereiro|março|maio|junho|julho|setembro|outubro|novembro|dezembro|"
                "janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre|"
                "januar|februar|märz|juni|juli|oktober|dezember|"
                "gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre)")
# A date said in words, day or month first ("the 17th of the 6th, 2014"), or year first ("nineteen ninety-one,
# March the ninth"), or with a month name in another language.
_SPOKEN_DATE = re.compile(
    rf"(?i:(?<![\w-])(?:{_DAY_MONTH},?\s+{_YEAR}|{_YEAR},?\s+{_DAY_MONTH}"
    rf"|\d{{1,2}}\.?\s+(?:de\s+)?{_OTHER_MONTH}\s+(?:de\s+|del\s+)?\d{{4}})(?![\w-]))")
_DOB_VALUE = re.compile(rf"{_DATE_RE.pattern}|{_SPOKEN_DATE.pattern}")
_TEENS = r"(?:ten|eleven|twelve|(?:thir|four|fif|six|seven|eigh|nine)teen)"
_TENS = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
_YEAR_ANY = rf"(?:{_YEAR_WORDS}|\d{{4}}|'\d{{2}}|{_TENS}(?:[- ]{_UNITS})?|oh[- ]{_UNITS}|{_TEENS})"  # "ninety-nine"
_NUMBER_WORD = rf"(?:(?:oh[- ])?{_UNITS}|{_TEENS}|twenty(?:[- ]{_UNITS})?|thirty(?:[- ]one)?)"
_DAY_ANY = rf"(?:{_DAY}|twenty[- ]{_UNITS}|thirty(?:[- ]one)?|{_TEENS}|{_UNITS})"  # "march twenty nine"
_DAY_MONTH_ANY = rf"(?:{_DAY_MONTH}|{_MONTH}\s+(?:the\s+)?{_DAY_ANY}|{_DAY_ANY}\s+(?:of\s+)?{_MONTH})"
# What a caller says when asked for a date of birth: a date in any of the forms above, or its day and month ("the
# seventh of March"), year first ("1982, the fifteenth of July"), a two-digit year
# in words ("Sixth of June, ninety-nine"), or month and day as numbers in words ("Oh-seven, twenty-two, two
# thousand").
_DOB_PART = re.compile(
    rf"{_DATE_RE.pattern}|(?i:(?<![\w-])(?:{_DAY_MONTH_ANY}(?:,?\s+(?:in\s+)?{_YEAR_ANY})?"
    rf"|{_YEAR_ANY},?\s+(?:on\s+)?(?:the\s+)?{_DAY_MONTH_ANY}"
    rf"|{_NUMBER_WORD}[,-]?\s*{_NUMBER_WORD}[,-]?\s*{_YEAR_ANY}"
    rf"|{_SPOKEN_DATE.pattern})(?![\w-]))")  # a year alone is not PHI (HIPAA's Safe Harbor keeps years)
_DOB_CUE = re.compile(r"(?i:\bdates?\s+of\s+birth\b|\bbirth\s*dates?\b|\bD\.?O\.?B\b\.?|\bborn\b(?:\s+on\b)?|"
                      r"\bbirth\s*day\b(?!\s+(?:party|parties|card|cards|present|presents|gift|cake|dinner|"
                      r"celebration|trip|weekend|week|lunch))(?:'s)?|\bwhen (?:you|he|she|they) (?:were|was) born\b)")
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
           r"Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Crescent|Close|Row|Alley|Loop|Pike|Gardens|"
           r"Heights|Mews|Walk|Green|Grove|Rise|Hill|Park|View|Ridge|Point|Path|Plaza|Wharf|Quay|Yard)\b"
           r"(?:\.(?=[,#]| [a-z\d#]))?")  # "Rd., Apt 2" keeps its dot; a sentence's full stop is not the address's
_DIRECTION = r"(?:[NS][EW]?|[EW]|North|South|East|West|Northeast|Northwest|Southeast|Southwest)\.?"
_STREET_WORD = r"(?:[A-Z][a-z]+|\d{1,3}(?:st|nd|rd|th))"
_NUMBER_PART = rf"(?:{_UNITS}|{_TEENS}|{_TENS}|hundred|oh|zero)"
_HOUSE_NUMBER_WORDS = rf"(?<![\w-]){_NUMBER_PART}(?:[- ]{_NUMBER_PART}){{0,3}}"  # "three-twenty Harbor View Terrace"
_ADDRESS_RE = re.compile(
    r"(?<![\w:/.$,-])(?:"
    rf"(?:(?:[NSEW](?=\d))?\d{{1,6}}[A-Za-z]?(?:-\d{{1,4}})?|(?i:{_HOUSE_NUMBER_WORDS})) (?:{_DIRECTION} )?"
    rf"(?:(?:(?:County|State|US|U\.S\.|Farm to Market|Forest) )?(?:Road|Rd|Highway|Hwy|Route|Rte)\.? [A-Z0-9]{{1,4}}\b"
    rf"|{_STREET_WORD}(?: {_STREET_WORD}){{0,3}} {_SUFFIX})"
    rf"(?: {_DIRECTION}(?![\w]))?"
    r"|(?:P\.? ?O\.?|Post Office) Box \d{1,6}"
    r"|(?:R\.? ?R\.?|Rural Route|RFD) ?#?\d{1,3},? Box \d{1,6}"
    r")"
    r"(?:,? (?:Apt|Apartment|Unit|Suite|Ste|Floor|Fl|Flat)\.?(?i: number| no\.?)? ?#?[A-Za-z0-9-]*\d[A-Za-z0-9-]*"
    r"|,? #[A-Za-z0-9-]+|,? (?i:apartment|unit|suite|flat)(?: number| no\.?)? ?#?[A-Za-z0-9-]*\d[A-Za-z0-9-]*)?"
    r"(?:, [A-Z][a-z]+(?: [A-Z][a-z]+){0,2}(?:,? [A-Z]{2}\b(?: \d{5}(?:-\d{4})?)?|(?=[.;\n]|$))"  # , City, ST 12345
    r"|,? [A-Z]{2} \d{5}(?:-\d{4})?|, \d{5}(?:-\d{4})?(?![\w-]))?"
)


# ---------------------------------------------------------------------------
# Names and phone numbers: what the libraries know, run through Presidio's analyzer
#
# Presidio's AnalyzerEngine runs two recognisers over every text: its own PhoneRecognizer (Google's
# libphonenumber through `phonenumbers`, so national formats such as "07700 900 123" count), and
# _GazetteerNameRecognizer below. Presidio's default NLP engine needs a spaCy model that cannot be
# installed from the package index, so the engine is its NoOpNlpEngine and no recogniser needs tokens.

NAMES_MAX_RANK = 10_000  # a first or last name counts when it ranks in the top this many of any country
PHONE_REGIONS = ("US", "GB")  # national formats libphonenumber reads; "+61 ..." parses in any region

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*(?:-[^\W\d_]+(?:['’][^\W\d_]+)*)*")
_PARTICLES = frozenset("van von der den de del della di da dos das du la le bin ibn al el ter ten st".split())
# Capitalised for a reason other than being a name, wherever they stand in a sentence.
_NEVER_NAME = frozenset("""
I I'm I'll I've I'd Agent Caller Patient Transcript Assistant Receptionist Reception Operator Voicemail
Dr Dra Doctor Nurse Prof Professor Pharmacist Therapist Midwife Practitioner Mr Mrs Ms Miss Mx Mister Madam Sir
Name Names Surname Surnames Forename Firstname Lastname Nickname
Monday Tuesday Wednesday Thursday Friday Saturday Sunday Today Tomorrow Yesterday
January February March April May June July August September October November December Sept Christmas Easter
Thanksgiving
English Spanish French German Italian Portuguese Polish Russian Arabic Chinese Mandarin Cantonese Japanese Korean
Hindi Urdu Bengali Punjabi Tagalog Vietnamese Turkish Greek Dutch Swedish Somali Swahili Yoruba Igbo Hausa Amharic
American British Canadian Australian Irish Scottish Welsh European African Asian Latino Hispanic
Medicare Medicaid MyChart Tricare COVID Covid Google Zoom FaceTime Teams Uber Lyft WhatsApp Skype Facebook
Instagram Gmail Outlook Yahoo Hotmail iCloud Amazon Walgreens CVS Boots
""".split())
# Ordinary words that stand capitalised at the start of a sentence (spaCy's English stop words are added).
_SENTENCE_WORDS = frozenset("""
Hi Hello Hey Thanks Thank Yes Yeah Yep Yup No Nope Okay Ok OK Sure Alright Right Great Perfect Fine Good Morning
Afternoon Evening Sorry Please Bye Goodbye Cheers Absolutely Certainly Definitely Of Oh Um Uh Hmm Well Wow Got
Understood Lovely Wonderful Excellent Brilliant Awesome Cool Correct Exactly Indeed Sounds Just Also Actually
Unfortunately Hopefully Luckily Anyway Anyhow Apparently Basically Honestly Maybe Perhaps Probably Both Either
Hiya Howdy Cheers Ta Hmm Erm Er Uh Mm Ah Aha Huh Hang Hold Wait Sorry Pardon
Hola Buenos Buenas Bonjour Bonsoir Salut Ciao Buongiorno Hallo Guten Hej Oi Olá Ola Aloha Namaste Salaam Salam
Shalom Jambo Habari Konnichiwa Ni Kia Ora Gracias Merci Danke Obrigado Obrigada Grazie Adiós Adios Apologies
Mm-hm Mm-hmm Mhm Uh-huh Uh-uh Ehm Emm Umm Uhh Howya Lemme Gonna Wanna Gotta Haan Ji Achha Acha Double Single
Mom Mum Dad Cuz Yay Nah Hun Babe Bro Sis Nana Papa Gran Granny Grandma Grandpa God Dzień Dobry Días Dias
""".split())
# Capitalised words in the name of a clinic, an insurer, a pharmacy or a place, e.g. "Blue Harbor Health".
_ORG_WORDS = frozenset("""
Health Healthcare Clinic Clinics Centre Center Practice Surgery Medical Medicine Hospital Hospitals Pharmacy Care
Plan Plans Mutual Insurance Assurance Group Partners Associates Bank Company Inc Ltd LLC Co Corp Street St Road
Avenue Lane Drive Boulevard Way Court Place Square Park Family Services Labs Lab Laboratory Laboratories
University College School Institute Foundation Trust Network System Systems Alliance Cross Shield Life Dental
Clínica Clinica Clinique Klinik Kliniek Centro Hôpital Hopital Ospedale Hospitalario Praxis Farmacia
Pharmacie Apotheke Consultorio Policlinico Policlínica Sanatorio
Pediatrics Paediatrics Cardiology Dermatology Orthopedics Oncology Urgent Walk Primary Community Wellness Wing Ward
Neurology Rheumatology Urology Gastroenterology Endocrinology Radiology Psychiatry Podiatry Physiotherapy Audiology
Ophthalmology Optometry Obstetrics Gynaecology Gynecology Surgical Specialist Specialists Rooms Walk-in Walk-In
Nursing Home Homes Hospice Residence Doctors
Unit Department Dept Office Suite Room Floor Apt Apartment Bed Pharmacies Drugstore Chemist Chemists Hall
Building Tower Plaza Mall Station Airport
Saint County City State National Regional General Memorial Valley Heights Hills Springs Bay Harbor Harbour Point
""".split())
# First or last names that are also everyday words: only the full name is propagated for these.
_COMMON_WORDS = frozenset("""
Will May June April August Grace Hope Faith Joy Rose Young King Long White Black Brown Green Bill Mark Pat Art
Sue Page Case Wood Hill Lane Ray Dawn Rich Summer Winter Hunter Cook Price Law Best Good Love Bell Fox Day Ash
Brooks Park Street Field Storm Frost Stone Sky Reed Cash Major Miles Chase Cole Gray Grey
""".split())

_STAFF_RE = re.compile(r"\b(?:Dr|Dra|Doctor|Nurse(?: Practitioner)?|Prof|Professor|Pharmacist|Therapist|Midwife|NP|PA|"
                       r"Physician Assistant|Counsel+or|Dietitian|Physio(?:therapist)?)\.? "
                       r"(?:[A-Z]\. )?[A-Z][\w'’-]*[a-z](?: (?!Mr\b|Mrs\b|Ms\b)[A-Z][\w'’-]*[a-z])?")
_PATIENT_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Mister|Master|Madam|Mme|Mlle)\.? +$")
# Words right before a name that say it is one, whatever the name: a title, "my name is", a relative.
_NAME_CUE = re.compile(
    r"(?i:\b(?:(?:my |the |patient(?:'s)? |full |first |last |sur|maiden |legal |his |her |their )?name"
    r"(?:'s| is| was|:| is spelled)?|named|surname(?: is|:)?|calling (?:for|about|on behalf of|regarding)|"
    r"on behalf of|under(?: the name)?(?: of)?|booked (?:in )?(?:under|for|as)|registered (?:under|as)|"
    r"(?:my|our|his|her|their) (?:wife|husband|partner|spouse|son|daughter|mother|mom|mum|father|dad|brother|"
    r"sister|grandson|granddaughter|grandmother|grandma|grandfather|grandpa|aunt|uncle|niece|nephew|child|kid|"
    r"baby|boy|girl|boyfriend|girlfriend|fianc[eé]e?|carer|caregiver|friend|neighbou?r|stepson|stepdaughter|"
    r"twin|cousin|ward|client|patient)(?:'s name is|,? who is| is| named| called)?)[,:]?\s+$)")
# Words before a name that also come before other things ("it's Tuesday", "I'm not sure"): the word after them
# is a name only when the lexicons do not call it an ordinary English word.
_WEAK_NAME_CUE = re.compile(
    r"(?i:\b(?:this is|it's|it is|i'm|i am|that's|called|speaking (?:with|to)|you've got|you have|we have|"
    r"got|patient|for patient|regarding|re|thanks|thank you|hi|hello|hey|bye|goodbye|okay|ok|dear|spelled|"
    r"spelt|it's for)[,:]?\s+$)")
# A capitalised word after these is a place ("I'm in London"), unless a name cue says otherwise.
_PLACE_BEFORE = re.compile(r"(?i:\b(?:in|near|outside|around|across|visiting|(?:moved?|moving|travel\w*|fly\w*|"
                           r"flew|going|went|drive|driving|back) (?:to|from)|based in|li(?:ve|ves|ving) in|"
                           r"staying in|over in|out in|up in|down in)\s+$)")
_MONTH_SHORT = frozenset("Jan Feb Mar Apr Jun Jul Aug Sep Oct Nov Dec".split())
_MONTH_NAMES = frozenset("January February March April May June July August September October November December"
                         .split())
_ORG_AFTER = re.compile(r" (?:and|&|of|for) (?:[A-Z][\w'’-]* ?)+")
_DETERMINER_BEFORE = re.compile(r"\b(?:the|a|an|my|your|his|her|our|their|these|those|some|any|each)\s+$")
_ALONE_AFTER = re.compile(r"(?:'s|’s)?\s*(?:[.,!?;:\n-]|$)")
_NAME_CUE_AFTER = re.compile(r"(?i:'s)?\s*(?:,\s*)?(?:here\b|speaking\b|calling\b|on the line\b|again\b)")
_SPELLED_RE = re.compile(r"(?<![\w.@-])(?:[A-Z](?:-|,? |\. ?)){2,}[A-Z](?![\w@-])"
                         r"|(?<![\w.@-])(?:[a-z]-){2,}[a-z](?![\w@-])")
_NOT_SPELLED = frozenset("DOB MRN SSN ICD USA NHS ICU BMI ECG EKG MRI CPR GP ER DNA HIV TBD ASAP PO AM PM IV".split())


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "distill-pipeline"


def _gazetteer_from_names_dataset() -> frozenset[str]:
    """Every first and last name in names-dataset that ranks in the top NAMES_MAX_RANK of some country, casefolded.

    Loading names-dataset whole takes over a gigabyte and half a minute, so this runs once per installed
    version and the list (about half a million names) is kept in the cache folder."""
    from names_dataset import NameDataset

    names: set[str] = set()
    for first in (True, False):
        dataset = NameDataset(load_first_names=first, load_last_names=not first)
        table = dataset.first_names if first else dataset.last_names
        for name, info in table.items():
            ranks = [r for r in ((info or {}).get("rank") or {}).values() if r is not None]
            if ranks and min(ranks) <= NAMES_MAX_RANK and len(name) >= 2 and _WORD_RE.fullmatch(name):
                names.add(name.casefold())
        del dataset, table
    return frozenset(names)


@lru_cache(maxsize=1)
def name_gazetteer() -> frozenset[str]:
    """The casefolded names a capitalised word is looked up in (names-dataset, cached on disk per version)."""
    path = _cache_dir() / f"names-dataset-{importlib.metadata.version('names-dataset')}-top{NAMES_MAX_RANK}.txt"
    try:
        return frozenset(path.read_text(encoding="utf-8").split("\n")) - {""}
    except OSError:
        pass
    names = _gazetteer_from_names_dataset()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                         prefix=path.name, suffix=".tmp") as tmp:
            tmp.write("\n".join(sorted(names)))
        os.replace(tmp.name, path)
    except OSError:
        pass  # a read-only home: build it again next time
    return names


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """Lower-case English words (Webster's 2nd and GCIDE through `english-words`): a capitalised word at the start
    of a sentence that is one of these ("Will", "Grace", "Sure") is a name only with more evidence."""
    from english_words import get_english_words_set

    return frozenset(w for w in get_english_words_set(["web2", "gcide"], lower=False, alpha=True) if w.islower())


@lru_cache(maxsize=1)
def _place_names() -> frozenset[str]:
    """Countries (ISO 3166 through `pycountry`), and their states, provinces and regions that are not also names
    people have ("Trang" is a province and a first name), casefolded."""
    import pycountry

    names: set[str] = set()
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(country, attr, None)
            if value:
                names.update({value.casefold(), value.split(",")[0].casefold()})
    gazetteer = name_gazetteer()
    names.update(sub.name.casefold() for sub in pycountry.subdivisions if sub.name.casefold() not in gazetteer)
    return frozenset(names | {_without_accents(name) for name in names})


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    """spaCy's English stop words (lower case)."""
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


@lru_cache(maxsize=1)
def _sentence_words() -> frozenset[str]:
    return frozenset(_SENTENCE_WORDS | {w.capitalize() for w in _stop_words()})


def _capitalised(word: str) -> bool:
    return word[0].isupper() and not (len(_bare(word)) > 1 and _bare(word).isupper())  # "BP's" is an acronym


def _starts_sentence(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return i < 0 or text[i] in ".!?\n:;\"“‘([{*-–—"


def _particle_gap(gap: str) -> bool:
    """A single space, or name particles between single spaces (" de la ")."""
    return gap.startswith(" ") and "  " not in gap and all(p in _PARTICLES for p in gap.split())


def _word_groups(text: str) -> list[list[re.Match[str]]]:
    """Runs of capitalised words joined by single spaces (or name particles: "van der", "de la")."""
    groups: list[list[re.Match[str]]] = []
    current: list[re.Match[str]] = []
    last_end = -1
    for match in _WORD_RE.finditer(text):
        word = match.group()
        if _capitalised(word):
            gap = text[last_end:match.start()] if current else ""
            joined = current and gap.endswith(" ") and _particle_gap(gap)
            if not joined and current:
                groups.append(current)
                current = []
            current.append(match)
            last_end = match.end()
        elif current and word in _PARTICLES and _particle_gap(text[last_end:match.start()]):
            continue  # maybe "de" or "la" in "Maria de la Cruz": decided by the next word's gap
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _bare(word: str) -> str:
    return word[:-2] if word.endswith(("'s", "’s")) else word


def _is_english(word: str, english: frozenset[str]) -> bool:
    def known(part: str, shortest_stem: int = 4) -> bool:  # the word, its singular or past tense ("Coded")
        if part in english:
            return True
        stems = [part.replace("our", "or")] if "our" in part else []  # British spelling: "colour"
        if part.endswith("ies"):
            stems += [part[:-3] + "y"]  # "carries"
        elif part.endswith(("ches", "shes", "sses", "xes")):
            stems += [part[:-2]]  # "inches"
        elif part.endswith("s"):
            stems += [part[:-1]]  # "walks"
        elif part.endswith("ed"):
            stems += [part[:-1], part[:-2]]
        return any(len(stem) >= shortest_stem and stem in english for stem in stems)  # not "Hamed" -> "ham"

    lower = word.lower()
    return known(lower) or ("-" in lower and all(known(part, 2) for part in lower.split("-") if part))


def _is_gazetteer_name(word: str, gazetteer: frozenset[str]) -> bool:
    """Whether names-dataset knows the word as a name; a double-barrelled one by each of its parts ("Costa-Lima"),
    which also keeps out the dataset's noise such as "X-ray". A month's short form ("Jan", "Jun") is a name only
    beside another name or after a cue, never by itself ("2nd Feb 1977")."""
    if word in _MONTH_SHORT:
        return False
    folded = _bare(word).casefold()
    return all(p in gazetteer for p in folded.split("-")) if "-" in folded else folded in gazetteer


def _name_runs(text: str) -> list[tuple[int, int]]:
    """Person names found by what the words are, not by how the caller introduced them.

    A capitalised word is a name when names-dataset knows it as a first or last name, unless it starts a sentence
    and is also an ordinary English word ("Will you..."), or is part of an organisation's name ("Maple Street
    Clinic"). Its capitalised neighbours join it ("Wei Mbeki"), and so does any word right after a title or a cue
    ("Mr. Oyelaran", "the name is Kealoha")."""
    gazetteer, english, sentence_words = name_gazetteer(), _english_words(), _sentence_words()
    spans: list[tuple[int, int]] = []
    for group in _word_groups(text):
        words = [_bare(m.group()) for m in group]
        if any(w in _ORG_WORDS for w in words):
            continue  # a clinic, an insurer, a street
        if _DETERMINER_BEFORE.search(text, max(0, group[0].start() - 8), group[0].start()):
            continue  # "the Riverside", "your X-ray", "a Tylenol": a thing, not a person
        org_after = _ORG_AFTER.match(text, group[-1].end())
        before = text[max(0, group[0].start() - 60):group[0].start()]
        if org_after and any(w in _ORG_WORDS for w in org_after.group().split()) and not (
                _NAME_CUE.search(before) or _PATIENT_TITLE.search(before)):
            continue  # "Meridian Travel and Family Clinic", but not "my mum Grace and Family Services"
        run: list[re.Match[str]] = []
        for i, match in enumerate(group + [None]):
            word = words[i] if match is not None else ""
            initial = match is not None and i == 0 and _starts_sentence(text, match.start())
            stop = (match is None or word in _NEVER_NAME or word in _SENTENCE_WORDS
                    or (word in sentence_words and (initial or not _is_gazetteer_name(word, gazetteer))))
            if stop and match is not None and not run and word in _MONTH_NAMES and _NAME_CUE.search(
                    text, max(0, match.start() - 60), match.start()):
                stop = False  # "my daughter, April"
            if not stop and match is not None:  # not stop implies a match; said so for the type checker
                run.append(match)
                continue
            if run and (_is_name_run(text, run, gazetteer, english)
                        or _second_of_last_first(text, run, spans, english)):
                end = run[-1].end() - (len(run[-1].group()) - len(_bare(run[-1].group())))
                spans.append((run[0].start(), end))
            run = []
    return spans


def _is_name_run(text: str, run: list[re.Match[str]], gazetteer: frozenset[str], english: frozenset[str]) -> bool:
    before = text[max(0, run[0].start() - 60):run[0].start()]
    if _PATIENT_TITLE.search(before) or _NAME_CUE.search(before):
        return True
    first = _bare(run[0].group())
    weak_cue = _WEAK_NAME_CUE.search(before) or _NAME_CUE_AFTER.match(text, run[-1].end())
    if weak_cue and (not _is_english(first, english) or _is_gazetteer_name(first, gazetteer)):
        return True
    if _PLACE_BEFORE.search(before) or " ".join(_bare(m.group()) for m in run).casefold() in _place_names():
        return False  # "in London"; "Kenya", "Lagos" without a name cue
    for match in run:
        word = _bare(match.group())
        if not _is_gazetteer_name(word, gazetteer):
            continue
        initial = match.start() == run[0].start() and _starts_sentence(text, match.start())
        if not initial or len(run) > 1:
            return True
        # One word opening a sentence: a name when no English lexicon knows it ("Darius is out.", "Ewan."), or
        # when it stands alone ("Maya, ..." answers a question); "Hang on..." does neither.
        if not _is_english(word, english):
            return True
    return False


def _second_of_last_first(text: str, run: list[re.Match[str]], found: list[tuple[int, int]],
                          english: frozenset[str]) -> bool:
    """"Jung, Seojun": the word after a name and a comma that ends its clause is the rest of that name."""
    return (bool(found) and text[found[-1][1]:run[0].start()] == ", " and len(run) <= 2
            and not _is_english(_bare(run[0].group()), english)
            and re.match(r"\s*(?:[.,;:!?\n]|$)", text[run[-1].end():]) is not None)


_LOWER_NAME_CUE = re.compile(r"(?i:\b(?:my |the |patient(?:'s)? |full |first |last |sur)?name(?:'s| is|:)\s+"
                             r"|\bnamed\s+|\bcalled\s+|\bthis is\s+|\bi'm\s+|\bi am\s+)")
_LOWER_SENTENCE_WORDS = frozenset(w.lower() for w in _SENTENCE_WORDS)
_LOWER_WORD = re.compile(r"[a-zà-öø-ÿ]+(?:['’-][a-zà-öø-ÿ]+)*")


def _lower_case_name(word: str) -> bool:
    """A lower-case word that may be a name: names-dataset knows it, and it is no stop word, filler, weekday,
    month or abbreviation ("friday", "mrn")."""
    return (len(word) >= 3 and word in name_gazetteer() and word not in _stop_words()
            and word not in _LOWER_SENTENCE_WORDS and word.capitalize() not in _NEVER_NAME
            and word.upper() not in _NOT_SPELLED)


def _lowercase_names(text: str) -> list[tuple[int, int]]:
    """Names written in lower case, as speech-to-text often leaves them, right after a name cue ("my name is
    ngozi eze and ..."): up to three words that names-dataset knows and that are not stop words; after a cue
    that also comes before other things ("this is", "I'm"), only words no English lexicon knows."""
    english = _english_words()
    spans = []
    for cue in _LOWER_NAME_CUE.finditer(text):
        strong = "name" in cue.group().lower() or cue.group().lower().startswith(("named", "called"))
        end, pos = None, cue.end()
        for _ in range(3):
            word = _LOWER_WORD.match(text, pos)
            if word is None or not _lower_case_name(word.group()) or (
                    not strong and _is_english(word.group(), english)):
                break
            end, pos = word.end(), word.end() + 1
            if text[word.end():word.end() + 1] != " ":
                break
        if end is not None:
            spans.append((cue.end(), end))
    return spans


_TURN_PREFIX = re.compile(r"[A-Za-z][\w ]{0,20}:\s*")  # "Agent: ", "caller: "


def _lowercase_turn_names(text: str) -> list[tuple[int, int]]:
    """Names in a turn written all in lower case, as speech-to-text leaves it ("its under marcus delgado"): runs of
    words names-dataset knows, at least one of them no English word ("marcus"; "ruth" joins "ruth gallagher"),
    none of them a stop word."""
    english = _english_words()
    spans: list[tuple[int, int]] = []
    position = 0
    for line in text.split("\n"):
        speaker = _TURN_PREFIX.match(line)
        body_start = position + (speaker.end() if speaker else 0)
        body = text[body_start:position + len(line)]
        position += len(line) + 1
        words = list(_LOWER_WORD.finditer(body))
        if speaker is None or len(words) < 2 or any(ch.isupper() for ch in body):
            continue  # only a speaker's turn, and a turn with capitals has its names capitalised
        run: list[re.Match[str]] = []
        for match in words + [None]:
            word = match.group() if match is not None else ""
            name_like = match is not None and _lower_case_name(word)
            if match is not None and name_like and (not run or body[run[-1].end():match.start()] == " "):
                run.append(match)
                continue
            if run and any(not _is_english(m.group(), english) for m in run):
                spans.append((body_start + run[0].start(), body_start + run[-1].end()))
            run = [match] if name_like and match is not None else []
    return spans


def _spelled_names(text: str) -> list[tuple[int, int]]:
    """Names spelled out letter by letter: "R-I-V-E-R-A", "M A Y A"."""
    out = []
    for match in _SPELLED_RE.finditer(text):
        letters = "".join(ch for ch in match.group() if ch.isalpha())
        if len(letters) >= 3 and letters.upper() not in _NOT_SPELLED:
            out.append(match.span())
    return out


def _plausible_phone(text: str, start: int, end: int) -> bool:
    """Whether a number libphonenumber calls possible is a phone number here, not a date, an SSN or another id."""
    value = text[start:end]
    digits = sum(ch.isdigit() for ch in value)
    if not 7 <= digits <= 15 or _DATE_RE.fullmatch(value) or _SSN_RE.fullmatch(value) or _TIME_RE.fullmatch(value):
        return False
    if value.isdigit() and digits < 10:
        return False  # a bare short number is a phone only after a phone cue (see _phones)
    if text[end:end + 1] in ("/", ":") or text[start - 1:start] in ("/", "$", "#", "-", ".") or \
            text[start - 1:start].isalnum() or text[end:end + 1].isalnum():
        return False  # 148/92, $1240, C-2026-3408
    before = text[max(0, start - 50):start]
    cue = _PHONE_CUE.search(before)
    other = [m for r in (_OTHER_ID_CUE, _MRN_CUE, _SSN_CUE) for m in r.finditer(before)
             if not _PHONE_CUE.match(m.group())]
    return not other or (cue is not None and cue.start() > max(m.start() for m in other))


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    """Presidio's AnalyzerEngine with its phone recogniser and ours for names; no spaCy model needed."""
    from presidio_analyzer import AnalyzerEngine, LocalRecognizer, RecognizerRegistry, RecognizerResult
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class NameRecognizer(LocalRecognizer):
        def load(self) -> None:
            name_gazetteer()

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            spans = _name_runs(text) + _lowercase_names(text) + _lowercase_turn_names(text) + _spelled_names(text)
            return [RecognizerResult("PERSON", start, end, 0.85) for start, end in spans]

    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(PhoneRecognizer(supported_regions=PHONE_REGIONS, leniency=0))  # 0: possible numbers
    registry.add_recognizer(NameRecognizer(supported_entities=["PERSON"], name="GazetteerNameRecognizer"))
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _library_candidates(text: str, types: frozenset[str]) -> list[_Candidate]:
    wanted = {"phone": "PHONE_NUMBER"} if sum(ch.isdigit() for ch in text) >= 7 else {}
    wanted["name"] = "PERSON"
    entities = [entity for kind, entity in wanted.items() if kind in types]
    if not entities or not text.strip():
        return []
    out = []
    for result in _analyzer().analyze(text, language="en", entities=entities, score_threshold=0.0):
        if result.entity_type == "PHONE_NUMBER" and _plausible_phone(text, result.start, result.end):
            out.append(_Candidate(result.start, result.end, "phone", 2))
        elif result.entity_type == "PERSON":
            out.append(_Candidate(result.start, result.end, "name", 2))
    return out


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
    asks = (end is not None and (end.group() == "?" or (
        _REQUEST.search(text, line_start, end.start()) is not None
        and _SENTENCE_END.search(text, end.end(), line_end) is None))  # "Date of birth, please." ends the turn
        or not text[cue_end:line_end].strip(" ,.:;?!-"))  # the cue ends the turn: "and date of birth"
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


_AREA_CODE = re.compile(r"(?i:\barea code(?: is)?:?\s+)\(?(\d{3})\)?(?!\d)")


def _phones(text: str) -> list[_Candidate]:
    """Numbers after a phone cue, and an area code said on its own; every other phone number comes from
    Presidio's recogniser (_library_candidates)."""
    return (_after_cue(text, _PHONE_CUE, _PHONE_VALUE, "phone", stop=_OTHER_ID_CUE)
            + [_Candidate(m.start(1), m.end(1), "phone", 1) for m in _AREA_CODE.finditer(text)])


_EMAIL_CUE = re.compile(r"(?i:\be-?mail(?: address)?(?:'s| is|:| it's| is it)?(?:,? please)?[,:]?\s+"
                        r"(?:it's\s+|is\s+)?)")
_MAIL_PROVIDERS = r"(?:gmail|googlemail|yahoo|hotmail|outlook|live|msn|icloud|me|aol|proton(?:mail)?|gmx|mail)"
# Said right after an e-mail cue, so the local part may have spaces ("ayesha siddiqui 91"); it must end in a
# domain: a top-level domain after a spoken dot, or a mail provider ("at gmail").
_SPOKEN_EMAIL_AFTER_CUE = re.compile(
    rf"(?i:[a-z0-9._+-]+(?:,? [a-z0-9._+-]+){{0,7}},? (?:{_SPOKEN_AT}|@) "
    rf"(?:[a-z0-9-]+(?:(?: hyphen | dash | {_SPOKEN_DOT} )[a-z0-9-]+)* {_SPOKEN_DOT} [a-z]{{2,12}}|{_MAIL_PROVIDERS})"
    r"(?![\w-]))")


def _emails(text: str) -> list[_Candidate]:
    out = _shape(text, _EMAIL_RE, "email")
    for cue in _EMAIL_CUE.finditer(text):  # "my email's ayesha siddiqui 91 at gmail", right after the cue
        spoken = _SPOKEN_EMAIL_AFTER_CUE.match(text, cue.end())
        after = text[spoken.end():spoken.end() + 2] if spoken else ""
        if spoken and not re.match(r"[.@][\w]", after) and spoken.group().split()[0].lower() not in _stop_words():
            out.append(_Candidate(spoken.start(), spoken.end(), "email", 1))
    for spoken in _SPOKEN_EMAIL.finditer(text):  # "maya dot rivera at mail dot com": " at ", a domain, " dot com"
        if (spoken.end() < len(text) and text[spoken.end()].isalnum()) or \
                re.split(r"[ ._-]", spoken.group().lower(), maxsplit=1)[0] in _stop_words():
            continue  # "log in at portal dot clinic dot com" is a web address
        out.append(_Candidate(spoken.start(), spoken.end(), "email", 1))
    return out


def _ssns(text: str) -> list[_Candidate]:
    return (_shape(text, _SSN_RE, "ssn") + _after_cue(text, _SSN_CUE, _SSN_VALUE, "ssn", stop=_OTHER_ID_CUE)
            + _last_four(text))


_ID_BY_CHARACTER = re.compile(r"(?<![\w-])[A-Z0-9](?:(?:, ?|-| )[A-Z0-9]){4,}(?![\w-])")


def _mrns(text: str) -> list[_Candidate]:
    found = (_after_cue(text, _MRN_CUE, _MRN_VALUE, "mrn", stop=_OTHER_ID_CUE)
             + _after_cue(text, _MRN_CUE, _ID_BY_CHARACTER, "mrn", stop=_OTHER_ID_CUE))
    return [c for c in found if _id_like(text[c.start:c.end]) and not _plausible_date(text[c.start:c.end])]


def _plausible_date(value: str) -> bool:
    """A date with a year a person or an appointment could have ("2026-11-04", not "04-11-5521")."""
    iso = _iso_date(value) if _DATE_RE.fullmatch(value) else None
    return iso is not None and 1900 <= int(iso[:4]) <= 2100


def _id_like(value: str) -> bool:
    """Five digits or more, or four with letters ("RH-0092-XK"): not a year, a count or a room number."""
    digits = sum(ch.isdigit() for ch in value)
    return digits >= 5 or (digits >= 4 and any(ch.isalpha() for ch in value))


PERSONAL_DATE_YEARS = 2  # a full date this many years or more before the call's appointments is a personal one
_APPOINTMENT_CUE = re.compile(r"(?i:\b(?:appointments?|visit|book(?:ed|ing)?|follow-up|see (?:you|him|her|them)|"
                              r"schedul\w*|reschedul\w*|slots?|available|offer|come in|moved? (?:it |you )?to)\b)")


def _dobs(text: str) -> list[_Candidate]:
    """Dates after a birth cue (or before one: "1985-03-04 is my date of birth"), and every full date at least
    PERSONAL_DATE_YEARS before the earliest appointment the call books or offers: appointments are near the call,
    so an older date is a birth (often without a cue, "Joris is 2018-05-30 and Sem is June 2nd, 2021") or another
    date of a person's care, which is PHI too. Without an appointment date to go by, that rule stays off."""
    out = []
    for cue in _DOB_CUE.finditer(text):  # every date or part of one in the answer, up to a word about appointments
        limit = _window_after(text, cue.end(), reply="question")
        stop = _NOT_DOB_CUE.search(text, cue.end(), limit)
        for part in _DOB_PART.finditer(text, cue.end(), stop.start() if stop else limit):
            out.append(_Candidate(part.start(), part.end(), "dob", 1))
    dated = []
    for found in _DOB_VALUE.finditer(text):
        if _DOB_AFTER.match(text, found.end()):
            out.append(_Candidate(found.start(), found.end(), "dob", 1))
        if _plausible_date(found.group()):  # a date said in words has no day number to compare
            dated.append((int(_iso_date(found.group())[:4]), found))  # type: ignore[index]
    booked = [year for year, m in dated if _APPOINTMENT_CUE.search(text, max(0, m.start() - 80), m.start())]
    if booked:
        out += [_Candidate(m.start(), m.end(), "dob", 2) for year, m in dated
                if year <= min(booked) - PERSONAL_DATE_YEARS]
    return out


_ZIP_CUE = re.compile(r"(?i:\b(?:zip(?:\s*code)?|post(?:al)?\s*code)\b)")
_ZIP_VALUE = re.compile(r"(?<![\w$£€.,-])\d{5}(?:-\d{4})?(?![\w-]|[.,]\d)")
_UK_POSTCODE = re.compile(r"\b[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2}\b")


_EIRCODE = re.compile(r"\b(?:[AC-FHKNPRTV-Y]\d{2}|D6W) ?(?=[0-9AC-FHKNPRTV-Y]{4}\b)(?=[0-9]*[AC-FHKNPRTV-Y])"
                      r"[0-9AC-FHKNPRTV-Y]*\d[0-9AC-FHKNPRTV-Y]*\b")  # the unique part: digits and a letter
_UK_OUTWARD = re.compile(r"\b[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?\b")
_CA_POSTCODE = re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d\b")
_AU_STATE_POSTCODE = re.compile(r"\b(?:NSW|VIC|QLD|WA|SA|TAS|ACT|NT) \d{4}\b")


# A street named without a house number after words that say someone lives there: "we live on Moor Lane".
_STREET_CUE = re.compile(r"(?i:\b(?:li(?:ve|ves|ving)|moved|moving|staying|based) (?:on|to|at|in)\s+)")
_STREET_NAME = re.compile(rf"{_STREET_WORD}(?: {_STREET_WORD}){{0,3}} {_SUFFIX}")


def _addresses(text: str) -> list[_Candidate]:
    streets = [_Candidate(m.start(), m.end(), "address", 2) for cue in _STREET_CUE.finditer(text)
               if (m := _STREET_NAME.match(text, cue.end()))]
    return (streets + _shape(text, _ADDRESS_RE, "address") + _shape(text, _UK_POSTCODE, "address")
            + _shape(text, _CA_POSTCODE, "address") + _shape(text, _AU_STATE_POSTCODE, "address")
            + _shape(text, _EIRCODE, "address")
            + [dataclasses.replace(c, priority=2)  # as the shapes, so a whole postcode ("LS1 4AB") is longer
               for c in _after_cue(text, _ZIP_CUE, _UK_OUTWARD, "address", stop=_OTHER_ID_CUE)]
            + _after_cue(text, _ZIP_CUE, _ZIP_VALUE, "address", stop=_OTHER_ID_CUE))


# Numbers said digit by digit in words: "five five five, oh one three four", "double seven".
_DIGIT_WORD = r"(?:(?:double|triple) )?(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# A number read out in pieces, in digits or words or both: "four four eight dash two one dash six oh nine five",
# "401... 023... 2137", "6-0-0, 3-7, 2-2-1-9", "Zero five zero eight nine one, then two two six four".
_NUMBER_PIECE = rf"(?:\d++|{_DIGIT_WORD})"  # possessive: a run of digits is one piece, never split (no backtracking)
_PIECE_GAP = r"(?:\s*(?:\.{2,3}|[,–-])\s*|\s+)(?:(?:dash|hyphen|then|and then)\b,?\s*)?"  # never empty
_SPOKEN_DIGITS = re.compile(rf"(?i:(?<![\w$£€.-]){_NUMBER_PIECE}(?>{_PIECE_GAP}{_NUMBER_PIECE})+(?![\w-]|[.,]\d))")
_FOUR_DIGITS = re.compile(rf"(?<![\w.-])\d(?: ?\d){{3}}(?![\w-]|\.\d)"
                          rf"|(?i:(?<![\w-]){_DIGIT_WORD}(?:[ ,-]+{_DIGIT_WORD}){{3}}(?![\w-]))")
_LAST_FOUR = re.compile(r"(?i:\blast (?:four|4)(?: digits)?\b)")


_NUMBER_LIST = re.compile(r"\d+(?:, \d+)+")  # a list of numbers is an identifier only after a cue
# How many digits a word of a spoken number adds: "double seven" is two words and two digits, "triple three"
# three; the words between pieces add none.
_DIGITS_PER_WORD = {"double": 1, "triple": 2, "dash": 0, "hyphen": 0, "then": 0, "and": 0}


def _spoken_numbers(text: str) -> list[_Candidate]:
    """A number of seven digits or more said in words is an identifier: an SSN or a record number after its cue
    (in the same line or the question before), otherwise a phone number."""
    out = []
    for found in _SPOKEN_DIGITS.finditer(text):
        words = re.findall(r"\d+|[a-z]+", found.group().lower())
        digits = sum(len(w) if w.isdigit() else _DIGITS_PER_WORD.get(w, 1) for w in words)
        if digits < 7 or not re.search(r"[\s,.–-]", found.group()) or _DATE_RE.fullmatch(found.group()) \
                or _TIME_RE.search(found.group()):
            continue  # one plain number, a date or a time is for the other detectors
        listed = _NUMBER_LIST.fullmatch(found.group()) is not None  # "35, 34, 1, 39, 12": numbers, not one id
        kind = _kind_by_cue(text, found.start(), None if listed else "phone")
        if kind is not None:  # after the shapes: "(206) 555-0113" or "078-05-1120" is theirs to type
            out.append(_Candidate(found.start(), found.end(), kind, 3))
    return out


# Any other number of four digits or more is an identifier of some kind (HIPAA's Safe Harbor lists record,
# licence and device numbers alongside the seven types here): what the rules above did not place is redacted as
# the type its nearest cue names, a record number by default. Years, quantities with a unit, numbers whose
# nearest cue names a claim, invoice or other reference (left alone, as everywhere here) and everything
# protected (times, amounts, ICD-10 codes, kept values) stay.
_BARE_NUMBER = re.compile(r"(?<![\w$£€.,/:#-])\d{4,}(?![\w/:-]|[.,]\d)")
_UNIT_AFTER = re.compile(r"\s*(?i:mg|mcg|µg|ml|units?|iu|%|kg|lbs?|pounds?|g|grams?|cm|mm|mmhg|mmol|cells|calories?|"
                         r"dollars?|euros?|bucks|cents|"
                         r"steps|calories|miles|km|feet|ft|hours?|minutes?|days?|weeks?|months?|years?)\b")
_CUE_TYPES = (("ssn", _SSN_CUE), ("mrn", _MRN_CUE), ("phone", _PHONE_CUE))
_CUE_TYPES_RE = re.compile(r"(?i:phone|ssn|social)")  # words _OTHER_ID_CUE shares with the cues above


# Letters (two or more) and digits in one token, "-" or "/" between groups and no space: "HV-0091372",
# "MSH/OPD/2231/19"; not "BP 143/91", "USD 45.25", and not a prefix that names a reference ("REF-55-20931").
_BARE_ID = re.compile(r"(?<![\w$£€.,/:#-])([A-Z]{2,4})[-/]?\d+(?:[-/][A-Z0-9]+)*(?![\w/-]|[.,]\d)")
_REFERENCE_PREFIXES = frozenset("REF RF INV CLM CL CASE AUTH PA BK CONF ORD TKT TXN RCPT PO BILL STMT RX".split())


def _kind_by_cue(text: str, start: int, default: str | None) -> str | None:
    """The PHI type the nearest cue before `start` (in its line or the one before) names, `default` without one,
    or None when that cue names a claim, invoice or other reference number, which stays."""
    line_start = text.rfind("\n", 0, start)
    before = text[text.rfind("\n", 0, max(0, line_start)) + 1:start]
    cues = [(m.start(), kind) for kind, cue in _CUE_TYPES + (("address", _ZIP_CUE), ("other", _OTHER_ID_CUE))
            for m in cue.finditer(before) if kind != "other" or not _CUE_TYPES_RE.match(m.group())]
    kind = max(cues)[1] if cues else default
    return None if kind == "other" else kind


def _bare_numbers(text: str) -> list[_Candidate]:
    out = []
    for found in _BARE_ID.finditer(text):  # an identifier shape with letters: "HV-0091372", "RDH7203315"
        value = found.group()
        if _id_like(value) and found.group(1) not in _REFERENCE_PREFIXES:
            kind = _kind_by_cue(text, found.start(), "mrn")  # its shape says identifier: a record number by default
            if kind is not None:
                out.append(_Candidate(found.start(), found.end(), kind, 4))
    for found in _BARE_NUMBER.finditer(text):
        value = found.group()
        if (len(value) == 4 and 1900 <= int(value) <= 2099) or _UNIT_AFTER.match(text, found.end()):
            continue
        kind = _kind_by_cue(text, found.start(), None)  # a bare number needs a cue: lab values, rooms, counts stay
        if kind is not None:
            out.append(_Candidate(found.start(), found.end(), kind, 4))
    return out


def _last_four(text: str) -> list[_Candidate]:
    """"The last four of my social are 0931": the part of an SSN a caller gives to confirm who they are."""
    out = []
    for cue in _LAST_FOUR.finditer(text):
        context = text[max(0, cue.start() - 60):cue.end() + 40]
        value = _FOUR_DIGITS.search(text, cue.end(), _window_after(text, cue.end(), reply="question"))
        if value and _SSN_CUE.search(context):
            out.append(_Candidate(value.start(), value.end(), "ssn", 1))
    return out


def _trim_name(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A cue pattern's capture without the words that are not names ("It's Lihua" -> "Lihua"), or None when it
    is part of an organisation's name or nothing is left."""
    words = [m for m in _WORD_RE.finditer(text, start, end)]
    if any(_bare(m.group()) in _ORG_WORDS for m in words):
        return None
    following = re.match(r"(?: [A-Z][A-Za-z'-]*)+", text[end:end + 200])
    if following and any(w in _ORG_WORDS for w in following.group().split()):
        return None
    kept = [m for m in words if _bare(m.group()) not in _NOT_NAME and _bare(m.group()) not in _NEVER_NAME
            and _bare(m.group()) not in _sentence_words()]
    if not kept:
        return None
    last = kept[-1]
    return kept[0].start(), last.end() - (len(last.group()) - len(_bare(last.group())))


def _pattern_matches(text: str, compiled: _Compiled) -> list[_Candidate]:
    out = []
    for kind, pattern in compiled.patterns:
        for match in pattern.finditer(text):
            start, end = match.span(1) if pattern.groups else match.span()
            if start < 0 or start == end:
                continue
            if kind == "name":
                trimmed = _trim_name(text, start, end)
                if trimmed is None:
                    continue
                start, end = trimmed
            out.append(_Candidate(start, end, kind, 1 if kind != "name" else 2))
    return out


_DETECTORS = {"phone": _phones, "email": _emails, "ssn": _ssns, "mrn": _mrns, "dob": _dobs, "address": _addresses}


def _protected(text: str, keep_values: Iterable[str], staff_words: Iterable[str] = ()) -> list[tuple[int, int]]:
    """Spans never redacted: clinicians, times, ICD-10 codes, amounts, the kept answer values, and the words of
    a clinician's name wherever they recur ("Okafor" after "Dr. Okafor")."""
    spans = [m.span() for pattern in (_STAFF_RE, _TIME_RE, _AMOUNT_RE) for m in pattern.finditer(text)]
    spans += [m.span() for m in _ICD10_RE.finditer(text)  # not a postcode district: "D08 XY9P", "G11 5QE"
              if not _EIRCODE.match(text, m.start()) and not _UK_POSTCODE.match(text, m.start())]
    for value in keep_values:
        spans += _occurrences(text, value, whole_word=False)
    for word in staff_words:
        spans += [(start, end) for start, end in _occurrences(text, word) if not _first_name_before(text, start)]
    return spans


def _first_name_before(text: str, start: int) -> bool:
    """Whether the word before a clinician's surname makes it a patient's full name ("Maria Santos" beside
    "Dr. Santos"): a first name names-dataset knows, not a title, a weekday or an ordinary word opening a
    sentence ("Ask Okafor", "Monday Okafor")."""
    found = _FIRST_NAME_BEFORE.search(text, max(0, start - 30), start)
    if found is None:
        return False
    word = found.group().strip()
    if word in _NEVER_NAME or word in _sentence_words() or not _is_gazetteer_name(word, name_gazetteer()):
        return False
    return not (_starts_sentence(text, found.start()) and _is_english(word, _english_words()))


_FIRST_NAME_BEFORE = re.compile(r"(?<![.:])\b(?!(?:Dr|Dra|Doctor|Nurse|Practitioner|Prof|Professor|Pharmacist|"
                                r"Therapist|Midwife|NP|PA)\b)[A-Z][a-z]+ $")


def _staff_words(texts: Iterable[str], keep_values: Iterable[str]) -> set[str]:
    """The name words of every clinician named with a title, and of the kept values that look like names."""
    words: set[str] = set()
    for text in texts:
        for match in _STAFF_RE.finditer(text):
            words.update(w for w in _WORD_RE.findall(match.group()) if _capitalised(w) and w not in _NEVER_NAME)
    for value in keep_values:
        if _WORD_RE.search(value) and not any(ch.isdigit() for ch in value):
            words.update(w for w in _WORD_RE.findall(value) if _capitalised(w) and w not in _NEVER_NAME)
    return {_bare(w) for w in words if len(w) >= 2}


def _without_accents(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch))


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
            return date(year, b, a).isoformat() if a > 12 else date(year, a, b).isoformat()  # US order unless day-first
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
        spoken = re.sub(rf" {_SPOKEN_DOT} ", ".", re.sub(rf" {_SPOKEN_AT} ", "@", text.lower()))
        return re.sub(r" underscore ", "_", re.sub(r" (?:dash|hyphen) ", "-", spoken)).replace(" ", "").replace(",", "")
    if kind == "mrn":
        return re.sub(r"[^A-Z0-9]", "", text.upper())
    if kind == "dob":
        return _iso_date(text) or " ".join(text.lower().split())
    return " ".join(re.sub(r"[.,]", " ", text).lower().split())


# ---------------------------------------------------------------------------
# Finding PHI in a trace


# Dashes and spaces that typesetting or speech-to-text put in place of "-" and " " ("415–38–9027"): detection
# reads a copy with them folded, one character for one, so every span stays where it was in the original text.
_FOLD = str.maketrans({**{ch: "-" for ch in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"},
                       **{ch: " " for ch in "\u00a0\u2007\u2009\u202f\u3000"}})


def _trace_spans(texts: Sequence[str], rules: RedactionRules, keep_values: Sequence[str] = ()) -> list[list[PhiSpan]]:
    """PHI spans per text: detection in each text, then every recurrence of a found value across all of them."""
    originals = list(texts)
    texts = [t.translate(_FOLD) for t in originals]
    keep_values = [v.translate(_FOLD) for v in keep_values]
    compiled = _compile(rules)
    staff = _staff_words(texts, keep_values) if "name" in compiled.types else set()
    protected = [_Taken(_protected(t, keep_values, staff)) for t in texts]
    selected = []
    for text, blocked in zip(texts, protected, strict=True):
        candidates = [c for kind, detect in _DETECTORS.items() if kind in compiled.types for c in detect(text)]
        candidates += [c for c in _pattern_matches(text, compiled) if c.type in compiled.types]
        candidates += _library_candidates(text, compiled.types)
        candidates += [c for c in _spoken_numbers(text) + _bare_numbers(text) if c.type in compiled.types]
        selected.append(_select(candidates, blocked))
    # Every found value (and, for a name, each of its parts) is looked for again everywhere in the trace.
    recurring: dict[str, tuple[str, str]] = {}  # surface text -> (type, key)
    for text, chosen in zip(texts, selected, strict=True):
        for c in chosen:
            surface = text[c.start:c.end]
            key = _key(c.type, surface)
            recurring.setdefault(surface, (c.type, key))
            if c.type == "ssn" and len(key) == 9:
                recurring.setdefault(key[-4:], (c.type, key))  # "so, ending in 0193"
            if c.type in ("mrn", "phone", "ssn"):
                compact = re.sub(r"[\W_]", "", surface)
                if len(compact) >= 7 and compact != surface:
                    recurring.setdefault(compact, (c.type, key))  # "7-7-1-0-4-5-2", read back as "7710452"
            if c.type == "name":
                for part in surface.split():
                    if len(part) >= 3 and part not in _COMMON_WORDS and part not in _NOT_NAME:
                        recurring.setdefault(part, (c.type, key))
                        recurring.setdefault(_without_accents(part), (c.type, key))  # "Thủy", later "Thuy"
    out: list[list[PhiSpan]] = []
    for original, text, chosen, blocked in zip(originals, texts, selected, protected, strict=True):
        keys = {}
        chosen = [dataclasses.replace(c, type=recurring[text[c.start:c.end]][0]) if c.priority >= 3 else c
                  for c in chosen]  # a number placed only by a nearby cue is what it was found as elsewhere
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
        out.append([PhiSpan(c.start, c.end, c.type, original[c.start:c.end], keys[(c.start, c.end)]) for c in spans])
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


def find_phi_in_messages(messages: Sequence[Mapping[str, Any]],
                         rules: RedactionRules) -> list[tuple[str, list[PhiSpan]]]:
    """Each text of a trace (content, content parts, tool arguments) with the PHI spans `redact_messages` replaces."""
    if not rules.enabled:
        return []
    copied = [copy.deepcopy(dict(m)) for m in messages]
    texts = [container[key] for container, key in _text_slots(copied)]
    return list(zip(texts, _trace_spans(texts, rules, _kept_values(copied, rules.keep_fields)), strict=True))


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
