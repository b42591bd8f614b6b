"""What one asset hands another, as files: for each, the one place that knows its path and format, one writer
and one reader (the types are in core/artifacts.py).

Every folder and file name below the storage root that more than one asset (or the CLI, the demo, the router)
reaches is spelled here and nowhere else; assets call these methods and never build such a path themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distill_pipeline.backends.policy_store import read_policy, write_policy
from distill_pipeline.backends.storage import (
    JsonFileCache,
    StorageLayout,
    Written,
    atomic_write_bytes,
    atomic_write_chunks,
    atomic_write_json,
    atomic_write_table,
    read_columns,
    sha256_file,
    write_columns,
    write_records,
)
from distill_pipeline.core.artifacts import (
    MERGED_RECORD,
    TRAINING_MANIFEST,
    EvalReport,
    FineTuneJob,
    MixEntry,
    MixRecord,
    ModelCard,
    RoutingPolicy,
    StudentInfo,
)
from distill_pipeline.core.general import GeneralExample, parse_general_example
from distill_pipeline.core.traces import TraceRow, parse_line

# One row per trace x grader: trace_evals' verdicts, read by pass_cases, its check and the model card.
EVAL_SCHEMA = pa.schema([
    ("completion_id", pa.string()), ("content_hash", pa.string()), ("intent", pa.string()),
    ("grader", pa.string()), ("grader_type", pa.string()), ("grader_version", pa.string()),
    ("required", pa.bool_()), ("passed", pa.bool_()), ("skipped", pa.bool_()), ("score", pa.float64()),
    ("reason", pa.string()),
])
# Every trace a student was trained on, with the partition it came from: the model card's audit trail.
TRAINING_TRACES_SCHEMA = pa.schema([
    ("file", pa.string()), ("source", pa.string()), ("id", pa.string()), ("intent", pa.string()),
    ("content_hash", pa.string()), ("partition", pa.string()),
])
MIX_FILES = ("train", "validation")


def _lines(path: Path) -> Iterator[bytes]:
    """`path.read_bytes().splitlines()`, read a line at a time."""
    with open(path, "rb") as handle:
        for chunk in handle:
            yield from chunk.splitlines()


def _jsonl(path: Path) -> Iterator[bytes]:
    """The non-blank lines of a JSONL file."""
    return (line for line in _lines(path) if line.strip())


def general_line(example: GeneralExample) -> bytes:
    """A general example as a line of general_examples.jsonl or the general holdout."""
    record = {"id": example.id, "category": example.category, "messages": example.messages, "check": example.check}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def holdout_line(row: TraceRow) -> bytes:
    """A held-out trace as a chat-example export line (id, metadata, messages, usage): re-parsable by the trace
    parser, so the evaluation's replayed teacher is costed as it was billed."""
    example = row.chat_example()
    usage: dict[str, Any] = {"prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens}
    if row.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": row.cached_tokens}
    record = {"id": row.completion_id, "created": int(row.created_at.timestamp()), "model": row.model,
              "metadata": row.metadata, "messages": example["messages"], "usage": usage}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def _read_general(path: Path) -> list[GeneralExample]:
    return [parse_general_example(json.loads(line)) for line in _jsonl(path)]


def _missing(asset: str, root: Path) -> FileNotFoundError:
    return FileNotFoundError(f"{asset} has not been materialized under {root}: materialize it first")


class Handoffs(StorageLayout):
    """The storage layout with every hand-off between assets: one writer and one reader for each file."""

    def _existing(self, path: Path, asset: str) -> Path:
        if not path.exists():
            raise _missing(asset, self.root)
        return path

    # -- teacher_traces: the quarantined lines beside the day's traces --------------------------------------------

    def write_quarantine(self, day: str, table: pa.Table) -> Written:
        return atomic_write_table(self.partition_dir("teacher_traces", day) / "quarantine.parquet", table)

    # -- trace_evals: every grader's verdict on every trace of a day ----------------------------------------------

    def trace_evals_path(self, day: str) -> Path:
        return self.partition_dir("trace_evals", day) / "trace_evals.parquet"

    def write_trace_evals(self, day: str, columns: dict[str, list[Any]]) -> Written:
        return write_columns(self.trace_evals_path(day), columns, EVAL_SCHEMA)

    def read_trace_eval_columns(self, day: str, columns: Sequence[str]) -> dict[str, list[Any]]:
        return read_columns(self._existing(self.trace_evals_path(day), "trace_evals"), columns)

    def read_trace_eval_rows(self, day: str) -> list[dict[str, Any]]:
        """Every verdict of a day as a dict (none when the day was never graded)."""
        path = self.trace_evals_path(day)
        return pq.read_table(path).to_pylist() if path.exists() else []

    def judge_cache(self) -> JsonFileCache:
        """The LLM judge's verdicts by request, so a rerun does not pay twice."""
        return JsonFileCache(self.asset_dir("llm_judge_cache") / "cache.json")

    # -- general_examples ---------------------------------------------------------------------------------------

    def general_examples_path(self) -> Path:
        return self.asset_dir("general_examples") / "general_examples.jsonl"

    def write_general_examples(self, examples: Iterable[GeneralExample]) -> Written:
        return atomic_write_bytes(self.general_examples_path(), b"".join(general_line(e) for e in examples))

    def read_general_examples(self) -> list[GeneralExample]:
        return _read_general(self._existing(self.general_examples_path(), "general_examples"))

    # -- eval_holdout: held-out pass cases (domain.jsonl) and general examples (general.jsonl) ----------------------

    def holdout_dir(self) -> Path:
        return self.asset_dir("eval_holdout")

    def write_holdout_domain(self, lines: Iterable[bytes]) -> Written:
        """The held-out pass cases, as `holdout_line` encodes each (streamed: the lines are never all in memory)."""
        return atomic_write_chunks(self.holdout_dir() / "domain.jsonl", lines)

    def write_holdout_general(self, examples: Iterable[GeneralExample]) -> Written:
        return atomic_write_bytes(self.holdout_dir() / "general.jsonl", b"".join(general_line(e) for e in examples))

    def _holdout(self, name: str) -> Path:
        return self._existing(self.holdout_dir() / name, "eval_holdout")

    def iter_holdout_domain(self) -> Iterator[TraceRow]:
        return (parse_line(line) for line in _jsonl(self._holdout("domain.jsonl")))

    def read_holdout_domain(self) -> list[TraceRow]:
        return list(self.iter_holdout_domain())

    def read_holdout_general(self) -> list[GeneralExample]:
        return _read_general(self._holdout("general.jsonl"))

    def holdout_summary(self) -> dict[str, Any]:
        """The holdout files' hashes and size, as the model card records them."""
        domain = self._holdout("domain.jsonl")
        return {"domain_sha256": sha256_file(domain), "general_sha256": sha256_file(self._holdout("general.jsonl")),
                "domain_examples": sum(1 for _ in _jsonl(domain))}

    # -- training_mix: train.jsonl, validation.jsonl, examples.jsonl (what went where), mix_config.json ------------

    def mix_dir(self) -> Path:
        return self.asset_dir("training_mix")

    def mix_path(self, name: str) -> Path:
        """The train or validation file (OpenAI chat fine-tuning format)."""
        if name not in MIX_FILES:
            raise ValueError(f"training_mix has no {name!r} file: one of {', '.join(MIX_FILES)}")
        return self.mix_dir() / f"{name}.jsonl"

    def write_mix_file(self, name: str, lines: Iterable[bytes]) -> Written:
        return atomic_write_chunks(self.mix_path(name), lines)

    def iter_mix_lines(self, name: str) -> Iterator[bytes]:
        """Every line of the train or validation file, as bytes (blank ones included, for the format check)."""
        return _lines(self._existing(self.mix_path(name), "training_mix"))

    def iter_mix_rows(self, name: str) -> Iterator[TraceRow]:
        """The train or validation file's examples, parsed as trace rows."""
        return (parse_line(line) for line in _jsonl(self._existing(self.mix_path(name), "training_mix")))

    def write_mix_examples(self, entries: Iterable[MixEntry]) -> Written:
        return atomic_write_bytes(self.mix_dir() / MixEntry.FILE, b"".join(
            json.dumps(e.to_dict(), sort_keys=True).encode() + b"\n" for e in entries))

    def read_mix_examples(self) -> list[MixEntry]:
        path = self._existing(self.mix_dir() / MixEntry.FILE, "training_mix")
        return [MixEntry.from_dict(json.loads(line)) for line in _jsonl(path)]

    def write_mix_record(self, record: MixRecord) -> Written:
        return atomic_write_json(self.mix_dir() / MixRecord.FILE, record.to_dict())

    def read_mix_record(self) -> MixRecord:
        path = self._existing(self.mix_dir() / MixRecord.FILE, "training_mix")
        return MixRecord.from_dict(json.loads(path.read_text()))

    # -- fine_tune_job: job.json -----------------------------------------------------------------------------------

    def job_path(self) -> Path:
        return self.asset_dir("fine_tune_job") / FineTuneJob.FILE

    def write_job(self, job: FineTuneJob) -> Written:
        return atomic_write_json(self.job_path(), job.to_dict())

    def read_job(self) -> FineTuneJob:
        return FineTuneJob.from_dict(json.loads(self._existing(self.job_path(), "fine_tune_job").read_text()))

    # -- student_model: student.json, and each job's folder (adapter/, manifest.json, merged/) ---------------------

    def base_models_dir(self) -> Path:
        """Where fetched and dequantised base models are cached."""
        return self.asset_dir("base_models")

    def student_dir(self, job_id: str) -> Path:
        """The local trainer's output folder for a job."""
        return self.asset_dir("student_model") / job_id

    def training_manifest_path(self, job_id: str) -> Path:
        return self.student_dir(job_id) / TRAINING_MANIFEST

    def read_training_manifest(self, job_id: str) -> dict[str, Any] | None:
        """What the local trainer recorded of a job (None: the job has not been trained here)."""
        path = self.training_manifest_path(job_id)
        return json.loads(path.read_text()) if path.exists() else None

    def merged_record_path(self, job_id: str) -> Path:
        return self.student_dir(job_id) / MERGED_RECORD

    def write_merged_record(self, job_id: str, record: Mapping[str, Any]) -> Written:
        return atomic_write_json(self.merged_record_path(job_id), record)

    def read_merged_record(self, job_id: str) -> dict[str, Any] | None:
        """The merged checkpoint's record, when it was exported and is still complete (None otherwise)."""
        path = self.merged_record_path(job_id)
        if path.exists() and (self.student_dir(job_id) / "merged" / "config.json").is_file():
            return json.loads(path.read_text())
        return None

    def student_path(self) -> Path:
        return self.asset_dir("student_model") / StudentInfo.FILE

    def write_student(self, student: StudentInfo) -> Written:
        return atomic_write_json(self.student_path(), student.to_dict())

    def read_student(self) -> StudentInfo:
        path = self._existing(self.student_path(), "student_model")
        return StudentInfo.from_dict(json.loads(path.read_text()))

    # -- student_eval_report: report.json (and report.md, the plots) ------------------------------------------------

    def report_dir(self) -> Path:
        """The report's folder: report.md and the plots are written beside report.json."""
        return self.asset_dir("student_eval_report")

    def report_path(self) -> Path:
        return self.report_dir() / EvalReport.FILE

    def write_report(self, report: EvalReport, markdown: str) -> Written:
        """report.json (returned) and its rendering, report.md."""
        atomic_write_bytes(self.report_dir() / "report.md", markdown.encode())
        return atomic_write_json(self.report_path(), report.to_dict())

    def read_report(self) -> EvalReport:
        return EvalReport.from_dict(json.loads(self._existing(self.report_path(), "student_eval_report").read_text()))

    # -- routing_policy: current.json (CONTRACTS.md) and its history -----------------------------------------------

    def policy_path(self) -> Path:
        return self.asset_dir("routing_policy") / "current.json"

    def write_policy(self, policy: RoutingPolicy) -> Path:
        """Put the policy in force; returns the copy kept in the history."""
        return write_policy(self.policy_path(), policy)

    def read_policy(self) -> RoutingPolicy:
        """The policy in force (a PolicyError says why there is none, or why it cannot be used)."""
        return read_policy(self.policy_path())

    # -- model_card: model_card/<job id>/ model_card.json, model_card.md, training_traces.parquet -----------------

    def model_cards_dir(self) -> Path:
        return self.asset_dir("model_card")

    def model_card_dir(self, job_id: str) -> Path:
        return self.model_cards_dir() / job_id

    def training_traces_path(self, job_id: str) -> Path:
        return self.model_card_dir(job_id) / "training_traces.parquet"

    def write_training_traces(self, job_id: str, records: list[dict[str, Any]]) -> Written:
        return write_records(self.training_traces_path(job_id), records, TRAINING_TRACES_SCHEMA)

    def read_training_traces(self, job_id: str) -> list[dict[str, Any]]:
        """Every trace a student was trained on: file, source, id, intent, content_hash, partition."""
        return pq.read_table(self._existing(self.training_traces_path(job_id), "model_card")).to_pylist()

    def write_model_card(self, card: ModelCard, markdown: str) -> Written:
        """model_card.json (returned) and its rendering, model_card.md."""
        written = atomic_write_json(self.model_card_dir(card.job_id) / ModelCard.FILE, card.to_dict())
        atomic_write_bytes(self.model_card_dir(card.job_id) / "model_card.md", markdown.encode())
        return written

    def read_model_cards(self) -> list[tuple[ModelCard, Path]]:
        """Every model card with its folder (training_traces.parquet is there), in folder order."""
        base = self.model_cards_dir()
        if not base.exists():
            return []
        return [(ModelCard.from_dict(json.loads(p.read_text())), p.parent)
                for p in sorted(base.glob(f"*/{ModelCard.FILE}"))]
