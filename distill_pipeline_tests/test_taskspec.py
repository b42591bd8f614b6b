from pathlib import Path

import pytest

from distill_pipeline.core.taskspec import (
    PassRule,
    Price,
    TaskSpecError,
    default_task_spec_path,
    load_task_spec,
    parse_task_spec,
)
from distill_pipeline_tests.specs import MINIMAL


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> TaskSpecError:
    path = write_spec(tmp_path, text)
    with pytest.raises(TaskSpecError) as caught:
        load_task_spec(path)
    return caught.value


def test_the_bundled_spec_loads_with_its_graders_prices_and_filter():
    spec = load_task_spec(default_task_spec_path())
    assert spec.name == "healthcare-postcall"
    assert spec.filter.metadata == {"agent": "healthcare-postcall", "layer": "teacher"}
    assert [g.type for g in spec.graders] == ["json_schema", "code_set", "grounded", "string_check", "llm_judge"]
    assert [g.type for g in spec.enabled_graders] == ["json_schema", "code_set", "grounded", "string_check"]
    assert spec.metric == "fields" and spec.field_rules.rule("soap.plan") == "token_f1"
    assert spec.teacher_price == Price(2.50, 10.00, cached_input=1.25)
    assert spec.student_price == Price(0.02, 0.04)
    assert spec.pass_rule == PassRule("all_required")
    assert spec.output.schema["additionalProperties"] is False


def test_the_bundled_spec_path_is_data_tasks_under_the_repo_root():
    path = default_task_spec_path()
    assert path.parts[-3:] == ("data", "tasks", "healthcare.yaml")
    assert path.is_file()


def test_defaults_apply_when_optional_keys_are_left_out(tmp_path):
    spec = load_task_spec(write_spec(tmp_path, MINIMAL))
    assert spec.rare_intent_share == 0.05
    assert spec.quarantine_max_share == 0.05
    assert spec.min_teacher_pass_rate == 0.8
    assert spec.teacher_only_intents == ()
    assert spec.graders[0].required and spec.graders[0].enabled
    assert spec.redaction is None


def test_a_min_score_pass_rule_is_read_with_its_threshold(tmp_path):
    spec = load_task_spec(write_spec(tmp_path, MINIMAL + "pass_rule: {min_score: 0.75}\n"))
    assert spec.pass_rule == PassRule("min_score", 0.75)


def test_the_redaction_mapping_is_kept_as_written(tmp_path):
    spec = load_task_spec(write_spec(tmp_path, MINIMAL + "redaction:\n  patterns: ['\\d{3}-\\d{4}']\n"))
    assert spec.redaction == {"patterns": ["\\d{3}-\\d{4}"]}


def test_a_misspelt_grader_type_names_file_line_field_and_the_likely_type(tmp_path):
    text = MINIMAL.replace("type: json_schema", "type: jsonschema")
    err = load_error(tmp_path, text)
    assert str(err) == (f"{tmp_path / 'task.yaml'} line 10: graders[0].type 'jsonschema' is not a grader; "
                        "did you mean 'json_schema'?")
    assert (err.line, err.field) == (10, "graders[0].type")


def test_an_unknown_top_level_key_is_reported_with_its_line_and_a_suggestion(tmp_path):
    err = load_error(tmp_path, MINIMAL + "teacher_modle: x\n")
    assert err.line == 16
    assert "teacher_modle is not a known top-level key; did you mean 'teacher_model'?" in str(err)


def test_a_wrong_type_names_the_field_and_what_it_must_be(tmp_path):
    err = load_error(tmp_path, MINIMAL + "quarantine_max_share: lots\n")
    assert err.line == 16
    assert "quarantine_max_share must be a number (got a string 'lots')" in str(err)


def test_a_share_outside_zero_to_one_is_rejected(tmp_path):
    err = load_error(tmp_path, MINIMAL + "min_teacher_pass_rate: 80\n")
    assert "line 16: min_teacher_pass_rate must be between 0 and 1 (got 80)" in str(err)


def test_a_missing_top_level_key_says_what_to_add(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace("metric: field_f1\n", ""))
    assert err.field == "metric"
    assert "metric is missing; add a top-level 'metric: fields (or field_f1, exact_match, judge)'" in str(err)


def test_a_grader_without_a_type_is_reported_at_the_grader(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace("    type: json_schema\n", ""))
    assert err.line == 9
    assert "graders[0] is missing 'type'; add 'type: one of json_schema" in str(err)


def test_a_missing_grader_param_names_the_param_and_its_meaning(tmp_path):
    text = MINIMAL.replace("    type: json_schema\n", "    type: code_set\n    params: {field: icd10}\n")
    err = load_error(tmp_path, text)
    assert err.line == 11
    assert "graders[0].params is missing 'codes' (code -> list of words" in str(err)


def test_an_unknown_grader_param_suggests_the_right_one(tmp_path):
    text = MINIMAL.replace("    type: json_schema\n",
                           "    type: grounded\n    params:\n      feilds: {follow_up.date: date}\n")
    err = load_error(tmp_path, text)
    assert err.line == 12
    assert "graders[0].params.feilds is not a parameter of grounded graders; did you mean 'fields'?" in str(err)


def test_a_bad_regex_in_a_string_check_is_reported_with_the_regex_error(tmp_path):
    text = MINIMAL.replace("    type: json_schema\n",
                           "    type: string_check\n    params:\n      op: regex\n      value: '(unclosed'\n")
    err = load_error(tmp_path, text)
    assert err.line == 13
    assert "graders[0].params.value is not a valid regular expression" in str(err)


def test_a_python_grader_function_must_be_module_colon_function(tmp_path):
    text = MINIMAL.replace("    type: json_schema\n", "    type: python\n    params: {function: my_checks.no_pii}\n")
    err = load_error(tmp_path, text)
    assert "graders[0].params.function 'my_checks.no_pii' must be 'package.module:function'" in str(err)


def test_prices_must_include_the_teacher_model(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace("teacher_model: big-model", "teacher_model: other-model"))
    assert err.line == 13
    assert "prices has no entry for the teacher model 'other-model'" in str(err)


def test_prices_must_include_a_student_entry(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace("  student: {input: 0.02, output: 0.04}\n", ""))
    assert "prices has no 'student' entry" in str(err)


def test_a_teacher_only_intent_outside_the_schema_enum_gets_a_suggestion(tmp_path):
    err = load_error(tmp_path, MINIMAL + "teacher_only_intents: [gret]\n")
    assert err.line == 16
    assert "teacher_only_intents[0] 'gret' is not an intent of the output schema; did you mean 'greet'?" in str(err)


def test_an_invalid_json_schema_is_reported_at_the_schema(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace("type: object", "type: thing"))
    assert err.line == 5
    assert "output.schema.type is not a valid JSON schema" in str(err)


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace("metric: field_f1", "metric: field_f1: oops"))
    assert err.line == 11
    assert "line 11: the task spec is not valid YAML: mapping values are not allowed here" in str(err)


def test_an_unclosed_quote_names_the_line_where_it_starts(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace("metric: field_f1", "metric: 'field_f1"))
    assert "(while scanning a quoted scalar that starts on line 11)" in str(err)


def test_a_key_written_twice_is_an_error_not_a_silent_override(tmp_path):
    err = load_error(tmp_path, MINIMAL + "metric: exact_match\n")
    assert err.line == 16
    assert "metric appears twice" in str(err)


def test_a_missing_file_says_how_to_point_at_a_spec(tmp_path):
    with pytest.raises(TaskSpecError, match="the task spec file does not exist; set DISTILL_TASK_SPEC"):
        load_task_spec(tmp_path / "nope.yaml")


def test_a_json_schema_may_be_given_as_a_json_string():
    text = MINIMAL.replace("""  schema:
    type: object
    properties:
      intent: {type: string, enum: [greet, bye]}
""", """  schema: |
    {"type": "object", "properties": {"intent": {"enum": ["greet", "bye"]}}}
""")
    spec = parse_task_spec(text, "inline.yaml")
    assert spec.output.schema["properties"]["intent"]["enum"] == ["greet", "bye"]


def test_a_metric_outside_the_known_ones_lists_the_choices(tmp_path):
    err = load_error(tmp_path, MINIMAL.replace("metric: field_f1", "metric: bleu"))
    assert "line 11: metric 'bleu' is not one of field_f1, fields, exact_match, judge" in str(err)
