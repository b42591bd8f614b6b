"""The local student as served: streaming one request at a time, and the merged checkpoint engines load.

Run for real on the tiny random model with a freshly trained adapter (seconds, no download).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from distill_pipeline.backends.export import export_merged  # noqa: E402
from distill_pipeline.backends.local_student import LocalStudent  # noqa: E402
from distill_pipeline.backends.local_trainer import TINY_WORDS, resolve_base_model, train_lora  # noqa: E402
from distill_pipeline.core.presets import preset  # noqa: E402

SYSTEM = "You repeat the word after 'say'."
SCHEMA = {"type": "object", "properties": {"word": {"type": "string", "enum": list(TINY_WORDS[:6])},
                                           "n": {"type": "integer"}}, "required": ["word", "n"]}


def ask(word: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"say {word}"}]


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = resolve_base_model("tiny", tmp_path_factory.mktemp("models"), log=lambda _: None)
    data = tmp_path_factory.mktemp("data")
    lines = [json.dumps({"messages": [*ask(w), {"role": "assistant", "content": w}]}) for w in TINY_WORDS[:40]]
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path_factory.mktemp("run") / "student"
    train_lora(data / "train.jsonl", data / "train.jsonl", preset("tiny"), base, out, log=lambda _: None)
    return base, out / "adapter"


@pytest.fixture(scope="module")
def student(trained) -> LocalStudent:
    base, adapter = trained
    return LocalStudent(base, adapter, preset("tiny").with_overrides(max_new_tokens=24))


@pytest.mark.parametrize("word", ["cat", "violet", "seven"])
def test_streaming_gives_the_tokens_and_logprobs_complete_gives(student: LocalStudent, word: str):
    whole = student.complete(ask(word))
    tokens = student.stream(ask(word))
    events = list(tokens)
    streamed = tokens.completion
    assert streamed is not None
    assert streamed.text == whole.text and "".join(e.text for e in events) == whole.text
    assert streamed.token_logprobs == pytest.approx(whole.token_logprobs, abs=1e-4)
    assert streamed.token_offsets == whole.token_offsets == [e.offset for e in events]
    assert [e.elapsed_ms for e in events] == sorted(e.elapsed_ms for e in events)
    assert 0 < streamed.ttft_ms == events[0].elapsed_ms <= streamed.latency_ms == events[-1].elapsed_ms
    assert streamed.token_times_ms == pytest.approx([e.elapsed_ms for e in events], abs=0.01)


def test_constrained_streaming_follows_the_schema_as_complete_does(trained):
    base, adapter = trained
    student = LocalStudent(base, adapter, preset("tiny").with_overrides(max_new_tokens=24), json_schema=SCHEMA)
    for word in ("cat", "dog"):
        whole = student.complete(ask(word))
        streamed = student.stream(ask(word)).drain()
        assert streamed.text == whole.text and streamed.text.startswith('{"word":"')
        assert streamed.token_logprobs == pytest.approx(whole.token_logprobs, abs=1e-4)


def test_closing_the_stream_stops_the_model(trained):
    base, _ = trained
    untrained = LocalStudent(base, None, preset("tiny").with_overrides(max_new_tokens=24))  # rambles to the limit
    assert untrained.complete(ask("violet")).completion_tokens == 24
    calls = []
    hook = untrained.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        tokens = untrained.stream(ask("violet"))
        first, second = next(tokens), next(tokens)
        tokens.close()
        assert len(calls) == 2 and first.offset <= second.offset
        assert list(tokens) == [] and tokens.completion is None  # abandoned: no answer, no further forward pass
        assert len(calls) == 2
    finally:
        hook.remove()


def test_the_merged_export_loads_with_transformers_alone_and_answers_as_the_adapter_does(trained, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, adapter = trained
    record = export_merged(base, adapter, tmp_path / "merged", preset("tiny"), log=lambda _: None)
    folder = Path(record["path"])
    assert sorted(p.name for p in folder.glob("*.safetensors")) == sorted(record["weights_sha256"])
    assert not (folder / "adapter_config.json").exists() and not list(tmp_path.glob(".merged*"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert tokenizer.chat_template
    student = LocalStudent(base, adapter, preset("tiny").with_overrides(max_new_tokens=12))
    for word in ("cat", "violet", "seven"):
        prompt = tokenizer.apply_chat_template(ask(word), tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id)
        generated = out[0, ids.shape[1]:].tolist()
        answer = student.complete(ask(word))
        assert tokenizer.decode(generated, skip_special_tokens=True) == answer.text
        assert len(generated) == answer.completion_tokens
