"""Scale bench: N synthetic teacher traces over D days through capture, curate and the training mix.

Generates JSONL exports (stored-completion lines of about 1-2 KB, ~10% wrong teacher answers, ~1%
do-not-train, some duplicates, chat-example lines and a few malformed lines), then runs each stage over
every partition with the project's own asset code, each stage in a fresh process so its peak memory is
its own, plus the reference: `pyarrow.json.read_json` on the same files. Finally it times one tick of
the retraining sensor on a Dagster instance holding a materialization of every pass_cases partition.

    python bench/scale.py [--n 1000000] [--days 30] [--out /tmp/scale] [--stages pyarrow,capture,...] [--profile]

Exports already under --out for the same N, days and seed are reused (delete the folder to regenerate).

Goals: capture + curate + mix within 3x the pyarrow parse time, peak memory under 2 GB and flat as N
grows, a sensor tick under one second. Figures and the machine they came from: bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = ("pyarrow", "capture", "curate", "mix", "sensor")
PIPELINE_STAGES = ("capture", "curate", "mix")
FIRST_DAY = date(2026, 10, 1)
SEED = 20261101
NAME_SLOT = "{{CALLER}}"  # where a template's caller name goes

# Shares of a day's lines (the rest are fresh, well-formed traces in the day's main file).
EXACT_COPY = 0.004  # the previous line again (an export retried)
CONTENT_COPY = 0.003  # the previous trace's content under a new id (a client retry)
MALFORMED = 0.002  # quarantined by capture: no id or an empty answer (in the main file, valid JSON), or
# truncated JSON or a field of the wrong type (in the -part2 file, which pyarrow refuses)
LATE = 0.010  # well-formed traces in the -part2 file (a late second export)
CHAT_SHAPE = 0.02  # of fresh traces: a chat example instead of a stored completion
WRONG = 0.10  # of fresh traces: a wrong teacher answer
DO_NOT_TRAIN = 0.01


# --------------------------------------------------------------------------------------------------------------
# Generation


def _sample_module() -> Any:
    spec = importlib.util.spec_from_file_location("generate_sample", REPO / "data" / "generate_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_sample"] = module
    spec.loader.exec_module(module)
    return module


def _templates(gs: Any, day: date, size: int, seed: int) -> list[dict[str, Any]]:
    """`size` distinct calls of the day from the sample generator, the caller's name left as a slot."""

    class SlotMaker(gs.CallMaker):
        def name(self) -> str:
            return NAME_SLOT

    corpus = gs.Corpus(seed)
    corpus.maker = SlotMaker(corpus.rng)
    out = []
    while len(out) < size:
        call = corpus.new_call(day)
        transcript = call.transcript
        if transcript.count(NAME_SLOT) != 1:  # every intent greets with a name; keep contents unique
            continue
        correct = gs.dumps(call.answer())
        kind = corpus.error_kind()
        wrong = gs.make_wrong(corpus.rng, kind, call, day)
        out.append({"intent": call.intent, "transcript": transcript, "user": json.dumps(transcript),
                    "answers": (correct, wrong), "answers_json": (json.dumps(correct), json.dumps(wrong))})
    return out


def _names(gs: Any) -> list[str]:
    return [f"{first} {last}" for first in gs.FIRST_NAMES for last in gs.LAST_NAMES]


def _stored_line(gs: Any, cid: str, created: int, user_json: str, answer_json: str, prompt_tokens: int,
                 completion_tokens: int, metadata_json: str, system_json: str) -> str:
    """dumps(gs.stored_completion(...)) without building the dict (checked against it in `write_day`)."""
    return (f'{{"id":"{cid}","object":"chat.completion","created":{created},"model":"{gs.MODEL}",'
            f'"choices":[{{"index":0,"finish_reason":"stop","logprobs":null,"message":{{"role":"assistant",'
            f'"content":{answer_json},"refusal":null}}}}],"usage":{{"prompt_tokens":{prompt_tokens},'
            f'"completion_tokens":{completion_tokens},"total_tokens":{prompt_tokens + completion_tokens}}},'
            f'"metadata":{metadata_json},"request_messages":[{{"id":"{cid}-0","role":"system",'
            f'"content":{system_json}}},{{"id":"{cid}-1","role":"user","content":{user_json}}}]}}')


def write_day(gs: Any, day: date, n_day: int, traces_dir: Path, seed: int) -> dict[str, int]:
    """The day's exports: D.jsonl (everything pyarrow can parse) and D-part2.jsonl (late lines, malformed ones)."""
    rng = random.Random(f"{seed}:{day.isoformat()}")
    names = _names(gs)
    size = max(300, math.ceil(n_day / (len(names) - 80)))
    pool = _templates(gs, day, size, rng.getrandbits(32))
    system_json = json.dumps(gs.SYSTEM_PROMPT)
    system_tokens = gs.approx_tokens(gs.SYSTEM_PROMPT) + 7
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    step = 86_000 / max(n_day, 1)
    counts = {"lines": 0, "main": 0, "late": 0, "exact_copies": 0, "content_copies": 0, "malformed": 0,
              "chat_shape": 0, "wrong": 0, "do_not_train": 0}
    fresh = 0
    last: tuple[str, dict[str, Any]] | None = None  # the previous fresh stored line and its parts
    checked = 0

    def new_content() -> tuple[dict[str, Any], str]:
        nonlocal fresh
        template = pool[fresh % size]
        name = names[(fresh // size * 641) % len(names)]  # 641 is prime to 1280: (template, name) never repeats
        if fresh // size >= len(names):
            raise ValueError(f"{n_day} lines on {day} need a bigger template pool")
        fresh += 1
        return template, name

    main_path, late_path = traces_dir / f"{day.isoformat()}.jsonl", traces_dir / f"{day.isoformat()}-part2.jsonl"
    with open(main_path, "w", encoding="utf-8") as main, open(late_path, "w", encoding="utf-8") as late:
        for m in range(n_day):
            created = start + int(m * step) + rng.randrange(60)
            roll = rng.random()
            counts["lines"] += 1
            if roll < EXACT_COPY and last is not None:
                main.write(last[0])
                counts["main"] += 1
                counts["exact_copies"] += 1
                continue
            if roll < EXACT_COPY + CONTENT_COPY and last is not None:
                parts = dict(last[1], cid=f"chatcmpl-{rng.getrandbits(96):024x}", created=created)
                main.write(_stored_line(gs, **parts) + "\n")
                counts["main"] += 1
                counts["content_copies"] += 1
                continue
            template, name = new_content()
            cid = f"chatcmpl-{rng.getrandbits(96):024x}"
            user_json = template["user"].replace(NAME_SLOT, name)
            outcome = rng.random()
            wrong = outcome < WRONG
            metadata = {"agent": gs.AGENT, "intent": template["intent"], "layer": "teacher",
                        "ttft_ms": str(250 + rng.randrange(651))}
            if WRONG <= outcome < WRONG + DO_NOT_TRAIN:
                metadata["do_not_train"] = "true"
                counts["do_not_train"] += 1
            counts["wrong"] += wrong
            answer_text = template["answers"][wrong]
            prompt_tokens = system_tokens + math.ceil((len(template["transcript"]) - len(NAME_SLOT) + len(name)) / 4)
            parts = {"cid": cid, "created": created, "user_json": user_json,
                     "answer_json": template["answers_json"][wrong], "prompt_tokens": prompt_tokens,
                     "completion_tokens": gs.approx_tokens(answer_text),
                     "metadata_json": json.dumps(metadata, separators=(",", ":")), "system_json": system_json}
            line = _stored_line(gs, **parts)
            if checked < 20:  # the fast path writes exactly what the sample generator would
                transcript = template["transcript"].replace(NAME_SLOT, name)
                expected = gs.dumps(gs.stored_completion(cid, created, transcript, answer_text, metadata))
                assert line == expected, (line, expected)
                checked += 1
            if roll < EXACT_COPY + CONTENT_COPY + MALFORMED:
                counts["malformed"] += 1
                record = json.loads(line)
                bad = rng.randrange(6)
                if bad == 0:
                    del record["id"]
                elif bad == 1:
                    record["choices"][0]["message"]["content"] = ""
                elif bad == 2:
                    record["created"] = "yesterday"
                elif bad == 3:
                    record["metadata"] = "x"
                elif bad == 4:
                    record["usage"]["prompt_tokens"] = str(record["usage"]["prompt_tokens"])
                text = gs.dumps(record) if bad < 5 else line[:rng.randint(40, len(line) - 40)]
                (main if bad < 2 else late).write(text + "\n")  # pyarrow refuses the -part2 ones
                counts["main" if bad < 2 else "late"] += 1
                continue
            if rng.random() < CHAT_SHAPE:
                transcript = template["transcript"].replace(NAME_SLOT, name)
                keep_id = rng.random() < 0.5
                line = gs.dumps(gs.chat_example(cid if keep_id else None, created if keep_id else None, transcript,
                                                answer_text, metadata))
                counts["chat_shape"] += 1
            else:
                last = (line + "\n", parts)
            target = late if roll > 1 - LATE else main
            target.write(line + "\n")
            counts["late" if target is late else "main"] += 1
    return counts


def generate(n: int, days: int, out: Path, seed: int) -> dict[str, Any]:
    """Write the exports unless out/traces already holds this exact N, days and seed."""
    traces_dir = out / "traces"
    manifest_path = out / "generated.json"
    wanted = {"n": n, "days": days, "seed": seed, "generator": 1}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in wanted} == wanted:
            return manifest
    if traces_dir.exists():
        shutil.rmtree(traces_dir)
    traces_dir.mkdir(parents=True)
    manifest_path.unlink(missing_ok=True)
    gs = _sample_module()
    started = time.perf_counter()
    totals: dict[str, int] = {}
    for i in range(days):
        n_day = n // days + (i < n % days)
        for key, value in write_day(gs, FIRST_DAY + timedelta(days=i), n_day, traces_dir, seed).items():
            totals[key] = totals.get(key, 0) + value
    files = sorted(traces_dir.glob("*.jsonl"))
    manifest = {**wanted, **totals, "files": len(files), "bytes": sum(p.stat().st_size for p in files),
                "generate_s": round(time.perf_counter() - started, 1)}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# --------------------------------------------------------------------------------------------------------------
# Stages (each runs in its own process: `--stage NAME`)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _pipeline(out: Path) -> Any:
    from distill_pipeline import settings
    from distill_pipeline.defs.resources import PipelineSettings

    return PipelineSettings(storage_root=str(out / "storage"), traces_dir=str(out / "traces"),
                            task_spec=settings.task_spec_path(),
                            general_examples=settings.env("DISTILL_GENERAL_EXAMPLES",
                                                          settings.DEFAULT_GENERAL_EXAMPLES),
                            trainer="local", preset=settings.preset_name())


def _quiet_dagster() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("dagster").setLevel(logging.WARNING)


def _die_with_parent() -> None:
    """Linux: this process is killed when its parent dies, so a killed bench leaves no stage or worker behind
    (SIGKILL: a shell may start the bench with SIGTERM ignored, and the children inherit that)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not glibc Linux: a killed bench may leave its children running
        pass


def _worker_init() -> None:
    _die_with_parent()
    _quiet_dagster()


def stage_pyarrow(out: Path, workers: int = 1) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.json as pj

    files = sorted((out / "traces").glob("*.jsonl"))
    result: dict[str, Any] = {}
    for label, threads in (("", True), ("_1thread", False)):
        rows, parsed_bytes, refused, refused_bytes = 0, 0, 0, 0
        started, cpu = time.perf_counter(), _cpu_s()
        for path in files:
            try:
                table = pj.read_json(path, read_options=pj.ReadOptions(use_threads=threads))
            except pa.ArrowInvalid:  # the malformed lines of the -part2 files
                refused += 1
                refused_bytes += path.stat().st_size
                continue
            rows += table.num_rows
            parsed_bytes += path.stat().st_size
            del table
        wall = time.perf_counter() - started
        result.update({f"wall_s{label}": wall, f"cpu_s{label}": _cpu_s() - cpu, f"rows{label}": rows})
        if not label:
            result.update({"rows": rows, "wall_s": wall, "parsed_bytes": parsed_bytes, "refused_files": refused,
                           "refused_bytes": refused_bytes})
    return result


def _capture_day(out: Path, day: str) -> dict[str, int]:
    import dagster as dg

    from distill_pipeline.defs.capture import teacher_traces
    from distill_pipeline.defs.resources import OpenAIResource

    context = dg.build_asset_context(partition_key=day, instance=_instance())
    meta = teacher_traces(context, pipeline=_pipeline(out), openai=OpenAIResource()).metadata
    return {key: int(meta["dagster/row_count" if key == "rows" else key]) for key in CAPTURE_COUNTS}


def _curate_day(out: Path, day: str) -> dict[str, int]:
    import dagster as dg

    from distill_pipeline.defs.curate import pass_cases, trace_evals
    from distill_pipeline.defs.resources import OpenAIResource

    pipeline = _pipeline(out)
    meta = trace_evals(dg.build_asset_context(partition_key=day, instance=_instance()), pipeline=pipeline,
                       openai=OpenAIResource()).metadata
    passed = pass_cases(dg.build_asset_context(partition_key=day, instance=_instance()), pipeline=pipeline).metadata
    return {"traces": int(meta["traces"]), "eval_rows": int(meta["dagster/row_count"]),
            "pass_cases": int(passed["dagster/row_count"])}


_INSTANCE: Any = None


def _instance() -> Any:
    """One ephemeral instance per process: Dagster's set-up is not the asset's cost."""
    global _INSTANCE
    if _INSTANCE is None:
        import dagster as dg

        _INSTANCE = dg.DagsterInstance.ephemeral()
    return _INSTANCE


def _over_partitions(fn: Any, out: Path, days: list[str], workers: int) -> tuple[dict[str, int], dict[str, float]]:
    """fn(out, day) for every day, `workers` partitions at a time in worker processes (as Dagster's multiprocess
    executor runs a backfill: one process per partition run), summing the counts. Also CPU seconds and peak
    memory of the parent and the workers."""
    import concurrent.futures
    import multiprocessing

    totals: dict[str, int] = {}
    started, cpu = time.perf_counter(), _cpu_s()
    if workers <= 1:
        results = [fn(out, day) for day in days]
    else:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                                    initializer=_worker_init) as pool:
            results = list(pool.map(fn, [out] * len(days), days))
    wall = time.perf_counter() - started
    for result in results:
        for key, value in result.items():
            totals[key] = totals.get(key, 0) + value
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = {"wall_s": wall, "cpu_s": _cpu_s() - cpu + children.ru_utime + children.ru_stime,
             "workers": workers, "worker_peak_mb": children.ru_maxrss / 1024}
    return totals, stats


CAPTURE_COUNTS = ("input_rows", "rows", "quarantined_rows", "duplicate_rows", "do_not_train_rows")


def stage_capture(out: Path, workers: int = 1) -> dict[str, Any]:
    _quiet_dagster()
    from distill_pipeline.backends.jsonl_source import JsonlExportSource

    shutil.rmtree(out / "storage", ignore_errors=True)
    days = JsonlExportSource(_pipeline(out).traces_dir).days()
    counts, stats = _over_partitions(_capture_day, out, days, workers)
    return {**counts, **stats, "rows": counts["input_rows"], "partitions": len(days), "output_rows": counts["rows"]}


def stage_curate(out: Path, workers: int = 1) -> dict[str, Any]:
    _quiet_dagster()
    days = _pipeline(out).layout.trace_partitions("teacher_traces")
    counts, stats = _over_partitions(_curate_day, out, days, workers)
    return {**stats, "rows": counts["traces"], "partitions": len(days), "eval_rows": counts["eval_rows"],
            "pass_cases": counts["pass_cases"]}


def stage_mix(out: Path, workers: int = 1) -> dict[str, Any]:
    _quiet_dagster()
    import dagster as dg

    from distill_pipeline.defs.mix import eval_holdout, general_examples, training_mix

    pipeline = _pipeline(out)
    layout = pipeline.layout
    days = layout.trace_partitions("pass_cases")
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(layout.traces_path("pass_cases", d)).metadata.num_rows for d in days)
    started, cpu = time.perf_counter(), _cpu_s()
    result = dg.materialize([general_examples, eval_holdout, training_mix], resources={"pipeline": pipeline},
                            raise_on_error=True)
    wall, cpu = time.perf_counter() - started, _cpu_s() - cpu
    meta = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        meta[materialization.asset_key.to_user_string()] = {
            k: v.value for k, v in materialization.metadata.items() if k in (
                "dagster/row_count", "train_examples", "validation_examples", "train_sha256",
                "validation_sha256", "domain_sha256")}
    return {"rows": rows, "wall_s": wall, "cpu_s": cpu, "partitions": len(days), "materializations": meta}


def stage_sensor(out: Path, workers: int = 1, partitions: int = 30,
                 rematerializations: tuple[int, ...] = (1, 10)) -> dict[str, Any]:
    """One tick of new_traces_sensor on an instance with a training_mix and `partitions` pass_cases
    materializations (then again with each partition materialized several times)."""
    _quiet_dagster()
    import dagster as dg

    from distill_pipeline.defs.automation import new_traces_sensor

    result: dict[str, Any] = {"rows": 0, "wall_s": 0.0}
    days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(partitions)]
    for times in rematerializations:
        with tempfile.TemporaryDirectory() as home, dg.instance_for_test(temp_dir=home) as instance:
            instance.report_runless_asset_event(dg.AssetMaterialization("training_mix"))
            for _ in range(times):
                for day in days:
                    instance.report_runless_asset_event(dg.AssetMaterialization(
                        "pass_cases", partition=day, metadata={"dagster/row_count": 29_000}))
            ticks = []
            cursor = None
            for _ in range(3):  # the first tick reads every event; later ones start from the cursor
                context = dg.build_sensor_context(instance=instance, cursor=cursor)
                started = time.perf_counter()
                tick = new_traces_sensor(context)
                ticks.append((time.perf_counter() - started) * 1000)
                cursor = context.cursor
            kind = type(tick).__name__
            result[f"events_{partitions * times}"] = {"first_tick_ms": round(ticks[0], 1),
                                                      "later_tick_ms": round(min(ticks[1:]), 1), "result": kind}
    return result


def run_stage(name: str, out: Path, profile: bool = False, workers: int = 1) -> dict[str, Any]:
    fn = {"pyarrow": stage_pyarrow, "capture": stage_capture, "curate": stage_curate, "mix": stage_mix,
          "sensor": stage_sensor}[name]
    if not profile:
        result = fn(out, workers)
    else:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(fn, out, 1)  # a profile sees this process only: no workers
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        (out / f"profile-{name}.txt").write_text(text.getvalue())
    # Peak memory: this process, or, with workers, this process and every worker at its own peak at once
    # (an upper bound on the whole stage's resident memory).
    result["peak_mb"] = _peak_mb() + result.get("workers", 0) * result.get("worker_peak_mb", 0.0)
    return result


def _child(name: str, out: Path, timeout: float, profile: bool, workers: int) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--out", str(out),
               "--workers", str(workers)]
    command += ["--profile"] if profile else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------------------
# Report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import pyarrow

    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, pyarrow {pyarrow.__version__}")


def report(n: int, manifest: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    lines = [f"N = {n:,} lines over {manifest['days']} days ({manifest['bytes'] / 1e6:,.0f} MB, "
             f"{manifest['bytes'] / max(n, 1):,.0f} B/line); {machine()}", ""]
    lines.append(f"{'stage':<10} {'rows':>11} {'rows/s':>10} {'wall s':>9} {'cpu s':>9} {'peak MB':>9}")
    for name in ("pyarrow", *PIPELINE_STAGES):
        r = results.get(name)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"{name:<10} {r['error']}")
            continue
        lines.append(f"{name:<10} {r['rows']:>11,} {r['rows'] / r['wall_s']:>10,.0f} {r['wall_s']:>9.1f} "
                     f"{r['cpu_s']:>9.1f} {r['peak_mb']:>9,.0f}")
    ref = results.get("pyarrow", {})
    if "wall_s" in ref:
        lines.append(f"(pyarrow: {ref['refused_files']} files refused as malformed, "
                     f"{ref['refused_bytes'] / 1e6:.1f} MB not in its time; single-threaded "
                     f"{ref['wall_s_1thread']:.1f} s wall)")
    done = [results[s] for s in PIPELINE_STAGES if "wall_s" in results.get(s, {})]
    if "wall_s" in ref and len(done) == len(PIPELINE_STAGES):
        total, total_cpu = sum(r["wall_s"] for r in done), sum(r["cpu_s"] for r in done)
        peak = max(r["peak_mb"] for r in done)
        ratio = total / ref["wall_s"]
        lines.append(f"pipeline total {total:.1f} s wall = {ratio:.1f}x pyarrow's {ref['wall_s']:.1f} s "
                     f"(goal <= 3x: {'met' if ratio <= 3 else 'NOT met'}); in CPU time {total_cpu:.1f} s = "
                     f"{total_cpu / ref['cpu_s']:.1f}x pyarrow's {ref['cpu_s']:.1f} s")
        lines.append(f"peak memory {peak:,.0f} MB (goal < 2,048 MB: {'met' if peak < 2048 else 'NOT met'})")
    sensor = results.get("sensor")
    if sensor and "error" not in sensor:
        for key, value in sensor.items():
            if key.startswith("events_"):
                lines.append(f"sensor tick, {key[7:]} pass_cases materializations: first {value['first_tick_ms']} ms, "
                             f"with cursor {value['later_tick_ms']} ms ({value['result']})")
    elif sensor:
        lines.append(f"sensor: {sensor['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="export lines in all (default 1,000,000)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("/tmp/scale"), help="where exports and outputs go")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per stage")
    parser.add_argument("--profile", action="store_true",
                        help="run each stage under cProfile (slower); top functions in OUT/profile-STAGE.txt")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="partitions run at once by capture and curate, one process each (default: the cores)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this process
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.stage:
        print(json.dumps(run_stage(args.stage, out, args.profile, args.workers), default=str))
        return 0
    if REPO in out.parents or out == REPO:
        parser.error("--out must be outside the repository (generated data is large)")
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages: {', '.join(sorted(unknown))}")
    out.mkdir(parents=True, exist_ok=True)
    manifest = generate(args.n, args.days, out, args.seed)
    print(f"exports: {manifest['lines']:,} lines, {manifest['bytes'] / 1e6:,.0f} MB in {manifest['files']} files "
          f"under {out / 'traces'} (generated in {manifest['generate_s']} s)", flush=True)
    results: dict[str, dict[str, Any]] = {}
    for name in stages:
        results[name] = _child(name, out, args.timeout, args.profile, args.workers)
        print(f"  {name}: {json.dumps(results[name], default=str)}", flush=True)
    text = report(args.n, manifest, results)
    print()
    print(text)
    (out / "results.json").write_text(json.dumps({"manifest": manifest, "machine": machine(), "results": results},
                                                 indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
