"""Resources: each backend is chosen once, from the environment, and the OpenAI client is closed after a run."""

import dagster as dg
import pytest
from pydantic import ValidationError

from distill_pipeline.backends.jsonl_source import JsonlExportSource
from distill_pipeline.backends.trainers import LocalFineTuner, OpenAIFineTuner
from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings
from distill_pipeline_tests.conftest import pipeline_fields


@pytest.mark.parametrize("variable, value, message", [
    ("DISTILL_TRACE_SOURCE", "stored", "DISTILL_TRACE_SOURCE must be 'jsonl' or 'openai', not 'stored'"),
    ("DISTILL_TRAINER", "lora", "DISTILL_TRAINER must be 'local' or 'openai', not 'lora'"),
    ("DISTILL_PRESET", "huge", "DISTILL_PRESET must be 'tiny', 'cpu' or 'gpu', not 'huge'"),
])
def test_a_bad_backend_choice_stops_loading_and_names_the_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message):
        PipelineSettings.from_env()


def test_the_settings_type_refuses_a_backend_that_does_not_exist(pipeline):
    with pytest.raises(ValidationError, match="Input should be 'local' or 'openai'"):
        PipelineSettings(**{**pipeline_fields(pipeline), "trainer": "lora"})


def test_the_choices_build_the_configured_backends(pipeline):
    assert isinstance(pipeline.trace_source_backend(OpenAIResource(), print), JsonlExportSource)
    assert isinstance(pipeline.fine_tuner(OpenAIResource(), print), LocalFineTuner)
    # a job or a student is finished and loaded by the trainer that made it, whatever is configured now
    assert isinstance(pipeline.fine_tuner(OpenAIResource(), print, kind="openai"), OpenAIFineTuner)


def test_the_openai_trainer_asks_for_a_client_only_when_it_calls_the_api(pipeline):
    tuner = pipeline.fine_tuner(OpenAIResource(), print, kind="openai")  # no key: building it is fine
    assert tuner.kind == "openai"


def test_the_openai_client_is_closed_when_the_run_ends():
    clients = []

    @dg.asset
    def uses_openai(openai: OpenAIResource) -> None:
        clients.append(openai.client())

    result = dg.materialize([uses_openai], resources={
        "openai": OpenAIResource(api_key="sk-test", base_url="http://127.0.0.1:9/v1")})
    assert result.success
    assert len(clients) == 1 and clients[0].is_closed()
