"""Retraining decisions, pure: the sensor gathers the facts, this decides."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class SensorState:
    """The new-traces sensor's cursor."""

    last_storage_id: int = 0  # the last pass_cases materialization event counted
    mix_storage_id: int = 0  # the training_mix materialization the count started from
    new_pass_cases: int = 0  # rows of pass_cases materialized since that training_mix

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> SensorState:
        return cls(**json.loads(text)) if text else cls()


def advance(state: SensorState, mix_storage_id: int, new_events: list[tuple[int, int]]) -> SensorState:
    """Count pass-case rows from materialization events (storage id, row count) newer than the last mix.

    A new training_mix resets the count: only pass cases after it are new to the student.
    """
    count = state.new_pass_cases if mix_storage_id == state.mix_storage_id else 0
    last = state.last_storage_id
    for storage_id, rows in new_events:
        if storage_id > mix_storage_id:
            count += rows
        last = max(last, storage_id)
    return SensorState(last_storage_id=last, mix_storage_id=mix_storage_id, new_pass_cases=count)


def retrain_decision(state: SensorState, threshold: int, run_in_progress: str | None) -> tuple[bool, str]:
    if run_in_progress:
        return False, f"retrain_job run {run_in_progress} is still in progress; not starting another"
    if state.new_pass_cases < threshold:
        return False, (f"{state.new_pass_cases} new pass cases since the last training mix; "
                       f"waiting for {threshold}")
    return True, f"{state.new_pass_cases} new pass cases since the last training mix (threshold {threshold})"


def missing_days(materialized: set[str], today: date, window: int = 30, first_day: date | None = None) -> list[str]:
    """Days of the last `window` (before today) with no materialized partition: capture is falling behind."""
    days = [today - timedelta(days=i) for i in range(1, window + 1)]
    return sorted(d.isoformat() for d in days if (first_day is None or d >= first_day)
                  and d.isoformat() not in materialized)
