"""The routing policy on disk: current.json, the policy in force, and history/, every policy ever written.

One writer (write_policy) and one reader (read_policy) for the file the routing_policy asset hands the Router,
`distill policy` and the serving endpoint; the type itself is core.artifacts.RoutingPolicy.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distill_pipeline.backends.storage import atomic_write_bytes
from distill_pipeline.core.artifacts import PolicyError, RoutingPolicy

HISTORY_DIR = "history"


def read_policy(path: str | Path) -> RoutingPolicy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: no routing policy here; materialize the routing_policy asset first") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise PolicyError(f"{path}: not valid JSON ({err})") from None
    return RoutingPolicy.from_dict(data, str(path))


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_policy(path: str | Path, policy: RoutingPolicy | dict[str, Any]) -> Path:
    """Write the policy atomically to `path`, and a copy to `<dir>/history/<created_at>-<hash>.json`.

    Every policy ever written stays in the history folder; writing the same policy
    again rewrites the same history file (reruns are idempotent). Returns the history path.
    """
    path = Path(path)
    if isinstance(policy, dict):
        policy = RoutingPolicy.from_dict(policy)
    if not policy.created_at:
        policy = replace(policy, created_at=datetime.now(UTC).isoformat(timespec="seconds"))
    text = json.dumps(policy.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    stamp = re.sub(r"[^0-9A-Za-z]+", "", policy.created_at)[:20] or "undated"
    history = path.parent / HISTORY_DIR / f"{stamp}-{digest}.json"
    _atomic_write(history, text)
    _atomic_write(path, text)
    return history


def policy_history(path: str | Path) -> list[Path]:
    """Every policy ever written beside `path`, oldest first (history files are named by creation time)."""
    folder = Path(path).parent / HISTORY_DIR
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def rollback_policy(path: str | Path) -> tuple[RoutingPolicy, Path]:
    """Put the policy written before the one in force back in force; returns it and its history file.

    The history is not changed, so a second rollback steps back once more. A PolicyError says why when there is
    nothing to go back to.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"{path}: no routing policy is in force; nothing to roll back")
    current = path.read_text(encoding="utf-8")
    history = policy_history(path)
    position = next((i for i, p in enumerate(history) if p.read_text(encoding="utf-8") == current), None)
    if position is None:
        raise PolicyError(f"{path} is not in {path.parent / HISTORY_DIR}; it was not written by write_policy, so "
                          "there is no record of what came before it")
    if position == 0:
        raise PolicyError(f"{path} is the first policy in {path.parent / HISTORY_DIR}; there is none before it")
    previous = history[position - 1]
    policy = read_policy(previous)
    _atomic_write(path, previous.read_text(encoding="utf-8"))
    return policy, previous
