"""What one asset hands another, as types: one shape that the writer and every reader share.

A renamed field is one edit here, and the type checker finds every reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Self

from distill_pipeline.core.decoding import DecodingRules
from distill_pipeline.core.fields import CONFIDENCE_SIGNALS, FieldRules
from distill_pipeline.core.mix import Source


def _require(data: Mapping[str, Any], names: Iterable[str], file: str, writer: str) -> None:
    """A KeyError naming what `file` lacks: it was written by another version of `writer`."""
    missing = [name for name in names if name not in data]
    if missing:
        raise KeyError(f"{file} lacks {', '.join(missing)}; it was written by another version of {writer}")


@dataclass(frozen=True)
class TrainingFigures:
    """The local trainer's headline figures, as its manifest.json carries them (CONTRACTS.md: student_model)."""

    train_wall_s: float  # load + frozen-layer cache + training loop + validation, end to end
    peak_memory_mb: float  # peak resident memory of the training process
    tokens_per_s: float
    final_train_loss: float
    final_validation_loss: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> TrainingFigures:
        """The figures of a trainer manifest; a KeyError names the missing key (a writer/reader mismatch)."""
        missing = [f.name for f in fields(cls) if f.name not in manifest]
        if missing:
            raise KeyError(f"training manifest lacks {', '.join(missing)}; it was written by another version of "
                           "the trainer")
        return cls(**{f.name: float(manifest[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class StudentInfo:
    """The finished student as student_model hands it on (student.json): to the evaluation, the model card and
    the serving helpers."""

    FILE: ClassVar[str] = "student.json"

    trainer: str  # "local" (a LoRA adapter) or "openai" (a fine-tuned model)
    student: str  # the adapter directory, or the ft: model id
    job_id: str
    key: str  # the fine-tuning job's key (finetune_format.job_key)
    base_model_dir: str | None = None  # local: the base checkpoint the adapter applies to
    preset: str | None = None  # local: the preset it was trained (and is evaluated) with
    merged: str | None = None  # local: the adapter merged into the base weights, when exported
    manifest: Mapping[str, Any] | None = None  # openai: the finished job as OpenAI reports it

    @staticmethod
    def keys_for(trainer: str) -> tuple[str, ...]:
        """The fields student.json carries for a trainer: a local student has no manifest there, an OpenAI one
        no base model, preset or merged checkpoint."""
        common = ("trainer", "student", "job_id", "key")
        return common + (("base_model_dir", "preset", "merged") if trainer == "local" else ("manifest",))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.keys_for(self.trainer)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudentInfo:
        """The student of a student.json; a KeyError names what is missing (a writer/reader mismatch)."""
        _require(data, cls.keys_for(data.get("trainer", "")), cls.FILE, "student_model")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


# The trainer's output folder (student_model/<job id>/): the adapter, its manifest, the merged checkpoint's record.
TRAINING_MANIFEST = "manifest.json"
MERGED_RECORD = "merged.json"


class JsonRecord:
    """A frozen dataclass that is one JSON object in a file: written as its fields, read back with a KeyError that
    names the fields the file lacks (it was written by another version of the asset that writes it)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    FILE: ClassVar[str]  # the file, as the error names it
    WRITER: ClassVar[str]  # the asset that writes it
    OPTIONAL: ClassVar[tuple[str, ...]] = ()  # fields that files written before them lack (read as the default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        names = [f.name for f in fields(cls)]
        _require(data, [name for name in names if name not in cls.OPTIONAL], cls.FILE, cls.WRITER)
        return cls(**{name: data[name] for name in names if name in data})


@dataclass(frozen=True)
class FineTuneJob(JsonRecord):
    """The submitted fine-tuning job as fine_tune_job hands it to student_model and the model card (job.json)."""

    FILE, WRITER = "job.json", "fine_tune_job"

    job_id: str
    status: str
    trainer: str  # "local" or "openai"
    key: str  # finetune_format.job_key: same files and settings, same key
    hyperparameters: Mapping[str, Any]
    preset: str
    train_path: str
    validation_path: str
    train_sha256: str
    validation_sha256: str
    run_id: str


@dataclass(frozen=True)
class MixEntry(JsonRecord):
    """One line of training_mix's examples.jsonl: which example went into which file (the audit trail)."""

    FILE, WRITER = "examples.jsonl", "training_mix"

    file: str  # "train" or "validation"
    source: Source
    id: str
    intent: str
    content_hash: str


@dataclass(frozen=True)
class MixRecord(JsonRecord):
    """How training_mix built its files (mix_config.json): the mix settings, the inputs' versions, the redaction
    and the corpus size, for its checks and the model card."""

    FILE, WRITER, OPTIONAL = "mix_config.json", "training_mix", ("redaction", "corpus")

    general_share: float
    validation_share: float
    max_examples: int | None
    per_intent_cap: int | None
    seed: int
    trainer: str
    preset: str
    pass_case_partitions: Mapping[str, str]  # partition -> sha256 of its pass_cases file
    run_id: str
    redaction: Mapping[str, Any] | None = None  # RedactionReport.card(); None: written before redaction
    corpus: Mapping[str, Any] | None = None  # CorpusSize.to_dict(); None: written before the corpus was recorded


# What student_eval_report's report.json holds besides the evaluation's figures (core.evaluation.summarise).
REPORT_EXTRA_KEYS = ("gate", "gate_config", "student", "run_id", "decoding", "created_at", "records", "plots")


@dataclass(frozen=True)
class EvalReport:
    """The evaluation as student_eval_report hands it to the routing policy and the model card (report.json):
    the figures, the gate's verdict and settings, the student it judged, every scored call."""

    FILE: ClassVar[str] = "report.json"

    summary: Mapping[str, Any]  # summarise()'s figures (and the served TTFT): what the gate judges
    gate: Mapping[str, Any]  # GateResult.to_dict()
    gate_config: Mapping[str, Any]  # GateConfig's fields, so the policy re-judges with the same settings
    student: StudentInfo
    run_id: str
    decoding: Mapping[str, Any] | None  # the decoding rules the student was evaluated under (None: free)
    created_at: str
    records: Sequence[Mapping[str, Any]]  # one per held-out call
    plots: Mapping[str, str]  # name -> PNG path

    def figure(self, key: str) -> Any:
        """One of the evaluation's figures (None when the report has none)."""
        return self.summary.get(key)

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary, "gate": self.gate, "gate_config": self.gate_config,
                "student": self.student.to_dict(), "run_id": self.run_id, "decoding": self.decoding,
                "created_at": self.created_at, "records": self.records, "plots": self.plots}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalReport:
        _require(data, REPORT_EXTRA_KEYS, cls.FILE, "student_eval_report")
        return cls(summary={k: v for k, v in data.items() if k not in REPORT_EXTRA_KEYS}, gate=data["gate"],
                   gate_config=data["gate_config"], student=StudentInfo.from_dict(data["student"]),
                   run_id=data["run_id"], decoding=data["decoding"], created_at=data["created_at"],
                   records=data["records"], plots=data["plots"])


@dataclass(frozen=True)
class ModelCard(JsonRecord):
    """What trained a student, down to trace ids and file hashes (model_card/<job id>/model_card.json), as
    core.audit.build_model_card builds it and `distill audit` reads it."""

    FILE, WRITER = "model_card.json", "model_card"

    student: str
    job_id: str
    trainer: str
    base_model: str | None
    base_model_sha256: str | None
    hyperparameters: Mapping[str, Any]
    training_files: Mapping[str, str]
    training_examples: Mapping[str, int]
    pass_case_partitions: Mapping[str, str]
    graders: Mapping[str, Any]
    holdout: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    gate: Mapping[str, Any] | None
    redaction: Mapping[str, Any] | None
    corpus: Mapping[str, Any] | None
    code_version: str
    dagster_runs: Mapping[str, str]
    training: Mapping[str, float]
    training_traces: Mapping[str, str]  # path and sha256 of training_traces.parquet (every trained trace id)


# -- routing_policy: current.json (CONTRACTS.md); written by backends/policy_store.py, read by the Router --------

POLICY_KEYS = ("student", "student_endpoint", "teacher_model", "threshold", "teacher_only_intents", "report",
               "created_at", "promoted", "signal", "field_rules", "decoding")


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
