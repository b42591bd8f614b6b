"""The levers of the offline student, one run each, as a table: lever -> per-field accuracy, train time.

    python bench/student_levers.py                       # every lever below (about 7 minutes each on 2 quiet cores)
    python bench/student_levers.py --only baseline demo  # some of them
    python bench/student_levers.py --table-only          # reprint the table from the runs already under --out
    python bench/student_levers.py --seeds 7 11 23 --only demo   # the demo's recipe over three seeds

Each lever is a run of bench/local_student.py (300 training calls, 60 held-out calls with the same split for the
same seed) with some settings changed; its summary.json lands in --out/<lever>-s<seed>/. The table gives, per run:
calls with every structured field right, the wrong answers per structured field, the SOAP note's token F1, valid
JSON, the AUROC of both routing signals, the training wall time and tokens/s, and the load average, so a reader
can see whether the machine was quiet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# name -> (what it changes, local_student.py arguments)
LEVERS: dict[str, tuple[str, list[str]]] = {
    "baseline": ("the old cpu preset: batch 4, plain loss, 2 epochs (rows: constrained decoding, then free)",
                 ["--batch-size", "4", "--struct-weight", "1", "--epochs", "2", "--constrained", "--also-free"]),
    "batch2": ("batch 2: twice the steps for the same tokens, plain loss, 2 epochs (constrained, then free)",
               ["--batch-size", "2", "--struct-weight", "1", "--epochs", "2", "--constrained", "--also-free"]),
    "demo-2-epochs": ("batch 2, structured tokens weigh 3x, constrained decoding, 2 epochs",
                      ["--batch-size", "2", "--struct-weight", "3", "--epochs", "2", "--constrained"]),
    "demo": ("the cpu preset: batch 2, structured tokens weigh 3x, 3 epochs, constrained decoding",
             ["--batch-size", "2", "--struct-weight", "3", "--epochs", "3", "--constrained"]),
}
STRUCTURED = ("intent", "icd10", "follow_up.needed", "follow_up.date", "follow_up.time", "follow_up.clinician")


def run(name: str, seed: int, out: Path) -> Path:
    folder = out / f"{name}-s{seed}"
    args = [sys.executable, str(REPO / "bench" / "local_student.py"), "--seed", str(seed), "--out", str(folder),
            *LEVERS[name][1]]
    print(f"== {name} (seed {seed}): {' '.join(args[2:])}", flush=True)
    subprocess.run(args, check=True, cwd=REPO)
    return folder / "summary.json"


def row(name: str, summary: dict, label: str = "student") -> str:
    student = summary["results"][label]
    wrong = student.get("wrong_by_field", {})
    auroc = [student.get("auroc_structured"), student.get("auroc_whole")]
    cells = [
        name + (" (free decoding)" if label == "student_free" else ""), str(summary["settings"]["seed"]),
        f"{student['all_structured_right']:.3f}",
        " / ".join(str(wrong.get(field, "-")) for field in STRUCTURED),
        f"{student['soap_token_f1']:.3f}", f"{student['valid_json']:.0%}",
        " / ".join("-" if a is None else f"{a:.2f}" for a in auroc),
        f"{summary['train_wall_s']:.0f}", f"{summary['tokens_per_s']:.0f}", f"{student['eval_s']:.0f}",
        f"{summary['load_average_1m']:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def table(out: Path) -> str:
    header = ("| lever | seed | all structured right | wrong: intent / icd10 / needed / date / time / clinician "
              "| SOAP token F1 | valid JSON | AUROC structured / whole | train wall s | tokens/s | eval s "
              "| load avg |")
    lines = [header, "|" + "---|" * 11]
    for summary_path in sorted(out.glob("*/summary.json")):
        name = summary_path.parent.name.rsplit("-s", 1)[0]
        summary = json.loads(summary_path.read_text())
        for label in ("student", "student_free"):
            if "all_structured_right" in summary["results"].get(label, {}):
                lines.append(row(name, summary, label))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(LEVERS), help="run only these levers")
    parser.add_argument("--seeds", nargs="*", type=int, default=[7])
    parser.add_argument("--out", type=Path, default=Path("/tmp/distill-bench/levers"))
    parser.add_argument("--table-only", action="store_true", help="print the table of the runs already done")
    args = parser.parse_args()
    if not args.table_only:
        for name in args.only or list(LEVERS):
            for seed in args.seeds:
                run(name, seed, args.out)
    for name, (what, _) in LEVERS.items():
        print(f"- {name}: {what}")
    print()
    print(table(args.out))


if __name__ == "__main__":
    main()
