#!/usr/bin/env python
"""Validate the hand-labelled blind PHI set ``batch4.jsonl`` (standard library only).

Checks, per record:
  * well-formed JSON with ``id``, ``transcript``, ``phi``, ``keep``; ids unique;
    transcript starts with ``Transcript:\\n`` and every later line is an
    ``Agent:`` or ``Caller:`` turn;
  * ``phi[].type`` / ``keep[].kind`` are from the allowed sets;
  * every value is a non-empty exact substring of the transcript, listed once;
  * no occurrence of a keep value overlaps an occurrence of a PHI value;
  * after masking every occurrence of every PHI and keep value, nothing that
    looks like an identifier is left: no run of 3+ digits, no ISO date, no
    HH:MM time, no e-mail, no "Dr./Doctor/Nurse <Name>", no ICD-10-like code,
    no currency amount;
  * (warning) a PHI value that also occurs glued inside a longer word.

Then corpus-wide minimums: >= 160 transcripts, >= 30 values of every PHI
type, >= 25 of every core keep kind, and between 6 and 12 PHI-free
transcripts.  Prints counts per type and kind.  Exit status 1 on any error.

Usage: python check_batch4.py [path/to/batch4.jsonl] [--review]
  --review  also list capitalised words that survive masking in mid-sentence
            (a manual aid for spotting unlabelled names).
"""
import collections
import json
import os
import re
import sys

PHI_TYPES = {"name", "mrn", "phone", "dob", "email", "ssn", "address"}
CORE_KEEP = {"clinician", "follow_up_date", "time", "icd10", "amount"}
KEEP_KINDS = CORE_KEEP | {"reference", "medication", "clinic"}
MIN_TRANSCRIPTS = 160
MIN_PHI = 30
MIN_KEEP = 25
NO_PHI_RANGE = (6, 12)

RESIDUAL_PATTERNS = [
    ("3+ digit run", re.compile(r"\d{3,}")),
    ("ISO date", re.compile(r"\d{4}-\d{2}-\d{2}")),
    ("HH:MM time", re.compile(r"\b\d{1,2}:\d{2}\b")),
    ("e-mail", re.compile(r"\S@\S|\bat \w+ dot (com|org|net|me|co)\b")),
    ("clinician", re.compile(r"\b(Dr\.?|Doctor|Nurse)\s+[A-Z]")),
    ("ICD-10-like code", re.compile(r"\b[A-TV-Z]\d{2}(\.[0-9A-Z]{1,4})?\b")),
    ("amount", re.compile(r"[$£€]\s?\d|\d\s?(dollars|pounds|euros)\b")),
    ("digit-digit-digit sequence", re.compile(r"\b\d[ ,.-]+\d[ ,.-]+\d\b")),
]

# Capitalised words that are fine to leave in a transcript (for --review).
REVIEW_OK = set("""
Agent Caller Transcript I I'm I'll I've I'd OK Okay Yes No Hi Hello Thanks Thank
Good Morning Afternoon Sure Great Done Perfect Mr Mrs Ms Dr Doctor Nurse
Practitioner MRN NHS SSN DOB CHI UR MRI PSA TSH LDL HRT ADHD COPD UTI ENT BP ER
GP DOT A1C Monday Tuesday Wednesday Thursday Friday Saturday Saturdays Sunday
Mondays Tuesdays Thursdays Fridays Thanksgiving Christmas Day US UK
""".split())


def spans_of(text, value):
    out, start = [], 0
    while True:
        i = text.find(value, start)
        if i < 0:
            return out
        out.append((i, i + len(value)))
        start = i + 1


def overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def check(path, review=False):
    errors, warnings = [], []
    phi_count = collections.Counter()
    keep_count = collections.Counter()
    no_phi = 0
    ids = set()
    records = []
    review_hits = collections.Counter()

    with open(path, encoding="utf-8") as fh:
        for ln, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"line {ln}: bad JSON: {exc}")
                continue
            records.append(rec)
            rid = rec.get("id", f"<line {ln}>")

            def err(msg):
                errors.append(f"{rid}: {msg}")

            if set(rec) != {"id", "transcript", "phi", "keep"}:
                err(f"unexpected keys {sorted(rec)}")
            if rid in ids:
                err("duplicate id")
            ids.add(rid)
            tr = rec.get("transcript", "")
            if not isinstance(tr, str) or not tr.startswith("Transcript:\n"):
                err("transcript must start with 'Transcript:\\n'")
                continue
            for tl in tr.split("\n")[1:]:
                if not (tl.startswith("Agent: ") or tl.startswith("Caller: ")):
                    err(f"turn without speaker: {tl[:50]!r}")

            phi = rec.get("phi", [])
            keep = rec.get("keep", [])
            if not phi:
                no_phi += 1
            seen = set()
            phi_spans, keep_spans = [], []
            for item in phi:
                t, v = item.get("type"), item.get("value")
                if t not in PHI_TYPES:
                    err(f"bad phi type {t!r}")
                if not v or not isinstance(v, str):
                    err(f"empty phi value for {t}")
                    continue
                if v in seen:
                    err(f"value listed twice: {v!r}")
                seen.add(v)
                sp = spans_of(tr, v)
                if not sp:
                    err(f"phi {t} value not in transcript: {v!r}")
                phi_count[t] += 1
                phi_spans += [(s, t, v) for s in sp]
            for item in keep:
                k, v = item.get("kind"), item.get("value")
                if k not in KEEP_KINDS:
                    err(f"bad keep kind {k!r}")
                if not v or not isinstance(v, str):
                    err(f"empty keep value for {k}")
                    continue
                if v in seen:
                    err(f"value listed twice: {v!r}")
                seen.add(v)
                sp = spans_of(tr, v)
                if not sp:
                    err(f"keep {k} value not in transcript: {v!r}")
                keep_count[k] += 1
                keep_spans += [(s, k, v) for s in sp]

            for ks, kk, kv in keep_spans:
                for ps, pt, pv in phi_spans:
                    if overlaps(ks, ps):
                        err(f"keep {kk} {kv!r} overlaps phi {pt} {pv!r}")

            # PHI value glued inside a longer word (warning only), unless that
            # occurrence is itself covered by another PHI value.
            for (s, e), t, v in phi_spans:
                glued = (s > 0 and tr[s - 1].isalpha() and v[0].isalpha()) or (
                    e < len(tr) and tr[e].isalpha() and v[-1].isalpha())
                if glued:
                    covered = any(ps[0] <= s and e <= ps[1] and pv != v
                                  for ps, _, pv in phi_spans)
                    if not covered:
                        warnings.append(f"{rid}: {t} {v!r} occurs inside a longer word "
                                        f"near {tr[max(0, s - 10):e + 10]!r}")

            masked = list(tr)
            for (s, e), _, _ in phi_spans + keep_spans:
                for i in range(s, e):
                    masked[i] = "#"
            masked = "".join(masked)
            for label, rx in RESIDUAL_PATTERNS:
                for m in rx.finditer(masked):
                    ctx = masked[max(0, m.start() - 25):m.end() + 25]
                    err(f"unlabelled {label} {m.group(0)!r} in ...{ctx!r}...")

            if review:
                for tl in masked.split("\n")[1:]:
                    body = tl.split(": ", 1)[1] if ": " in tl else tl
                    for m in re.finditer(r"(?<![.!?—] )(?<!^)\b[A-Z][\w'’-]+", body):
                        w = m.group(0)
                        prev = body[:m.start()].rstrip()
                        if not prev or prev[-1] in ".!?—:\"(":
                            continue
                        if w.rstrip("'s") in REVIEW_OK or w in REVIEW_OK:
                            continue
                        review_hits[w] += 1

    if len(records) < MIN_TRANSCRIPTS:
        errors.append(f"only {len(records)} transcripts (< {MIN_TRANSCRIPTS})")
    for t in sorted(PHI_TYPES):
        if phi_count[t] < MIN_PHI:
            errors.append(f"phi type {t}: {phi_count[t]} values (< {MIN_PHI})")
    for k in sorted(CORE_KEEP):
        if keep_count[k] < MIN_KEEP:
            errors.append(f"keep kind {k}: {keep_count[k]} values (< {MIN_KEEP})")
    if not NO_PHI_RANGE[0] <= no_phi <= NO_PHI_RANGE[1]:
        errors.append(f"{no_phi} PHI-free transcripts (want {NO_PHI_RANGE[0]}-{NO_PHI_RANGE[1]})")

    print(f"transcripts: {len(records)}   PHI-free: {no_phi}")
    print("phi values per type:")
    for t in sorted(PHI_TYPES):
        print(f"  {t:9s} {phi_count[t]:4d}")
    print("keep values per kind:")
    for k in sorted(KEEP_KINDS):
        print(f"  {k:15s} {keep_count[k]:4d}")
    if review:
        print("capitalised mid-sentence words left after masking (review by hand):")
        for w, n in sorted(review_hits.items()):
            print(f"  {w} x{n}")
    for w in warnings:
        print("WARNING", w)
    for e in errors:
        print("ERROR", e)
    print("OK" if not errors else f"FAILED: {len(errors)} error(s)")
    return not errors


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batch4.jsonl")
    ok = check(args[0] if args else default, review="--review" in sys.argv)
    sys.exit(0 if ok else 1)
