"""Measure the local LoRA student on the bundled healthcare task.

    python bench/local_student.py --train 300 --eval 60            # the cpu preset, as the demo runs it
    python bench/local_student.py --train 40 --eval 10 --epochs 1  # a quick smoke run

Builds chat examples from the teacher's correct traces in data/sample/traces (the
labels file says which are correct and holds each reference answer), trains a LoRA
adapter on N of them, then answers M held-out traces (different calls) with
greedy decoding and scores them against the references: valid JSON, mean field
accuracy (every leaf field, lists as sets), exact match of the non-SOAP fields.
Prints the figures and writes them, with the trainer's manifest, to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from distill_pipeline.core.metrics import exact_match, field_accuracy, parse_answer  # noqa: E402
from distill_pipeline.core.presets import preset  # noqa: E402
from distill_pipeline.core.traces import parse_line  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_for(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear within {timeout_s:.0f} s; generate the sample corpus first "
                             "(python data/generate_sample.py)")
        log(f"waiting for {path} ...")
        time.sleep(20)


def correct_traces(sample_dir: Path) -> list[dict[str, Any]]:
    """The teacher's correct traces, each as its chat example, request and reference answer."""
    labels = [json.loads(line) for line in (sample_dir / "labels.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    lines_by_file: dict[str, list[str]] = {}
    out = []
    for label in labels:
        if label.get("kind") != "trace" or not label.get("teacher_correct"):
            continue
        lines = lines_by_file.setdefault(label["file"], (sample_dir / "traces" / label["file"]).read_text(
            encoding="utf-8").splitlines())
        row = parse_line(lines[label["line"] - 1])
        if label.get("completion_id") and row.completion_id != label["completion_id"]:
            raise SystemExit(f"labels.jsonl and {label['file']} line {label['line']} disagree "
                             f"({row.completion_id} != {label['completion_id']}); regenerate the sample")
        out.append({"id": row.completion_id, "example": row.chat_example(), "request": row.request_messages,
                    "reference": label["reference"], "request_text": row.request_text})
    return out


def split(traces: list[dict[str, Any]], n_train: int, n_eval: int, n_validation: int,
          seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Held-out evaluation calls first, then validation, then training; no request text shared across them."""
    shuffled = list(traces)
    random.Random(seed).shuffle(shuffled)
    seen: set[str] = set()
    unique = []
    for trace in shuffled:
        if trace["request_text"] not in seen:
            seen.add(trace["request_text"])
            unique.append(trace)
    if len(unique) < n_eval + n_validation + n_train:
        raise SystemExit(f"only {len(unique)} distinct correct traces; asked for {n_train} train + {n_eval} eval + "
                         f"{n_validation} validation")
    evaluation = unique[:n_eval]
    validation = unique[n_eval:n_eval + n_validation]
    train = unique[n_eval + n_validation:n_eval + n_validation + n_train]
    return train, validation, evaluation


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r["example"], ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def field_figures(completions: list[Any], evaluation: list[dict[str, Any]]) -> dict[str, Any]:
    """Field by field under the bundled task's rules, and how well the routing signal separates wrong answers."""
    from distill_pipeline.core.fields import all_structured_right, auroc, confidence, field_scores
    from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec

    rules = load_task_spec(default_task_spec_path()).field_rules
    per_call = [field_scores(parse_answer(c.text), t["reference"], rules) for c, t in zip(completions, evaluation,
                                                                                          strict=True)]
    paths = sorted({p for scores in per_call for p in scores})
    right = [all_structured_right(scores, rules) for scores in per_call]
    signals = {
        "structured": [confidence(c.text, c.token_logprobs, c.token_offsets, rules) for c in completions],
        "whole": [c.min_logprob for c in completions],
    }
    n = max(len(completions), 1)
    sweep = {}
    for threshold in (-0.05, -0.1, -0.25, -0.5, -1.0):
        to_teacher = [v < threshold for v in signals["structured"]]
        sweep[str(threshold)] = {"to_teacher": round(sum(to_teacher) / n, 3),
                                 "all_structured_right": round(sum(t or r for t, r in zip(to_teacher, right,
                                                                                          strict=True)) / n, 3)}
    return {
        "field_scores": {p: round(sum(s.get(p, 0.0) for s in per_call) / n, 4) for p in paths},
        "wrong_by_field": {p: sum(s.get(p, 0.0) < 1.0 for s in per_call) for p in paths if rules.structured(p)},
        "all_structured_right": round(sum(right) / n, 4),
        "soap_token_f1": round(sum(v for s in per_call for p, v in s.items() if not rules.structured(p))
                               / max(1, sum(1 for s in per_call for p in s if not rules.structured(p))), 4),
        "auroc_structured": auroc([v for v, r in zip(signals["structured"], right, strict=True) if not r],
                                  [v for v, r in zip(signals["structured"], right, strict=True) if r]),
        "auroc_whole": auroc([v for v, r in zip(signals["whole"], right, strict=True) if not r],
                             [v for v, r in zip(signals["whole"], right, strict=True) if r]),
        "sweep_structured": sweep,
    }


def score(completions: list[Any], evaluation: list[dict[str, Any]]) -> dict[str, Any]:
    parsed = [parse_answer(c.text) for c in completions]
    accuracies = [field_accuracy(p, t["reference"]) if p is not None else 0.0 for p, t in zip(parsed, evaluation,
                                                                                             strict=True)]
    exact = [p is not None and exact_match(p, t["reference"], exclude_prefixes=("soap",))
             for p, t in zip(parsed, evaluation, strict=True)]
    per_field: dict[str, list[float]] = {}
    for p, t in zip(parsed, evaluation, strict=True):
        for key in t["reference"]:
            sub_ref = {key: t["reference"][key]}
            sub_pred = {key: p.get(key)} if p is not None and key in p else {}
            per_field.setdefault(key, []).append(field_accuracy(sub_pred, sub_ref))
    n = max(len(completions), 1)
    return {
        "valid_json": sum(p is not None for p in parsed) / n,
        "mean_field_accuracy": sum(accuracies) / n,
        "exact_non_soap": sum(exact) / n,
        "field_accuracy_by_key": {k: round(sum(v) / len(v), 4) for k, v in per_field.items()},
        "ttft_ms_p50": _median([c.ttft_ms for c in completions]),
        "latency_ms_p50": _median([c.latency_ms for c in completions]),
        "completion_tokens_mean": sum(c.completion_tokens for c in completions) / n,
        "prompt_tokens_mean": sum(c.prompt_tokens for c in completions) / n,
        "min_logprob_p50": _median([c.min_logprob for c in completions]),
        **field_figures(completions, evaluation),
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=300, help="training examples (default 300)")
    parser.add_argument("--eval", type=int, default=60, help="held-out examples to answer and score (default 60)")
    parser.add_argument("--validation", type=int, default=None, help="validation examples (default: the preset's)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed (also picks the split)")
    parser.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    parser.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    parser.add_argument("--layers", type=int, default=None, help="override the preset's layers_to_train")
    parser.add_argument("--struct-weight", type=float, default=None,
                        help="override structured_loss_weight (loss weight of structured-value answer tokens)")
    parser.add_argument("--rank", type=int, default=None, help="override the preset's LoRA rank (alpha = 2 x rank)")
    parser.add_argument("--with-base", action="store_true", help="also score the untrained base model")
    parser.add_argument("--sample", type=Path, default=REPO / "data" / "sample")
    default_cache = Path.home() / ".cache" / "distill-pipeline"
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("DISTILL_MODEL_CACHE", default_cache)),
                        help="where the dequantised base model is kept (default ~/.cache/distill-pipeline)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/distill-bench/local_student"))
    parser.add_argument("--show", type=int, default=3, help="print this many wrong answers")
    parser.add_argument("--adapter", type=Path, default=None,
                        help="evaluate this trained adapter/ (same split and settings) instead of training one")
    parser.add_argument("--also-free", action="store_true",
                        help="with --constrained, also score the same adapter decoding freely (result 'student_free')")
    parser.add_argument("--constrained", action="store_true",
                        help="decode constrained by the task's decoding rules: its JSON schema, the codes each request "
                        "indicates, the dates and times it says (xgrammar)")
    args = parser.parse_args()

    from distill_pipeline.backends.local_student import LocalStudent
    from distill_pipeline.backends.local_trainer import peak_rss_mb, resolve_base_model, train_lora

    settings = preset(args.preset)
    overrides = {k: v for k, v in {"epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size,
                                   "learning_rate": args.lr, "layers_to_train": args.layers, "rank": args.rank,
                                   "alpha": 2 * args.rank if args.rank else None,
                                   "structured_loss_weight": args.struct_weight}.items() if v is not None}
    settings = settings.with_overrides(**overrides)
    n_validation = args.validation if args.validation is not None else (settings.max_validation_examples or 32)
    wait_for(args.sample / "labels.jsonl", timeout_s=1800)
    traces = correct_traces(args.sample)
    train, validation, evaluation = split(traces, args.train, args.eval, n_validation, settings.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    train_file = write_jsonl(args.out / "train.jsonl", train)
    validation_file = write_jsonl(args.out / "validation.jsonl", validation)
    log(f"{len(traces)} correct traces: {len(train)} train, {len(validation)} validation, {len(evaluation)} held-out "
        f"eval; preset {args.preset}: {json.dumps(settings.to_dict())}")

    started = time.perf_counter()
    base_dir = resolve_base_model(settings.base_model, args.cache_dir, log)
    resolve_s = time.perf_counter() - started
    if args.adapter is None:
        from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec

        rules = load_task_spec(default_task_spec_path()).field_rules
        manifest = train_lora(train_file, validation_file, settings, base_dir, args.out / "run", log=log,
                              field_rules=rules)
        adapter_dir = args.out / "run" / "adapter"
    else:
        adapter_dir = args.adapter
        manifest = json.loads((adapter_dir.parent / "manifest.json").read_text())
    schema = None
    if args.constrained:
        from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec

        schema = load_task_spec(default_task_spec_path()).decoding_rules.for_messages

    results: dict[str, Any] = {}
    students = [("student", adapter_dir, schema)] + ([("student_free", adapter_dir, None)] if args.also_free else []) \
        + ([("base", None, schema)] if args.with_base else [])
    for label, adapter, decoding in students:
        started = time.perf_counter()
        student = LocalStudent(base_dir, adapter, settings, log=log, json_schema=decoding)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        completions = student.complete_batch([t["request"] for t in evaluation])
        eval_s = time.perf_counter() - started
        results[label] = {"load_s": round(load_s, 2), "eval_s": round(eval_s, 2), **score(completions, evaluation)}
        with open(args.out / f"{label}_answers.jsonl", "w", encoding="utf-8") as handle:
            for completion, trace in zip(completions, evaluation, strict=True):
                handle.write(json.dumps({"id": trace["id"], "text": completion.text, "reference": trace["reference"],
                                         "min_logprob": completion.min_logprob, "ttft_ms": completion.ttft_ms,
                                         "token_logprobs": completion.token_logprobs,
                                         "token_offsets": completion.token_offsets,
                                         "latency_ms": completion.latency_ms}, ensure_ascii=False) + "\n")
        wrong = [(c, t) for c, t in zip(completions, evaluation, strict=True)
                 if parse_answer(c.text) is None or field_accuracy(parse_answer(c.text), t["reference"]) < 1.0]
        for completion, trace in wrong[: args.show]:
            log(f"{label} wrong on {trace['id']}: {completion.text[:400]!r}\n    reference "
                f"{json.dumps(trace['reference'], separators=(',', ':'))}")
        del student

    summary = {
        "preset": args.preset,
        "settings": settings.to_dict(),
        "constrained": args.constrained,
        "train_examples": len(train),
        "eval_examples": len(evaluation),
        "base_model_resolve_s": round(resolve_s, 2),
        "base_model_load_s": manifest["load_s"],
        "frozen_layer_cache_s": manifest["cache_s"],
        "train_loop_s": manifest["train_loop_s"],
        "train_wall_s": manifest.get("train_wall_s", manifest.get("wall_s")),
        "tokens_per_s": manifest["tokens_per_s"],
        "final_train_loss": manifest["final_train_loss"],
        "validation_loss_first_last": [manifest["validation_losses"][0]["loss"], manifest["final_validation_loss"]],
        "device": manifest["device"],
        "dtype": manifest["dtype"],
        "results": results,
        "peak_rss_mb": peak_rss_mb(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    student_result = results["student"]
    print(f"\nload {summary['base_model_resolve_s'] + summary['base_model_load_s']:.1f} s | train wall "
          f"{summary['train_wall_s']:.0f} s ({summary['tokens_per_s']:.0f} tok/s) | loss train "
          f"{summary['final_train_loss']:.4f} val {summary['validation_loss_first_last'][1]:.4f} | eval "
          f"{student_result['eval_s']:.0f} s | valid JSON {student_result['valid_json']:.0%} | field accuracy "
          f"{student_result['mean_field_accuracy']:.1%} | exact non-SOAP {student_result['exact_non_soap']:.0%} | "
          f"peak RSS {summary['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
