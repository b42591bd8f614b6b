"""What the student may write, per request: the schema narrowed by the task's code_set and grounded graders."""

import json

import pytest

from distill_pipeline.core.decoding import DecodingRules, code_schema, literals_in
from distill_pipeline.core.taskspec import default_task_spec_path, load_task_spec

TASK = load_task_spec(default_task_spec_path())
RULES = TASK.decoding_rules
CALL = ("Transcript:\nCaller: My asthma is bad and I get a headache. My date of birth is 1998-09-02.\n"
        "Agent: Dr. Okafor can see you on 2026-11-05 at 09:30.")


def properties(schema: dict) -> dict:
    return schema["properties"]


def test_only_the_codes_the_call_indicates_may_be_written():
    icd10 = properties(RULES.schema_for(CALL))["icd10"]
    assert icd10["items"]["enum"] == ["J45.909", "R51.9"]  # asthma, headache; no other code of the set
    assert icd10["uniqueItems"] is True and icd10["maxItems"] == 2  # no code twice, whatever the decoder


def test_a_call_that_indicates_no_code_may_only_be_answered_with_none():
    icd10 = properties(RULES.schema_for("Caller: I want to pay my bill."))["icd10"]
    assert icd10["maxItems"] == 0


def test_follow_up_dates_and_times_may_only_be_ones_the_call_says():
    follow_up = properties(properties(RULES.schema_for(CALL))["follow_up"])
    assert follow_up["date"]["enum"] == ["1998-09-02", "2026-11-05", None]
    assert follow_up["time"]["enum"] == ["09:30", None]
    assert "pattern" not in follow_up["date"]
    assert follow_up["clinician"] == {"type": ["string", "null"]}  # names are checked after the fact, not here


def test_literals_stand_alone_as_the_grounded_grader_reads_them():
    assert literals_in(r"^\d{2}:\d{2}$", "at 09:30, or 109:301, or 10:15.") == ["09:30", "10:15"]


def test_the_spec_schema_itself_is_left_untouched():
    RULES.schema_for(CALL)
    assert "enum" not in TASK.output.schema["properties"]["icd10"]["items"]


def test_every_teacher_answer_that_passed_the_graders_fits_its_requests_schema():
    """The narrowing never forbids a right answer: the bundled corpus's passing answers all validate."""
    from jsonschema import Draft202012Validator

    from distill_pipeline import settings
    from distill_pipeline.core.traces import parse_line

    labels = [json.loads(line) for line in (settings.DATA_DIR / "sample" / "labels.jsonl").read_text().splitlines()
              if line.strip()]
    right = {(lab["file"], lab["line"]) for lab in labels if lab.get("kind") == "trace" and lab.get("teacher_correct")}
    checked = 0
    for name, number in sorted(right)[:400]:
        line = (settings.DEFAULT_TRACES_DIR / name).read_text().splitlines()[number - 1]
        trace = parse_line(line)
        schema = RULES.schema_for(trace.request_text)
        errors = list(Draft202012Validator(schema).iter_errors(json.loads(trace.answer_text)))
        assert not errors, (trace.completion_id, [e.message for e in errors])
        checked += 1
    assert checked == min(400, len(right))


def test_rules_travel_in_a_policy_as_plain_json_and_keep_the_answers_key_order():
    # policies and reports are written with sorted keys; the student must still write intent first, follow_up last
    again = DecodingRules.from_dict(json.loads(json.dumps(RULES.to_dict(), sort_keys=True)))
    schema = again.schema_for(CALL)
    assert schema == RULES.schema_for(CALL)
    assert list(schema["properties"]) == ["intent", "soap", "icd10", "follow_up"]
    assert list(schema["properties"]["follow_up"]["properties"]) == ["needed", "date", "time", "clinician"]


def test_a_code_field_that_is_not_in_the_schema_is_an_error():
    with pytest.raises(ValueError, match="not a property"):
        code_schema(TASK.output.schema, {"codes": ["X"]})
    whole = properties(code_schema(TASK.output.schema, {"icd10": ["B", "A"]}))["icd10"]
    assert whole["items"]["enum"] == ["A", "B"]
