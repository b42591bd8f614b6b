"""A run killed with SIGKILL in the middle of an asset's write leaves no partial file, and the rerun is exact.

A child process materializes an asset with the storage helpers' final rename stalled: the temporary file is
written and synced, and the child waits there until the test SIGKILLs it. Then no file a reader would open is
partial (each is absent, the previous version, or complete), and a rerun writes the same bytes as a run that
was never interrupted.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from distill_pipeline import settings
from distill_pipeline.backends import storage
from distill_pipeline.defs.capture import teacher_traces
from distill_pipeline.defs.mix import general_examples
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings

DAY = "2026-10-07"
ASSETS = {"teacher_traces": teacher_traces, "general_examples": general_examples}
STALLED = "stalled before renaming"


def materialize(asset: str, root: Path, traces_dir: Path) -> None:
    pipeline = PipelineSettings(storage_root=str(root), traces_dir=str(traces_dir),
                                task_spec=str(settings.DEFAULT_TASK_SPEC),
                                general_examples=str(settings.DEFAULT_GENERAL_EXAMPLES), preset="tiny")
    result = dg.materialize([ASSETS[asset]], partition_key=DAY if asset == "teacher_traces" else None,
                            resources={"pipeline": pipeline, "openai": OpenAIResource()})
    assert result.success


def child_main() -> None:
    """In the child: materialize, but stall at the N-th atomic rename until killed."""
    asset, root, traces_dir, stall_at = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    renames = 0

    def stalling_replace(src: str, dst: str) -> None:
        nonlocal renames
        renames += 1
        if renames == stall_at:
            print(f"{STALLED} {dst}", flush=True)
            threading.Event().wait()  # until SIGKILL
        os.replace(src, dst)

    class StallingOs:  # os, as the storage helpers see it, with a rename that stalls
        replace = staticmethod(stalling_replace)

        def __getattr__(self, name: str):
            return getattr(os, name)

    storage.os = StallingOs()
    materialize(asset, root, traces_dir)
    print("finished without stalling", flush=True)


def kill_mid_write(asset: str, root: Path, traces_dir: Path, stall_at: int) -> str:
    """Run the child until it stalls at the rename, SIGKILL it; the path it was about to replace."""
    code = "from distill_pipeline_tests.test_kill import child_main; child_main()"
    child = subprocess.Popen([sys.executable, "-c", code, asset, str(root), str(traces_dir), str(stall_at)],
                             cwd=settings.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 180)
        line = child.stdout.readline() if ready else ""
        assert line.startswith(STALLED), f"the child did not stall: {line!r} {child.stderr.read()[-2000:]}"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    return line.removeprefix(STALLED).strip()


def visible_files(root: Path) -> dict[str, bytes]:
    """Every file a reader would open (temporary files are hidden: `.<name>.<random>.tmp`)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not is_temporary(p)}


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """The files of uninterrupted runs, to compare the killed-and-rerun ones with."""
    out = {}
    for asset in ASSETS:
        root = tmp_path_factory.mktemp(f"clean-{asset}")
        materialize(asset, root, settings.DEFAULT_TRACES_DIR)
        out[asset] = visible_files(root)
    return out


@pytest.mark.parametrize(("asset", "stall_at", "written_before"), [
    ("teacher_traces", 1, []),  # killed while writing the traces file: nothing is visible yet
    ("teacher_traces", 2, ["teacher_traces.parquet"]),  # killed while writing the quarantine table
    ("general_examples", 1, []),  # a JSONL file, written by atomic_write_bytes
])
def test_a_run_killed_mid_write_leaves_no_partial_file_and_the_rerun_is_byte_identical(
        asset, stall_at, written_before, tmp_path, clean_runs):
    root = tmp_path / "storage"
    target = kill_mid_write(asset, root, settings.DEFAULT_TRACES_DIR, stall_at)

    left = visible_files(root)
    assert Path(target).name not in {Path(name).name for name in left}
    assert sorted(Path(name).name for name in left) == sorted(written_before)
    for name, data in left.items():  # what is visible is complete: the same bytes a clean run writes
        assert data == clean_runs[asset][name]
    temporary = [p for p in root.rglob("*") if p.is_file() and is_temporary(p)]
    assert len(temporary) == 1 and temporary[0].parent == Path(target).parent

    materialize(asset, root, settings.DEFAULT_TRACES_DIR)
    assert visible_files(root) == clean_runs[asset]


def test_a_killed_rewrite_keeps_the_previous_version_until_the_rerun_replaces_it(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    day_file = (settings.DEFAULT_TRACES_DIR / f"{DAY}.jsonl").read_bytes()
    lines = day_file.splitlines(keepends=True)
    (exports / f"{DAY}.jsonl").write_bytes(b"".join(lines[:-5]))  # the export as it was yesterday
    root = tmp_path / "storage"
    materialize("teacher_traces", root, exports)
    before = visible_files(root)

    (exports / f"{DAY}.jsonl").write_bytes(day_file)  # today the export is complete: rematerialize
    kill_mid_write("teacher_traces", root, exports, stall_at=1)
    assert visible_files(root) == before

    materialize("teacher_traces", root, exports)
    clean = tmp_path / "clean"
    materialize("teacher_traces", clean, exports)
    assert visible_files(root) == visible_files(clean) != before


def test_a_write_removes_its_targets_stale_temporary_files_and_no_others(tmp_path):
    target = tmp_path / "train.jsonl"
    old = time.time() - storage.STALE_TMP_S - 60
    stale = tmp_path / ".train.jsonl.abc123.tmp"  # left by a run killed an hour ago
    live = tmp_path / ".train.jsonl.def456.tmp"  # another writer's, seconds old
    other = tmp_path / ".validation.jsonl.ghi789.tmp"  # another target's, as old as the stale one
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    storage.atomic_write_bytes(target, b"whole\n")
    assert target.read_bytes() == b"whole\n"
    assert not stale.exists() and live.exists() and other.exists()
