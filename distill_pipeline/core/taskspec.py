"""Task specs: one YAML file names a distillation target.

Which traces (a metadata filter), the output contract (a JSON schema or free
text), the graders and the pass rule, the task metric, the intents that always
go to the teacher, and prices per model. See data/tasks/healthcare.yaml.

Every mistake in a spec is a `TaskSpecError` that names the file, the line and
the field, and says what to write instead.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from distill_pipeline.core.fields import FIELD_RULES, FieldRules
from distill_pipeline.core.redaction import RedactionRules, RedactionSpecError

if TYPE_CHECKING:
    from distill_pipeline.core.decoding import DecodingRules

OUTPUT_TYPES = ("json", "text")
METRICS = ("field_f1", "fields", "exact_match", "judge")
PASS_RULES = ("all_required", "min_score")
STUDENT_PRICE_KEY = "student"


class TaskSpecError(ValueError):
    """A task spec mistake: `file line N: field problem; fix`."""

    def __init__(self, file: str, line: int | None, field_path: str, problem: str):
        self.file = file
        self.line = line
        self.field = field_path
        where = f"{file} line {line}" if line else file
        subject = f"{field_path} " if field_path else "the task spec "
        super().__init__(f"{where}: {subject}{problem}")


@dataclass(frozen=True)
class TraceFilter:
    """Traces whose metadata has every one of these key/value pairs."""

    metadata: dict[str, str] = field(default_factory=dict)

    def matches(self, metadata: Mapping[str, str]) -> bool:
        return all(metadata.get(key) == value for key, value in self.metadata.items())


@dataclass(frozen=True)
class OutputSpec:
    type: str  # json | text
    schema: dict[str, Any] | None = None  # the JSON schema of the answer when type is json


@dataclass(frozen=True)
class GraderSpec:
    name: str
    type: str
    required: bool = True
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PassRule:
    """all_required: every required grader passed. min_score: that, and the mean score >= min_score."""

    kind: str = "all_required"
    min_score: float | None = None


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens. `cached_input`: the price of prompt tokens served from the provider's prompt cache
    (OpenAI's `usage.prompt_tokens_details.cached_tokens`); None: every prompt token at `input`."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """Cached tokens x cached_input + the other prompt tokens x input + completion tokens x output."""
        if self.cached_input is None or not cached_tokens:
            return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000
        cached = min(cached_tokens, prompt_tokens)
        return ((prompt_tokens - cached) * self.input + cached * self.cached_input
                + completion_tokens * self.output) / 1_000_000

    def as_dict(self) -> dict[str, float | None]:
        return {"input": self.input, "cached_input": self.cached_input, "output": self.output}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    filter: TraceFilter
    output: OutputSpec
    graders: tuple[GraderSpec, ...]
    pass_rule: PassRule
    metric: str
    teacher_model: str
    teacher_only_intents: tuple[str, ...]
    prices: dict[str, Price]
    rare_intent_share: float = 0.05
    quarantine_max_share: float = 0.05
    min_teacher_pass_rate: float = 0.8
    min_domain_examples: int = 1_000  # the corpus_size check warns below this many domain examples in the mix
    redaction: dict[str, Any] | None = None  # the checked `redaction:` section as written; see redaction_rules
    scoring: dict[str, str] = field(default_factory=dict)  # field path (prefix) -> exact | token_f1; see field_rules
    source: str = ""  # the file it was loaded from

    @property
    def teacher_price(self) -> Price:
        return self.prices[self.teacher_model]

    @property
    def student_price(self) -> Price:
        return self.prices[STUDENT_PRICE_KEY]

    def price_table(self) -> dict[str, Any]:
        """The prices the cost figures use (USD per 1M tokens), and where they came from, for the report."""
        return {"teacher": {"model": self.teacher_model, **self.teacher_price.as_dict()},
                "student": self.student_price.as_dict(), "unit": "USD per 1M tokens", "task_spec": self.source}

    @property
    def enabled_graders(self) -> tuple[GraderSpec, ...]:
        return tuple(g for g in self.graders if g.enabled)

    @property
    def field_rules(self) -> FieldRules:
        """How each answer field is scored (the `scoring:` section; fields it does not name are exact)."""
        return FieldRules(self.scoring)

    @property
    def decoding_rules(self) -> DecodingRules | None:
        """What the student may write (core/decoding.py), from the output schema and the code_set and grounded
        graders; None for free-text tasks."""
        from distill_pipeline.core.decoding import DecodingRules  # graders import this module

        if self.output.schema is None:
            return None
        code_sets, indicated, grounded = {}, {}, {}
        for g in self.enabled_graders:
            if g.type == "code_set":
                code_sets[g.params["field"]] = {str(c): list(w or []) for c, w in g.params["codes"].items()}
                indicated[g.params["field"]] = bool(g.params.get("require_indicated", True))
            elif g.type == "grounded":
                grounded.update({str(k): str(v) for k, v in g.params["fields"].items()})
        return DecodingRules(dict(self.output.schema), code_sets, indicated, grounded)

    @property
    def redaction_rules(self) -> RedactionRules:
        """What to redact before training data leaves the machine (disabled when the spec has no section)."""
        return RedactionRules.from_spec(self.redaction)


def _schema_paths(schema: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Every dotted path of an object schema's properties, nested objects included."""
    paths: set[str] = set()
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{key}" if prefix else str(key)
        paths.add(path)
        if isinstance(sub, Mapping):
            paths |= _schema_paths(sub, path)
    return paths


def default_task_spec_path() -> Path:
    """The bundled healthcare task: repo_root/data/tasks/healthcare.yaml."""
    return Path(__file__).resolve().parents[2] / "data" / "tasks" / "healthcare.yaml"


def load_task_spec(path: str | Path) -> TaskSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskSpecError(str(path), None, "", "file does not exist; set DISTILL_TASK_SPEC to an existing task spec "
                            f"or leave it unset for the bundled one ({default_task_spec_path()})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise TaskSpecError(str(path), None, "", f"cannot be read ({err})") from None
    return parse_task_spec(text, str(path))


def parse_task_spec(text: str, source: str = "<task spec>") -> TaskSpec:
    """Parse and check a task spec's YAML text; `source` is the file name used in errors."""
    try:
        doc = _Document.parse(text, source)
        return _SpecReader(doc).read()
    except RecursionError:
        raise TaskSpecError(source, None, "", "is nested too deeply (or a YAML alias refers to itself); write the "
                            "spec as plain mappings and lists like data/tasks/healthcare.yaml") from None


# ---------------------------------------------------------------------------
# YAML with line numbers


class _Document:
    """The parsed YAML plus the line of every field path (`graders[2].type`)."""

    def __init__(self, source: str, data: Any, lines: dict[str, int]):
        self.source = source
        self.data = data
        self.lines = lines

    @classmethod
    def parse(cls, text: str, source: str) -> _Document:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark else None
            problem = err.problem or str(err)
            context = f" ({err.context})" if err.context else ""
            if err.context and err.context_mark and mark and err.context_mark.line != mark.line:
                context = f" ({err.context} that starts on line {err.context_mark.line + 1})"
            raise TaskSpecError(source, line, "", f"is not valid YAML: {problem}{context}; check the indentation, "
                                "and quote strings that contain ': ' or start with a special character") from None
        except yaml.reader.ReaderError as err:  # a character YAML does not allow, such as NUL
            line = text.count("\n", 0, err.position) + 1 if isinstance(err.position, int) else None
            character = f"U+{err.character:04X}" if isinstance(err.character, int) else repr(err.character)
            raise TaskSpecError(source, line, "", f"is not valid YAML: it contains the character {character}, "
                                "which YAML does not allow; delete it") from None
        except yaml.YAMLError as err:
            raise TaskSpecError(source, None, "", f"is not valid YAML: {err}") from None
        lines: dict[str, int] = {}
        if node is not None:
            cls._walk(node, "", lines, source, set())
        return cls(source, data, lines)

    @classmethod
    def _walk(cls, node: yaml.Node, path: str, lines: dict[str, int], source: str, walked: set[int]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in walked:  # an alias of a node already walked: once is enough (and aliases can nest)
            return
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                if key in seen:
                    raise TaskSpecError(source, key_node.start_mark.line + 1, child,
                                        "appears twice; keep one (YAML would silently use the last)")
                seen.add(key)
                lines[child] = key_node.start_mark.line + 1
                cls._walk(value_node, child, lines, source, walked)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                cls._walk(item, f"{path}[{i}]", lines, source, walked)

    def line(self, path: str) -> int | None:
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            parent = re.sub(r"(\.[^.\[\]]*|\[\d+\])$", "", path)
            path = "" if parent == path else parent

    def error(self, path: str, problem: str) -> TaskSpecError:
        return TaskSpecError(self.source, self.line(path), path, problem)


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; use one of: {', '.join(str(c) for c in choices)}"


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false", int: "a number",
            float: "a number", type(None): "empty"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------
# Grader parameters: what each grader type accepts (the graders live in core/graders.py)


@dataclass(frozen=True)
class _Param:
    kind: str  # str | bool | number | str_list | str_map | codes | any
    required: bool = False
    help: str = ""
    check: Callable[[Any], str | None] | None = None  # returns a problem, or None when fine


def _regex_problem(value: Any) -> str | None:
    try:
        re.compile(value)
    except re.error as err:
        return f"is not a valid regular expression ({err})"
    return None


def _module_function_problem(value: Any) -> str | None:
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
        return f"'{value}' must be 'package.module:function', e.g. 'my_checks.grading:no_pii'"
    return None


def _unit_interval_problem(value: Any) -> str | None:
    return None if 0 <= value <= 1 else f"must be between 0 and 1 (got {value})"


_GROUNDED_KINDS = ("date", "time", "name", "literal")


def _grounded_fields_problem(value: Any) -> str | None:
    for path, kind in value.items():
        if kind not in _GROUNDED_KINDS:
            return f"{path}: '{kind}' is not a kind of grounding{_did_you_mean(kind, _GROUNDED_KINDS)}"
    return None


GRADER_PARAMS: dict[str, dict[str, _Param]] = {
    "json_schema": {
        "schema": _Param("any", help="a JSON schema; defaults to output.schema"),
    },
    "string_check": {
        "path": _Param("str", help="dotted JSON path like follow_up.date or icd10[0]; omit for the whole answer"),
        "op": _Param("str", required=True, help="eq, ne, contains or regex"),
        "value": _Param("any", required=True, help="the value to compare with"),
        "ignore_case": _Param("bool"),
    },
    "reference": {
        "mode": _Param("str", help="exact or f1 (default exact)"),
        "threshold": _Param("number", help="minimum F1 to pass in f1 mode", check=_unit_interval_problem),
        "exclude": _Param("str_list", help="field prefixes to ignore, e.g. [soap]"),
    },
    "grounded": {
        "fields": _Param("str_map", required=True, help="field path -> date, time, name or literal",
                         check=_grounded_fields_problem),
    },
    "code_set": {
        "field": _Param("str", required=True, help="dotted path of the code or list of codes, e.g. icd10"),
        "codes": _Param("codes", required=True, help="code -> list of words in the request that indicate it"),
        "require_indicated": _Param("bool", help="a code needs one of its words in the request (default true)"),
    },
    "python": {
        "function": _Param("str", required=True, help="'package.module:function' taking the trace",
                           check=_module_function_problem),
    },
    "llm_judge": {
        "rubric": _Param("str", required=True, help="what the judge scores, in plain words"),
        "model": _Param("str", help="the judge model's name (part of the cache key)"),
        "pass_score": _Param("number", help="minimum score (0-1) to pass, default 0.7", check=_unit_interval_problem),
    },
}

_OP_CHOICES = ("eq", "ne", "contains", "regex")
_REFERENCE_MODES = ("exact", "f1")


# ---------------------------------------------------------------------------
# Reading and checking


_TOP_LEVEL = {
    "name": True, "description": False, "filter": False, "output": True, "graders": True, "pass_rule": False,
    "metric": True, "teacher_model": True, "teacher_only_intents": False, "rare_intent_share": False,
    "prices": True, "quarantine_max_share": False, "min_teacher_pass_rate": False, "redaction": False,
    "min_domain_examples": False,
    "scoring": False,
}


_KEY_HINTS = {
    "type": "type: one of " + ", ".join(GRADER_PARAMS),
    "output": "output: {type: json, schema: {...}} (or type: text)",
    "graders": "graders: [{name: schema, type: json_schema}]",
    "metric": "metric: fields (or field_f1, exact_match, judge)",
    "prices": "prices: {<teacher model>: {input: 2.5, output: 10}, student: {input: 0.02, output: 0.04}}",
}
_PRICE_HINTS = {"input": "input: <USD per 1M prompt tokens>", "output": "output: <USD per 1M completion tokens>",
                "cached_input": "cached_input: <USD per 1M cached prompt tokens>"}


class _SpecReader:
    def __init__(self, doc: _Document):
        self.doc = doc

    # -- small typed getters -------------------------------------------------

    def _mapping(self, value: Any, path: str, example: str) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise self.doc.error(path, f"must be a mapping (got {_type_name(value)}); write it like: {example}")
        return value

    def _keys(self, mapping: dict[Any, Any], path: str, allowed: Mapping[str, bool], what: str,
              hints: Mapping[str, str] = _KEY_HINTS) -> None:
        for key in mapping:
            if key not in allowed:
                child = f"{path}.{key}" if path else str(key)
                raise self.doc.error(child, f"is not a known {what} key{_did_you_mean(key, list(allowed))}")
        for key, required in allowed.items():
            if required and key not in mapping:
                hint = hints.get(key, f"{key}: ...")
                if not path:
                    raise TaskSpecError(self.doc.source, self.doc.line(""), key,
                                        f"is missing; add a top-level '{hint}'")
                raise self.doc.error(path, f"is missing '{key}'; add '{hint}'")

    def _string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.doc.error(path, f"must be a non-empty string (got {_type_name(value)})")
        return value

    def _bool(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.doc.error(path, f"must be true or false (got {value!r})")
        return value

    def _number(self, value: Any, path: str, low: float | None = None, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.doc.error(path, f"must be a number (got {_type_name(value)} {value!r})")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise self.doc.error(path, f"must be {bounds} (got {value:g})")
        return float(value)

    def _count(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.doc.error(path, f"must be a whole number of at least 1 (got {_type_name(value)} {value!r}); "
                                 "write it without quotes or separators, e.g. 1000")
        return value

    def _string_list(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.doc.error(path, f"must be a list of strings like [a, b] (got {_type_name(value)})")
        return tuple(self._string(item, f"{path}[{i}]") for i, item in enumerate(value))

    def _string_map(self, value: Any, path: str, example: str) -> dict[str, str]:
        mapping = self._mapping(value, path, example)
        out = {}
        for key, item in mapping.items():
            if not isinstance(key, str):
                raise self.doc.error(f"{path}.{key}", f"key {key!r} must be a string; quote it")
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise self.doc.error(f"{path}.{key}", f"must be a string (got {_type_name(item)})")
            out[key] = str(item)
        return out

    # -- the spec ------------------------------------------------------------

    def read(self) -> TaskSpec:
        data = self.doc.data
        if data is None:
            raise self.doc.error("", "is empty; start from the bundled data/tasks/healthcare.yaml")
        data = self._mapping(data, "", "name: my-task")
        self._keys(data, "", _TOP_LEVEL, "top-level")
        output = self._output(data["output"])
        graders = self._graders(data["graders"], output)
        prices = self._prices(data["prices"])
        teacher_model = self._string(data["teacher_model"], "teacher_model")
        if teacher_model not in prices:
            raise self.doc.error("prices", f"has no entry for the teacher model '{teacher_model}'; add "
                                 f"'{teacher_model}: {{input: ..., output: ...}}' (USD per 1M tokens)")
        metric = self._choice(data["metric"], "metric", METRICS)
        if metric == "judge" and not any(g.type == "llm_judge" and g.enabled for g in graders):
            raise self.doc.error("metric", "is 'judge' but no llm_judge grader is enabled; enable one or use "
                                 "field_f1 / exact_match")
        intents = self._string_list(data.get("teacher_only_intents", []), "teacher_only_intents")
        self._check_intents(intents, output)
        redaction = self._redaction(data.get("redaction"))
        return TaskSpec(
            name=self._string(data["name"], "name"),
            description=self._description(data.get("description", "")),
            filter=self._filter(data.get("filter", {})),
            output=output,
            graders=graders,
            pass_rule=self._pass_rule(data.get("pass_rule", "all_required"), graders),
            metric=metric,
            teacher_model=teacher_model,
            teacher_only_intents=intents,
            prices=prices,
            rare_intent_share=self._number(data.get("rare_intent_share", 0.05), "rare_intent_share", 0, 1),
            quarantine_max_share=self._number(data.get("quarantine_max_share", 0.05), "quarantine_max_share", 0, 1),
            min_teacher_pass_rate=self._number(data.get("min_teacher_pass_rate", 0.8), "min_teacher_pass_rate", 0, 1),
            min_domain_examples=self._count(data.get("min_domain_examples", 1_000), "min_domain_examples"),
            redaction=redaction,
            scoring=self._scoring(data.get("scoring", {}), output),
            source=self.doc.source,
        )

    def _scoring(self, value: Any, output: OutputSpec) -> dict[str, str]:
        """The `scoring:` section: a rule per answer field (dotted path), each field of the output schema."""
        rules = self._string_map(value, "scoring", "scoring: {soap: token_f1}")
        known = _schema_paths(output.schema) if output.schema else None
        for path, rule in rules.items():
            if rule not in FIELD_RULES:
                raise self.doc.error(f"scoring.{path}", f"rule {rule!r} is not one of {', '.join(FIELD_RULES)}"
                                     f"{_did_you_mean(rule, list(FIELD_RULES))}")
            if known is not None and path not in known:
                raise self.doc.error(f"scoring.{path}", f"is not a field of output.schema"
                                     f"{_did_you_mean(path, sorted(known))}")
        return rules

    def _redaction(self, value: Any) -> dict[str, Any] | None:
        """The `redaction:` section, checked by the rules it becomes and kept as written."""
        if value is None:
            return None
        mapping = self._mapping(value, "redaction", "redaction: {enabled: true, types: [phone, email, name]}")
        try:
            RedactionRules.from_spec(mapping)
        except RedactionSpecError as err:
            raise self.doc.error(f"redaction.{err.field}" if err.field else "redaction", err.problem) from None
        return mapping

    def _description(self, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.doc.error("description", f"must be text (got {_type_name(value)})")
        return value.strip()

    def _choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str):
            raise self.doc.error(path, f"must be one of {', '.join(choices)} (got {_type_name(value)})")
        if value not in choices:
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise self.doc.error(path, f"'{value}' is not one of {', '.join(choices)}{hint}")
        return value

    def _filter(self, value: Any) -> TraceFilter:
        if value is None:
            return TraceFilter()
        mapping = self._mapping(value, "filter", "filter: {metadata: {agent: my-agent}}")
        self._keys(mapping, "filter", {"metadata": False}, "filter")
        metadata = mapping.get("metadata") or {}
        return TraceFilter(self._string_map(metadata, "filter.metadata", "metadata: {agent: my-agent, layer: teacher}"))

    def _output(self, value: Any) -> OutputSpec:
        mapping = self._mapping(value, "output", "output: {type: json, schema: {...}}")
        self._keys(mapping, "output", {"type": True, "schema": False}, "output")
        kind = self._choice(mapping["type"], "output.type", OUTPUT_TYPES)
        if kind == "text":
            if "schema" in mapping:
                raise self.doc.error("output.schema", "only applies to type: json; remove it or set type: json")
            return OutputSpec("text")
        if "schema" not in mapping:
            raise self.doc.error("output", "is type json but has no 'schema'; add the answer's JSON schema")
        return OutputSpec("json", self._schema(mapping["schema"], "output.schema"))

    def _schema(self, value: Any, path: str) -> dict[str, Any]:
        if isinstance(value, str):  # a JSON document in a block scalar
            try:
                value = json.loads(value)
            except ValueError as err:
                raise self.doc.error(path, f"is a string but not valid JSON ({err}); write the schema as a YAML "
                                     "mapping or as JSON") from None
        schema = self._mapping(value, path, "schema: {type: object, properties: {...}}")
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as err:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            raise self.doc.error(f"{path}{where}", f"is not a valid JSON schema: {err.message}") from None
        return schema

    def _graders(self, value: Any, output: OutputSpec) -> tuple[GraderSpec, ...]:
        if not isinstance(value, list) or not value:
            raise self.doc.error("graders", "must be a non-empty list of graders (- name: ..., type: ...)")
        graders = []
        names: set[str] = set()
        for i, item in enumerate(value):
            path = f"graders[{i}]"
            mapping = self._mapping(item, path, "- {name: schema, type: json_schema}")
            self._keys(mapping, path, {"name": True, "type": True, "required": False, "enabled": False,
                                       "params": False}, "grader")
            name = self._string(mapping["name"], f"{path}.name")
            if name in names:
                raise self.doc.error(f"{path}.name", f"'{name}' is used by another grader; grader names are unique")
            names.add(name)
            kind = mapping["type"]
            if not isinstance(kind, str) or kind not in GRADER_PARAMS:
                raise self.doc.error(f"{path}.type", f"{kind!r} is not a grader{_did_you_mean(kind, GRADER_PARAMS)}")
            params = mapping.get("params") or {}
            params = self._mapping(params, f"{path}.params", "params: {field: icd10}")
            self._params(params, f"{path}.params", kind, output)
            graders.append(GraderSpec(
                name=name,
                type=kind,
                required=self._bool(mapping.get("required", True), f"{path}.required"),
                enabled=self._bool(mapping.get("enabled", True), f"{path}.enabled"),
                params=params,
            ))
        return tuple(graders)

    def _params(self, params: dict[str, Any], path: str, kind: str, output: OutputSpec) -> None:
        accepted = GRADER_PARAMS[kind]
        for key in params:
            if key not in accepted:
                raise self.doc.error(f"{path}.{key}", f"is not a parameter of {kind} graders"
                                     f"{_did_you_mean(key, list(accepted) or ['(none)'])}")
        for key, param in accepted.items():
            if param.required and key not in params:
                raise self.doc.error(path, f"is missing '{key}' ({param.help})")
        for key, value in params.items():
            param = accepted[key]
            where = f"{path}.{key}"
            if param.kind == "str":
                self._string(value, where)
            elif param.kind == "bool":
                self._bool(value, where)
            elif param.kind == "number":
                self._number(value, where)
            elif param.kind == "str_list":
                self._string_list(value, where)
            elif param.kind == "str_map":
                self._string_map(value, where, f"{key}: {{follow_up.date: date}}")
            elif param.kind == "codes":
                self._codes(value, where)
            if param.check and (problem := param.check(value)):
                raise self.doc.error(where, problem)
        if kind == "json_schema":
            if "schema" in params:
                params["schema"] = self._schema(params["schema"], f"{path}.schema")
            elif output.type != "json":
                raise self.doc.error(path, "needs a 'schema' because output.type is not json")
        if kind == "string_check":
            self._choice(params["op"], f"{path}.op", _OP_CHOICES)
            if params["op"] == "regex":
                self._string(params["value"], f"{path}.value")
                if problem := _regex_problem(params["value"]):
                    raise self.doc.error(f"{path}.value", problem)
            if params["op"] == "contains" and params["value"] is None:
                raise self.doc.error(f"{path}.value", "must not be empty for op contains")
        if kind == "reference" and "mode" in params:
            self._choice(params["mode"], f"{path}.mode", _REFERENCE_MODES)

    def _codes(self, value: Any, path: str) -> None:
        mapping = self._mapping(value, path, "codes: {J02.9: [sore throat]}")
        if not mapping:
            raise self.doc.error(path, "is empty; list the allowed codes with their indicating words")
        for code, words in mapping.items():
            if not isinstance(code, str):
                raise self.doc.error(f"{path}.{code}", f"code {code!r} must be a string; quote it")
            words = [] if words is None else words
            if not isinstance(words, list):
                raise self.doc.error(f"{path}.{code}", f"must be a list of indicating words like [sore throat] "
                                     f"(got {_type_name(words)})")
            self._string_list(words, f"{path}.{code}")
            mapping[code] = words

    def _pass_rule(self, value: Any, graders: tuple[GraderSpec, ...]) -> PassRule:
        if value == "all_required":
            rule = PassRule()
        elif isinstance(value, str):
            raise self.doc.error("pass_rule", f"'{value}' is not a pass rule; write 'all_required' or "
                                 "'{min_score: 0.8}'")
        else:
            mapping = self._mapping(value, "pass_rule", "pass_rule: {min_score: 0.8} (or pass_rule: all_required)")
            self._keys(mapping, "pass_rule", {"min_score": True}, "pass_rule")
            rule = PassRule("min_score", self._number(mapping["min_score"], "pass_rule.min_score", 0, 1))
        if not any(g.required and g.enabled for g in graders):
            raise self.doc.error("graders", "has no enabled required grader, so every trace would pass; "
                                 "mark at least one grader 'required: true'")
        return rule

    def _prices(self, value: Any) -> dict[str, Price]:
        mapping = self._mapping(value, "prices", "prices: {gpt-4o-2024-08-06: {input: 2.5, output: 10}}")
        prices = {}
        for model, price in mapping.items():
            path = f"prices.{model}"
            if not isinstance(model, str):
                raise self.doc.error(path, f"model name {model!r} must be a string; quote it")
            price = self._mapping(price, path, f"{model}: {{input: 2.5, output: 10}} (USD per 1M tokens)")
            self._keys(price, path, {"input": True, "output": True, "cached_input": False}, "price", _PRICE_HINTS)
            cached = price.get("cached_input")
            prices[model] = Price(self._number(price["input"], f"{path}.input", 0),
                                  self._number(price["output"], f"{path}.output", 0),
                                  None if cached is None else self._number(cached, f"{path}.cached_input", 0))
        if STUDENT_PRICE_KEY not in prices:
            raise self.doc.error("prices", "has no 'student' entry; add 'student: {input: ..., output: ...}' "
                                 "(USD per 1M tokens of the student you serve)")
        return prices

    def _check_intents(self, intents: tuple[str, ...], output: OutputSpec) -> None:
        known = ((output.schema or {}).get("properties") or {}).get("intent", {}).get("enum")
        if not isinstance(known, list):
            return
        for i, intent in enumerate(intents):
            if intent not in known:
                raise self.doc.error(f"teacher_only_intents[{i}]", f"'{intent}' is not an intent of the output "
                                     f"schema{_did_you_mean(intent, known)}")
