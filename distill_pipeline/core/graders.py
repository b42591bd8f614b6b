"""Graders: decide, trace by trace, whether the teacher's answer is right enough to learn from.

Each grader returns a `Verdict` and never raises on a bad answer: a grader bug
on one trace becomes a failed verdict carrying the error, not a crashed run.
`build_graders` turns a task spec into graders, `grade_trace` runs them, and
`passes` applies the spec's pass rule (skipped verdicts never count).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from distill_pipeline.core.chat import ChatModel
from distill_pipeline.core.metrics import MAX_ANSWER_CHARS, exact_match, field_f1
from distill_pipeline.core.taskspec import GraderSpec, PassRule, TaskSpec
from distill_pipeline.core.traces import TraceRow, loads_json

# The model an llm_judge grader asks when its spec names none.
DEFAULT_JUDGE_MODEL = "gpt-4o-mini"
JUDGE_NOT_CONFIGURED = ("llm_judge skipped: no judge endpoint configured "
                        "(set OPENAI_BASE_URL/OPENAI_API_KEY and enable it in the task spec)")


class GraderError(ValueError):
    """A grader that cannot be built (e.g. a python grader whose function does not import)."""


@dataclass(frozen=True)
class Verdict:
    grader: str
    version: str
    passed: bool
    score: float
    reason: str
    skipped: bool = False
    required: bool = True  # copied from the grader, so the pass rule can be applied to stored verdicts


_MISSING = object()


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted path (`follow_up.date`, `icd10[0]`), or `_MISSING`."""
    for token in _path_tokens(path):
        if isinstance(token, int):
            if not isinstance(obj, list) or token >= len(obj):
                return _MISSING
            obj = obj[token]
        else:
            if not isinstance(obj, dict) or token not in obj:
                return _MISSING
            obj = obj[token]
    return obj


@functools.lru_cache(maxsize=1024)
def _path_tokens(path: str) -> tuple[str | int, ...]:
    """A dotted path's steps, parsed once per path: keys as strings, `[n]` as the integer n."""
    return tuple(int(t[1:-1]) if t.startswith("[") else t for t in re.findall(r"[^.\[\]]+|\[\d+\]", path))


def _load_answer(text: str) -> tuple[Any, str]:
    """(the decoded JSON value, "") or (None, why it could not be decoded)."""
    if not text.strip():
        return None, "the answer is empty"
    if len(text) > MAX_ANSWER_CHARS:
        return None, f"the answer is {len(text):,} characters, over the {MAX_ANSWER_CHARS:,} limit"
    try:
        return loads_json(text), ""
    except RecursionError:
        return None, "the answer's JSON is nested too deeply"
    except ValueError as err:
        return None, f"the answer is not valid JSON ({err})"


# What every grader reads of a trace (its decoded answer, its request text and words), worked out once per
# trace and kept on the row: a row's fields never change after parsing, and graders only read these values.
def _memo(trace: TraceRow, key: str, make: Callable[[], Any]) -> Any:
    cache = trace.__dict__
    if key not in cache:
        object.__setattr__(trace, key, make())
    return cache[key]


def decoded_answer(trace: TraceRow) -> tuple[Any, str]:
    """`_load_answer(trace.answer_text)`, decoded once for all the graders of a trace."""
    return _memo(trace, "_grading_answer", lambda: _load_answer(trace.answer_text))


def request_text(trace: TraceRow) -> str:
    """The request as one NFC-normalised string."""
    return _memo(trace, "_grading_request", lambda: unicodedata.normalize("NFC", trace.request_text))


def _request_folded(trace: TraceRow) -> str:
    return _memo(trace, "_grading_request_folded", lambda: request_text(trace).casefold())


def _request_words(trace: TraceRow) -> list[str]:
    return _memo(trace, "_grading_request_words", lambda: _words(request_text(trace)))


def _answer_object(trace: TraceRow) -> tuple[dict[str, Any] | None, str]:
    value, problem = decoded_answer(trace)
    if problem:
        return None, problem
    if not isinstance(value, dict):
        return None, f"the answer is JSON but not an object (got {_json_type(value)})"
    return value, ""


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return repr(text if len(text) <= limit else text[:limit] + "...")


class Grader:
    """Base grader: subclasses implement `_grade`; `grade` turns any exception into a failed verdict."""

    type = ""
    version = "1"

    def __init__(self, spec: GraderSpec):
        self.name = spec.name
        self.required = spec.required
        self.params = dict(spec.params)

    def grade(self, trace: TraceRow) -> Verdict:
        try:
            return self._grade(trace)
        except Exception as err:  # a grader bug on one trace must not stop the run
            return self._fail(f"grader error: {type(err).__name__}: {err}")

    def _grade(self, trace: TraceRow) -> Verdict:
        raise NotImplementedError

    def _verdict(self, passed: bool, score: float, reason: str, skipped: bool = False) -> Verdict:
        return Verdict(self.name, self.version, bool(passed), float(score), reason, skipped, self.required)

    def _pass(self, reason: str = "ok", score: float = 1.0) -> Verdict:
        return self._verdict(True, score, reason)

    def _fail(self, reason: str, score: float = 0.0) -> Verdict:
        return self._verdict(False, score, reason)

    def _skip(self, reason: str) -> Verdict:
        return self._verdict(True, 1.0, reason, skipped=True)


class JsonSchemaGrader(Grader):
    """The answer is a JSON object that validates against the task's schema."""

    type = "json_schema"

    def __init__(self, spec: GraderSpec, schema: Mapping[str, Any]):
        super().__init__(spec)
        schema = dict(self.params.get("schema") or schema)
        self.validator = validator_for(schema)(schema)
        self.fast = _compiled_validator(schema)

    def _grade(self, trace: TraceRow) -> Verdict:
        value, problem = decoded_answer(trace)
        if problem:
            return self._fail(problem)
        if self.fast is not None and _fast_valid(self.fast, value):
            return self._pass("matches the schema")
        # Not valid for the compiled validator (or no compiled one): jsonschema decides and says why.
        error = best_match(self.validator.iter_errors(value))
        if error is None:
            return self._pass("matches the schema")
        where = _format_path(error.absolute_path) or "top level"
        return self._fail(f"{where}: {error.message}")


def _compiled_validator(schema: Mapping[str, Any]) -> Any:
    """jsonschema-rs's compiled validator for the schema (2.7 us per bundled-task answer in the profile,
    against about 170 us for jsonschema), or None where it cannot take the schema. It is only trusted to say
    "valid": every answer it rejects goes to jsonschema, so a regex or format it reads more strictly can only
    cost time, never a verdict. The tests check that it never calls valid what jsonschema rejects."""
    try:
        import jsonschema_rs

        return jsonschema_rs.validator_for(dict(schema), validate_formats=False)
    except Exception:  # an unsupported keyword, a regex it cannot compile, no wheel for this platform
        return None


def _fast_valid(validator: Any, value: Any) -> bool:
    try:
        return bool(validator.is_valid(value))
    except Exception:  # a value it cannot convert (an integer past 64 bits, say): jsonschema decides
        return False


def _format_path(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class StringCheckGrader(Grader):
    """eq / ne / contains / regex on one field of the answer (or on the whole answer)."""

    type = "string_check"

    def __init__(self, spec: GraderSpec):
        super().__init__(spec)
        self.path: str | None = self.params.get("path")
        self.op: str = self.params["op"]
        self.value: Any = self.params["value"]
        self.ignore_case = bool(self.params.get("ignore_case", False))
        self.pattern = re.compile(self.value, re.IGNORECASE if self.ignore_case else 0) if self.op == "regex" else None

    def _grade(self, trace: TraceRow) -> Verdict:
        text = trace.answer_text
        if len(text) > MAX_ANSWER_CHARS:
            return self._fail(f"the answer is {len(text):,} characters, over the {MAX_ANSWER_CHARS:,} limit")
        target = self.path or "the answer"
        if self.path:
            value, problem = _answer_object(trace)
            if value is None:
                return self._fail(f"cannot check {target}: {problem}")
            actual = get_path(value, self.path)
            if actual is _MISSING:
                return self._fail(f"{target} is missing from the answer")
        else:
            actual = text
        ok = self._check(actual)
        relation = {"eq": "equals", "ne": "differs from", "contains": "contains", "regex": "matches"}[self.op]
        if ok:
            return self._pass(f"{target} {relation} {_short(self.value)}")
        return self._fail(f"{target} {_short(actual)} does not satisfy {self.op} {_short(self.value)}")

    def _check(self, actual: Any) -> bool:
        if self.op in ("eq", "ne"):
            same = self._fold(actual) == self._fold(self.value)
            return same if self.op == "eq" else not same
        if self.op == "contains":
            if isinstance(actual, list):
                return any(self._fold(item) == self._fold(self.value) for item in actual)
            return self._fold(_as_text(self.value)) in self._fold(_as_text(actual))
        assert self.pattern is not None
        return self.pattern.search(_as_text(actual)) is not None

    def _fold(self, value: Any) -> Any:
        if isinstance(value, str):
            value = unicodedata.normalize("NFC", value)
            return value.casefold() if self.ignore_case else value
        return json.dumps(value, sort_keys=True)  # JSON types stay apart: 1 != true != "1"


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


class ReferenceGrader(Grader):
    """Field-level match against the trace's reference answer; skipped when there is none."""

    type = "reference"

    def __init__(self, spec: GraderSpec):
        super().__init__(spec)
        self.mode = self.params.get("mode", "exact")
        self.threshold = float(self.params.get("threshold", 1.0 if self.mode == "exact" else 0.8))
        self.exclude = tuple(self.params.get("exclude", ()))

    def _grade(self, trace: TraceRow) -> Verdict:
        if trace.reference is None:
            return self._skip("reference skipped: this trace has no reference answer")
        value, problem = _answer_object(trace)
        if value is None:
            return self._fail(problem)
        if self.mode == "exact":
            ok = exact_match(value, trace.reference, self.exclude)
            return self._pass("matches the reference") if ok else self._fail("differs from the reference")
        score = field_f1(value, trace.reference, exclude_prefixes=self.exclude)
        reason = f"field F1 {score:.2f} against the reference (threshold {self.threshold:.2f})"
        return self._verdict(score >= self.threshold, score, reason)


# Titles a caller or an answer may put before a clinician's name (compared without dots).
TITLES = frozenset({"dr", "doctor", "nurse", "np", "pa", "rn", "prof", "professor", "mr", "mrs", "ms", "mx",
                    "miss", "sister", "midwife", "practitioner"})


def _words(text: str) -> list[str]:
    return re.findall(r"\w+(?:['’-]\w+)*", unicodedata.normalize("NFC", text).casefold())


def name_without_title(name: str) -> list[str]:
    words = _words(name)
    while words and words[0] in TITLES:
        words = words[1:]
    return words


def name_in_text(name: str, text: str) -> bool:
    """The name's words (title aside) appear in the text in order, case-insensitively."""
    return _name_in_words(name, _words(text))


def _name_in_words(name: str, words: list[str]) -> bool:
    wanted = name_without_title(name)
    if not wanted:
        return False
    n, first, i = len(wanted), wanted[0], -1
    try:
        while True:  # list.index finds each occurrence of the first word in C; compare the rest only there
            i = words.index(first, i + 1)
            if words[i:i + n] == wanted:
                return True
    except ValueError:
        return False


def literal_in_text(value: str, text: str) -> bool:
    """The value appears in the text, not as part of a longer number or word."""
    return value in text and _literal_pattern(value).search(text) is not None  # a substring test rules most out


@functools.lru_cache(maxsize=4096)
def _literal_pattern(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w]){re.escape(value)}(?![\w])")


class GroundedGrader(Grader):
    """Named fields of the answer must appear in the request: an invented date or name fails."""

    type = "grounded"

    def __init__(self, spec: GraderSpec):
        super().__init__(spec)
        self.fields: dict[str, str] = dict(self.params["fields"])

    def _grade(self, trace: TraceRow) -> Verdict:
        value, problem = _answer_object(trace)
        if value is None:
            return self._fail(f"cannot check grounding: {problem}")
        ungrounded = []
        for path, kind in self.fields.items():
            actual = get_path(value, path)
            if actual is _MISSING or actual is None:
                continue
            if not isinstance(actual, str):
                ungrounded.append(f"{path} {_short(actual)} is not a string")
                continue
            actual = unicodedata.normalize("NFC", actual).strip()
            found = (_name_in_words(actual, _request_words(trace)) if kind == "name"
                     else literal_in_text(actual, request_text(trace)))
            if not found:
                ungrounded.append(f"{path} {_short(actual)} does not appear in the request")
        score = 1 - len(ungrounded) / len(self.fields) if self.fields else 1.0
        if ungrounded:
            return self._fail("; ".join(ungrounded), score)
        return self._pass("every checked field appears in the request")


class CodeSetGrader(Grader):
    """Every code in a field comes from the allowed set and (optionally) is indicated by the request."""

    type = "code_set"

    def __init__(self, spec: GraderSpec):
        super().__init__(spec)
        self.field: str = self.params["field"]
        self.codes: dict[str, list[str]] = {str(k): list(v or []) for k, v in self.params["codes"].items()}
        self.require_indicated = bool(self.params.get("require_indicated", True))

    def _grade(self, trace: TraceRow) -> Verdict:
        value, problem = _answer_object(trace)
        if value is None:
            return self._fail(f"cannot check {self.field}: {problem}")
        actual = get_path(value, self.field)
        if actual is _MISSING or actual is None:
            return self._pass(f"no {self.field} codes")
        codes = [actual] if isinstance(actual, str) else actual
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            return self._fail(f"{self.field} must be a code or a list of codes (got {_short(actual)})")
        if not codes:
            return self._pass(f"no {self.field} codes")
        request = _request_folded(trace)
        problems = []
        for code in codes:
            if code not in self.codes:
                problems.append(f"{code!r} is not an allowed code")
            elif self.require_indicated and not any(_keyword_in(word, request) for word in self.codes[code]):
                words = " / ".join(self.codes[code]) or "(no indicating words listed)"
                problems.append(f"{code!r} is not indicated by the request (needs {words})")
        score = 1 - len(problems) / len(codes)
        if problems:
            return self._fail("; ".join(problems), score)
        return self._pass(f"every {self.field} code is allowed" + (" and indicated" if self.require_indicated else ""))


def words_indicate(words: Sequence[str], text: str) -> bool:
    """Some indicating word starts a word of the text, case-insensitively (the code_set grader's test)."""
    folded = unicodedata.normalize("NFC", text).casefold()
    return any(_keyword_in(word, folded) for word in words)


def _keyword_in(word: str, folded_text: str) -> bool:
    """A word starts a word of the text (so 'headache' finds 'headaches', 'cold' misses 'scolded')."""
    pattern, needle = _keyword_pattern(word)
    return needle in folded_text and pattern.search(folded_text) is not None  # a substring test rules most out


@functools.lru_cache(maxsize=4096)
def _keyword_pattern(word: str) -> tuple[re.Pattern[str], str]:
    word = unicodedata.normalize("NFC", word).casefold()
    return re.compile(rf"(?<!\w){re.escape(word)}"), word


def load_function(target: str) -> Callable[..., Any]:
    """Import 'package.module:function'."""
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise GraderError(f"python grader cannot import module '{module_name}' ({type(err).__name__}: {err}); "
                          "install it or put it on PYTHONPATH") from err
    function = getattr(module, function_name, None)
    if not callable(function):
        raise GraderError(f"python grader: module '{module_name}' has no function '{function_name}'")
    return function


class PythonGrader(Grader):
    """Any function of the trace that returns a Verdict, a bool, or (bool, reason)."""

    type = "python"

    def __init__(self, spec: GraderSpec):
        super().__init__(spec)
        self.target: str = self.params["function"]
        self.function = load_function(self.target)

    def _grade(self, trace: TraceRow) -> Verdict:
        result = self.function(trace)
        if isinstance(result, Verdict):
            return Verdict(self.name, result.version or self.version, result.passed, result.score, result.reason,
                           result.skipped, self.required)
        if isinstance(result, bool):
            return self._verdict(result, float(result), f"{self.target} returned {result}")
        if (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool)
                and isinstance(result[1], str)):
            return self._verdict(result[0], float(result[0]), result[1])
        return self._fail(f"{self.target} returned {type(result).__name__}; return a Verdict, a bool or "
                          "(bool, reason)")


_SCORE_OUT_OF_TEN = re.compile(r"(\d+(?:\.\d+)?)\s*(?:/|out of)\s*10\b", re.IGNORECASE)
_SCORE_LABELLED = re.compile(r"score\W{0,3}(\d+(?:\.\d+)?)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")


def parse_judge_score(reply: str) -> float | None:
    """A 0-1 score from a judge's reply: 'Score: 7', '7/10', '0.7', or None when there is none."""
    for pattern, scale in ((_SCORE_OUT_OF_TEN, 10.0), (_SCORE_LABELLED, None), (_NUMBER, None)):
        match = pattern.search(reply)
        if not match:
            continue
        number = float(match.group(1))
        if scale is None:
            scale = 1.0 if number <= 1 else 10.0
        if number > scale:
            return None
        return number / scale
    return None


class LlmJudgeGrader(Grader):
    """A judge model scores the answer against a rubric; verdicts are cached by content."""

    type = "llm_judge"

    def __init__(self, spec: GraderSpec, judge: ChatModel | None, cache: MutableMapping[str, dict] | None):
        super().__init__(spec)
        self.rubric: str = self.params["rubric"].strip()
        self.pass_score = float(self.params.get("pass_score", 0.7))
        self.judge = judge
        self.judge_model = str(self.params.get("model") or getattr(judge, "model", "") or "judge")
        self.cache: MutableMapping[str, dict] = cache if cache is not None else {}

    def cache_key(self, trace: TraceRow) -> str:
        payload = json.dumps([self.version, self.rubric, self.judge_model, trace.content_hash], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def messages(self, trace: TraceRow) -> list[dict]:
        return [
            {"role": "system", "content": "You grade another model's answer against a rubric. Think briefly, then "
                                          "end with a line 'Score: N' where N is 0 (worst) to 10 (best)."},
            {"role": "user", "content": f"Rubric:\n{self.rubric}\n\nRequest:\n{trace.request_text}\n\n"
                                        f"Answer:\n{trace.answer_text[:MAX_ANSWER_CHARS]}"},
        ]

    def _grade(self, trace: TraceRow) -> Verdict:
        if self.judge is None:
            return self._skip(JUDGE_NOT_CONFIGURED)
        key = self.cache_key(trace)
        cached = self.cache.get(key)
        if cached is None:
            try:
                reply = self.judge.complete(self.messages(trace)).text
            except Exception as err:
                return self._fail(f"judge call failed ({type(err).__name__}: {err}); not cached, will retry")
            score = parse_judge_score(reply)
            if score is None:
                return self._fail(f"the judge's reply has no 0-10 score: {_short(reply, 120)}")
            cached = {"score": score, "reply": reply}
            self.cache[key] = cached
        score = float(cached["score"])
        reason = f"judge score {score:.2f} (pass at {self.pass_score:.2f}): {_short(cached.get('reply', ''), 120)}"
        return self._verdict(score >= self.pass_score, score, reason)


def build_graders(spec: TaskSpec, judge: ChatModel | None = None,
                  judge_cache: MutableMapping[str, dict] | None = None) -> list[Grader]:
    """The spec's enabled graders, ready to run."""
    graders: list[Grader] = []
    cache = judge_cache if judge_cache is not None else {}
    for grader_spec in spec.graders:
        if not grader_spec.enabled:
            continue
        kind = grader_spec.type
        if kind == "json_schema":
            graders.append(JsonSchemaGrader(grader_spec, spec.output.schema or {}))
        elif kind == "string_check":
            graders.append(StringCheckGrader(grader_spec))
        elif kind == "reference":
            graders.append(ReferenceGrader(grader_spec))
        elif kind == "grounded":
            graders.append(GroundedGrader(grader_spec))
        elif kind == "code_set":
            graders.append(CodeSetGrader(grader_spec))
        elif kind == "python":
            graders.append(PythonGrader(grader_spec))
        elif kind == "llm_judge":
            graders.append(LlmJudgeGrader(grader_spec, judge, cache))
        else:
            raise GraderError(f"grader '{grader_spec.name}': unknown type '{kind}'")
    return graders


def judge_model(task: TaskSpec) -> str | None:
    """The model the task's first enabled llm_judge grader asks (None: the task has no judge)."""
    judges = [g for g in task.enabled_graders if g.type == "llm_judge"]
    return str(judges[0].params.get("model", DEFAULT_JUDGE_MODEL)) if judges else None


def grade_trace(graders: Sequence[Grader], trace: TraceRow) -> list[Verdict]:
    return [grader.grade(trace) for grader in graders]


class Judged(Protocol):
    """What the pass rule reads of a verdict: a `Verdict`, or a stored `trace_evals` row (curate.EvalRow)."""

    @property
    def passed(self) -> bool: ...
    @property
    def score(self) -> float: ...
    @property
    def skipped(self) -> bool: ...
    @property
    def required(self) -> bool: ...


def passes(verdicts: Sequence[Judged], pass_rule: PassRule) -> bool:
    """The pass rule over one trace's verdicts; skipped verdicts never count."""
    counted = [v for v in verdicts if not v.skipped]
    if not all(v.passed for v in counted if v.required):
        return False
    if pass_rule.kind == "min_score" and counted:
        mean = sum(v.score for v in counted) / len(counted)
        return mean >= (pass_rule.min_score or 0.0)
    return True
