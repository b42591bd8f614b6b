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

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from distill_pipeline.backends.policy_store import (
    HISTORY_DIR,
    policy_history,
    read_policy,
    rollback_policy,
    write_policy,
)
from distill_pipeline.core.artifacts import POLICY_KEYS, TRAINING_MANIFEST, PolicyError, RoutingPolicy
from distill_pipeline.core.chat import ChatModel, Completion, TokenStream
from distill_pipeline.core.decoding import DecodingRules
from distill_pipeline.core.fields import FieldRules, RunningConfidence, confidence

# The policy's type and its file live beside the other hand-offs; the Router's API keeps offering them.
__all__ = ["HISTORY_DIR", "POLICY_KEYS", "PolicyError", "RoutedAnswer", "Router", "RoutingPolicy", "policy_history",
           "read_policy", "rollback_policy", "write_policy"]

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
    manifest = next((p for p in (path / TRAINING_MANIFEST, path.parent / TRAINING_MANIFEST) if p.is_file()), None)
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
