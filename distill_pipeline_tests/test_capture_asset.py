import dagster as dg
import pyarrow.parquet as pq
import pytest

from distill_pipeline.backends.storage import sha256_file
from distill_pipeline.defs.capture import teacher_traces
from distill_pipeline.defs.resources import PipelineSettings
from distill_pipeline_tests.conftest import expected_counts, pipeline_fields

DAYS = ["2026-10-01", "2026-10-07", "2026-10-19"]


def materialize_day(day, resources, instance=None):
    result = dg.materialize([teacher_traces], partition_key=day, resources=resources, instance=instance)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.mark.parametrize("day", DAYS)
def test_a_bundled_partition_counts_match_the_generator_truth(day, resources):
    metadata = materialize_day(day, resources)
    truth = expected_counts(day)
    assert metadata["input_rows"] == sum(truth.values())
    assert metadata["dagster/row_count"] == truth["trace"]
    assert metadata["quarantined_rows"] == truth["quarantine"]
    assert metadata["duplicate_rows"] == truth["duplicate"]
    assert metadata["do_not_train_rows"] == truth["do_not_train"]
    assert metadata["input_rows"] == (metadata["dagster/row_count"] + metadata["quarantined_rows"]
                                      + metadata["duplicate_rows"] + metadata["do_not_train_rows"])


def test_rerunning_a_partition_writes_the_same_bytes(resources, pipeline):
    first = materialize_day(DAYS[0], resources)
    digest = sha256_file(first["path"])
    second = materialize_day(DAYS[0], resources)
    assert second["sha256"] == first["sha256"] == digest


def test_the_parquet_path_names_the_asset_and_the_partition(resources):
    path = materialize_day(DAYS[0], resources)["path"]
    assert "teacher_traces" in path and DAYS[0] in path
    table = pq.read_table(path)
    created = table.column("created_at").to_pylist()
    assert created == sorted(created)


def test_quarantined_lines_keep_file_line_reason_and_raw_text(resources):
    metadata = materialize_day(DAYS[1], resources)
    rows = pq.read_table(metadata["quarantine_path"]).to_pylist()
    assert len(rows) == metadata["quarantined_rows"] + metadata["duplicate_rows"]
    for row in rows:
        assert row["file"].startswith(DAYS[1]) and row["line"] >= 1 and row["reason"] and row["raw"]


def test_a_partition_over_the_quarantine_limit_fails_its_blocking_check(tmp_path, resources, pipeline):
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "2026-10-02.jsonl").write_text('{"broken": \n{"messages": []}\n')
    bad = PipelineSettings(**{**pipeline_fields(pipeline), "traces_dir": str(exports)})
    result = dg.materialize([teacher_traces], partition_key="2026-10-02",
                            resources={**resources, "pipeline": bad}, raise_on_error=False)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "quarantine_share_below_limit" and not check.passed


def test_an_empty_day_gives_an_empty_partition_not_an_error(tmp_path, resources, pipeline):
    exports = tmp_path / "exports"
    exports.mkdir()
    empty = PipelineSettings(**{**pipeline_fields(pipeline), "traces_dir": str(exports)})
    result = dg.materialize([teacher_traces], partition_key="2026-10-03", resources={**resources, "pipeline": empty})
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["input_rows"].value == 0
