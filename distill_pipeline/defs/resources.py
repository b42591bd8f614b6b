"""Resources: where things are and how to reach the outside world. Secrets only via EnvVar.

Each choice of backend (DISTILL_TRACE_SOURCE, DISTILL_TRAINER) is a typed field, turned into a backend here and
nowhere else: assets and sensors receive these resources and never read the environment or compare names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from distill_pipeline import settings
from distill_pipeline.backends.handoffs import Handoffs
from distill_pipeline.backends.trainers import FineTuner, fine_tuner
from distill_pipeline.core.capture import TraceSource, TraceSourceKind
from distill_pipeline.core.finetune_format import TrainerKind
from distill_pipeline.core.presets import PresetName
from distill_pipeline.core.taskspec import TaskSpec

Log = Callable[[str], None]


@lru_cache(maxsize=8)
def _load_task(path: str, mtime_ns: int) -> TaskSpec:
    from distill_pipeline.core.taskspec import load_task_spec

    return load_task_spec(path)


class OpenAIResource(dg.ConfigurableResource):
    """An OpenAI (or OpenAI-compatible) endpoint. The key comes from OPENAI_API_KEY through EnvVar only."""

    api_key: str | None = None
    base_url: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    _client: Any = PrivateAttr(default=None)

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def client(self) -> Any:
        if not self.api_key:
            raise dg.Failure(
                "No OpenAI endpoint is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible "
                "server) in the environment, or use the offline defaults (DISTILL_TRACE_SOURCE=jsonl, "
                "DISTILL_TRAINER=local).")
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(api_key=self.api_key, base_url=self.base_url or None,
                                  timeout=self.timeout_s, max_retries=self.max_retries)
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the client's connection pool when the run (or this process's share of it) is done."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @classmethod
    def from_env(cls) -> OpenAIResource:
        # EnvVar keeps the value out of run config and the UI; only wire it when it is set.
        return cls(
            api_key=dg.EnvVar("OPENAI_API_KEY") if os.environ.get("OPENAI_API_KEY") else None,
            base_url=dg.EnvVar("OPENAI_BASE_URL") if os.environ.get("OPENAI_BASE_URL") else None,
        )


class PipelineSettings(dg.ConfigurableResource):
    """Paths and choices from the environment (see CONTRACTS.md); shown in the UI, so never a secret."""

    storage_root: str
    trace_source: TraceSourceKind = "jsonl"
    traces_dir: str
    task_spec: str
    general_examples: str
    trainer: TrainerKind = "local"
    preset: PresetName = "cpu"

    @property
    def layout(self) -> Handoffs:
        """The storage root's files, and every hand-off between assets with its one writer and reader."""
        return Handoffs(self.storage_root)

    def load_task(self) -> TaskSpec:
        """The task spec, parsed once per file version (every asset asks for it, every partition)."""
        path = Path(self.task_spec)
        return _load_task(str(path), path.stat().st_mtime_ns if path.exists() else 0)

    def trace_source_backend(self, openai: OpenAIResource, log: Log) -> TraceSource:
        """Where teacher_traces reads a day from: the JSONL export, or Stored Completions filtered by the task."""
        if self.trace_source == "openai":
            from distill_pipeline.backends.openai_source import OpenAIStoredCompletionsSource

            return OpenAIStoredCompletionsSource(openai.client(), metadata=dict(self.load_task().filter.metadata),
                                                 log=log)
        from distill_pipeline.backends.jsonl_source import JsonlExportSource

        return JsonlExportSource(self.traces_dir)

    def fine_tuner(self, openai: OpenAIResource, log: Log, kind: str | None = None) -> FineTuner:
        """The configured trainer, or the one a job or student recorded (`kind`); the OpenAI client is asked
        for only when the API is called."""
        return fine_tuner(kind or self.trainer, openai.client, log)

    @classmethod
    def from_env(cls) -> PipelineSettings:
        return cls(
            storage_root=settings.storage_root(),
            trace_source=settings.trace_source(),
            traces_dir=settings.traces_dir(),
            task_spec=settings.task_spec_path(),
            general_examples=settings.env("DISTILL_GENERAL_EXAMPLES", settings.DEFAULT_GENERAL_EXAMPLES),
            trainer=settings.trainer(),
            preset=settings.preset_name(),
        )


class AutomationSettings(dg.ConfigurableResource):
    """What the sensors act on: the retrain threshold, and where failed runs are posted (a secret: EnvVar)."""

    retrain_min_new_pass_cases: int = 1000
    alert_webhook_url: str | None = None

    @classmethod
    def from_env(cls) -> AutomationSettings:
        return cls(
            retrain_min_new_pass_cases=settings.retrain_min_new_pass_cases(),
            alert_webhook_url=(dg.EnvVar("DISTILL_ALERT_WEBHOOK_URL") if os.environ.get("DISTILL_ALERT_WEBHOOK_URL")
                               else None),
        )
