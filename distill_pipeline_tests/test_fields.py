"""Field-aware scoring, where values sit in an answer, the routing confidence, and the decoding schema."""

import json

import pytest

from distill_pipeline.core.fields import (
    FieldRules,
    all_structured_right,
    auroc,
    confidence,
    field_scores,
    mean_field_score,
    span_confidence,
    value_spans,
)
from distill_pipeline.core.taskspec import TaskSpecError, default_task_spec_path, load_task_spec, parse_task_spec

RULES = FieldRules({"soap": "token_f1"})
REFERENCE = {"intent": "symptom_report",
             "soap": {"subjective": "Reports asthma and wheezing", "objective": "Symptoms for 3 days",
                      "assessment": "Asthma", "plan": "Nurse to call back"},
             "icd10": ["J45.909"],
             "follow_up": {"needed": True, "date": None, "time": None, "clinician": None}}


def answer(**changes) -> dict:
    value = json.loads(json.dumps(REFERENCE))
    for path, new in changes.items():
        node = value
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = new
    return value


def test_a_paraphrased_soap_sentence_is_partly_right_and_a_wrong_code_is_wrong():
    scores = field_scores(answer(soap__subjective="Reports wheezing and asthma", icd10=["J02.9"]), REFERENCE, RULES)
    assert scores["soap.subjective"] == pytest.approx(1.0)  # same words, other order
    assert scores["icd10"] == 0.0
    paraphrase = field_scores(answer(soap__plan="A nurse will call back"), REFERENCE, RULES)["soap.plan"]
    assert 0.5 < paraphrase < 1.0


def test_a_structured_field_is_right_or_wrong_and_lists_compare_as_sets():
    two = dict(REFERENCE, icd10=["J45.909", "R51.9"])
    assert field_scores(answer(icd10=["R51.9", "J45.909"]), two, RULES)["icd10"] == 1.0
    assert field_scores(answer(follow_up__needed=False), REFERENCE, RULES)["follow_up.needed"] == 0.0


def test_no_answer_or_a_missing_field_scores_zero():
    assert set(field_scores(None, REFERENCE, RULES).values()) == {0.0}
    missing = answer()
    del missing["icd10"]
    assert field_scores(missing, REFERENCE, RULES)["icd10"] == 0.0


def test_all_structured_right_ignores_the_free_text_fields():
    scores = field_scores(answer(soap__plan="something else entirely"), REFERENCE, RULES)
    assert all_structured_right(scores, RULES)
    assert not all_structured_right(field_scores(answer(intent="test_results"), REFERENCE, RULES), RULES)
    assert mean_field_score(scores) < 1.0


def test_the_longest_declared_prefix_decides_a_fields_rule():
    rules = FieldRules({"soap": "token_f1", "soap.assessment": "exact"})
    assert rules.rule("soap.plan") == "token_f1"
    assert rules.rule("soap.assessment") == "exact"
    assert rules.rule("soapbox") == "exact"  # a prefix is a whole path segment
    with pytest.raises(ValueError, match="unknown field scoring rule"):
        FieldRules({"soap": "fuzzy"})


def test_value_spans_find_every_leaf_value_in_the_text():
    text = json.dumps(REFERENCE, separators=(",", ":"))
    spans = value_spans(text)
    assert spans is not None
    found = {path: text[start:end] for path, start, end in spans}
    assert found["icd10"] == '["J45.909"]'
    assert found["follow_up.needed"] == "true"
    assert found["soap.plan"] == '"Nurse to call back"'
    assert value_spans('{"a": 1} trailing') is None and value_spans("[1]") is None


def test_value_spans_handle_whitespace_and_escapes():
    text = '{ "a" : "x\\"y" , "b" : { "c" : [1, 2] } }'
    found = {path: text[start:end] for path, start, end in value_spans(text)}
    assert found == {"a": '"x\\"y"', "b.c": "[1, 2]"}


def test_span_confidence_reads_only_the_tokens_over_the_spans():
    # tokens: "ab" "cd" "ef"  -> offsets 0, 2, 4
    assert span_confidence([-0.1, -3.0, -0.2], [0, 2, 4], [(4, 6)]) == -0.2
    assert span_confidence([-0.1, -3.0, -0.2], [0, 2, 4], [(3, 5)]) == -3.0
    assert span_confidence([-0.1], [0], []) is None


def tokens_of(text: str, unsure_in: str, logprob: float) -> tuple[list[float], list[int]]:
    """One token per character, all confident except those inside the first occurrence of `unsure_in`."""
    start = text.index(unsure_in)
    return ([logprob if start <= i < start + len(unsure_in) else -0.01 for i in range(len(text))],
            list(range(len(text))))


def test_confidence_reads_the_structured_values_not_the_note():
    text = json.dumps(REFERENCE, separators=(",", ":"))
    unsure_note = tokens_of(text, "Nurse to call back", -4.0)
    unsure_code = tokens_of(text, "J45.909", -4.0)
    assert confidence(text, *unsure_note, RULES) == pytest.approx(-0.01)
    assert confidence(text, *unsure_code, RULES) == pytest.approx(-4.0)
    assert confidence(text, *unsure_note, RULES, signal="whole_answer") == pytest.approx(-4.0)


def test_confidence_falls_back_to_the_whole_answer_when_it_cannot_see_the_fields():
    text = '{"intent": "symptom_report"'  # cut short: not JSON
    logprobs, offsets = tokens_of(text, "{", -2.0)
    assert confidence(text, logprobs, offsets, RULES) == -2.0
    assert confidence(text, [-0.3, -0.1], [], RULES) == -0.3  # no offsets from the server
    with pytest.raises(ValueError, match="unknown confidence signal"):
        confidence(text, logprobs, offsets, RULES, signal="mean")


def test_auroc_counts_how_often_a_wrong_answer_is_less_confident():
    assert auroc([-3.0, -2.0], [-0.1, -0.2]) == 1.0
    assert auroc([-0.1], [-3.0]) == 0.0
    assert auroc([-1.0], [-1.0]) == 0.5
    assert auroc([], [-1.0]) is None


def test_the_bundled_task_scores_soap_by_token_f1_and_everything_else_exactly():
    task = load_task_spec(default_task_spec_path())
    assert task.metric == "fields"
    assert task.field_rules.rule("soap.objective") == "token_f1"
    assert all(task.field_rules.structured(p) for p in ("intent", "icd10", "follow_up.date", "follow_up.clinician"))


def spec_with_scoring(scoring: str) -> str:
    text = default_task_spec_path().read_text()
    return text.replace("scoring:\n  soap: token_f1\n", scoring)


def test_a_scoring_rule_for_an_unknown_field_names_the_line_and_a_fix():
    with pytest.raises(TaskSpecError, match=r"scoring.sopa is not a field of output.schema; did you mean 'soap'"):
        parse_task_spec(spec_with_scoring("scoring:\n  sopa: token_f1\n"), "spec.yaml")


def test_an_unknown_scoring_rule_is_refused():
    with pytest.raises(TaskSpecError, match=r"scoring.soap rule 'f1' is not one of exact, token_f1"):
        parse_task_spec(spec_with_scoring("scoring:\n  soap: f1\n"), "spec.yaml")
