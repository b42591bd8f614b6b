"""The scale benches still run end to end on a small N, and their counts add up."""

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "bench" / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def test_scale_and_floor_benches_count_every_line(tmp_path: Path) -> None:
    out = tmp_path / "scale"
    done = _bench("scale.py", "--n", "3000", "--days", "2", "--out", str(out), "--workers", "2",
                  "--stages", "pyarrow,capture,curate,mix")
    assert done.returncode == 0, done.stderr
    saved = json.loads((out / "results.json").read_text())
    manifest, results = saved["manifest"], saved["results"]
    assert not [name for name, r in results.items() if "error" in r], results
    capture, curate, mix = results["capture"], results["curate"], results["mix"]

    assert capture["input_rows"] == manifest["lines"] == 3000
    assert capture["input_rows"] == (capture["output_rows"] + capture["quarantined_rows"]
                                     + capture["duplicate_rows"] + capture["do_not_train_rows"])
    assert capture["quarantined_rows"] == manifest["malformed"] > 0
    assert capture["duplicate_rows"] == manifest["exact_copies"] + manifest["content_copies"]
    assert curate["rows"] == capture["output_rows"]
    assert curate["eval_rows"] == 4 * curate["rows"]  # four enabled graders, one verdict each per trace
    assert 0 < curate["pass_cases"] < curate["rows"]  # the generator's wrong answers fail
    assert mix["rows"] == curate["pass_cases"]
    assert capture["workers"] == curate["workers"] == 2
    assert "goal <= 3x" in done.stdout

    floor = _bench("columnar_floor.py", "--out", str(out))
    assert floor.returncode == 0, floor.stderr
    traces = re.search(r"^([\d,]+) traces in (\d+) files", floor.stdout, re.M)
    assert traces, floor.stdout
    assert int(traces.group(1).replace(",", "")) == results["pyarrow"]["rows"]
    assert re.search(r"sum \(a floor.*\d+\.\d+x the parse; the goal allows", floor.stdout), floor.stdout


def test_floor_bench_says_where_the_exports_come_from(tmp_path: Path) -> None:
    done = _bench("columnar_floor.py", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "run bench/scale.py" in done.stderr
