"""Environment settings (CONTRACTS.md): read once, with the documented defaults."""

from __future__ import annotations

import os
from pathlib import Path

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


def trace_source() -> str:
    value = env("DISTILL_TRACE_SOURCE", "jsonl")
    if value not in {"jsonl", "openai"}:
        raise ValueError(f"DISTILL_TRACE_SOURCE must be 'jsonl' or 'openai', not {value!r}")
    return value


def task_spec_path() -> str:
    return env("DISTILL_TASK_SPEC", DEFAULT_TASK_SPEC)


def trainer() -> str:
    value = env("DISTILL_TRAINER", "local")
    if value not in {"local", "openai"}:
        raise ValueError(f"DISTILL_TRAINER must be 'local' or 'openai', not {value!r}")
    return value


def preset_name() -> str:
    value = env("DISTILL_PRESET", "cpu")
    if value not in {"tiny", "cpu", "gpu"}:
        raise ValueError(f"DISTILL_PRESET must be 'tiny', 'cpu' or 'gpu', not {value!r}")
    return value


def partitions_start() -> str:
    return env("DISTILL_PARTITIONS_START", DEFAULT_PARTITIONS_START)
