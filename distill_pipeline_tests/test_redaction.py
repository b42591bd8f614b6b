import json
import re
from collections import Counter
from pathlib import Path

import pytest

from distill_pipeline import settings
from distill_pipeline.core.mix import MixExample
from distill_pipeline.core.redaction import (
    PHI_TYPES,
    RedactionReport,
    RedactionRules,
    RedactionSpecError,
    find_phi,
    redact_example,
    redact_messages,
)
from distill_pipeline.core.taskspec import TaskSpecError, default_task_spec_path, load_task_spec
from distill_pipeline.core.traces import TraceParseError, parse_line
from distill_pipeline_tests.phi_cases import CASES, DISTRACTORS, PhiCase, all_cases, parse_case
from distill_pipeline_tests.specs import MINIMAL

FIRST_DAY = settings.DEFAULT_TRACES_DIR / "2026-10-01.jsonl"
PLACEHOLDER = re.compile(r"\[(PHONE|EMAIL|SSN|MRN|DOB|ADDRESS|NAME)_\d+\]")



def bundled_rules() -> RedactionRules:
    return load_task_spec(default_task_spec_path()).redaction_rules


def trace(transcript: str, answer: dict | str) -> list[dict]:
    content = answer if isinstance(answer, str) else json.dumps(answer, separators=(",", ":"))
    return [{"role": "system", "content": "Summarise this clinic call."},
            {"role": "user", "content": "Transcript:\n" + transcript},
            {"role": "assistant", "content": content}]


def first_day_rows():
    rows = []
    for line in FIRST_DAY.read_bytes().splitlines():
        if line.strip():
            try:
                rows.append(parse_line(line))
            except TraceParseError:
                continue
    return rows


def spec_error(tmp_path: Path, redaction_yaml: str) -> TaskSpecError:
    path = tmp_path / "task.yaml"
    path.write_text(MINIMAL + redaction_yaml, encoding="utf-8")
    with pytest.raises(TaskSpecError) as caught:
        load_task_spec(path)
    return caught.value


# --- the labelled set: recall and precision per type ------------------------------------------------


def score(cases: list[PhiCase], rules: RedactionRules) -> dict[str, dict[str, float]]:
    tp, fp, fn = Counter(), Counter(), Counter()
    for case in cases:
        found = {(s.start, s.end, s.type) for s in find_phi(case.text, rules)}
        tp.update(kind for *_, kind in found & case.spans)
        fp.update(kind for *_, kind in found - case.spans)
        fn.update(kind for *_, kind in case.spans - found)
    return {kind: {"expected": tp[kind] + fn[kind], "found": tp[kind] + fp[kind], "tp": tp[kind],
                   "recall": tp[kind] / (tp[kind] + fn[kind]) if tp[kind] + fn[kind] else 1.0,
                   "precision": tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else 1.0}
            for kind in PHI_TYPES}


@pytest.fixture(scope="module")
def scores() -> dict[str, dict[str, float]]:
    result = score(all_cases(), bundled_rules())
    print("\nredaction on the labelled PHI set (bundled healthcare rules)")
    print(f"{'type':<8} {'expected':>8} {'found':>6} {'correct':>7} {'recall':>7} {'precision':>9}")
    for kind, row in result.items():
        print(f"{kind:<8} {row['expected']:>8} {row['found']:>6} {row['tp']:>7} {row['recall']:>7.3f} "
              f"{row['precision']:>9.3f}")
    return result


def test_the_labelled_set_has_at_least_15_cases_per_type_and_distractors():
    assert all(len(CASES[kind]) >= 15 for kind in PHI_TYPES)
    assert len(DISTRACTORS) >= 30
    assert all(not parse_case(text).spans for text in DISTRACTORS)


@pytest.mark.parametrize("kind", PHI_TYPES)
def test_recall_on_the_labelled_set_is_at_least_99_percent(scores, kind):
    assert scores[kind]["recall"] >= 0.99


@pytest.mark.parametrize("kind", PHI_TYPES)
def test_precision_on_the_labelled_set_is_at_least_99_percent(scores, kind):
    assert scores[kind]["precision"] >= 0.99


def test_no_distractor_is_redacted():
    rules = bundled_rules()
    changed = [text for text in DISTRACTORS if find_phi(text, rules)]
    assert changed == []


def test_a_span_marked_in_a_case_is_found_at_its_exact_offsets():
    case = parse_case("Caller: My cell is <<phone:415-555-0198>>.")
    assert case.text == "Caller: My cell is 415-555-0198."
    assert case.spans == {(19, 31, "phone")}


# --- placeholders ------------------------------------------------------------------------------------


def test_the_same_value_gets_the_same_placeholder_in_request_and_answer():
    messages = trace("Caller: Hi, this is Maya Rivera. Call me on 415-555-0198.\nAgent: Noted, 415-555-0198.",
                     {"soap": {"subjective": "Maya Rivera asks for a call on 415-555-0198"}})
    redacted, _ = redact_messages(messages, bundled_rules())
    assert redacted[1]["content"] == ("Transcript:\nCaller: Hi, this is [NAME_1]. Call me on [PHONE_1].\n"
                                      "Agent: Noted, [PHONE_1].")
    assert json.loads(redacted[2]["content"])["soap"]["subjective"] == "[NAME_1] asks for a call on [PHONE_1]"


def test_placeholders_are_numbered_per_type_in_order_of_first_appearance():
    messages = trace("Caller: My cell is 415-555-0198, my wife's is 415-555-0177. My email is a.b@example.com.",
                     "{}")
    redacted, _ = redact_messages(messages, bundled_rules())
    assert PLACEHOLDER.findall(redacted[1]["content"]) == ["PHONE", "PHONE", "EMAIL"]
    assert "[PHONE_1]" in redacted[1]["content"] and "[PHONE_2]" in redacted[1]["content"]
    assert "[EMAIL_1]" in redacted[1]["content"]


def test_a_phone_number_written_two_ways_gets_one_placeholder():
    messages = trace("Caller: My cell is (415) 555-0198.\nAgent: So 415-555-0198?", "{}")
    redacted, _ = redact_messages(messages, bundled_rules())
    assert redacted[1]["content"].count("[PHONE_1]") == 2


def test_a_first_name_alone_gets_the_full_names_placeholder():
    messages = trace("Caller: Hi, this is Yusuf Aziz.\nAgent: Thanks, Yusuf. How can I help?", "{}")
    redacted, _ = redact_messages(messages, bundled_rules())
    assert redacted[1]["content"].endswith("this is [NAME_1].\nAgent: Thanks, [NAME_1]. How can I help?")


def test_numbering_starts_again_in_each_trace():
    rules = bundled_rules()
    first, _ = redact_messages(trace("Caller: Hi, this is Maya Rivera.", "{}"), rules)
    second, _ = redact_messages(trace("Caller: Hi, this is Tomas Novak.", "{}"), rules)
    assert "[NAME_1]" in first[1]["content"] and "[NAME_1]" in second[1]["content"]


def test_clinicians_times_icd10_codes_and_follow_up_dates_survive_next_to_phi():
    transcript = ("Caller: Hi, this is Maya Rivera. My asthma is worse.\n"
                  "Agent: Can you confirm your date of birth, please?\nCaller: Sure, it's 1998-09-02.\n"
                  "Agent: Dr. Okafor can see you on 2026-10-18 at 14:00.")
    redacted, _ = redact_messages(trace(transcript, "{}"), bundled_rules())
    assert redacted[1]["content"].endswith("it's [DOB_1].\nAgent: Dr. Okafor can see you on 2026-10-18 at 14:00.")


def test_a_kept_answer_field_is_never_redacted_even_where_it_looks_like_phi():
    rules = RedactionRules(keep_fields=("follow_up.date",))
    messages = trace("Agent: What date of birth should I note?\nCaller: 2026-10-18.",
                     {"follow_up": {"date": "2026-10-18"}})
    redacted, counts = redact_messages(messages, rules)
    assert redacted == messages
    assert counts["dob"] == 0


def test_content_parts_and_tool_call_arguments_are_redacted_too():
    messages = [{"role": "user", "content": [{"type": "text", "text": "My email is maya@example.com."}]},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                    "name": "update_contact", "arguments": json.dumps({"email": "maya@example.com"})}}]}]
    redacted, counts = redact_messages(messages, RedactionRules())
    assert redacted[0]["content"][0]["text"] == "My email is [EMAIL_1]."
    assert json.loads(redacted[1]["tool_calls"][0]["function"]["arguments"]) == {"email": "[EMAIL_1]"}
    assert counts["email"] == 2


def test_redaction_never_changes_the_input_messages():
    messages = trace("Caller: Hi, this is Maya Rivera.", "{}")
    before = json.dumps(messages)
    redact_messages(messages, bundled_rules())
    assert json.dumps(messages) == before


# --- on and off, counts ------------------------------------------------------------------------------


def test_redaction_disabled_leaves_the_messages_unchanged():
    messages = trace("Caller: Hi, this is Maya Rivera. My SSN is 123-45-6789.", "{}")
    redacted, counts = redact_messages(messages, RedactionRules(enabled=False))
    assert redacted == messages
    assert counts == {}


def test_a_spec_without_a_redaction_section_disables_redaction():
    assert RedactionRules.from_spec(None).enabled is False
    assert load_task_spec_text(MINIMAL).redaction_rules.enabled is False


def test_a_type_left_out_of_the_rules_is_not_redacted():
    rules = RedactionRules.from_spec({"types": ["phone"]})
    redacted, counts = redact_messages(trace("Caller: My SSN is 123-45-6789, cell 415-555-0198.", "{}"), rules)
    assert redacted[1]["content"].endswith("My SSN is 123-45-6789, cell [PHONE_1].")
    assert counts == {"phone": 1}


def test_counts_add_up_to_the_placeholders_written():
    transcript = ("Caller: Hi, this is Maya Rivera, MRN 00482913, 42 Oak Street.\n"
                  "Agent: Thanks, Maya. Date of birth?\nCaller: 1980-05-17. Email maya@example.com, SSN 123-45-6789.")
    redacted, counts = redact_messages(trace(transcript, {"soap": {"subjective": "Maya Rivera called"}}),
                                       bundled_rules())
    written = Counter(kind.lower() for m in redacted for kind in PLACEHOLDER.findall(m["content"]))
    assert {k: v for k, v in counts.items() if v} == dict(written)
    assert counts == {"phone": 0, "email": 1, "ssn": 1, "mrn": 1, "dob": 1, "address": 1, "name": 3}


def test_a_report_sums_counts_over_traces():
    report = RedactionReport(bundled_rules())
    report.add({"name": 1, "dob": 1})
    report.add({"name": 2})
    report.add({"name": 0})
    assert report.examples == 3
    assert report.redacted_examples == 2
    assert report.counts["name"] == 3 and report.counts["dob"] == 1 and report.counts["phone"] == 0
    assert report.total == 4
    assert report.metadata()["redaction_counts"] == report.counts


def test_redact_example_keeps_a_mix_examples_id_and_content_hash_and_reports_its_counts():
    example = MixExample("domain", "refill", "chatcmpl-1", "abc123", trace("Caller: Hi, this is Maya Rivera.", "{}"))
    report = RedactionReport(bundled_rules())
    redacted = redact_example(example, bundled_rules(), report)
    assert (redacted.id, redacted.content_hash, redacted.source) == ("chatcmpl-1", "abc123", "domain")
    assert redacted.messages[1]["content"].endswith("this is [NAME_1].")
    assert report.counts["name"] == 1


def test_redact_example_accepts_a_chat_example_dict():
    example = {"id": "gen-1", "messages": trace("Caller: My cell is 415-555-0198.", "{}")}
    redacted = redact_example(example, bundled_rules())
    assert redacted["id"] == "gen-1"
    assert redacted["messages"][1]["content"].endswith("My cell is [PHONE_1].")


# --- the bundled corpus --------------------------------------------------------------------------------


def test_follow_up_fields_of_the_bundled_answers_survive_redaction():
    rules = bundled_rules()
    checked = 0
    for row in first_day_rows():
        try:
            before = json.loads(row.answer_text)
        except ValueError:
            continue
        redacted, _ = redact_messages(row.chat_example()["messages"], rules)
        after = json.loads(redacted[-1]["content"])
        assert after.get("follow_up") == before.get("follow_up")
        request = "\n".join(m["content"] for m in redacted[:-1])
        for value in (before.get("follow_up") or {}).values():  # grounded before, still grounded after
            if isinstance(value, str) and value in row.request_text:
                assert value in request
        checked += 1
    assert checked >= 40


def test_every_caller_name_and_stated_birth_date_of_the_first_day_is_redacted():
    rules = bundled_rules()
    report = RedactionReport(rules)
    stated_births = 0
    for row in first_day_rows():
        redacted, counts = redact_messages(row.chat_example()["messages"], rules)
        report.add(counts)
        assert counts["name"] == 1, redacted[1]["content"]
        stated_births += row.request_text.count("date of birth")
    assert report.counts == {"phone": 0, "email": 0, "ssn": 0, "mrn": 0, "dob": stated_births, "address": 0,
                             "name": report.examples}
    print(f"\n{FIRST_DAY.name}: {report.examples} traces, counts {report.counts}")


def test_only_placeholders_change_in_a_bundled_trace():
    rules = bundled_rules()
    for row in first_day_rows()[:20]:
        original = row.chat_example()["messages"]
        redacted, _ = redact_messages(original, rules)
        for before, after in zip(original, redacted, strict=True):
            literal = PLACEHOLDER.split(after["content"])[::2]  # the text between placeholders
            assert re.fullmatch(".+?".join(re.escape(piece) for piece in literal), before["content"], re.DOTALL)


# --- the rules and the task spec ------------------------------------------------------------------------


def load_task_spec_text(text: str):
    from distill_pipeline.core.taskspec import parse_task_spec

    return parse_task_spec(text, "inline.yaml")


def test_the_bundled_spec_enables_every_type_with_its_name_patterns_and_kept_follow_up_fields():
    rules = bundled_rules()
    assert rules.enabled
    assert rules.types == PHI_TYPES
    assert len(rules.name_patterns) == 2
    assert rules.keep_fields == ("follow_up.date", "follow_up.time", "follow_up.clinician")


def test_the_rules_go_to_the_model_card_as_a_plain_dict():
    card = bundled_rules().to_dict()
    assert card["enabled"] is True
    assert card["types"] == list(PHI_TYPES)
    assert len(card["patterns"]["name"]) == 2
    assert card["detectors_version"]
    assert json.loads(json.dumps(card)) == card


def test_the_model_card_names_the_libraries_and_the_hand_written_rules():
    detectors = bundled_rules().to_dict()["detectors"]
    assert detectors["version"] == "3"
    assert {"presidio-analyzer", "phonenumbers", "names-dataset", "english-words"} <= set(detectors["libraries"])
    assert all(version[0].isdigit() for version in detectors["libraries"].values())  # installed, with its version
    assert set(PHI_TYPES) <= set(detectors["hand_written"])


def test_rules_from_equal_specs_are_equal_whatever_the_order_of_types():
    assert RedactionRules.from_spec({"types": ["name", "phone"]}) == RedactionRules.from_spec(
        {"types": ["phone", "name"]})


def test_a_list_of_patterns_is_shorthand_for_name_patterns():
    rules = RedactionRules.from_spec({"patterns": ["call me ([A-Z][a-z]+)"]})
    assert rules.name_patterns == ("call me ([A-Z][a-z]+)",)
    assert [s.text for s in find_phi("Hi, call me Ayla.", rules)] == ["Ayla"]


def test_a_pattern_for_another_type_finds_that_type():
    rules = RedactionRules.from_spec({"patterns": {"mrn": [r"\bNHS (\d{3} \d{3} \d{4})"]}})
    assert [(s.type, s.text) for s in find_phi("My NHS 943 476 5919 number.", rules)] == [("mrn", "943 476 5919")]


def test_a_pattern_that_matches_nothing_but_the_empty_string_is_rejected():
    with pytest.raises(RedactionSpecError, match=r"patterns\[0\] matches the empty string"):
        RedactionRules.from_spec({"patterns": ["(x*)"]})


def test_an_unknown_redaction_key_names_its_line_and_the_likely_key(tmp_path):
    err = spec_error(tmp_path, "redaction:\n  enabled: true\n  keep_feilds: [follow_up.date]\n")
    assert err.line == 18
    assert err.field == "redaction.keep_feilds"
    assert "redaction.keep_feilds is not a known redaction key; did you mean 'keep_fields'?" in str(err)


def test_a_bad_name_regex_names_its_line_field_and_the_regex_error(tmp_path):
    err = spec_error(tmp_path, "redaction:\n  patterns:\n    name:\n      - 'my name is ([A-Z]'\n")
    assert err.line == 19
    assert err.field == "redaction.patterns.name[0]"
    assert "redaction.patterns.name[0] is not a valid regular expression (missing ), unterminated subpattern" \
        in str(err)


def test_an_unknown_phi_type_gets_a_suggestion(tmp_path):
    err = spec_error(tmp_path, "redaction:\n  types: [phone, emial]\n")
    assert err.line == 17
    assert "redaction.types[1] 'emial' is not a PHI type; did you mean 'email'?" in str(err)


def test_patterns_for_a_type_that_is_not_enabled_are_an_error(tmp_path):
    err = spec_error(tmp_path, "redaction:\n  types: [phone]\n  patterns:\n    name: ['I am ([A-Z][a-z]+)']\n")
    assert err.line == 19
    assert "redaction.patterns.name is given but 'name' is not in types" in str(err)


def test_enabled_must_be_true_or_false(tmp_path):
    err = spec_error(tmp_path, "redaction:\n  enabled: sometimes\n")
    assert err.line == 17
    assert "redaction.enabled must be true or false (got 'sometimes')" in str(err)


def test_a_kept_field_must_be_a_dotted_path(tmp_path):
    err = spec_error(tmp_path, "redaction:\n  keep_fields: ['follow_up..date']\n")
    assert err.line == 17
    assert "redaction.keep_fields[0] 'follow_up..date' must be a dotted answer path" in str(err)


def test_a_redaction_section_that_is_not_a_mapping_says_how_to_write_it(tmp_path):
    err = spec_error(tmp_path, "redaction: true\n")
    assert err.line == 16
    assert "redaction must be a mapping (got true/false); write it like: redaction: {enabled: true" in str(err)


# Classes of phrasing that leaked on blind batch 3, each written afresh here (not copied from the batch).

def found(text: str) -> set[tuple[str, str]]:
    return {(s.type, s.text) for s in find_phi(text, bundled_rules())}


@pytest.mark.parametrize("text, value", [
    ("Caller: My social is 612–44–0931.", "612–44–0931"),  # typeset dashes
    ("Caller: Social security, let me read it: 6 1 2 - 4 4 - 0 9 3 1.", "6 1 2 - 4 4 - 0 9 3 1"),
    ("Agent: Your SSN?\nCaller: 6 1 2 4 4 0 9 3 1.", "6 1 2 4 4 0 9 3 1"),
])
def test_an_ssn_read_out_with_other_dashes_or_digit_by_digit_is_found(text, value):
    assert ("ssn", value) in found(text)


@pytest.mark.parametrize("value", ["KT-0417-QZ", "77-XR-3310", "WHC/903/5521", "GL 902 334", "PKH4401932"])
def test_a_record_number_of_any_letter_and_digit_shape_is_found_after_its_cue(value):
    assert ("mrn", value) in found(f"Agent: And the hospital number?\nCaller: It's on the card, {value}.")


def test_a_cue_word_before_a_record_number_is_not_part_of_it_and_the_number_recurs():
    text = "Agent: Record number?\nCaller: Patient ID 804412.\nAgent: Thanks, chart 804412 is open."
    assert [s.text for s in find_phi(text, bundled_rules()) if s.type == "mrn"] == ["804412", "804412"]


def test_a_four_digit_number_after_a_record_cue_is_not_an_mrn_without_letters():
    assert not any(kind == "mrn" for kind, _ in found("Caller: My record number? It was 2019 when I joined."))


@pytest.mark.parametrize("text, values", [
    ("Agent: Their dates of birth?\nCaller: Ada is 2017-02-11 and Ben is March 3rd, 2020.\n"
     "Agent: Both booked for 2026-11-20 at 10:00.", {"2017-02-11", "March 3rd, 2020"}),
    ("Agent: Date of birth?\nCaller: two thousand and four, October the twelfth.",
     {"two thousand and four, October the twelfth"}),
    ("Agent: Date of birth?\nCaller: 3 de abril de 1979.", {"3 de abril de 1979"}),
    ("Agent: Date of birth?\nCaller: the 2nd of the 11th, 1966.", {"2nd of the 11th, 1966"}),
])
def test_dates_of_birth_in_other_orders_languages_and_for_several_people_are_found(text, values):
    assert values <= {value for kind, value in found(text) if kind == "dob"}


def test_a_full_date_years_before_the_call_is_personal_and_appointment_dates_stay():
    text = ("Caller: She was discharged on 2019-08-14 and I want a copy of the letter.\n"
            "Agent: I can post it on 2026-11-02, or offer 2026-11-09 at 09:30 to go through it.")
    dates = {value for kind, value in found(text) if kind == "dob"}
    assert dates == {"2019-08-14"}


@pytest.mark.parametrize("text, name", [
    ("Caller: hello my name is chidinma okafor and i need a repeat prescription", "chidinma okafor"),
    ("Caller: I'm calling for my grandson. Bartholomew has a fever since last night.", "Bartholomew"),
    ("Caller: Surname's Abiodun, first name Tolu.", "Abiodun"),
    ("Caller: It's about my aunt, Eszter Szőllősy.\nAgent: Right, a form for Szollosy was sent.", "Szollosy"),
])
def test_names_without_a_cue_capital_letters_or_accents_are_found(text, name):
    assert ("name", name) in found(text)


def test_the_start_of_an_organisation_name_that_goes_on_after_and_is_not_a_person():
    assert not found("Agent: Ridgeway Sports and Family Clinic, how can I help?")


@pytest.mark.parametrize("value", ["W3310 County Road JJ", "4471 State Hwy 29", "Rural Route 3, Box 117",
                                   "Post Office Box 2209"])
def test_rural_and_box_addresses_are_found(value):
    assert ("address", value) in {(k, v) for k, v in found(f"Caller: We're at {value}, out past the school.")}


def test_ordinary_plural_words_opening_a_sentence_are_not_names():
    assert not any(kind == "name" for kind, _ in found("Agent: Congratulations! Walk-ins are welcome from 08:00."))


@pytest.mark.parametrize("text, kind, value", [
    ("Caller: Best number is seven one eight, double four two, nine oh one six.", "phone",
     "seven one eight, double four two, nine oh one six"),
    ("Agent: And your social security number?\nCaller: four one two, three three, eight oh eight one.", "ssn",
     "four one two, three three, eight oh eight one"),
    ("Agent: The last four of your social, please?\nCaller: 7 7 0 2.", "ssn", "7 7 0 2"),
    ("Caller: I'm at 88 Rideau Crescent, Ottawa, ON K1N 5Y8.", "address", "K1N 5Y8"),
    ("Caller: 19 Kurrajong Street, Dubbo NSW 2830.", "address", "NSW 2830"),

    ("Agent: Her date of birth?\nCaller: 11/09/1951, so the eleventh of September.", "dob", "eleventh of September"),
    ("Agent: And your date of birth?\nCaller: Born in 1962, on the 4th of May.", "dob", "1962, on the 4th of May"),
    ("Agent: Date of birth?\nCaller: Twelfth of March, eighty-one.", "dob", "Twelfth of March, eighty-one"),
    ("Agent: Date of birth?\nCaller: Oh-nine, thirteen, nineteen seventy.", "dob",
     "Oh-nine, thirteen, nineteen seventy"),
    ("Caller: Our twins were born June 9th.", "dob", "June 9th"),
    ("Caller: The chart is K-7731-R.", "mrn", "K-7731-R"),
    ("Agent: Her NHS number?\nCaller: 943 476 5919.", "mrn", "943 476 5919"),
    ("Agent: What's the MRN?\nCaller: It's T, W, 5, 5, 0, 1, 8.", "mrn", "T, W, 5, 5, 0, 1, 8"),
    ("Caller: My social is 544, 21, 9083.", "ssn", "544, 21, 9083"),
    ("Agent: Last four of your social?\nCaller: Nine three oh two.", "ssn", "Nine three oh two"),
    ("Caller: Send it to my e-mail please: tomas k eighty at hotmail.", "email", "tomas k eighty at hotmail"),
    ("Caller: New number, area code 207 and then 555-0188.", "phone", "207"),
    ("Caller: We moved to Larchfield Crescent last month.", "address", "Larchfield Crescent"),
    ("Caller: It's now four-eighteen Sandpiper Road.", "address", "four-eighteen Sandpiper Road"),
])
def test_numbers_in_words_last_fours_other_countries_postcodes_and_answers_when_asked_are_found(text, kind, value):
    assert (kind, value) in found(text)


def test_counts_in_words_stay_and_a_last_four_that_is_not_a_social_is_not_an_ssn():
    assert not found("Caller: I take one or two tablets, three times a day, for seven days.")
    assert not any(kind == "ssn" for kind, _ in found("Agent: The last four on the card are 4411, is that right?"))


def test_an_identifier_read_out_is_found_again_when_read_back_whole_and_an_ssn_by_its_last_four():
    text = ("Caller: My record number is 4-4-0-2-9-1-7 and my social is 318-52-6604.\n"
            "Agent: So 4402917, and the social ending 6604.")
    assert {("mrn", "4402917"), ("ssn", "6604")} <= found(text)


def test_a_date_after_a_record_cue_is_not_a_record_number():
    assert not any(kind == "mrn" for kind, _ in found("Agent: The chart says 2026-11-04 for your review."))


@pytest.mark.parametrize("text", ["Caller: Bonjour! I'm calling from Kenya about my mother's refill.",
                                  "Agent: Clínica del Valle, buenos días.", "Caller: His BP's been high.",
                                  "Caller: Can you send it on WhatsApp? Apologies for the noise."])
def test_greetings_places_apps_and_acronyms_are_not_names(text):
    assert not any(kind == "name" for kind, _ in found(text))


@pytest.mark.parametrize("text, kind, value", [
    ("Agent: and date of birth\nCaller: october third sixty one", "dob", "october third sixty one"),
    ("Agent: dob\nCaller: two nine seventy four", "dob", "two nine seventy four"),
    ("Agent: Social?\nCaller: five one two dash three three dash oh four four one", "ssn",
     "five one two dash three three dash oh four four one"),
    ("Caller: the hospital number is 553... 901... 4128", "mrn", "553... 901... 4128"),
    ("Caller: My number, area code, oh seven seven, then four one two, nine nine oh three.", "phone",
     "oh seven seven, then four one two, nine nine oh three"),
    ("Caller: Her wristband has TKH-2290417 on it.", "mrn", "TKH-2290417"),
    ("Agent: And the hospital number?\nCaller: Oh, 7719 I think.", "mrn", "7719"),
    ("Caller: My eircode is D08 XY9P.", "address", "D08 XY9P"),
    ("Caller: you can mail it to sam underscore lowe at sign fastmail full stop uk", "email",
     "sam underscore lowe at sign fastmail full stop uk"),
    ("Caller: its kavya dot iyer at the rate rediffmail dot com", "email",
     "kavya dot iyer at the rate rediffmail dot com"),
])
def test_speech_to_text_answers_numbers_in_pieces_bare_identifiers_and_spoken_emails_are_found(text, kind, value):
    assert any(k == kind and value in v for k, v in found(text)), found(text)


def test_names_in_a_lower_case_turn_are_found_and_ordinary_words_are_not():
    assert ("name", "priyanka venkataraman") in found("Caller: yeah its for priyanka venkataraman on friday")
    assert not found("Caller: ok yeah thats fine see you on wednesday bye")


@pytest.mark.parametrize("text", [
    "Caller: I take 1000 mg twice a day and my BP was 143/91.", "Caller: It cost USD 45.25 in 2019.",
    "Caller: The claim is 77-30914 and the invoice INV 2026-0917.", "Caller: Reference REF-55-20931, please.",
    "Caller: It was coded J45.909 in 2024."])
def test_quantities_readings_years_and_references_are_not_identifiers(text):
    assert not found(text)


def test_a_patient_who_shares_a_clinicians_surname_is_redacted_and_the_clinician_kept():
    text = "Caller: It's for Lucia Ferreira.\nAgent: Dr. Ferreira can see her at 10:30; Ferreira is in on Tuesday."
    assert found(text) == {("name", "Lucia Ferreira")}


@pytest.mark.parametrize("value", ["1,200,000 VND", "USD 45.25", "450 rupees", "₦15,000"])
def test_amounts_in_other_currencies_are_kept(value):
    assert not found(f"Caller: The bill says {value} for the scan.")


def test_a_postcode_district_that_reads_like_an_icd10_code_is_an_address_and_a_code_is_kept():
    assert found("Caller: The postcode is G11 5QE and the letter says G43.909.") == {("address", "G11 5QE")}


# Found in review: each of these went wrong once while the rules above were written.

def test_a_long_run_of_digits_is_read_in_linear_time_not_exponential():
    import signal

    def hang(*_):
        raise TimeoutError("find_phi backtracked on a run of digits")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(20)  # the exponential version needs hours for 60 digits; the linear one a few milliseconds
    try:
        for text in ("Caller: " + "7" * 60 + "x", "1-" * 2500 + "x", "1,2" * 1700 + "x", "9" * 20000):
            find_phi(text)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("text", [
    "Agent: Dr. Okafor is on leave this week. Ask Okafor about it on Monday.",
    "Agent: Dr. Okafor is off. Monday Okafor is back in clinic.",
    "Agent: Booked 2026-11-03 at 10:30. Your next colonoscopy is due 2029-11-03.",
    "Agent: Your review is 03/11/2026 and the implant check is 03/11/2030.",
    "Caller: The bill had code E11 2023 on it.",
    "Caller: Email is easier, we are at home most days. Email's fine, just say hi at reception.",
    "Caller: Room 4102 on the fourth floor; platelets were 1500, LDL 3100, the count 11000.",
    "Caller: Her weight is 3400 grams on an 1800 calorie diet, CD4 count 1200 cells.",
])
def test_clinicians_appointments_codes_and_clinical_numbers_are_not_patient_data(text):
    assert not found(text)


def test_a_record_number_shaped_like_an_impossible_date_is_still_a_record_number():
    assert ("mrn", "04-11-5521") in found("Agent: MRN?\nCaller: 04-11-5521.")


@pytest.mark.parametrize("text, name", [("Caller: yeah its for lars on friday", "lars"),
                                        ("Caller: My mum Grace and Family Services both called.", "Grace")])
def test_names_that_end_like_an_english_inflection_or_precede_an_organisation_are_found(text, name):
    assert ("name", name) in found(text)


def test_an_email_spoken_and_written_gets_one_placeholder():
    messages = trace("Caller: It's sam underscore lowe at sign fastmail full stop uk.\n"
                     "Agent: So sam_lowe@fastmail.uk, thanks.", {"intent": "x"})
    redacted, counts = redact_messages(messages, bundled_rules())
    assert counts["email"] == 2 and redacted[1]["content"].count("[EMAIL_1]") == 2


@pytest.mark.parametrize("text", [
    "Sort these numbers from smallest to largest: 35, 34, 1, 39, 12",
    "Caller: the readings were 120, 80, 72, 98 and 37 this morning",
    "convert the colour of these lines to lower case: red carries inches",
    "Caller: what colour are the tablets, the pharmacy said it carries both",
])
def test_lists_of_numbers_and_lower_case_text_that_is_no_speakers_turn_are_not_patient_data(text):
    assert not found(text)
