"""Environment settings (CONTRACTS.md): read once, with the documented defaults."""

from __future__ import annotations

import os
from pathlib import Path

from distill_pipeline.core.capture import TRACE_SOURCES, TraceSourceKind
from distill_pipeline.core.finetune_format import TRAINERS, TrainerKind
from distill_pipeline.core.presets import PRESET_NAMES, PresetName

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
DEFAULT_STORAGE_ROOT = REPO_ROOT / "storage"
DEFAULT_TRACES_DIR = DATA_DIR / "sample" / "traces"
DEFAULT_TASK_SPEC = DATA_DIR / "tasks" / "healthcare.yaml"
DEFAULT_GENERAL_EXAMPLES = DATA_DIR / "general" / "general_examples.jsonl"
# The first day of the bundled corpus; real deployments set their own.
DEFAULT_PARTITIONS_START = "2026-10-01"


def env(name: str, default: str | Path) -> str:
    value = os.environ.get(name, "").strip()
    return value or str(default)


def storage_root() -> str:
    return env("DISTILL_STORAGE_ROOT", DEFAULT_STORAGE_ROOT)


def traces_dir() -> str:
    return env("DISTILL_TRACES_DIR", DEFAULT_TRACES_DIR)


def trace_source() -> TraceSourceKind:
    value = env("DISTILL_TRACE_SOURCE", "jsonl")
    if value not in TRACE_SOURCES:
        raise ValueError(f"DISTILL_TRACE_SOURCE must be 'jsonl' or 'openai', not {value!r}")
    return value


def task_spec_path() -> str:
    return env("DISTILL_TASK_SPEC", DEFAULT_TASK_SPEC)


def trainer() -> TrainerKind:
    value = env("DISTILL_TRAINER", "local")
    if value not in TRAINERS:
        raise ValueError(f"DISTILL_TRAINER must be 'local' or 'openai', not {value!r}")
    return value


def preset_name() -> PresetName:
    value = env("DISTILL_PRESET", "cpu")
    if value not in PRESET_NAMES:
        raise ValueError(f"DISTILL_PRESET must be 'tiny', 'cpu' or 'gpu', not {value!r}")
    return value


def retrain_min_new_pass_cases() -> int:
    value = env("DISTILL_RETRAIN_MIN_NEW_PASS_CASES", "1000")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"DISTILL_RETRAIN_MIN_NEW_PASS_CASES must be a whole number of pass cases, not "
                         f"{value!r}") from None


def partitions_start() -> str:
    return env("DISTILL_PARTITIONS_START", DEFAULT_PARTITIONS_START)
