"""Columnar floor: the least a capture + curate pass could cost if every step were an Arrow kernel.

scale.py's goal is the whole pass (capture, curate, mix) within 3x `pyarrow.json.read_json` of the same
exports. This bench asks whether that goal is reachable at all: over the exports scale.py wrote, it times
the cheapest conceivable form of the work the contract requires, each step vectorised where pyarrow has a
kernel and a bare Python loop where it has none, and leaves out everything the real pass also does
(normalising messages, quarantine reasons, duplicate keys, the JSON schema, the mix, Dagster):

- parse: `pyarrow.json.read_json` per file (the reference itself);
- columns: the answer and the user message pulled out of the nested lists;
- content hash: one sha256 per trace over its answer and user message (the real hash is over canonical
  message JSON, which must be built first);
- answer JSON: each answer decoded by orjson (the graders read its fields; `read_json` of the answers
  refuses the whole block at the first answer that is not JSON, and wrong teacher answers are exactly
  what curate is for);
- code_set: one case-insensitive `match_substring` per indicating phrase of the bundled task's codes;
- grounded: the follow-up date, time and clinician looked up in the transcript (no kernel tests one
  column's values inside another's, so a Python loop);
- Parquet: the trace columns written with pyarrow's defaults and read back (capture writes them, curate
  reads them).

    python bench/scale.py --n 1000000 --stages pyarrow   # writes the exports once
    python bench/columnar_floor.py [--out /tmp/scale]

It prints each step's wall time and the sum against 3x the parse. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
PARSE = "parse (read_json, the reference)"
COLUMNS = "columns (answer, user message)"
CODE_SET = "code_set (match_substring per phrase)"
MULTI_PATTERN = "ahocorasick-rs per trace"  # instead of CODE_SET, not added to the sum


def _phrases() -> list[str]:
    spec = yaml.safe_load((REPO / "data" / "tasks" / "healthcare.yaml").read_text())
    codes = next(g for g in spec["graders"] if g["type"] == "code_set")["params"]["codes"]
    return [phrase for words in codes.values() for phrase in words]


def _automaton(phrases: list[str]) -> Any:
    try:
        import ahocorasick_rs
    except ImportError:  # optional: pip install ahocorasick-rs for the multi-pattern alternative
        return None
    return ahocorasick_rs.AhoCorasick(phrases)


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _user_and_answer(table: pa.Table) -> tuple[pa.Array, pa.Array]:
    choices = table.column("choices").combine_chunks()
    answer = pc.struct_field(pc.struct_field(pc.list_element(choices, 0), "message"), "content")
    keep = pc.is_valid(answer)  # the malformed lines capture would quarantine (no answer) are left out
    flat = pc.list_flatten(pc.filter(table.column("request_messages").combine_chunks(), keep))
    # One user message per bundled trace: the filtered flat list lines up with the rows.
    user = pc.filter(pc.struct_field(flat, "content"), pc.equal(pc.struct_field(flat, "role"), "user"))
    answer = pc.filter(answer, keep)
    if len(user) != len(answer):
        raise SystemExit(f"{len(answer)} answers but {len(user)} user messages: not scale.py's exports")
    return user, answer


def _grounded(answers: list[Any], users: list[str]) -> int:
    count = 0
    for user, answer in zip(users, answers, strict=True):
        follow = answer.get("follow_up") if isinstance(answer, dict) else None
        if isinstance(follow, dict):
            count += all(follow.get(f) is None or str(follow.get(f)) in user for f in ("date", "time", "clinician"))
    return count


def measure(traces: Path, phrases: list[str], automaton: Any) -> dict[str, Any]:
    """Seconds per step over every file pyarrow accepts; `MULTI_PATTERN` only when `automaton` is given."""
    files = sorted(p for p in traces.glob("*.jsonl") if "part2" not in p.name)  # pyarrow refuses those
    steps: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        started = time.perf_counter()
        value = fn()
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - started
        return value

    rows = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            table = timed(PARSE, lambda p=path: pj.read_json(p))
            rows += table.num_rows
            user, answer = timed(COLUMNS, lambda t=table: _user_and_answer(t))
            user_py = timed(COLUMNS, lambda u=user: u.to_pylist())
            answer_py = timed(COLUMNS, lambda a=answer: a.to_pylist())
            digests = timed("content hash (sha256 per trace)", lambda us=user_py, an=answer_py: [
                hashlib.sha256(u.encode() + a.encode()).hexdigest() for u, a in zip(us, an, strict=True)])
            parsed = timed("answer JSON (orjson per answer)", lambda an=answer_py: [_loads(a) for a in an])
            lowered = timed(CODE_SET, lambda u=user: pc.utf8_lower(u))
            for phrase in phrases:
                timed(CODE_SET, lambda p=phrase, low=lowered: pc.match_substring(low, p))
            if automaton is not None:
                timed(MULTI_PATTERN,
                      lambda us=user_py: [set(automaton.find_matches_as_indexes(u.lower())) for u in us])
            timed("grounded (Python loop)", lambda an=parsed, us=user_py: _grounded(an, us))
            target = Path(tmp) / f"{path.stem}.parquet"
            out = pa.table({"content_hash": digests, "user": user, "answer": answer})
            timed("Parquet write + read", lambda o=out, t=target: pq.write_table(o, t))
            timed("Parquet write + read", lambda t=target: pq.read_table(t))
    return {"rows": rows, "files": len(files), "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/scale"), help="scale.py's --out (exports in traces/)")
    args = parser.parse_args(argv)
    traces = args.out / "traces"
    if not any(traces.glob("*.jsonl")):
        print(f"no exports under {traces}: run bench/scale.py --stages pyarrow --out {args.out} first",
              file=sys.stderr)
        return 2
    phrases = _phrases()
    result = measure(traces, phrases, _automaton(phrases))
    steps = result["steps"]
    alternative = steps.pop(MULTI_PATTERN, None)
    parse, total = steps[PARSE], sum(steps.values())
    print(f"{result['rows']:,} traces in {result['files']} files under {traces}")
    for name, seconds in steps.items():
        print(f"  {name:<46} {seconds:7.2f} s  {seconds / result['rows'] * 1e6:6.2f} us/trace")
        if name == CODE_SET and alternative is not None:
            print(f"  {'code_set (instead: ' + MULTI_PATTERN + ')':<46} {alternative:7.2f} s  "
                  f"{alternative / result['rows'] * 1e6:6.2f} us/trace")
    print(f"  {'sum (a floor: the mix, checks and Dagster excluded)':<46} {total:7.2f} s  = {total / parse:.1f}x "
          f"the parse; the goal allows {3 * parse:.2f} s (3x)")
    if alternative is None:
        print("  (pip install ahocorasick-rs to time the multi-pattern code_set alternative)")
    else:
        other = total - steps[CODE_SET] + alternative
        print(f"  {'sum with ' + MULTI_PATTERN:<46} {other:7.2f} s  = {other / parse:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
