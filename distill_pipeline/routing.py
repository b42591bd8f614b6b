"""The runtime router: answer with the student, fall back to the teacher when it is unsure.

    router = Router.from_policy("storage/routing_policy/current.json")
    answer = router.route(messages, intent="medication_refill")
    answer.text, answer.model_used, answer.reason

The routing policy (CONTRACTS.md: `<storage root>/routing_policy/current.json`)
names the student, the teacher and the minimum-token-logprob threshold below
which the student's answer is not trusted:

- an intent listed in `teacher_only_intents` goes straight to the teacher;
- otherwise the student answers, with logprobs; if its least likely token is
  below the threshold (or it returned no logprobs to judge), the teacher answers;
- a student that streams (`stream()`: the local student, any OpenAI-compatible
  endpoint) is judged token by token: the moment its running confidence falls
  below the threshold it is stopped and the teacher is called, so a fallback
  waits for the deciding token, not the whole answer (the decision is the one
  the whole answer would give: the running confidence never rises);
- a student error falls back to the teacher; a teacher error propagates;
- a policy that was not promoted (the student failed the gate) sends every call
  to the teacher.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from distill_pipeline.core.chat import ChatModel, Completion, TokenStream
from distill_pipeline.core.decoding import DecodingRules
from distill_pipeline.core.fields import CONFIDENCE_SIGNALS, FieldRules, RunningConfidence, confidence

POLICY_KEYS = ("student", "student_endpoint", "teacher_model", "threshold", "teacher_only_intents", "report",
               "created_at", "promoted", "signal", "field_rules", "decoding")
HISTORY_DIR = "history"


class PolicyError(ValueError):
    """A routing policy file that cannot be used; the message says which file and what is wrong."""


@dataclass(frozen=True)
class RoutingPolicy:
    student: str  # an ft: model id, a served model name (with student_endpoint), or a local adapter path
    teacher_model: str
    threshold: float  # student min token logprob below this -> teacher
    teacher_only_intents: tuple[str, ...] = ()
    student_endpoint: str | None = None  # base_url of the OpenAI-compatible server that serves the student
    report: str | None = None  # the evaluation report this policy was derived from
    created_at: str = ""  # ISO 8601, UTC
    promoted: bool = False  # the student passed the gate; unpromoted policies route everything to the teacher
    # what the confidence is read from (fields.CONFIDENCE_SIGNALS) and which fields are structured, as evaluated
    signal: str = "whole_answer"
    field_rules: dict[str, str] = field(default_factory=dict)
    # what constrained the student's decoding in the evaluation (core/decoding.DecodingRules; None: nothing)
    decoding: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # any other keys, kept as written

    def to_dict(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "student_endpoint": self.student_endpoint,
            "teacher_model": self.teacher_model,
            "threshold": self.threshold,
            "teacher_only_intents": list(self.teacher_only_intents),
            "report": self.report,
            "created_at": self.created_at,
            "promoted": self.promoted,
            "signal": self.signal,
            "field_rules": dict(self.field_rules),
            "decoding": self.decoding,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<policy>") -> RoutingPolicy:
        if not isinstance(data, dict):
            raise PolicyError(f"{source}: a routing policy must be a JSON object (got {type(data).__name__})")
        missing = [key for key in ("student", "teacher_model", "threshold") if key not in data]
        if missing:
            raise PolicyError(f"{source}: missing {', '.join(missing)}; a policy needs at least student, "
                              "teacher_model and threshold")
        for key in ("student", "teacher_model"):
            if not isinstance(data[key], str) or not data[key].strip():
                raise PolicyError(f"{source}: {key} must be a non-empty string (got {data[key]!r})")
        threshold = data["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise PolicyError(f"{source}: threshold must be a number, a minimum token logprob such as -0.5 "
                              f"(got {threshold!r})")
        intents = data.get("teacher_only_intents") or []
        if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
            raise PolicyError(f"{source}: teacher_only_intents must be a list of intent names")
        promoted = data.get("promoted", False)
        if not isinstance(promoted, bool):
            raise PolicyError(f"{source}: promoted must be true or false (got {promoted!r})")
        endpoint = data.get("student_endpoint")
        if endpoint is not None and not isinstance(endpoint, str):
            raise PolicyError(f"{source}: student_endpoint must be a base URL string or null")
        signal = data.get("signal", "whole_answer")
        if signal not in CONFIDENCE_SIGNALS:
            raise PolicyError(f"{source}: signal must be one of {', '.join(CONFIDENCE_SIGNALS)} (got {signal!r})")
        rules = data.get("field_rules") or {}
        try:
            FieldRules(rules)
        except (ValueError, AttributeError, TypeError) as err:
            raise PolicyError(f"{source}: field_rules: {err}") from None
        decoding = data.get("decoding")
        if decoding is not None:
            try:
                DecodingRules.from_dict(decoding)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise PolicyError(f"{source}: decoding must be the report's decoding rules or null ({err!r})") from None
        return cls(
            student=data["student"],
            teacher_model=data["teacher_model"],
            threshold=float(threshold),
            teacher_only_intents=tuple(intents),
            student_endpoint=endpoint or None,
            report=data.get("report"),
            created_at=str(data.get("created_at") or ""),
            promoted=promoted,
            signal=signal,
            field_rules=dict(rules),
            decoding=decoding,
            extra={k: v for k, v in data.items() if k not in POLICY_KEYS},
        )


def read_policy(path: str | Path) -> RoutingPolicy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: no routing policy here; materialize the routing_policy asset first") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise PolicyError(f"{path}: not valid JSON ({err})") from None
    return RoutingPolicy.from_dict(data, str(path))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_policy(path: str | Path, policy: RoutingPolicy | dict[str, Any]) -> Path:
    """Write the policy atomically to `path`, and a copy to `<dir>/history/<created_at>-<hash>.json`.

    Every policy ever written stays in the history folder; writing the same policy
    again rewrites the same history file (reruns are idempotent). Returns the history path.
    """
    path = Path(path)
    if isinstance(policy, dict):
        policy = RoutingPolicy.from_dict(policy)
    if not policy.created_at:
        policy = replace(policy, created_at=datetime.now(UTC).isoformat(timespec="seconds"))
    text = json.dumps(policy.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    stamp = re.sub(r"[^0-9A-Za-z]+", "", policy.created_at)[:20] or "undated"
    history = path.parent / HISTORY_DIR / f"{stamp}-{digest}.json"
    _atomic_write(history, text)
    _atomic_write(path, text)
    return history


def policy_history(path: str | Path) -> list[Path]:
    """Every policy ever written beside `path`, oldest first (history files are named by creation time)."""
    folder = Path(path).parent / HISTORY_DIR
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def rollback_policy(path: str | Path) -> tuple[RoutingPolicy, Path]:
    """Put the policy written before the one in force back in force; returns it and its history file.

    The history is not changed, so a second rollback steps back once more. A PolicyError says why when there is
    nothing to go back to.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"{path}: no routing policy is in force; nothing to roll back")
    current = path.read_text(encoding="utf-8")
    history = policy_history(path)
    position = next((i for i, p in enumerate(history) if p.read_text(encoding="utf-8") == current), None)
    if position is None:
        raise PolicyError(f"{path} is not in {path.parent / HISTORY_DIR}; it was not written by write_policy, so "
                          "there is no record of what came before it")
    if position == 0:
        raise PolicyError(f"{path} is the first policy in {path.parent / HISTORY_DIR}; there is none before it")
    previous = history[position - 1]
    policy = read_policy(previous)
    _atomic_write(path, previous.read_text(encoding="utf-8"))
    return policy, previous


# ---------------------------------------------------------------------------- the router


@dataclass(frozen=True)
class RoutedAnswer:
    text: str
    model_used: Literal["student", "teacher"]
    reason: str
    student_min_logprob: float | None  # None when the student did not answer
    completion: Completion  # the completion that was returned (the teacher's when routed)
    student_tokens: int = 0  # tokens the student generated before the router decided (0: not asked)
    decided_ms: float | None = None  # ms from the student request to the decision; None when the student was not asked


class Router:
    def __init__(self, policy: RoutingPolicy, student: ChatModel | None, teacher: ChatModel):
        if policy.promoted and student is None:
            raise ValueError("a promoted policy needs a student model")
        self.policy = policy
        self.student = student
        self.teacher = teacher
        self.teacher_only = frozenset(policy.teacher_only_intents)
        self.rules = FieldRules(policy.field_rules)

    @classmethod
    def from_policy(cls, path: str | Path, student: ChatModel | None = None,
                    teacher: ChatModel | None = None) -> Router:
        """A router for the policy file; models not given are built from it and the environment.

        The teacher is `teacher_model` on the OpenAI-compatible endpoint of OPENAI_API_KEY /
        OPENAI_BASE_URL. The student is `student` on `student_endpoint` when set; otherwise a
        local adapter directory when `student` is one; otherwise `student` (e.g. an `ft:` model)
        on the same endpoint as the teacher. The student's client does not retry and times out
        after STUDENT_TIMEOUT_S: a failure goes to the teacher instead.
        """
        policy = read_policy(path)
        if teacher is None:
            teacher = _openai_model(policy.teacher_model, base_url=None, student=False)
        if student is None and policy.promoted:
            student = _student_model(policy)
        return cls(policy, student, teacher)

    def route(self, messages: list[dict], intent: str | None = None) -> RoutedAnswer:
        if intent is not None and intent in self.teacher_only:
            return self._teacher(messages, f"intent '{intent}' always goes to the teacher", None)
        if not self.policy.promoted or self.student is None:
            return self._teacher(messages, "the routing policy is not promoted; the teacher answers every call", None)
        stream = getattr(self.student, "stream", None)
        if callable(stream):
            return self._route_streaming(messages, stream)
        try:
            answer = self.student.complete(messages)
        except Exception as err:  # any student failure must still get the caller an answer
            return self._teacher(messages, f"student failed ({type(err).__name__}: {err}); fell back to the teacher",
                                 None)
        return self._judge(messages, answer)

    def _route_streaming(self, messages: list[dict], stream: Callable[[list[dict]], TokenStream]) -> RoutedAnswer:
        """Read the student's tokens as they come; stop it at the first one that takes the confidence below."""
        threshold = self.policy.threshold
        running = RunningConfidence(self.rules, self.policy.signal)
        try:
            with stream(messages) as tokens:
                for event in tokens:
                    value = running.add(event.text, event.logprob)
                    if value is not None and value < threshold:
                        break  # leaving the `with` closes the stream: the student stops generating
                else:
                    value = None
                answer = tokens.completion
        except Exception as err:  # any student failure must still get the caller an answer
            return self._teacher(messages, f"student failed ({type(err).__name__}: {err}); fell back to the teacher",
                                 None)
        if value is not None:
            return self._teacher(messages, f"student {self._what()} fell to {value:.3f} < threshold {threshold:g} at "
                                 f"token {running.tokens} ({event.elapsed_ms:.0f} ms); stopped the student", value,
                                 student_tokens=running.tokens, decided_ms=event.elapsed_ms)
        if answer is None:  # pragma: no cover - a stream that ended without its completion
            return self._teacher(messages, "student stream ended without an answer; fell back to the teacher", None)
        return self._judge(messages, answer)

    def _judge(self, messages: list[dict], answer: Completion) -> RoutedAnswer:
        """The whole student answer: kept when its confidence reaches the threshold, else the teacher answers."""
        asked: dict[str, Any] = {"student_tokens": answer.completion_tokens or len(answer.token_logprobs),
                                 "decided_ms": answer.latency_ms}
        if not answer.token_logprobs:
            return self._teacher(messages, "student returned no token logprobs, so its confidence is unknown",
                                 None, **asked)
        confidence = self.confidence(answer)
        threshold = self.policy.threshold
        what = self._what()
        if confidence < threshold:
            return self._teacher(messages, f"student {what} {confidence:.3f} < threshold {threshold:g}", confidence,
                                 **asked)
        return RoutedAnswer(answer.text, "student", f"student {what} {confidence:.3f} >= threshold {threshold:g}",
                            confidence, answer, **asked)

    def _what(self) -> str:
        return "structured-field confidence" if self.policy.signal == "structured_fields" else "min logprob"

    def confidence(self, answer: Completion) -> float:
        """The policy's signal, read from the answer as the evaluation read it."""
        return confidence(answer.text, answer.token_logprobs, answer.token_offsets, self.rules, self.policy.signal)

    def _teacher(self, messages: list[dict], reason: str, confidence: float | None, student_tokens: int = 0,
                 decided_ms: float | None = None) -> RoutedAnswer:
        answer = self.teacher.complete(messages)
        return RoutedAnswer(answer.text, "teacher", reason, confidence, answer, student_tokens, decided_ms)


# A failing or hung student should hand over to the teacher at once rather than retry: the caller is waiting.
STUDENT_MAX_RETRIES = 0
STUDENT_TIMEOUT_S = 30.0


def _openai_model(model: str, base_url: str | None, *, student: bool, json_schema: Any = None) -> ChatModel:
    from openai import OpenAI

    from distill_pipeline.backends.chat_models import OpenAIChatModel

    options: dict[str, Any] = {"max_retries": STUDENT_MAX_RETRIES, "timeout": STUDENT_TIMEOUT_S} if student else {}
    if base_url:  # a self-hosted server (vLLM) may not check keys at all
        client = OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY") or "not-needed", **options)
    else:
        client = OpenAI(**options)  # OPENAI_API_KEY, OPENAI_BASE_URL
    return OpenAIChatModel(client, model, logprobs=student, json_schema=json_schema)


def _student_model(policy: RoutingPolicy) -> ChatModel:
    schema = DecodingRules.from_dict(policy.decoding).for_messages if policy.decoding else None
    if policy.student_endpoint:
        return _openai_model(policy.student, policy.student_endpoint, student=True, json_schema=schema)
    if Path(policy.student).is_dir():
        return _local_student(policy.student, schema, policy.extra.get("preset"))
    return _openai_model(policy.student, None, student=True, json_schema=schema)


def _local_student(reference: str, json_schema: Any = None, preset_name: str | None = None) -> ChatModel:
    """A student trained by the local LoRA trainer: its output directory (adapter/ + manifest.json) or adapter/."""
    path = Path(reference)
    adapter = path / "adapter" if (path / "adapter" / "adapter_config.json").is_file() else path
    manifest = next((p for p in (path / "manifest.json", path.parent / "manifest.json") if p.is_file()), None)
    if manifest is None or not (adapter / "adapter_config.json").is_file():
        raise PolicyError(f"student {reference!r} is a directory but not a local student: expected the trainer's "
                          "output (adapter/adapter_config.json and manifest.json); set student_endpoint to serve "
                          "it elsewhere")
    try:
        base_model = json.loads(manifest.read_text(encoding="utf-8"))["base_model"]
    except (ValueError, KeyError, TypeError):
        raise PolicyError(f"{manifest}: no base_model recorded; retrain the student") from None
    from distill_pipeline.backends.local_student import LocalStudent  # torch: imported only when needed
    from distill_pipeline.core.presets import preset

    settings = preset(preset_name or os.environ.get("DISTILL_PRESET", "cpu"))
    return LocalStudent(Path(base_model), adapter, settings, json_schema=json_schema)
