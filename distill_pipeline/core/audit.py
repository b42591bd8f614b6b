"""Audit: what trained a student, and which students a trace trained."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from distill_pipeline.core.artifacts import TrainingFigures
from distill_pipeline.core.corpus import CorpusSize

HEADLINE = ("base_score", "student_score", "teacher_score", "routed_score", "recommended_threshold",
            "teacher_share", "student_ttft_p50_ms", "teacher_ttft_p50_ms", "student_cost_per_call",
            "teacher_cost_per_call")


def grader_summary(eval_rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per grader: type, versions seen, verdicts, pass rate (skipped verdicts not counted)."""
    out: dict[str, dict[str, Any]] = {}
    for row in eval_rows:
        entry = out.setdefault(row["grader"], {"type": row["grader_type"], "versions": set(), "verdicts": 0,
                                               "passed": 0, "skipped": 0})
        entry["versions"].add(row["grader_version"])
        if row["skipped"]:
            entry["skipped"] += 1
            continue
        entry["verdicts"] += 1
        entry["passed"] += bool(row["passed"])
    for entry in out.values():
        entry["versions"] = sorted(entry["versions"])
        entry["pass_rate"] = entry["passed"] / entry["verdicts"] if entry["verdicts"] else None
    return dict(sorted(out.items()))


def build_model_card(*, student: Mapping[str, Any], job: Mapping[str, Any], manifest: Mapping[str, Any],
                     training_examples: Sequence[Mapping[str, Any]], pass_case_partitions: Mapping[str, str],
                     graders: Mapping[str, Any], holdout: Mapping[str, Any], report: Mapping[str, Any],
                     code_version: str, run_ids: Mapping[str, str], redaction: Mapping[str, Any] | None = None,
                     corpus: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`corpus`: what training_mix recorded of its corpus (CorpusSize.to_dict); the card keeps its size and the
    corpus_size check's verdict (the same rule on the same figures)."""
    domain = [e for e in training_examples if e["source"] == "domain"]
    return {
        "student": student.get("student"),
        "job_id": job.get("job_id"),
        "trainer": job.get("trainer"),
        "base_model": manifest.get("base_model", student.get("base_model_dir")),
        "base_model_sha256": manifest.get("base_model_sha256"),
        "hyperparameters": job.get("hyperparameters"),
        "training_files": {"train_sha256": job.get("train_sha256"),
                           "validation_sha256": job.get("validation_sha256")},
        "training_examples": {"total": len(training_examples), "domain": len(domain),
                              "general": len(training_examples) - len(domain)},
        "pass_case_partitions": dict(pass_case_partitions),
        "graders": graders,
        "holdout": dict(holdout),
        "evaluation": {key: report.get(key) for key in HEADLINE},
        "gate": report.get("gate"),
        "redaction": redaction,
        "corpus": corpus_card(corpus),
        "code_version": code_version,
        "dagster_runs": dict(run_ids),
        "training": TrainingFigures.from_manifest(manifest).to_dict() if manifest.get("kind") == "local_lora" else {},
    }


def corpus_card(recorded: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The corpus size and the corpus_size check's verdict, from what training_mix recorded (None: nothing)."""
    if recorded is None:
        return None
    corpus = CorpusSize.from_dict(recorded)
    return {**corpus.metadata(), "domain_available": corpus.domain_available, "check": corpus.verdict()}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def render_model_card(card: Mapping[str, Any]) -> str:
    gate = card.get("gate") or {}
    lines = [
        f"# Model card: {card['student']}", "",
        f"- Trainer: {card['trainer']} (job `{card['job_id']}`)",
        f"- Base model: `{card['base_model']}` (sha256 `{_fmt(card['base_model_sha256'])}`)",
        f"- Training files: train `{card['training_files']['train_sha256']}`, "
        f"validation `{card['training_files']['validation_sha256']}`",
        f"- Examples: {card['training_examples']['total']} ({card['training_examples']['domain']} domain, "
        f"{card['training_examples']['general']} general); trace ids in `training_traces.parquet`",
        *_corpus_lines(card.get("corpus")),
        f"- Code version: `{card['code_version']}`",
        f"- Gate: {'PASSED' if gate.get('passed') else 'FAILED'}"
        + ("" if gate.get("passed") else f" ({'; '.join(gate.get('reasons', []))})"),
        "", "## Evaluation", "", "| figure | value |", "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in card["evaluation"].items()],
        "", "## Hyperparameters", "", "```json", _json(card["hyperparameters"]), "```",
        "", "## Graders that filtered the teacher", "", "| grader | type | versions | pass rate |", "|---|---|---|---|",
        *[f"| {name} | {g['type']} | {', '.join(g['versions'])} | {_fmt(g['pass_rate'])} |"
          for name, g in card["graders"].items()],
        "", "## Holdout", "", *[f"- {k}: `{v}`" for k, v in card["holdout"].items()],
        "", "## Pass-case partitions (sha256 of each file)", "",
        *[f"- {day}: `{sha}`" for day, sha in card["pass_case_partitions"].items()],
        "", "## Dagster runs", "", *[f"- {asset}: `{run}`" for asset, run in card["dagster_runs"].items()],
    ]
    if card.get("redaction"):
        lines += ["", "## Redaction", "", "```json", _json(card["redaction"]), "```"]
    return "\n".join(lines) + "\n"


def _corpus_lines(corpus: Mapping[str, Any] | None) -> list[str]:
    if not corpus:
        return []
    low, high = corpus["corpus_ideal_range"]
    check = corpus["check"]
    verdict = "passed" if check["passed"] else f"{check['severity']}: {check['description']}"
    return [f"- Corpus: {corpus['domain_examples']:,} domain examples (at least {corpus['min_domain_examples']:,}, "
            f"{low:,}-{high:,} ideal); corpus_size check {verdict}"]


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, default=str)


def models_trained_by(trace_id: str, cards: Iterable[tuple[Mapping[str, Any], Iterable[str]]]) -> list[str]:
    """The students whose training files held this trace (cards paired with their trace ids)."""
    return [card["student"] for card, ids in cards if trace_id in set(ids)]
