"""The shape of what we ship: assets and their deps, partitions, checks, jobs, schedules and sensors.

A renamed asset or a mistyped string in `deps=` changes the graph silently (Dagster takes an unknown key for an
external asset); here it fails against the committed snapshot, asset_graph.json. After an intended change,
rewrite the snapshot and review its diff with the change:

    python -m distill_pipeline_tests.test_asset_graph
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from distill_pipeline.definitions import defs

SNAPSHOT = Path(__file__).with_name("asset_graph.json")


def partitions(definition: dg.PartitionsDefinition | None) -> dict[str, Any] | None:
    """A partitions definition without its start date (DISTILL_PARTITIONS_START sets that per deployment)."""
    if definition is None:
        return None
    if isinstance(definition, dg.TimeWindowPartitionsDefinition):
        return {"kind": type(definition).__name__, "cron": definition.cron_schedule,
                "timezone": definition.timezone}
    return {"kind": type(definition).__name__}


def graph_shape() -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": partitions(node.partitions_def),
            "group": node.group_name,
            "checks": sorted(check.name for check in graph.asset_check_keys if check.asset_key == key),
        }
    jobs = {}
    for job in sorted(defs.jobs or [], key=lambda j: j.name):
        jobs[job.name] = {
            "assets": sorted(key.to_user_string() for key in job.selection.resolve(graph)),
            "checks": sorted(check.to_user_string() for check in job.selection.resolve_checks(graph)),
            "partitions": partitions(defs.resolve_job_def(job.name).partitions_def),  # as run: inferred or set
        }
    repository = defs.get_repository_def()  # schedules and sensors as resolved against the jobs
    schedules = {schedule.name: {"job": schedule.job_name, "cron": schedule.cron_schedule,
                                 "timezone": schedule.execution_timezone,
                                 "default_status": schedule.default_status.value}
                 for schedule in sorted(repository.schedule_defs, key=lambda s: s.name)}
    sensors = {sensor.name: {"type": sensor.sensor_type.value,
                             "jobs": sorted(target.job_name for target in sensor.targets),
                             "minimum_interval_seconds": sensor.minimum_interval_seconds,
                             "default_status": sensor.default_status.value}
               for sensor in sorted(repository.sensor_defs, key=lambda s: s.name)}
    return {"assets": assets, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def differences(now: dict[str, Any], then: dict[str, Any]) -> list[str]:
    """`section name: now ... (snapshot: ...)` for each entry that differs."""
    return [f"{section} {name}: {now[section].get(name)} (snapshot: {then.get(section, {}).get(name)})"
            for section in now for name in sorted(set(now[section]) | set(then.get(section, {})))
            if now[section].get(name) != then.get(section, {}).get(name)]


def test_the_asset_graph_is_the_committed_snapshot():
    changed = differences(graph_shape(), json.loads(SNAPSHOT.read_text()))
    assert not changed, (
        f"the definitions differ from {SNAPSHOT.name}:\n" + "\n".join(changed) + "\nif the change is intended, "
        "rewrite the snapshot with `python -m distill_pipeline_tests.test_asset_graph` and review its diff")


def test_every_dependency_names_an_asset_we_materialize():
    graph = defs.resolve_asset_graph()
    unknown = {f"{key.to_user_string()} <- {parent.to_user_string()}" for key in graph.get_all_asset_keys()
               for parent in graph.get(key).parent_keys if not graph.get(parent).is_materializable}
    assert not unknown, f"deps on assets no definition materializes (a typo?): {sorted(unknown)}"


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(graph_shape(), indent=2) + "\n")
    print(f"wrote {SNAPSHOT}")
