import hashlib
import json
import math
import os

import pytest
import tiktoken

from distill_pipeline.core import finetune_format
from distill_pipeline.core.finetune_format import (
    APPROX_METHOD,
    OPENAI_BASE_MODEL,
    OPENAI_MAX_TOKENS_PER_EXAMPLE,
    check_lines,
    count_tokens,
    estimate_training_cost,
    example_token_limit,
    job_key,
    token_count_method,
)


def example(i: int = 0) -> dict:
    return {"messages": [
        {"role": "system", "content": "Summarise the call as JSON."},
        {"role": "user", "content": f"Transcript {i}"},
        {"role": "assistant", "content": '{"intent": "billing_question"}'},
    ]}


def lines(n: int = 10) -> list[str]:
    return [json.dumps(example(i)) for i in range(n)]


def with_first(broken) -> list[str]:
    return [broken if isinstance(broken, str) else json.dumps(broken)] + lines(10)[1:]


def message_changed(**changes) -> dict:
    ex = example()
    ex["messages"][1] = {**ex["messages"][1], **changes}
    return ex


@pytest.fixture
def offline_tokens(monkeypatch, tmp_path):
    """An empty tiktoken cache: token counts use the stated approximation."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    finetune_format._encoding.cache_clear()
    yield
    finetune_format._encoding.cache_clear()


def test_a_valid_file_passes():
    report = check_lines(lines(10))
    assert report.ok and report.n_examples == 10 and report.counts == {}


def test_bytes_lines_with_newlines_are_checked_like_text():
    data = b"".join(json.dumps(example(i)).encode() + b"\n" for i in range(10))
    assert check_lines(data.splitlines(keepends=True)).ok


def without(key: str) -> dict:
    ex = example()
    del ex["messages"][1][key]
    return ex


@pytest.mark.parametrize(("broken", "key"), [
    ("{not json", "invalid_json"),
    ("", "invalid_json"),
    ([example()], "data_type"),
    ({"messages": ["hello"]}, "data_type"),
    ({"prompt": "hi", "completion": "there"}, "missing_messages_list"),
    ({"messages": []}, "missing_messages_list"),
    (without("role"), "message_missing_key"),
    (without("content"), "message_missing_key"),
    (message_changed(metadata={"a": "b"}), "message_unrecognized_key"),
    (message_changed(role="narrator"), "unrecognized_role"),
    (message_changed(content=""), "missing_content"),
    (message_changed(content="   "), "missing_content"),
    (message_changed(content=None), "missing_content"),
    (message_changed(content=[{"type": "text", "text": "hi"}]), "missing_content"),
    ({"messages": example()["messages"][:2]}, "example_missing_assistant_message"),
])
def test_each_format_rule_catches_a_broken_line(broken, key):
    report = check_lines(with_first(broken))
    assert not report.ok
    assert key in report.counts
    assert {e.line for e in report.errors} == {1}


def test_an_example_over_the_token_limit_is_caught():
    long = message_changed(content="word " * 2000)
    report = check_lines(with_first(long), max_tokens=500)
    assert report.counts == {"too_many_tokens": 1}
    assert report.token_stats()["over_limit"] == 1


def test_a_file_under_ten_examples_is_caught():
    report = check_lines(lines(9))
    assert report.counts == {"too_few_examples": 1}
    assert report.errors[0].line == 0


def test_an_assistant_tool_call_may_have_no_content():
    call = {"id": "call_1", "type": "function", "function": {"name": "book", "arguments": "{}"}}
    ex = example()
    ex["messages"][2] = {"role": "assistant", "content": None, "tool_calls": [call]}
    assert check_lines(with_first(ex)).ok


def test_the_summary_names_the_key_and_the_line():
    summary = check_lines(with_first(message_changed(role="narrator"))).summary()
    assert "unrecognized_role: 1" in summary and "line 1" in summary


def test_tokens_are_approximated_and_labelled_when_tiktoken_has_no_cached_encoding(offline_tokens):
    messages = [{"role": "user", "content": "a" * 10}, {"role": "assistant", "content": "b" * 7}]
    assert token_count_method() == APPROX_METHOD
    expected = 3 + (3 + 1 + math.ceil(10 / 4)) + (3 + math.ceil(9 / 4) + math.ceil(7 / 4))
    assert count_tokens(messages) == expected
    assert check_lines(lines(10)).token_method == APPROX_METHOD


def test_a_corrupt_cached_encoding_falls_back_without_asking_tiktoken(offline_tokens, tmp_path):
    cached = tmp_path / os.path.basename(finetune_format._tiktoken_cache_file("o200k_base"))
    cached.write_bytes(b"not an encoding")
    assert token_count_method() == APPROX_METHOD
    assert cached.read_bytes() == b"not an encoding"  # tiktoken would have deleted it and gone online


def test_a_verified_cached_encoding_is_used_and_named(offline_tokens, tmp_path, monkeypatch):
    data = b"stand-in for the encoding file"
    (tmp_path / os.path.basename(finetune_format._tiktoken_cache_file("o200k_base"))).write_bytes(data)
    monkeypatch.setitem(finetune_format.TIKTOKEN_FILE_SHA256, "o200k_base", hashlib.sha256(data).hexdigest())

    class OneTokenPerCharacter:
        def encode(self, text, disallowed_special=()):
            return list(text)

    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: OneTokenPerCharacter())
    assert token_count_method() == "tiktoken o200k_base"
    assert count_tokens([{"role": "user", "content": "abc"}]) == 3 + 3 + len("user") + len("abc")


def test_billing_tokens_count_each_example_up_to_the_limit(offline_tokens):
    report = check_lines(with_first(message_changed(content="x" * 4000)), max_tokens=100)
    assert report.billing_tokens == 100 + sum(report.tokens_per_example[1:])
    assert report.total_tokens > report.billing_tokens


def test_openai_training_cost_is_trained_tokens_times_the_price():
    cost = estimate_training_cost(1_000_000, 3, "openai", model="gpt-4o-mini-2024-07-18")
    assert cost["usd_per_1m_trained_tokens"] == 3.00
    assert cost["estimated_usd"] == 9.0
    assert cost["prices_as_of"]


def test_an_unpriced_openai_model_raises_with_the_known_models():
    with pytest.raises(ValueError, match="gpt-4o-mini"):
        estimate_training_cost(1000, 3, "openai", model="davinci-002")


def test_local_training_costs_nothing_and_estimates_wall_time():
    cost = estimate_training_cost(10_000, 2, "local", tokens_per_second=500.0)
    assert cost["estimated_usd"] == 0.0 and cost["estimated_wall_time_s"] == 40.0


def test_the_default_openai_base_model_has_a_training_price():
    assert estimate_training_cost(1_000_000, 1, "openai", model=OPENAI_BASE_MODEL)["estimated_usd"] > 0


def test_examples_are_held_to_the_local_max_seq_len_or_to_openais_limit():
    assert example_token_limit("local", 256) == 256
    assert example_token_limit("openai", 256) == OPENAI_MAX_TOKENS_PER_EXAMPLE


def test_a_job_is_known_by_its_trainer_files_and_settings():
    train, validation = "a" * 64, "b" * 64
    key = job_key("local", train, validation, {"rank": 8})
    assert key == job_key("local", train, validation, {"rank": 8}) and len(key) == 16
    others = [job_key("openai", train, validation, {"rank": 8}), job_key("local", "c" * 64, validation, {"rank": 8}),
              job_key("local", train, validation, {"rank": 16})]
    assert key not in others and len(set(others)) == 3
