import json
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from distill_pipeline import settings
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
from distill_pipeline_tests.ci_skips import pytest_runtest_makereport  # noqa: F401  (the hook, registered here)

LABELS = settings.DATA_DIR / "sample" / "labels.jsonl"


@pytest.fixture(autouse=True)
def _no_real_openai(monkeypatch):
    # Tests never reach a real endpoint, whatever the developer's shell has set.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def pipeline(tmp_path: Path) -> PipelineSettings:
    return PipelineSettings(
        storage_root=str(tmp_path / "storage"),
        trace_source="jsonl",
        traces_dir=str(settings.DEFAULT_TRACES_DIR),
        task_spec=str(settings.DEFAULT_TASK_SPEC),
        general_examples=str(settings.DEFAULT_GENERAL_EXAMPLES),
        trainer="local",
        preset="tiny",
    )


@pytest.fixture
def resources(pipeline: PipelineSettings) -> dict:
    return {"pipeline": pipeline, "openai": OpenAIResource()}


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def load_labels() -> list[dict]:
    return [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]


def expected_counts(partition: str) -> Counter:
    return Counter(label["kind"] for label in load_labels() if label["partition"] == partition)


def pipeline_fields(pipeline: PipelineSettings) -> dict:
    """The settings as keyword arguments, to build a variant (resources are immutable)."""
    return {name: getattr(pipeline, name) for name in PipelineSettings.model_fields}


@pytest.fixture(scope="module")
def one_torch_thread():
    """The tiny model's ops are too small to share between threads; one thread is faster on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def capture_days(root: Path, days: list[str], traces_dir: Path | None = None) -> tuple[PipelineSettings, dict]:
    """Capture and curate the given days of a JSONL export (the bundled corpus by default) with the tiny preset
    under `root/storage`; returns the settings and the resources to run more assets with."""
    from distill_pipeline.definitions import ASSET_CHECKS, ASSETS

    pipeline = PipelineSettings(storage_root=str(root / "storage"),
                                traces_dir=str(traces_dir or settings.DEFAULT_TRACES_DIR),
                                task_spec=str(settings.DEFAULT_TASK_SPEC),
                                general_examples=str(settings.DEFAULT_GENERAL_EXAMPLES), preset="tiny")
    resources = {"pipeline": pipeline, "openai": OpenAIResource()}
    for day in days:
        assert dg.materialize(ASSETS + ASSET_CHECKS, partition_key=day, resources=resources,
                              selection=["teacher_traces", "trace_evals", "pass_cases"]).success
    return pipeline, resources
