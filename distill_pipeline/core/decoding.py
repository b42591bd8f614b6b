"""What a student may write: the answer's JSON schema, narrowed per request by the task's own graders.

The graders say what a correct answer must be (core/graders.py); constrained decoding
makes the student write nothing else. For one request:

- every code field of a `code_set` grader may hold only codes of its set, and, when the
  grader requires codes to be indicated, only those whose indicating words the request
  says (a wrong ICD-10 code is a billing error; a code the call never indicated is one);
- every field a `grounded` grader checks as a `date` or a `time` may hold only a value
  that appears literally in the request (or null), as the grader demands of the teacher.

The evaluation and the router build the same schema from the same `DecodingRules`, so the
student is measured as it is served.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distill_pipeline.core.graders import literal_in_text, words_indicate

LITERAL_KINDS = ("date", "time")


@dataclass(frozen=True)
class DecodingRules:
    schema: dict[str, Any]
    # code field -> code -> its indicating words; None: any code of the set, indicated or not
    code_sets: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    require_indicated: dict[str, bool] = field(default_factory=dict)
    grounded: dict[str, str] = field(default_factory=dict)  # field -> date | time | name, as the grader checks it

    def schema_for(self, request_text: str) -> dict[str, Any]:
        """The schema this request's answer must follow, its properties in the order of its `required` lists.

        Constrained decoding writes an object's keys in the schema's property order, and a JSON file written with
        sorted keys (a policy, a report) loses that order; the `required` lists keep it.
        """
        out = _ordered(json.loads(json.dumps(self.schema)))  # a deep, plain-JSON copy
        for path, codes in self.code_sets.items():
            allowed = sorted(code for code, words in codes.items()
                             if not self.require_indicated.get(path, False) or words_indicate(words, request_text))
            _narrow_codes(_node(out, path), allowed)
        for path, kind in self.grounded.items():
            if kind in LITERAL_KINDS:
                node = _node(out, path)
                pattern = node.get("pattern")
                if isinstance(pattern, str):
                    _narrow_literals(node, literals_in(pattern, request_text))
        return out

    def for_messages(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        from distill_pipeline.core.traces import message_text

        return self.schema_for("\n".join(message_text(dict(m)) for m in messages))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "code_sets": self.code_sets, "require_indicated": self.require_indicated,
                "grounded": self.grounded}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecodingRules:
        return cls(schema=dict(data["schema"]), code_sets=dict(data.get("code_sets") or {}),
                   require_indicated=dict(data.get("require_indicated") or {}),
                   grounded=dict(data.get("grounded") or {}))


def _ordered(node: Any) -> Any:
    """Every object's properties in its `required` order (the answer's key order), the rest after them."""
    if isinstance(node, dict):
        node = {key: _ordered(value) for key, value in node.items()}
        properties, required = node.get("properties"), node.get("required")
        if isinstance(properties, dict) and isinstance(required, list):
            first = [key for key in required if key in properties]
            node["properties"] = {key: properties[key] for key in first + [k for k in properties if k not in first]}
    elif isinstance(node, list):
        node = [_ordered(item) for item in node]
    return node


def _node(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node: Any = schema
    for key in path.split("."):
        node = (node.get("properties") or {}).get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise ValueError(f"field {path!r} is not a property of the answer's schema")
    return node


def _narrow_codes(node: dict[str, Any], allowed: list[str]) -> None:
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        node["uniqueItems"] = True
        if allowed:
            node["items"]["enum"] = allowed
            node["maxItems"] = len(allowed)  # each code at most once, even where a decoder ignores uniqueItems
        else:  # nothing indicated: the only right answer is no code
            node["maxItems"] = 0
            node["items"] = {"type": "string"}
    else:
        node["enum"] = allowed + ([None] if _nullable(node) else [])


def _nullable(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def _narrow_literals(node: dict[str, Any], values: list[str]) -> None:
    node.pop("pattern", None)
    node["enum"] = values + ([None] if _nullable(node) or not values else [])
    if not _nullable(node) and not values:
        node["enum"] = [None]
        node["type"] = "null"


def literals_in(pattern: str, text: str) -> list[str]:
    """The distinct values in the text that match a field's anchored pattern, standing alone (as the grader reads)."""
    body = pattern.removeprefix("^").removesuffix("$")
    found = dict.fromkeys(m.group(0) for m in re.finditer(rf"(?<![\w]){body}(?![\w])", text))
    return [value for value in found if literal_in_text(value, text)]


def code_schema(schema: Mapping[str, Any], code_sets: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The schema with each code field narrowed to its whole code set (no request at hand)."""
    rules = DecodingRules(dict(schema), {path: dict.fromkeys(codes, []) for path, codes in code_sets.items()})
    return rules.schema_for("")
