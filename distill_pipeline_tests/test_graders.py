import dataclasses
import json

import pytest

from distill_pipeline.core.chat import Completion
from distill_pipeline.core.graders import (
    JUDGE_NOT_CONFIGURED,
    CodeSetGrader,
    GraderError,
    GroundedGrader,
    JsonSchemaGrader,
    LlmJudgeGrader,
    PythonGrader,
    ReferenceGrader,
    StringCheckGrader,
    Verdict,
    build_graders,
    grade_trace,
    parse_judge_score,
    passes,
)
from distill_pipeline.core.metrics import (
    exact_match,
    field_accuracy,
    field_f1,
    flatten_fields,
    parse_answer,
    task_score,
)
from distill_pipeline.core.taskspec import GraderSpec, PassRule, default_task_spec_path, load_task_spec
from distill_pipeline.core.traces import TraceRow, parse_record

TRANSCRIPT = (
    "Agent: Riverside Clinic, how can I help?\n"
    "Caller: I've had a sore throat and headaches since Monday.\n"
    "Agent: I can book you with Dr. Amara Okafor on 2026-11-09 at 14:30.\n"
    "Caller: Perfect, thank you."
)

GOOD = {
    "intent": "book_follow_up",
    "soap": {"subjective": "Sore throat and headaches since Monday.", "objective": "None reported.",
             "assessment": "Likely pharyngitis.", "plan": "Follow-up visit."},
    "icd10": ["J02.9", "R51.9"],
    "follow_up": {"needed": True, "date": "2026-11-09", "time": "14:30", "clinician": "Dr. Amara Okafor"},
}

SPEC = load_task_spec(default_task_spec_path())


def make_trace(answer: object, transcript: str = TRANSCRIPT, reference: dict | None = None) -> TraceRow:
    text = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
    row = parse_record({
        "id": "chatcmpl-test",
        "messages": [
            {"role": "system", "content": "Summarise the call as JSON."},
            {"role": "user", "content": transcript},
            {"role": "assistant", "content": text or "placeholder"},
        ],
        "metadata": {"agent": "healthcare-postcall", "layer": "teacher"},
    })
    if not text:  # the trace parser refuses empty answers; a grader must still cope with one
        row = dataclasses.replace(row, response_message={"role": "assistant", "content": text})
    return dataclasses.replace(row, reference=reference)


def with_follow_up(**changes: object) -> dict:
    answer = json.loads(json.dumps(GOOD))
    answer["follow_up"].update(changes)
    return answer


def spec_grader(name: str) -> GraderSpec:
    return next(g for g in SPEC.graders if g.name == name)


def schema_grader() -> JsonSchemaGrader:
    return JsonSchemaGrader(spec_grader("schema"), SPEC.output.schema)


# -- json_schema ---------------------------------------------------------------


def test_json_schema_passes_a_correct_answer():
    verdict = schema_grader().grade(make_trace(GOOD))
    assert verdict.passed and verdict.score == 1.0


def test_json_schema_names_the_path_of_the_first_error():
    verdict = schema_grader().grade(make_trace(with_follow_up(date="9 Nov")))
    assert not verdict.passed
    assert verdict.reason.startswith("follow_up.date: '9 Nov' does not match")


def test_json_schema_fails_an_answer_with_a_missing_field():
    answer = dict(GOOD)
    del answer["icd10"]
    verdict = schema_grader().grade(make_trace(answer))
    assert not verdict.passed and "'icd10' is a required property" in verdict.reason


def test_json_schema_fails_an_answer_that_is_not_json():
    verdict = schema_grader().grade(make_trace('{"intent": "book_follow_up", '))
    assert not verdict.passed and verdict.reason.startswith("the answer is not valid JSON")


def test_json_schema_fails_json_that_is_not_an_object():
    verdict = schema_grader().grade(make_trace("[1, 2, 3]"))
    assert not verdict.passed and "is not of type 'object'" in verdict.reason


def test_json_schema_fails_an_empty_answer_with_a_reason():
    verdict = schema_grader().grade(make_trace(""))
    assert (verdict.passed, verdict.reason) == (False, "the answer is empty")


def test_json_schema_refuses_a_huge_answer_without_parsing_it():
    verdict = schema_grader().grade(make_trace('{"intent": "' + "a" * 200_000 + '"}'))
    assert not verdict.passed and "over the 100,000 limit" in verdict.reason


def test_json_schema_accepts_unicode_text_in_fields():
    answer = json.loads(json.dumps(GOOD))
    answer["soap"]["subjective"] = "Douleur à la gorge 🤒, 喉咙痛"
    assert schema_grader().grade(make_trace(answer)).passed


# -- string_check --------------------------------------------------------------


def string_check(**params: object) -> StringCheckGrader:
    return StringCheckGrader(GraderSpec("check", "string_check", params=params))


def test_string_check_eq_compares_a_nested_field():
    assert string_check(path="follow_up.time", op="eq", value="14:30").grade(make_trace(GOOD)).passed
    assert not string_check(path="follow_up.time", op="eq", value="15:30").grade(make_trace(GOOD)).passed


def test_string_check_ne_passes_when_the_field_differs():
    assert string_check(path="intent", op="ne", value="billing_question").grade(make_trace(GOOD)).passed


def test_string_check_reads_list_items_by_index():
    assert string_check(path="icd10[1]", op="eq", value="R51.9").grade(make_trace(GOOD)).passed


def test_string_check_contains_looks_inside_a_list():
    assert string_check(path="icd10", op="contains", value="J02.9").grade(make_trace(GOOD)).passed


def test_string_check_regex_applies_to_the_whole_answer_without_a_path():
    assert string_check(op="regex", value=r'"intent":\s*"book_').grade(make_trace(GOOD)).passed


def test_string_check_compares_unicode_case_insensitively_when_asked():
    answer = with_follow_up(clinician="Dr. Zoë Müller")
    grader = string_check(path="follow_up.clinician", op="contains", value="MÜLLER", ignore_case=True)
    assert grader.grade(make_trace(answer)).passed


def test_string_check_fails_when_the_path_is_missing():
    verdict = string_check(path="follow_up.room", op="eq", value="3").grade(make_trace(GOOD))
    assert (verdict.passed, verdict.reason) == (False, "follow_up.room is missing from the answer")


def test_string_check_on_a_field_of_a_non_object_answer_fails_with_a_reason():
    verdict = string_check(path="intent", op="eq", value="x").grade(make_trace('"just a string"'))
    assert not verdict.passed and "not an object (got a string)" in verdict.reason


# -- reference -----------------------------------------------------------------


def reference_grader(**params: object) -> ReferenceGrader:
    return ReferenceGrader(GraderSpec("ref", "reference", params=params))


def test_reference_is_skipped_when_the_trace_has_no_reference():
    verdict = reference_grader().grade(make_trace(GOOD))
    assert verdict.skipped and verdict.passed
    assert verdict.reason == "reference skipped: this trace has no reference answer"


def test_reference_exact_mode_ignores_list_order():
    reference = json.loads(json.dumps(GOOD))
    reference["icd10"] = ["R51.9", "J02.9"]
    assert reference_grader(mode="exact").grade(make_trace(GOOD, reference=reference)).passed


def test_reference_exact_mode_fails_on_one_different_field():
    reference = with_follow_up(time="15:00")
    assert not reference_grader(mode="exact").grade(make_trace(GOOD, reference=reference)).passed


def test_reference_f1_mode_passes_above_the_threshold_and_reports_the_score():
    reference = with_follow_up(time="15:00")  # 1 of 10 fields differs
    verdict = reference_grader(mode="f1", threshold=0.8).grade(make_trace(GOOD, reference=reference))
    assert verdict.passed and verdict.score == pytest.approx(0.9)


# -- grounded ------------------------------------------------------------------


def grounded() -> GroundedGrader:
    return GroundedGrader(spec_grader("follow_up_grounded"))


def test_grounded_passes_when_date_time_and_clinician_appear_in_the_transcript():
    assert grounded().grade(make_trace(GOOD)).passed


def test_grounded_fails_a_hallucinated_follow_up_date():
    verdict = grounded().grade(make_trace(with_follow_up(date="2026-11-10")))
    assert not verdict.passed
    assert verdict.reason == "follow_up.date '2026-11-10' does not appear in the request"


def test_grounded_fails_a_time_the_transcript_never_mentions():
    assert not grounded().grade(make_trace(with_follow_up(time="14:00"))).passed


def test_grounded_does_not_match_a_time_inside_a_longer_number():
    transcript = TRANSCRIPT.replace("14:30", "14:305")
    assert not grounded().grade(make_trace(GOOD, transcript=transcript)).passed


def test_grounded_accepts_a_clinician_without_the_title_the_transcript_used():
    assert grounded().grade(make_trace(with_follow_up(clinician="amara okafor"))).passed


def test_grounded_accepts_a_title_the_transcript_left_out():
    transcript = TRANSCRIPT.replace("Dr. Amara Okafor", "Okafor")
    assert grounded().grade(make_trace(with_follow_up(clinician="Nurse Okafor"), transcript=transcript)).passed


def test_grounded_fails_an_invented_clinician():
    verdict = grounded().grade(make_trace(with_follow_up(clinician="Dr. Patel")))
    assert not verdict.passed and "follow_up.clinician 'Dr. Patel'" in verdict.reason


def test_grounded_matches_unicode_names_regardless_of_case():
    transcript = TRANSCRIPT.replace("Amara Okafor", "Zoë Müller")
    assert grounded().grade(make_trace(with_follow_up(clinician="ZOË MÜLLER"), transcript=transcript)).passed


def test_grounded_accepts_null_fields():
    answer = with_follow_up(needed=False, date=None, time=None, clinician=None)
    assert grounded().grade(make_trace(answer, transcript="Caller: just a billing question.")).passed


def test_grounded_scores_the_share_of_grounded_fields():
    verdict = grounded().grade(make_trace(with_follow_up(date="2026-11-10", time="09:00")))
    assert verdict.score == pytest.approx(1 / 3)


# -- code_set ------------------------------------------------------------------


def code_set() -> CodeSetGrader:
    return CodeSetGrader(spec_grader("icd10_codes"))


def test_code_set_passes_codes_indicated_by_the_transcript_including_a_plural():
    assert code_set().grade(make_trace(GOOD)).passed  # "headaches" indicates R51.9 (headache)


def test_code_set_fails_a_code_outside_the_set():
    verdict = code_set().grade(make_trace({**GOOD, "icd10": ["J02.9", "Z99.9"]}))
    assert not verdict.passed and "'Z99.9' is not an allowed code" in verdict.reason
    assert verdict.score == 0.5


def test_code_set_fails_a_code_the_transcript_does_not_indicate():
    verdict = code_set().grade(make_trace({**GOOD, "icd10": ["I10"]}))
    assert not verdict.passed
    assert verdict.reason == "'I10' is not indicated by the request (needs high blood pressure)"


def test_code_set_matches_indicating_words_case_insensitively():
    transcript = TRANSCRIPT.replace("sore throat", "SORE THROAT")
    assert code_set().grade(make_trace({**GOOD, "icd10": ["J02.9"]}, transcript=transcript)).passed


def test_code_set_without_require_indicated_only_checks_membership():
    grader = CodeSetGrader(GraderSpec("codes", "code_set", params={
        "field": "icd10", "codes": {"I10": ["high blood pressure"]}, "require_indicated": False}))
    assert grader.grade(make_trace({**GOOD, "icd10": ["I10"]})).passed


def test_code_set_passes_an_empty_code_list():
    assert code_set().grade(make_trace({**GOOD, "icd10": []})).passed


# -- python --------------------------------------------------------------------


def test_python_grader_loads_a_function_by_module_path(tmp_path, monkeypatch):
    (tmp_path / "clinic_checks.py").write_text(
        "def follow_up_needed(trace):\n"
        "    return ('\"needed\": true' in trace.answer_text, 'follow-up flag checked')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    grader = PythonGrader(GraderSpec("custom", "python", params={"function": "clinic_checks:follow_up_needed"}))
    verdict = grader.grade(make_trace(GOOD))
    assert (verdict.grader, verdict.passed, verdict.reason) == ("custom", True, "follow-up flag checked")


def test_python_grader_turns_an_exception_into_a_failed_verdict(tmp_path, monkeypatch):
    (tmp_path / "buggy_checks.py").write_text("def check(trace):\n    return 1 / 0\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    verdict = PythonGrader(GraderSpec("buggy", "python", params={"function": "buggy_checks:check"})).grade(
        make_trace(GOOD))
    assert not verdict.passed and verdict.reason == "grader error: ZeroDivisionError: division by zero"


def test_python_grader_with_a_missing_function_fails_at_build_time_with_a_clear_message():
    with pytest.raises(GraderError, match="module 'json' has no function 'nothing_here'"):
        PythonGrader(GraderSpec("x", "python", params={"function": "json:nothing_here"}))


# -- llm_judge -----------------------------------------------------------------


class CountingJudge:
    """A ChatModel that always replies with the same text and counts its calls."""

    model = "fake-judge"

    def __init__(self, reply: str):
        self.reply = reply
        self.calls: list[list[dict]] = []

    def complete(self, messages: list[dict]) -> Completion:
        self.calls.append(messages)
        return Completion(text=self.reply, model=self.model)


def judge_grader(judge: CountingJudge | None, cache: dict | None = None) -> LlmJudgeGrader:
    return LlmJudgeGrader(GraderSpec("judge", "llm_judge", required=False,
                                     params={"rubric": "Is the SOAP note faithful?", "pass_score": 0.7}),
                          judge, cache)


def test_llm_judge_scores_the_answer_from_the_judges_reply():
    judge = CountingJudge("Faithful and complete.\nScore: 8")
    verdict = judge_grader(judge).grade(make_trace(GOOD))
    assert verdict.passed and verdict.score == pytest.approx(0.8)
    prompt = judge.calls[0][-1]["content"]
    assert "Is the SOAP note faithful?" in prompt and TRANSCRIPT in prompt and "Amara Okafor" in prompt


def test_llm_judge_reuses_a_cached_verdict_instead_of_calling_the_judge_again():
    judge, cache = CountingJudge("Score: 3/10"), {}
    first = judge_grader(judge, cache).grade(make_trace(GOOD))
    second = judge_grader(judge, cache).grade(make_trace(GOOD))
    assert len(judge.calls) == 1
    assert first == second and not second.passed and second.score == pytest.approx(0.3)


def test_llm_judge_cache_key_changes_with_the_rubric():
    a = judge_grader(CountingJudge("Score: 9"))
    b = LlmJudgeGrader(GraderSpec("judge", "llm_judge", params={"rubric": "Another rubric"}), a.judge, {})
    assert a.cache_key(make_trace(GOOD)) != b.cache_key(make_trace(GOOD))


def test_llm_judge_is_skipped_with_a_note_when_no_judge_is_configured():
    verdict = judge_grader(None).grade(make_trace(GOOD))
    assert verdict.skipped and verdict.reason == JUDGE_NOT_CONFIGURED


def test_llm_judge_fails_without_caching_when_the_reply_has_no_score():
    judge, cache = CountingJudge("I cannot say."), {}
    verdict = judge_grader(judge, cache).grade(make_trace(GOOD))
    assert not verdict.passed and "no 0-10 score" in verdict.reason and cache == {}


@pytest.mark.parametrize(("reply", "score"), [
    ("Score: 7", 0.7), ("7/10", 0.7), ("score = 0.85", 0.85), ("10", 1.0), ("I'd say 4 out of 10.", 0.4),
    ("no number", None), ("Score: 42", None),
])
def test_judge_scores_are_read_on_a_0_to_10_or_0_to_1_scale(reply, score):
    assert parse_judge_score(reply) == (pytest.approx(score) if score is not None else None)


# -- building, running, the pass rule ------------------------------------------


def test_build_graders_returns_only_enabled_graders():
    assert [g.name for g in build_graders(SPEC)] == ["schema", "icd10_codes", "follow_up_grounded", "intent_known"]


def test_the_bundled_graders_pass_a_correct_answer():
    verdicts = grade_trace(build_graders(SPEC), make_trace(GOOD))
    assert all(v.passed for v in verdicts) and passes(verdicts, SPEC.pass_rule)


def test_every_bundled_grader_returns_a_failed_verdict_for_an_answer_that_is_not_json():
    verdicts = grade_trace(build_graders(SPEC), make_trace("Sorry, I can't help with that."))
    assert [v.passed for v in verdicts] == [False, False, False, False]
    assert not passes(verdicts, SPEC.pass_rule)


def verdict(passed: bool, score: float, required: bool = True, skipped: bool = False) -> Verdict:
    return Verdict("g", "1", passed, score, "", skipped, required)


def test_all_required_ignores_a_failed_optional_grader():
    assert passes([verdict(True, 1.0), verdict(False, 0.0, required=False)], PassRule())


def test_all_required_fails_when_one_required_grader_fails():
    assert not passes([verdict(True, 1.0), verdict(False, 0.5)], PassRule())


def test_min_score_also_needs_the_mean_score_of_graders_that_ran():
    verdicts = [verdict(True, 1.0), verdict(False, 0.2, required=False)]
    assert not passes(verdicts, PassRule("min_score", 0.7))
    assert passes(verdicts, PassRule("min_score", 0.6))


def test_skipped_verdicts_never_count_toward_the_pass_rule():
    verdicts = [verdict(True, 1.0), verdict(False, 0.0, skipped=True)]
    assert passes(verdicts, PassRule("min_score", 0.9))


# -- the metrics behind the reference grader and the eval report ---------------


def test_a_non_json_prediction_scores_zero_on_the_task_metric():
    assert task_score("field_f1", "The patient needs a follow-up.", GOOD) == 0.0


def test_field_f1_of_an_identical_answer_is_one():
    assert task_score("field_f1", json.dumps(GOOD), GOOD) == 1.0


def test_lists_are_compared_as_sets_of_values():
    assert flatten_fields({"icd10": ["R51.9", "J02.9", "R51.9"]}) == {"icd10": ("J02.9", "R51.9")}
    assert exact_match({"icd10": ["R51.9", "J02.9"]}, {"icd10": ["J02.9", "R51.9"]})


def test_field_accuracy_can_leave_out_the_free_text_soap_fields():
    pred = json.loads(json.dumps(GOOD))
    pred["soap"]["plan"] = "Something else entirely."
    assert field_accuracy(pred, GOOD) == pytest.approx(9 / 10)
    assert field_accuracy(pred, GOOD, exclude_prefixes=("soap",)) == 1.0
    assert exact_match(pred, GOOD, exclude_prefixes=("soap",))


def test_field_f1_penalises_extra_fields_through_precision():
    assert field_f1({"a": 1, "b": 2}, {"a": 1}) == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_json_types_stay_distinct_when_comparing_fields():
    assert field_accuracy({"needed": 1}, {"needed": True}) == 0.0


def test_parse_answer_returns_none_for_json_that_is_not_an_object():
    assert parse_answer("[1, 2]") is None and parse_answer('{"a": 1}') == {"a": 1}
