"""Does it matter that the student, trained on redacted transcripts, is served raw ones? (issue 16, item 4)

    nice -n 15 python bench/serving_redaction.py                  # the 60 held-out calls of a finished `make demo`
    nice -n 15 python bench/serving_redaction.py --limit 8        # a quick run
    nice -n 15 python bench/serving_redaction.py --storage ROOT   # another storage root

The training mix replaces patient data with placeholders (`[NAME_1]`, `[DOB_1]`, ...: `redact_messages` with the
task spec's `redaction_rules`), but the Router and the evaluation hand the student the request as the caller wrote
it. This loads the trained student as the evaluation asset does (student.json through the storage layout, the
preset it was trained with, decoding constrained by the task's rules) and asks it, for every held-out domain call:

  (a) the raw request, as the Router serves it today;
  (b) the request redacted with the task's rules, as the Router would serve it if it redacted. Placeholders in the
      answer are then restored from the request's own mapping (placeholder -> the value it replaced).

Both answers are scored field by field against the teacher's answer with the project's scoring (`core.fields`, the
task's field rules). It prints per-field accuracy, calls with every structured field right, how many answers
differ between (a) and (b), how many answers hold a placeholder or a PHI value found in the request, what the
serving-time redaction takes out of the request that the training-time one (which sees the teacher's answer and
its kept fields) leaves in, the wall times, the machine and its load before and after. One thread: the machine
is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from distill_pipeline import settings  # noqa: E402
from distill_pipeline.backends.storage import StorageLayout  # noqa: E402
from distill_pipeline.core.evaluation import reference_answer  # noqa: E402
from distill_pipeline.core.fields import FieldRules, all_structured_right, field_scores, mean_field_score  # noqa: E402
from distill_pipeline.core.metrics import parse_answer  # noqa: E402
from distill_pipeline.core.presets import EVAL_SIZES, preset  # noqa: E402
from distill_pipeline.core.redaction import (  # noqa: E402
    PHI_TYPES,
    PhiSpan,
    RedactionRules,
    find_phi_in_messages,
    redact_messages,
)
from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec  # noqa: E402
from distill_pipeline.defs.mix import read_chat_lines  # noqa: E402

PLACEHOLDER = re.compile(r"\[(?:" + "|".join(kind.upper() for kind in PHI_TYPES) + r")_\d+\]")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    return f"{model}, {os.cpu_count()} cores"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def code_version() -> str:
    """The commit the package comes from, and its uncommitted files (the detectors change often)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False).stdout
    commit = git("rev-parse", "--short", "HEAD").strip() or "not a git checkout"
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "distill_pipeline").splitlines()]
    return commit + (f" with uncommitted changes in {', '.join(dirty)}" if dirty else ", clean")


# ---------------------------------------------------------------------------------------------- placeholders


def placeholder_values(texts: Sequence[tuple[str, list[PhiSpan]]],
                       redacted: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """placeholder -> the value it replaced, from `find_phi_in_messages`' spans of a request and its redacted copy.

    Walks each text's spans in order, following the redacted text's shift as each span becomes its placeholder.
    """
    out_texts = [m["content"] for m in redacted if isinstance(m.get("content"), str)]
    if len(texts) != len(out_texts):
        raise SystemExit("a request message is not plain text: this bench reads placeholders from string contents")
    mapping: dict[str, str] = {}
    for (_text, spans), out in zip(texts, out_texts, strict=True):
        shift = 0
        for span in spans:
            found = PLACEHOLDER.match(out, span.start + shift)
            if found is None:
                raise SystemExit(f"no placeholder where {span.text!r} was in {out!r}")
            mapping.setdefault(found.group(), span.text)
            shift += len(found.group()) - (span.end - span.start)
    return mapping


def restore(answer: str, mapping: Mapping[str, str]) -> tuple[str, int]:
    """The answer with every known placeholder back to its value (JSON-escaped: the answer is JSON text), and how
    many placeholders it holds that the request had none of."""
    unknown = 0

    def value(match: re.Match[str]) -> str:
        nonlocal unknown
        if match.group() not in mapping:
            unknown += 1
            return match.group()
        return json.dumps(mapping[match.group()], ensure_ascii=False)[1:-1]

    return PLACEHOLDER.sub(value, answer), unknown


def leaked(answer: str, spans: Sequence[PhiSpan]) -> list[str]:
    """The request's PHI values that appear in an answer, as whole words."""
    return sorted({s.text for s in spans
                   if re.search(r"(?<!\w)" + re.escape(s.text) + r"(?!\w)", answer)})


def kept_values(reference: Any, rules: RedactionRules) -> list[str]:
    """The string values of the teacher answer's kept fields (follow-up date, time, clinician)."""
    values = []
    for path in rules.keep_fields:
        value = reference
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            values.append(value)
    return values


# ---------------------------------------------------------------------------------------------- scoring


def accuracy(scores: Sequence[Mapping[str, float]]) -> dict[str, float]:
    paths = sorted({p for s in scores for p in s})
    return {p: sum(s.get(p, 0.0) for s in scores) / len(scores) for p in paths}


def structured_values(text: str, rules: FieldRules) -> dict[str, Any] | None:
    from distill_pipeline.core.metrics import flatten_fields

    answer = parse_answer(text)
    if answer is None:
        return None
    return {p: v for p, v in flatten_fields(answer).items() if rules.structured(p)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", type=Path, default=Path("/tmp/fresh2/storage"),
                        help="a storage root holding a finished `make demo` run")
    parser.add_argument("--limit", type=int, default=None,
                        help="the first N held-out calls (default: as many as the evaluation scores for the "
                        "student's preset, 60 for cpu)")
    parser.add_argument("--all", action="store_true", help="every held-out domain call")
    parser.add_argument("--task-spec", type=Path, default=default_task_spec_path())
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    print(f"machine: {machine()}")
    print(f"code: {code_version()}")
    print(f"load before: {uptime()}")

    task = load_task_spec(args.task_spec)
    rules = task.redaction_rules
    field_rules = task.field_rules
    layout = StorageLayout(args.storage)
    info = layout.read_student()
    preset_name = info.preset or settings.preset_name()
    limit = None if args.all else args.limit or EVAL_SIZES[preset_name][0]
    holdout = read_chat_lines(layout.asset_dir("eval_holdout") / "domain.jsonl")[:limit]

    # The student, built as the evaluation asset's _Models._local builds it.
    from distill_pipeline.backends.local_student import LocalStudent

    if info.trainer != "local" or info.base_model_dir is None:
        raise SystemExit(f"{layout.student_path()}: an OpenAI student; this bench serves a local one")
    decoding = task.decoding_rules
    student = LocalStudent(Path(info.base_model_dir), Path(info.student), preset(preset_name),
                           json_schema=decoding.for_messages if decoding is not None else None)
    log(f"student {student.name} loaded in {student.load_s:.1f} s; {len(holdout)} held-out calls, "
        f"constrained decoding: {decoding is not None}")

    requests = [t.request_messages for t in holdout]
    warmup_started = time.perf_counter()
    redact_messages(requests[0], rules)  # the first call loads the detectors (gazetteer, Presidio)
    warmup_s = time.perf_counter() - warmup_started
    redaction_started = time.perf_counter()
    redacted = [redact_messages(r, rules) for r in requests]  # what the Router would add per call
    redaction_s = time.perf_counter() - redaction_started
    found = [find_phi_in_messages(r, rules) for r in requests]
    phi = [[s for _, spans in texts for s in spans] for texts in found]
    mappings = [placeholder_values(texts, out) for texts, (out, _) in zip(found, redacted, strict=True)]
    # What training-time redaction did to the same requests: it saw the teacher's answer, whose kept fields
    # (follow-up date, time, clinician) are never redacted anywhere.
    trained_view = [redact_messages([*r, t.response_message], rules)[0][:len(r)] for r, t in zip(requests, holdout,
                                                                                                  strict=True)]

    log("answering the raw requests")
    raw_started = time.perf_counter()
    raw = student.complete_batch(requests)
    raw_s = time.perf_counter() - raw_started
    log("answering the redacted requests")
    red_started = time.perf_counter()
    red = student.complete_batch([out for out, _ in redacted])
    red_s = time.perf_counter() - red_started

    scores: dict[str, list[dict[str, float]]] = {"raw": [], "redacted, restored": [], "redacted, not restored": []}
    all_right: Counter[str] = Counter()
    restored_texts, with_placeholder, unknown_placeholders = [], 0, 0
    placeholder_types: Counter[str] = Counter()
    for trace, a, b, mapping in zip(holdout, raw, red, mappings, strict=True):
        reference = reference_answer(trace)
        if not isinstance(reference, Mapping):
            raise SystemExit(f"{trace.completion_id}: the teacher's answer is not a JSON object")
        restored, unknown = restore(b.text, mapping)
        restored_texts.append(restored)
        held = PLACEHOLDER.findall(b.text)
        with_placeholder += bool(held)
        unknown_placeholders += unknown
        placeholder_types.update(p[1:].rsplit("_", 1)[0].lower() for p in held)
        for label, text in (("raw", a.text), ("redacted, restored", restored), ("redacted, not restored", b.text)):
            s = field_scores(parse_answer(text), reference, field_rules)
            scores[label].append(s)
            all_right[label] += all_structured_right(s, field_rules)

    n = len(holdout)
    differ_text = sum(a.text != r for a, r in zip(raw, restored_texts, strict=True))
    differences = []  # (call, field, raw value, redacted+restored value, teacher value)
    for trace, a, r in zip(holdout, raw, restored_texts, strict=True):
        va, vr = structured_values(a.text, field_rules) or {}, structured_values(r, field_rules) or {}
        vt = structured_values(trace.answer_text, field_rules) or {}
        differences += [(trace.completion_id, p, va.get(p), vr.get(p), vt.get(p))
                        for p in sorted(set(va) | set(vr)) if va.get(p) != vr.get(p)]
    differ_structured = len({d[0] for d in differences})
    leaks_raw = [leaked(a.text, spans) for a, spans in zip(raw, phi, strict=True)]
    leaks_restored = [leaked(r, spans) for r, spans in zip(restored_texts, phi, strict=True)]
    leaks_teacher = [leaked(t.answer_text, spans) for t, spans in zip(holdout, phi, strict=True)]
    type_counts: Counter[str] = Counter()
    for _, counts in redacted:
        type_counts.update({k: v for k, v in counts.items() if v})
    serving_differs = sum(out != view for (out, _), view in zip(redacted, trained_view, strict=True))
    lost = []  # kept values of the teacher's answer that the raw request holds and serving-time redaction removed
    for trace, (out, _) in zip(holdout, redacted, strict=True):
        request_text = "\n".join(str(m.get("content", "")) for m in trace.request_messages)
        out_text = "\n".join(str(m.get("content", "")) for m in out)
        lost += [(trace.completion_id, v) for v in kept_values(reference_answer(trace), rules)
                 if v in request_text and v not in out_text]

    print()
    print(f"held-out domain calls: {n} ({args.storage / 'eval_holdout' / 'domain.jsonl'})")
    print(f"student: {info.student} (preset {info.preset}), decoding constrained by the task's rules")
    print(f"PHI spans replaced in the requests: {sum(type_counts.values())} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(type_counts.items()))}); "
          f"calls with any: {sum(any(c.values()) for _, c in redacted)}/{n}")
    print(f"serving-time redaction (request only) differs from the training-time one (request + teacher answer) "
          f"on {serving_differs}/{n} requests; kept values (follow-up date/time/clinician) it removed: {len(lost)}"
          + (f" {lost[:5]}" if lost else ""))
    print()
    labels = list(scores)
    print("| field | rule | " + " | ".join(labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    tables = {label: accuracy(s) for label, s in scores.items()}
    for path in tables["raw"]:
        print(f"| {path} | {field_rules.rule(path)} | "
              + " | ".join(f"{tables[label].get(path, 0.0):.3f}" for label in labels) + " |")
    print("| mean field score | | " + " | ".join(
        f"{sum(mean_field_score(s) for s in scores[label]) / n:.4f}" for label in labels) + " |")
    print("| all structured fields right | | " + " | ".join(f"{all_right[label]}/{n}" for label in labels) + " |")
    print()
    print(f"answers that differ, raw vs redacted+restored: {differ_text}/{n} in text, "
          f"{differ_structured}/{n} in a structured field")
    for call, path, a_value, r_value, t_value in differences:
        print(f"  {call} {path}: raw {a_value!r}, redacted+restored {r_value!r}, teacher {t_value!r}")
    print(f"redacted answers holding a placeholder: {with_placeholder}/{n} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(placeholder_types.items())) or 'none'}; "
          f"placeholders the request did not have: {unknown_placeholders})")
    print(f"answers holding a PHI value found in the request: raw {sum(map(bool, leaks_raw))}/{n}, "
          f"redacted+restored {sum(map(bool, leaks_restored))}/{n}, teacher {sum(map(bool, leaks_teacher))}/{n}")
    for trace, values in zip(holdout, leaks_raw, strict=True):
        if values:
            print(f"  raw leak {trace.completion_id}: {values}")
    print()
    print(f"wall: redact_messages {redaction_s / max(n, 1) * 1000:.1f} ms/call over {n} requests (after a first "
          f"call of {warmup_s:.1f} s that loads the detectors); student raw {raw_s:.1f} s, redacted {red_s:.1f} s; "
          f"whole bench {time.perf_counter() - started:.1f} s (model load {student.load_s:.1f} s), one torch thread")
    print(f"prompt tokens per call: raw {sum(c.prompt_tokens for c in raw) / n:.1f}, "
          f"redacted {sum(c.prompt_tokens for c in red) / n:.1f}; answer tokens: raw "
          f"{sum(c.completion_tokens for c in raw) / n:.1f}, redacted {sum(c.completion_tokens for c in red) / n:.1f}")
    print(f"load after: {uptime()}")


if __name__ == "__main__":
    main()
