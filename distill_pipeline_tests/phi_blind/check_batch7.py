#!/usr/bin/env python3
"""Validate the blind PHI test batch 7 (standard library only).

Usage: python check_batch7.py [path/to/batch7.jsonl]

Checks
  * every line is a JSON object with id / transcript / phi / keep, ids unique
  * phi[].type and keep[].kind come from the allowed sets
  * every labelled value is a non-empty exact substring of its transcript
  * no (type, value) pair is listed twice in one transcript
  * no occurrence of a keep value overlaps any occurrence of a PHI value
  * after masking every PHI value everywhere, none of the keep values is damaged,
    and some cheap residual heuristics (e-mail shape, SSN shape, leftover
    tokens of multi-word names) find nothing
  * minimum sizes: >= 120 transcripts, >= 25 values per PHI type,
    >= 20 values per required keep kind, >= 5 transcripts without PHI
Prints counts per type / kind and exits non-zero on any error.
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

PHI_TYPES = {"name", "mrn", "phone", "dob", "email", "ssn", "address"}
REQUIRED_KEEP = {"clinician", "follow_up_date", "time", "icd10", "amount"}
OPTIONAL_KEEP = {"reference", "medication", "clinic"}
MIN_TRANSCRIPTS, MIN_PHI, MIN_KEEP, MIN_NO_PHI = 120, 25, 20, 5

EMAIL_RX = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
SSN_RX = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")
TIME_RX = re.compile(r"^\d{2}:\d{2}$")
DATE_RX = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CLINICIAN_RX = re.compile(r"^(dr\.?|doctor|nurse)\s+\S", re.I)


def occurrences(text, value):
    out, start = [], 0
    while True:
        i = text.find(value, start)
        if i < 0:
            return out
        out.append((i, i + len(value)))
        start = i + 1


def mask(text, values):
    spans = []
    for v in values:
        spans += occurrences(text, v)
    chars = list(text)
    for s, e in spans:
        for i in range(s, e):
            chars[i] = "\0"
    return re.sub("\0+", "[PHI]", "".join(chars)), spans


def main(path):
    errors, warnings = [], []
    phi_counts, keep_counts = Counter(), Counter()
    ids, n, no_phi = set(), 0, 0
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        n += 1
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {lineno}: bad JSON ({exc})")
            continue
        rid = rec.get("id", f"line{lineno}")
        where = f"{rid}"
        if set(rec) != {"id", "transcript", "phi", "keep"}:
            errors.append(f"{where}: keys are {sorted(rec)}")
        if rid in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(rid)
        text = rec.get("transcript", "")
        if not text.startswith("Transcript:\n") or "Agent:" not in text or "Caller:" not in text:
            errors.append(f"{where}: transcript shape")
        phi, keep = rec.get("phi", []), rec.get("keep", [])
        seen = set()
        for item in phi:
            t, v = item.get("type"), item.get("value", "")
            if t not in PHI_TYPES:
                errors.append(f"{where}: unknown phi type {t!r}")
            if not v or v not in text:
                errors.append(f"{where}: phi value not in transcript: {v!r}")
            if v != v.strip():
                errors.append(f"{where}: phi value has outer whitespace: {v!r}")
            if (t, v) in seen:
                errors.append(f"{where}: duplicate phi {t}:{v!r}")
            seen.add((t, v))
            phi_counts[t] += 1
        seen = set()
        for item in keep:
            k, v = item.get("kind"), item.get("value", "")
            if k not in REQUIRED_KEEP | OPTIONAL_KEEP:
                errors.append(f"{where}: unknown keep kind {k!r}")
            if not v or v not in text:
                errors.append(f"{where}: keep value not in transcript: {v!r}")
            if (k, v) in seen:
                errors.append(f"{where}: duplicate keep {k}:{v!r}")
            seen.add((k, v))
            keep_counts[k] += 1
            if k == "time" and not TIME_RX.match(v):
                warnings.append(f"{where}: time not HH:MM: {v!r}")
            if k == "follow_up_date" and not DATE_RX.match(v):
                warnings.append(f"{where}: date not YYYY-MM-DD: {v!r}")
            if k == "clinician" and not CLINICIAN_RX.match(v):
                errors.append(f"{where}: clinician without title: {v!r}")
        if not phi:
            no_phi += 1
        phi_values = [p["value"] for p in phi if p.get("value")]
        masked, phi_spans = mask(text, phi_values)
        for item in keep:
            v = item.get("value", "")
            for s, e in occurrences(text, v):
                if any(s < pe and ps < e for ps, pe in phi_spans):
                    errors.append(f"{where}: keep {item.get('kind')}:{v!r} overlaps a PHI value")
                    break
        for v in {p["value"] for p in phi}:
            for item in keep:
                if v and (v in item["value"] or item["value"] in v):
                    errors.append(f"{where}: PHI {v!r} and keep {item['value']!r} contain one another")
        # residual heuristics on the masked transcript
        for m in EMAIL_RX.finditer(masked):
            errors.append(f"{where}: e-mail-like text left after masking: {m.group(0)!r}")
        for m in SSN_RX.finditer(masked):
            errors.append(f"{where}: SSN-like text left after masking: {m.group(0)!r}")
        keep_vals = {k["value"].lower() for k in keep}
        for p in phi:
            if p.get("type") != "name":
                continue
            for tok in re.findall(r"[^\W\d_]{3,}", p["value"]):
                if tok.lower() in keep_vals:
                    continue
                if re.search(r"(?<![^\W\d_])" + re.escape(tok) + r"(?![^\W\d_])", masked, re.I):
                    errors.append(f"{where}: name token {tok!r} still visible after masking")
    if n < MIN_TRANSCRIPTS:
        errors.append(f"only {n} transcripts (< {MIN_TRANSCRIPTS})")
    for t in sorted(PHI_TYPES):
        if phi_counts[t] < MIN_PHI:
            errors.append(f"phi type {t}: {phi_counts[t]} values (< {MIN_PHI})")
    for k in sorted(REQUIRED_KEEP):
        if keep_counts[k] < MIN_KEEP:
            errors.append(f"keep kind {k}: {keep_counts[k]} values (< {MIN_KEEP})")
    if no_phi < MIN_NO_PHI:
        errors.append(f"only {no_phi} transcripts without PHI (< {MIN_NO_PHI})")

    print(f"transcripts: {n}  (without PHI: {no_phi})")
    print("phi values per type:")
    for t in sorted(PHI_TYPES):
        print(f"  {t:16s}{phi_counts[t]:5d}")
    print("keep values per kind:")
    for k in sorted(REQUIRED_KEEP | OPTIONAL_KEEP):
        print(f"  {k:16s}{keep_counts[k]:5d}")
    for w in warnings:
        print("WARNING:", w)
    for e in errors:
        print("ERROR:", e)
    print("FAIL" if errors else "OK")
    return 1 if errors else 0


if __name__ == "__main__":
    default = Path(__file__).with_name("batch7.jsonl")
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else default))
