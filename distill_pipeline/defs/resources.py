"""Resources: where things are and how to reach the outside world. Secrets only via EnvVar."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from distill_pipeline import settings
from distill_pipeline.backends.storage import StorageLayout


@lru_cache(maxsize=8)
def _load_task(path: str, mtime_ns: int) -> Any:
    from distill_pipeline.core.taskspec import load_task_spec

    return load_task_spec(path)


class PipelineSettings(dg.ConfigurableResource):
    """Paths and choices from the environment (see CONTRACTS.md); shown in the UI, so never a secret."""

    storage_root: str
    trace_source: str = "jsonl"
    traces_dir: str
    task_spec: str
    general_examples: str
    trainer: str = "local"
    preset: str = "cpu"

    @property
    def layout(self) -> StorageLayout:
        return StorageLayout(self.storage_root)

    def load_task(self) -> Any:
        """The task spec, parsed once per file version (every asset asks for it, every partition)."""
        path = Path(self.task_spec)
        return _load_task(str(path), path.stat().st_mtime_ns if path.exists() else 0)

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

    @classmethod
    def from_env(cls) -> OpenAIResource:
        # EnvVar keeps the value out of run config and the UI; only wire it when it is set.
        return cls(
            api_key=dg.EnvVar("OPENAI_API_KEY") if os.environ.get("OPENAI_API_KEY") else None,
            base_url=dg.EnvVar("OPENAI_BASE_URL") if os.environ.get("OPENAI_BASE_URL") else None,
        )


