import json

import pytest

from distill_pipeline.core.capture import RawRecord, capture, iter_export_lines
from distill_pipeline.core.traces import (
    CHAT_EXAMPLE_SOURCE,
    STORED_COMPLETION_SOURCE,
    TraceParseError,
    parse_line,
    trace_from_record,
    trace_to_record,
)

ANSWER = '{"intent":"billing_question"}'


def stored(**overrides):
    record = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1759312800, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
        "metadata": {"agent": "healthcare-postcall", "intent": "billing_question", "layer": "teacher"},
        "request_messages": [{"id": "chatcmpl-1-0", "role": "system", "content": "Return JSON."},
                             {"id": "chatcmpl-1-1", "role": "user", "content": "Transcript: a bill"}],
    }
    record.update(overrides)
    return record


def line(record) -> bytes:
    return json.dumps(record).encode()


def chat_example(**overrides):
    record = {"messages": [{"role": "user", "content": "Transcript: a bill"},
                           {"role": "assistant", "content": ANSWER}],
              "metadata": {"intent": "billing_question"}}
    record.update(overrides)
    return record


def test_a_stored_completion_becomes_a_trace_row():
    row = parse_line(line(stored()))
    assert row.completion_id == "chatcmpl-1"
    assert row.created_at.isoformat() == "2025-10-01T10:00:00+00:00"
    assert row.intent == "billing_question"
    assert row.answer_text == ANSWER
    assert [m["role"] for m in row.request_messages] == ["system", "user"]
    assert "id" not in row.request_messages[0]  # store ids are not content
    assert (row.prompt_tokens, row.completion_tokens) == (50, 10)
    assert row.source == STORED_COMPLETION_SOURCE


def test_a_chat_example_without_an_id_takes_its_content_hash_as_id():
    row = parse_line(line(chat_example()))
    assert row.completion_id == row.content_hash
    assert row.source == CHAT_EXAMPLE_SOURCE
    assert row.answer_text == ANSWER


def test_the_same_content_has_the_same_hash_in_both_shapes_and_whatever_the_whitespace():
    a = parse_line(line(stored(request_messages=[{"role": "user", "content": "Transcript: a bill  "}])))
    b = parse_line(line(chat_example()))
    assert a.content_hash == b.content_hash


def test_content_given_as_parts_is_read_as_text():
    record = stored(request_messages=[{"role": "user", "content": [{"type": "text", "text": "Transcript: a bill"}]}])
    assert parse_line(line(record)).request_text == "Transcript: a bill"


@pytest.mark.parametrize("raw, reason", [
    (b'{"id": "x", "choices": [', "invalid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"foo": 1}', "neither a stored completion"),
    (line(stored(id=None)), "has no id"),
    (line(stored(choices={})), "has no choices"),
    (line(stored(choices=[{"message": {"role": "assistant", "content": ""}}])), "assistant answer is empty"),
    (line(stored(choices=[{"message": {"role": "user", "content": "hi"}}])), "not an assistant message"),
    (line(stored(request_messages=[])), "has no request_messages"),
    (line(stored(request_messages=[{"content": "no role"}])), "has no valid role"),
    (line(stored(request_messages=[{"role": "user", "content": 5}])), "content must be"),
    (line(stored(created="yesterday")), "created must be a Unix timestamp"),
    (line(stored(metadata="x")), "metadata must be an object"),
    (line(stored(metadata={"intent": {"nested": 1}})), "metadata.intent must be a string"),
    (line(stored(model=None)), "has no model"),
    (line(stored(usage={"prompt_tokens": -1})), "usage.prompt_tokens"),
    (line(stored(tools="x")), "tools must be a list"),
    (b'{"id": "a", "id": "b"}', "duplicate JSON keys"),
    (b'\xff\xfe{"id": 1}', "not valid UTF-8"),
    (b'{"id": "a\x00"}', "NUL character"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (line(chat_example(messages=[{"role": "assistant", "content": ANSWER}])), "at least a request message"),
    (line(chat_example(messages=[{"role": "user", "content": "q"}, {"role": "user", "content": "a"}])),
     "not an assistant message"),
    (line(chat_example(id="")), "id must be a non-empty string"),
])
def test_each_bad_line_is_rejected_with_its_reason(raw, reason):
    with pytest.raises(TraceParseError, match=reason):
        parse_line(raw)


def test_a_tool_call_with_broken_arguments_is_rejected():
    answer = {"role": "assistant", "content": None,
              "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "book", "arguments": "{oops"}}]}
    with pytest.raises(TraceParseError, match="arguments is not valid JSON"):
        parse_line(line(stored(choices=[{"message": answer}])))


def test_a_tool_call_answer_without_text_is_a_valid_answer():
    answer = {"role": "assistant", "content": None,
              "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "book", "arguments": "{}"}}]}
    row = parse_line(line(stored(choices=[{"message": answer}])))
    assert row.response_message["tool_calls"][0]["function"]["name"] == "book"


def test_a_row_survives_the_round_trip_through_its_record():
    row = parse_line(line(stored()))
    assert trace_from_record(trace_to_record(row)) == row


def test_a_row_gives_an_openai_chat_fine_tuning_example():
    example = parse_line(line(stored())).chat_example()
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
    assert example["messages"][-1]["content"] == ANSWER


def test_capture_accounts_for_every_line():
    lines = [line(stored()), line(stored()), line(stored(id="chatcmpl-2")), b"{broken",
             line(stored(id="chatcmpl-3", metadata={"do_not_train": "true"},
                         request_messages=[{"role": "user", "content": "other"}])),
             line(stored(id="chatcmpl-4", request_messages=[{"role": "user", "content": "fourth"}]))]
    result = capture(RawRecord("f.jsonl", i, raw) for i, raw in enumerate(lines, start=1))
    assert result.input_rows == 6
    assert [r.completion_id for r in result.rows] == ["chatcmpl-1", "chatcmpl-4"]
    assert [(d.line, d.reason.split(" of")[0]) for d in result.duplicates] == [
        (2, "duplicate id"), (3, "duplicate content hash")]
    assert [(q.line, q.reason.split(":")[0]) for q in result.quarantined] == [(4, "invalid JSON")]
    assert [r.completion_id for r in result.do_not_train] == ["chatcmpl-3"]
    assert result.balanced


def test_capture_orders_rows_by_creation_whatever_the_input_order():
    first = stored(id="a", created=100, request_messages=[{"role": "user", "content": "1"}])
    second = stored(id="b", created=50, request_messages=[{"role": "user", "content": "2"}])
    forward = capture(RawRecord("f", i, line(r)) for i, r in enumerate([first, second]))
    backward = capture(RawRecord("f", i, line(r)) for i, r in enumerate([second, first]))
    assert [r.completion_id for r in forward.rows] == [r.completion_id for r in backward.rows] == ["b", "a"]


def test_blank_lines_in_an_export_are_not_records():
    records = list(iter_export_lines("f.jsonl", b'{"a":1}\n\n  \n{"b":2}\n'))
    assert [r.line for r in records] == [1, 4]
