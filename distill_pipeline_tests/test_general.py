import json

import pytest

from distill_pipeline.core.general import check_answer, load_general_examples
from distill_pipeline.core.traces import parse_record


def line(i: int = 1, **changes) -> str:
    record = {
        "id": f"gen-{i:04d}",
        "category": "arithmetic",
        "messages": [{"role": "user", "content": f"What is {i} + 1?"}, {"role": "assistant", "content": str(i + 1)}],
        "check": {"type": "exact", "value": str(i + 1)},
    }
    record.update(changes)
    return json.dumps(record)


def test_a_valid_file_loads_every_example():
    result = load_general_examples([line(i) for i in range(5)])
    assert [e.id for e in result.examples] == [f"gen-{i:04d}" for i in range(5)]
    assert result.by_category() == {"arithmetic": 5}
    assert not result.rejected and not result.duplicates


def test_a_general_example_hashes_like_a_trace_with_the_same_messages():
    example = load_general_examples([line(3)]).examples[0]
    row = parse_record({"messages": json.loads(line(3))["messages"]})
    assert example.content_hash == row.content_hash


def test_bytes_lines_load_like_text_lines():
    assert load_general_examples([line(1).encode()]).examples == load_general_examples([line(1)]).examples


def test_a_missing_category_defaults_to_general():
    record = json.loads(line(1))
    del record["category"]
    assert load_general_examples([json.dumps(record)]).examples[0].category == "general"


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "invalid JSON"),
    (json.dumps([1, 2]), "must be a JSON object"),
    (line(id=""), "id must be a non-empty string"),
    (line(messages="hello"), "messages must be a list"),
    (line(messages=[{"role": "assistant", "content": "2"}]), "at least a request message"),
    (line(messages=[{"role": "user", "content": "hi"}, {"role": "user", "content": "2"}]), "not an assistant"),
    (line(messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": " "}]), "empty"),
    (line(messages=[{"role": "user", "content": "  "}, {"role": "assistant", "content": "2"}]), "missing_content"),
    (line(messages=[{"role": "robot", "content": "x"}, {"role": "assistant", "content": "2"}]), "no valid role"),
    (line(check=None), "check must be an object"),
    (line(check={"type": "regex", "value": "2"}), "check.type 'regex'"),
    (line(check={"type": "exact", "value": ""}), "check.value"),
    (line(check={"type": "exact", "value": "3"}), "fails its own check"),
])
def test_a_broken_line_is_rejected_with_its_reason(text, reason):
    result = load_general_examples([text])
    assert result.examples == []
    assert reason in result.rejected[0].reason
    assert result.rejected[0].line == 1 and result.rejected[0].raw == text


def test_a_developer_message_becomes_a_system_message_of_the_fine_tuning_format():
    text = line(messages=[{"role": "developer", "content": "x"}, {"role": "assistant", "content": "2"}])
    (example,) = load_general_examples([text]).examples
    assert example.chat_example()["messages"][0]["role"] == "system"


def test_invalid_utf8_is_rejected_not_replaced():
    result = load_general_examples([b'{"id": "\xff"}'])
    assert "not valid UTF-8" in result.rejected[0].reason


def test_repeated_content_is_kept_once_under_its_first_id():
    again = json.loads(line(1))
    again["id"] = "gen-9999"
    again["messages"][0]["content"] = "  What is 1 + 1?  "  # normalises to the same content
    result = load_general_examples([line(1), json.dumps(again)])
    assert [e.id for e in result.examples] == ["gen-0001"]
    assert (result.duplicates[0].line, result.duplicates[0].id, result.duplicates[0].duplicate_of) == (
        2, "gen-9999", "gen-0001")


def test_an_id_reused_for_different_content_is_rejected():
    result = load_general_examples([line(1), line(2, id="gen-0001")])
    assert "already used on line 1" in result.rejected[0].reason


def test_every_non_blank_line_is_kept_rejected_or_a_duplicate():
    lines = [line(1), line(2), "", line(1), "{bad", line(3, check=None), "   ", line(4)]
    result = load_general_examples(lines)
    assert result.input_lines == 6
    assert (len(result.examples), len(result.rejected), len(result.duplicates)) == (3, 2, 1)
    assert result.balanced


@pytest.mark.parametrize(("check", "answer", "passes"), [
    ({"type": "exact", "value": "Paris"}, "  paris. ", True),
    ({"type": "exact", "value": "Paris"}, "The capital is Paris.", False),
    ({"type": "contains", "value": "Paris"}, "The capital is  PARIS.", True),
    ({"type": "contains", "value": "new york"}, "New\nYork City", True),
    ({"type": "contains", "value": "Paris"}, "Lyon", False),
])
def test_an_answer_is_scored_by_the_examples_check(check, answer, passes):
    assert check_answer(check, answer) is passes
