#!/usr/bin/env python3
"""Validate the hand-labelled blind PHI test set batch5.jsonl (standard library only).

Checks:
  * each line is a JSON object with id / transcript / phi / keep; ids unique
  * transcript starts with "Transcript:\n" and every turn starts with "Agent:" or "Caller:"
  * phi types and keep kinds are in the allowed sets; no empty values
  * every value is an exact substring of its transcript; no (type, value) listed twice;
    no value listed under two different labels
  * no keep value overlaps a PHI value: no keep occurrence intersects any PHI occurrence,
    and after masking every PHI value everywhere each keep value is still present verbatim
  * format of keep values (YYYY-MM-DD dates, HH:MM times, ICD-10 shape, titled clinicians)
  * minimum counts: >=110 transcripts, >=25 values per PHI type, >=20 per core keep kind
Warnings (not failures): unlabelled YYYY-MM-DD / HH:MM / "Dr."/"Nurse" mentions, and PHI values
that only occur inside a longer alphanumeric token.

Usage: python check_batch5.py [path/to/batch5.jsonl]
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

PHI_TYPES = ["name", "mrn", "phone", "dob", "email", "ssn", "address"]
CORE_KEEP = ["clinician", "follow_up_date", "time", "icd10", "amount"]
EXTRA_KEEP = ["reference", "medication", "clinic"]
MIN_TRANSCRIPTS = 110
MIN_PHI = 25
MIN_KEEP = 20

TITLE_RE = re.compile(r"^(Dr\.?|Doctor|Nurse)\s+\S", re.IGNORECASE)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^\d{2}:\d{2}$")
ICD_RE = re.compile(r"^[A-Z]\d{2}(\.[0-9A-Z]{1,4})?$")


def spans(text, value):
    out, start = [], 0
    while True:
        i = text.find(value, start)
        if i < 0:
            return out
        out.append((i, i + len(value)))
        start = i + 1


def mask(text, values):
    covered = [False] * len(text)
    for v in values:
        for a, b in spans(text, v):
            for i in range(a, b):
                covered[i] = True
    res, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            res.append("\x00")  # a character that cannot occur in a keep value
        else:
            res.append(text[i])
            i += 1
    return "".join(res), covered


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("batch5.jsonl")
    errors, warnings = [], []
    phi_counts, keep_counts = Counter(), Counter()
    ids = set()
    n = 0
    no_phi = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            n += 1
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"line {lineno}: bad JSON: {exc}")
                continue
            rid = rec.get("id", f"line{lineno}")
            where = f"{rid}"
            for key in ("id", "transcript", "phi", "keep"):
                if key not in rec:
                    errors.append(f"{where}: missing key {key!r}")
            if rid in ids:
                errors.append(f"{where}: duplicate id")
            ids.add(rid)
            text = rec.get("transcript", "")
            if not text.startswith("Transcript:\n"):
                errors.append(f"{where}: transcript must start with 'Transcript:\\n'")
            for turn in text.split("\n")[1:]:
                if not (turn.startswith("Agent: ") or turn.startswith("Caller: ")):
                    errors.append(f"{where}: turn without Agent:/Caller: prefix: {turn[:40]!r}")
            phi = rec.get("phi", [])
            keep = rec.get("keep", [])
            if not phi:
                no_phi += 1
            phi_values = [i.get("value", "") for i in phi if i.get("value")]
            seen_label = {}
            for item in phi:
                t, v = item.get("type"), item.get("value", "")
                if t not in PHI_TYPES:
                    errors.append(f"{where}: unknown phi type {t!r}")
                if not v:
                    errors.append(f"{where}: empty phi value")
                    continue
                if v not in text:
                    errors.append(f"{where}: phi {t} value not in transcript: {v!r}")
                if v in seen_label:
                    errors.append(f"{where}: value listed twice ({seen_label[v]} / phi:{t}): {v!r}")
                seen_label[v] = f"phi:{t}"
                phi_counts[t] += 1
                # value only ever appears glued inside a longer token?
                for a, b in spans(text, v):
                    if (a > 0 and text[a - 1].isalnum() and v[0].isalnum()) or (
                        b < len(text) and text[b].isalnum() and v[-1].isalnum()
                    ):
                        # fine if the whole surrounding token is itself PHI (e.g. 'Sid' in 'Siddharth')
                        ta, tb = a, b
                        while ta > 0 and text[ta - 1].isalnum():
                            ta -= 1
                        while tb < len(text) and text[tb].isalnum():
                            tb += 1
                        if all(any(x <= i < y for pv2 in phi_values for x, y in spans(text, pv2)) for i in range(ta, tb)):
                            continue
                        ctx = text[max(0, a - 10):b + 10].replace("\n", " ")
                        warnings.append(f"{where}: phi {t} value {v!r} also matches inside a longer token: {ctx!r}")
            for item in keep:
                k, v = item.get("kind"), item.get("value", "")
                if k not in CORE_KEEP + EXTRA_KEEP:
                    errors.append(f"{where}: unknown keep kind {k!r}")
                if not v:
                    errors.append(f"{where}: empty keep value")
                    continue
                if v not in text:
                    errors.append(f"{where}: keep {k} value not in transcript: {v!r}")
                if v in seen_label:
                    errors.append(f"{where}: value listed twice ({seen_label[v]} / keep:{k}): {v!r}")
                seen_label[v] = f"keep:{k}"
                keep_counts[k] += 1
                if k == "follow_up_date" and not DATE_RE.match(v):
                    errors.append(f"{where}: follow_up_date not YYYY-MM-DD: {v!r}")
                if k == "time" and not TIME_RE.match(v):
                    errors.append(f"{where}: time not HH:MM: {v!r}")
                if k == "icd10" and not ICD_RE.match(v):
                    errors.append(f"{where}: icd10 has odd shape: {v!r}")
                if k == "clinician" and not TITLE_RE.match(v):
                    errors.append(f"{where}: clinician without title: {v!r}")

            phi_values = [i.get("value", "") for i in phi if i.get("value")]
            keep_values = [i.get("value", "") for i in keep if i.get("value")]
            masked, covered = mask(text, phi_values)
            for kv in keep_values:
                for a, b in spans(text, kv):
                    if any(covered[a:b]):
                        errors.append(f"{where}: keep value {kv!r} at {a} overlaps a PHI value")
                        break
                if kv in text and kv not in masked:
                    errors.append(f"{where}: keep value {kv!r} destroyed by masking")
                for pv in phi_values:
                    if kv in pv or pv in kv:
                        errors.append(f"{where}: keep {kv!r} and phi {pv!r} are substrings of each other")

            # unlabelled things that look like keep values
            labelled = set(keep_values) | set(phi_values)
            for m in re.finditer(r"\b\d{4}-\d{2}-\d{2}\b", text):
                if not any(m.group(0) in lv for lv in labelled):
                    warnings.append(f"{where}: unlabelled ISO date {m.group(0)}")
            for m in re.finditer(r"\b\d{2}:\d{2}\b", text):
                if not any(m.group(0) in lv for lv in labelled):
                    warnings.append(f"{where}: unlabelled time {m.group(0)}")
            # a case-insensitive occurrence of a PHI value that masking (case-sensitive) leaves behind
            for pv in phi_values:
                for m in re.finditer(r"(?<!\w)" + re.escape(pv) + r"(?!\w)", text, re.IGNORECASE):
                    if not all(covered[m.start():m.end()]):
                        warnings.append(f"{where}: {m.group(0)!r} differs only in case from phi value {pv!r} and is not masked")
            for m in re.finditer(r"\b([Dd]r\.?|[Dd]octor|[Nn]urse)[ \t]+[A-Z][\w'-]+", text):
                if not any(m.group(0) in lv or lv in m.group(0) for lv in keep_values):
                    warnings.append(f"{where}: unlabelled clinician-like mention {m.group(0)!r}")

    if n < MIN_TRANSCRIPTS:
        errors.append(f"only {n} transcripts (< {MIN_TRANSCRIPTS})")
    for t in PHI_TYPES:
        if phi_counts[t] < MIN_PHI:
            errors.append(f"phi type {t}: {phi_counts[t]} values (< {MIN_PHI})")
    for k in CORE_KEEP:
        if keep_counts[k] < MIN_KEEP:
            errors.append(f"keep kind {k}: {keep_counts[k]} values (< {MIN_KEEP})")

    print(f"transcripts: {n}  (without PHI: {no_phi})")
    print("phi values per type:")
    for t in PHI_TYPES:
        print(f"  {t:15s} {phi_counts[t]}")
    print(f"  {'TOTAL':15s} {sum(phi_counts.values())}")
    print("keep values per kind:")
    for k in CORE_KEEP + EXTRA_KEEP:
        print(f"  {k:15s} {keep_counts[k]}")
    print(f"  {'TOTAL':15s} {sum(keep_counts.values())}")
    for w in warnings:
        print("WARNING:", w)
    for e in errors:
        print("ERROR:", e)
    print("FAIL" if errors else "OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
