"""Validate a blind PHI test set (phi_blind/batchN.jsonl; standard library only).

One validator for every hand-written batch (batch1 and batch2 also have make_blind.py --check). Per transcript:
required fields, unique ids, known PHI types and keep kinds; every value an exact substring of its transcript and
listed once; no occurrence of a keep value overlapping a PHI value (so masking every PHI value cannot damage a
kept one); no PHI value surviving the masking of all of them; clinicians with a title, follow-up dates as
YYYY-MM-DD and times as HH:MM. Over the file: the batch's minimum transcripts, values per PHI type and per
required keep kind, and transcripts without PHI (MINIMUMS). Unlabelled look-alikes of dates, times, e-mails,
amounts, codes or long digit runs are warnings for a person to review, not errors.

Usage: python distill_pipeline_tests/phi_blind/check.py FILE [FILE ...]   (exit status 1 on any error)
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

PHI_TYPES = ("name", "mrn", "phone", "dob", "email", "ssn", "address")
REQUIRED_KEEP = ("clinician", "follow_up_date", "time", "icd10", "amount")
OPTIONAL_KEEP = ("reference", "medication", "clinic")
# batch -> (transcripts, values per PHI type, values per required keep kind, transcripts without PHI)
MINIMUMS = {"batch3": (80, 15, 15, 0), "batch4": (160, 30, 25, 5), "batch5": (110, 25, 20, 5),
            "batch6": (110, 25, 20, 5), "batch7": (120, 25, 20, 5)}
DEFAULT_MINIMUMS = (100, 25, 20, 5)
CLINICIAN_TITLES = ("Dr. ", "Dr ", "dr. ", "dr ", "Doctor ", "doctor ", "Nurse ", "nurse ")

SUSPECT_PATTERNS = [
    ("iso-date", re.compile(r"\b\d{4}-\d{2}-\d{2}\b")),
    ("hh:mm", re.compile(r"\b\d{1,2}:\d{2}\b")),
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("money", re.compile(r"(?:[$€₱£]|J\$)\s?\d(?:[\d,]*\d)?(?:\.\d+)?")),
    ("icd10-like", re.compile(r"\b[A-TV-Z]\d{2}(?:\.[0-9A-Z]{1,4})?\b")),
    ("titled-name", re.compile(r"\b(?:Dr\.|Doctor|Nurse)\s+[A-Z][\w-]*(?:'[A-Z][\w-]*)?")),
    ("digit-run", re.compile(r"\d(?:[\d/-]|[ .](?=\d)){3,}\d")),
]


def spans(text, value):
    return [m.span() for m in re.finditer(re.escape(value), text)]


def _labels(items, side, key, allowed, text, where, seen, errors, counts):
    """Check one side's labels (PHI or keep) of a transcript; their (start, end, type, value) occurrences."""
    out = []
    for item in items:
        t, v = item.get(key), item.get("value")
        if t not in allowed:
            errors.append(f"{where}: unknown {side} {key} {t!r}")
        if not isinstance(v, str) or not v:
            errors.append(f"{where}: empty {side} value for {t!r}")
            continue
        if (side, t, v) in seen:
            errors.append(f"{where}: {side} {t}:{v!r} listed twice")
        seen.add((side, t, v))
        sp = spans(text, v)
        if not sp:
            errors.append(f"{where}: {side} {t}:{v!r} is not a substring of the transcript")
        if v != v.strip():
            errors.append(f"{where}: {side} {t}:{v!r} has leading/trailing whitespace")
        out += [(a, b, t, v) for a, b in sp]
        counts[t] += 1
    return out


def covered(span, label_spans):
    return any(a <= span[0] and span[1] <= b for a, b in label_spans)


def validate(path):
    """(errors, warnings, phi counts per type, keep counts per kind, transcripts) for one batch file."""
    min_transcripts, min_per_phi_type, min_per_keep_kind, min_no_phi = MINIMUMS.get(Path(path).stem, DEFAULT_MINIMUMS)
    errors, warnings = [], []
    phi_counts, keep_counts = Counter(), Counter()
    ids = set()
    n = 0
    no_phi = 0
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"line {lineno}: bad JSON: {exc}")
                continue
            n += 1
            rid = rec.get("id", f"line{lineno}")
            where = f"{rid}"
            for field in ("id", "transcript", "phi", "keep"):
                if field not in rec:
                    errors.append(f"{where}: missing field {field!r}")
            if rid in ids:
                errors.append(f"{where}: duplicate id")
            ids.add(rid)
            text = rec.get("transcript", "")
            if not text.startswith("Transcript:\n"):
                errors.append(f"{where}: transcript does not start with 'Transcript:\\n'")
            if "Agent:" not in text or "Caller:" not in text:
                errors.append(f"{where}: transcript lacks Agent:/Caller: turns")
            phi = rec.get("phi", [])
            keep = rec.get("keep", [])
            if not phi:
                no_phi += 1

            seen = set()
            phi_spans = _labels(phi, "phi", "type", PHI_TYPES, text, where, seen, errors, phi_counts)
            keep_spans = _labels(keep, "keep", "kind", REQUIRED_KEEP + OPTIONAL_KEEP, text, where, seen, errors,
                                 keep_counts)
            for item in keep:
                k, v = item.get("kind"), item.get("value")
                if not isinstance(v, str) or not v:
                    continue
                if k == "clinician" and not v.startswith(CLINICIAN_TITLES):
                    errors.append(f"{where}: clinician {v!r} has no title")
                if k == "follow_up_date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
                    errors.append(f"{where}: follow_up_date {v!r} is not YYYY-MM-DD")
                if k == "time" and not re.fullmatch(r"\d{2}:\d{2}", v):
                    errors.append(f"{where}: time {v!r} is not HH:MM")
            for ka, kb, k, kv in keep_spans:
                for pa, pb, t, pv in phi_spans:
                    if ka < pb and pa < kb:
                        errors.append(
                            f"{where}: keep {k}:{kv!r} overlaps phi {t}:{pv!r} at {max(ka, pa)}")
            # Masking check: after removing every PHI occurrence, no PHI value survives.
            masked = text
            for v in sorted({p[3] for p in phi_spans}, key=len, reverse=True):
                masked = masked.replace(v, "\x00" * len(v))
            for _, _, t, v in phi_spans:
                if v in masked:
                    errors.append(f"{where}: {t}:{v!r} survives masking")
            # Suspicious unlabelled look-alikes (warnings only).
            label_spans = [(a, b) for a, b, *_ in phi_spans + keep_spans]
            body = text[len("Transcript:\n"):] if text.startswith("Transcript:\n") else text
            off = len(text) - len(body)
            for name, rx in SUSPECT_PATTERNS:
                for m in rx.finditer(body):
                    sp = (m.start() + off, m.end() + off)
                    if not covered(sp, label_spans):
                        warnings.append(f"{where}: unlabelled {name}: {m.group(0)!r}")

    if n < min_transcripts:
        errors.append(f"only {n} transcripts (need >= {min_transcripts})")
    for t in PHI_TYPES:
        if phi_counts[t] < min_per_phi_type:
            errors.append(f"phi type {t}: {phi_counts[t]} values (need >= {min_per_phi_type})")
    for k in REQUIRED_KEEP:
        if keep_counts[k] < min_per_keep_kind:
            errors.append(f"keep kind {k}: {keep_counts[k]} values (need >= {min_per_keep_kind})")
    if no_phi < min_no_phi:
        errors.append(f"only {no_phi} transcripts without PHI (want >= {min_no_phi})")
    return errors, warnings, phi_counts, keep_counts, (n, no_phi)


def main(path):
    errors, warnings, phi_counts, keep_counts, (n, no_phi) = validate(path)

    print(f"transcripts: {n}  (without PHI: {no_phi})")
    print("PHI values per type:")
    for t in PHI_TYPES:
        print(f"  {t:15s} {phi_counts[t]}")
    print(f"  {'TOTAL':15s} {sum(phi_counts.values())}")
    print("keep values per kind:")
    for k in REQUIRED_KEEP + OPTIONAL_KEEP:
        print(f"  {k:15s} {keep_counts[k]}")
    if warnings:
        print(f"\n{len(warnings)} warning(s) (unlabelled look-alikes; review, not failures):")
        for w in warnings:
            print("  " + w)
    if errors:
        print(f"\nFAILED with {len(errors)} error(s):")
        for e in errors:
            print("  " + e)
        return 1
    print("\nOK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(max(main(path) for path in sys.argv[1:]) if sys.argv[1:] else 2)
