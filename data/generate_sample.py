"""Generate the bundled synthetic corpus: daily teacher-trace exports, their labels, and general examples.

Everything here is synthetic: callers, clinicians, clinics and calls are made up from word lists.
The output is deterministic (fixed seed, stdlib only), so the committed files can be checked by
regenerating them:

    python data/generate_sample.py [--out DIR]

writes DIR/sample/traces/YYYY-MM-DD*.jsonl, DIR/sample/labels.jsonl, DIR/sample/README.md and
DIR/general/general_examples.jsonl (DIR defaults to the folder holding this script).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20261101
FIRST_DAY = date(2026, 10, 1)
DAYS = 30
MODEL = "gpt-4o-2024-08-06"
AGENT = "healthcare-postcall"

SYSTEM_PROMPT = (
    "Summarise this clinic call. Reply with compact JSON only: intent, soap, icd10, "
    "follow_up (needed, date, time, clinician; null if not booked)."
)

INTENT_WEIGHTS: dict[str, float] = {
    "book_follow_up": 0.30,
    "medication_refill": 0.20,
    "test_results": 0.15,
    "symptom_report": 0.14,
    "billing_question": 0.08,
    "cancel_appointment": 0.06,
    "insurance_update": 0.04,
    "referral_request": 0.03,
}

ERROR_KINDS = (
    "invalid_json",
    "missing_field",
    "wrong_code",
    "ungrounded_date",
    "ungrounded_time",
    "ungrounded_clinician",
)
WRONG_SHARE = 0.10
DO_NOT_TRAIN_SHARE = 0.01


@dataclass(frozen=True)
class Condition:
    code: str
    phrases: tuple[str, ...]  # noun phrases as a caller says them; each holds an indicating word of the table
    label: str  # the assessment
    medication: str | None  # what a refill call asks for
    specialty: str | None  # where a referral goes
    acute: bool  # reported as a new symptom


CONDITIONS: tuple[Condition, ...] = (
    Condition("J02.9", ("a sore throat",), "Sore throat", None, None, True),
    Condition("J06.9", ("a head cold", "a runny nose"), "Head cold", None, None, True),
    Condition("I10", ("high blood pressure",), "High blood pressure", "lisinopril", "a cardiologist", False),
    Condition("E11.9", ("type 2 diabetes", "high blood sugar"), "Type 2 diabetes", "metformin",
              "the diabetes clinic", False),
    Condition("M54.50", ("low back pain",), "Low back pain", "naproxen", "physiotherapy", True),
    Condition("J45.909", ("asthma", "wheezing"), "Asthma", "salbutamol inhaler", "a lung specialist", True),
    Condition("N39.0", ("a urinary tract infection", "burning when urinating"), "Urinary tract infection", None,
              "a urologist", True),
    Condition("K21.9", ("acid reflux", "heartburn"), "Acid reflux", "omeprazole", "a gastroenterologist", True),
    Condition("F41.1", ("anxiety",), "Anxiety", "sertraline", "a counsellor", True),
    Condition("R51.9", ("a headache",), "Headache", None, "a neurologist", True),
)
BY_CODE = {c.code: c for c in CONDITIONS}

# The contract's table: the words in a transcript that indicate each code.
INDICATORS: dict[str, tuple[str, ...]] = {
    "J02.9": ("sore throat",),
    "J06.9": ("head cold", "runny nose"),
    "I10": ("high blood pressure",),
    "E11.9": ("type 2 diabetes", "blood sugar"),
    "M54.50": ("low back pain",),
    "J45.909": ("asthma", "wheezing"),
    "N39.0": ("urinary tract infection", "burning when urinating"),
    "K21.9": ("acid reflux", "heartburn"),
    "F41.1": ("anxiety",),
    "R51.9": ("headache",),
}

FIRST_NAMES = (
    "Maya", "Tomas", "Aisha", "Jonas", "Priya", "Lucas", "Noor", "Elena", "Kwame", "Sofia", "Rafael", "Ingrid",
    "Yusuf", "Hana", "Mateo", "Freya", "Arjun", "Leila", "Oskar", "Camila", "Dmitri", "Zara", "Felix", "Amara",
    "Nico", "Greta", "Samir", "Lena", "Jun", "Olivia", "Bruno", "Ines", "Kofi", "Mira", "Emil", "Talia",
    "Hugo", "Ayla", "Marek", "Rosa",
)
LAST_NAMES = (
    "Rivera", "Novak", "Bianchi", "Mensah", "Larsen", "Ortega", "Sato", "Keller", "Duarte", "Hughes", "Petrov",
    "Andersen", "Farah", "Costa", "Winter", "Aziz", "Morales", "Lund", "Tanaka", "Brooks", "Quinn", "Eriksen",
    "Silva", "Nowak", "Baptiste", "Holm", "Reyes", "Fischer", "Jansen", "Kaur", "Moretti", "Sandoval",
)
CLINICIANS = (
    "Dr. Okafor", "Dr. Lindqvist", "Nurse Patel", "Dr. Moreau", "Dr. Haddad", "Dr. Nakamura", "Dr. Brennan",
    "Dr. Castillo", "Dr. Ivanova", "Nurse Adeyemi", "Nurse Kowalski", "Dr. Fitzgerald", "Dr. Osei", "Dr. Varga",
    "Nurse Dubois", "Dr. Amari", "Dr. Whitlock", "Dr. Sorensen",
)
DOCTORS = tuple(c for c in CLINICIANS if c.startswith("Dr. "))
CLINICS = ("Riverside Clinic", "Maple Street Clinic", "Harbor Family Practice", "Northgate Health Centre",
           "Elm Park Surgery", "Westbrook Medical")
PHARMACIES = ("the pharmacy on Mill Road", "the pharmacy on King Street", "the one by the station",
              "the pharmacy at Elm Park", "the late-night pharmacy on Bridge Street")
TIMES = tuple(f"{h:02d}:{m:02d}" for h in range(8, 18) for m in (0, 15, 30, 45))
IDENTITY = "<identity check>"
MIN_TRANSCRIPT_CHARS = 330  # about 110 tokens of the student's tokenizer
MAX_TRANSCRIPT_CHARS = 470
CLOSINGS = (
    ["Agent: Is there anything else I can help with?", "Caller: No, that's everything. Thank you."],
    ["Agent: Thanks for calling. Take care.", "Caller: You too. Bye."],
)
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 10: "ten", 14: "fourteen"}


# --------------------------------------------------------------------------------------------------------------
# One call


@dataclass
class Call:
    """A synthetic call: what was said and what a correct teacher answers."""

    intent: str
    lines: list[str]
    codes: list[str]
    subjective: str
    objective: str
    assessment: str
    plan: str
    booking: tuple[str, str, str] | None  # date, time, clinician
    needed: bool

    @property
    def transcript(self) -> str:
        return "Transcript:\n" + "\n".join(self.lines)

    def answer(self) -> dict[str, Any]:
        date_, time_, clinician = self.booking if self.booking else (None, None, None)
        return {
            "intent": self.intent,
            "soap": {"subjective": self.subjective, "objective": self.objective,
                     "assessment": self.assessment, "plan": self.plan},
            "icd10": list(self.codes),
            "follow_up": {"needed": self.needed, "date": date_, "time": time_, "clinician": clinician},
        }


class CallMaker:
    """Builds calls for one call day from templates; every choice comes from the shared generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # slot helpers ----------------------------------------------------------------------------------------
    def name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def clinician(self, *exclude: str) -> str:
        return self.rng.choice([c for c in CLINICIANS if c not in exclude])

    def doctor(self, *exclude: str) -> str:
        return self.rng.choice([c for c in DOCTORS if c not in exclude])

    def slot(self, day: date, *exclude: str) -> tuple[str, str]:
        while True:
            when = (day + timedelta(days=self.rng.randint(2, 28))).isoformat()
            at = self.rng.choice(TIMES)
            if when not in exclude and at not in exclude:
                return when, at

    def past_date(self, day: date) -> str:
        return (day - timedelta(days=self.rng.randint(3, 40))).isoformat()

    def dob(self) -> str:
        return date(self.rng.randint(1948, 2004), self.rng.randint(1, 12), self.rng.randint(1, 28)).isoformat()

    def opening(self) -> str:
        clinic = self.rng.choice(CLINICS)
        return self.rng.choice((
            f"Agent: {clinic}, this is the virtual assistant. How can I help?",
            f"Agent: Thanks for calling {clinic}. What can I do for you today?",
            f"Agent: Hello, you've reached {clinic}. How may I help you?",
            f"Agent: Good morning, {clinic}. How can I help you today?",
        ))

    def hello(self) -> str:
        return self.rng.choice(("Hi, this is {n}.", "Hello, {n} here.", "Hi, my name is {n}.",
                                "Hello, it's {n}.")).format(n=self.name())

    def identity(self) -> list[str]:
        """Where the agent may check the date of birth (a date that is never the follow-up); see `fit`."""
        return [IDENTITY]

    def fit(self, call: Call) -> Call:
        """Keep transcripts near 100-150 tokens: a date-of-birth check in some calls, pleasantries in short ones."""
        r = self.rng
        check = ["Agent: Can you confirm your date of birth, please?", f"Caller: Sure, it's {self.dob()}."]
        base = [ln for ln in call.lines if ln != IDENTITY]
        size = sum(len(ln) + 1 for ln in base)
        with_check = size + sum(len(ln) + 1 for ln in check) <= MAX_TRANSCRIPT_CHARS
        keep = with_check and (r.random() < 0.4 or size < MIN_TRANSCRIPT_CHARS)
        call.lines = [x for ln in call.lines for x in (check if ln == IDENTITY else [ln]) if keep or ln != IDENTITY]
        for closing in CLOSINGS:
            if sum(len(ln) + 1 for ln in call.lines) < MIN_TRANSCRIPT_CHARS:
                call.lines += closing
        return call

    def condition(self, *, acute: bool | None = None, exclude: tuple[str, ...] = ()) -> Condition:
        pool = [c for c in CONDITIONS if c.code not in exclude and (acute is None or c.acute == acute)]
        return self.rng.choice(pool)

    def phrase(self, condition: Condition) -> str:
        return self.rng.choice(condition.phrases)

    def duration(self) -> tuple[str, str]:
        """A duration as said and as the objective line writes it."""
        n = self.rng.choice((2, 3, 4, 5, 6, 7, 10, 14))
        unit = "days"
        if n == 14 and self.rng.random() < 0.5:
            return "two weeks", "Symptoms for 2 weeks"
        said = NUMBER_WORDS[n] if self.rng.random() < 0.5 else str(n)
        return f"{said} {unit}", f"Symptoms for {n} {unit}"

    def booked(self, day: date, intro: str, *avoid: str) -> tuple[list[str], tuple[str, str, str]]:
        """Lines that book a slot, in one of several phrasings, including the hard ones."""
        roll = self.rng.random()
        clinician = self.clinician(*avoid)
        when, at = self.slot(day, *avoid)
        if roll < 0.16:  # hard case: the first clinician is fully booked, another one is booked
            busy = self.clinician(clinician, *avoid)
            lines = [
                f"Agent: {busy} is fully booked {self.rng.choice(('this month', 'until November', 'for now'))}. "
                f"{clinician} can see you on {when} at {at}.",
                f"Caller: {self.rng.choice(('Okay, I will take that.', 'Fine, book it.', 'That works.'))}",
            ]
            if self.rng.random() < 0.5:
                lines.append(f"Agent: Booked with {clinician}.")
            else:
                lines.append("Agent: You're booked. See you then.")
            return lines, (when, at, clinician)
        if roll < 0.36:  # two slots offered, the caller picks one
            other_when, other_at = self.slot(day, when, at, *avoid)
            first = self.rng.random() < 0.5
            slots = sorted([(when, at), (other_when, other_at)])
            pick = slots[0] if first else slots[1]
            lines = [
                f"Agent: {intro}I have {slots[0][0]} at {slots[0][1]} or {slots[1][0]} at {slots[1][1]}, "
                f"both with {clinician}.",
                f"Caller: {'The first one' if first else 'The second one'}, please.",
                f"Agent: Confirmed for {pick[0]} at {pick[1]} with {clinician}.",
            ]
            return lines, (pick[0], pick[1], clinician)
        style = self.rng.randrange(3)
        if style == 0:
            lines = [f"Agent: {intro}{clinician} has {when} at {at}. Does that work?",
                     "Caller: Yes, that's fine.",
                     f"Agent: You're booked with {clinician} on {when} at {at}."]
        elif style == 1:
            lines = [f"Agent: {intro}I can offer {when} at {at} with {clinician}.",
                     "Caller: Perfect, thank you.",
                     "Agent: Done. You'll get a text reminder."]
        else:
            lines = [f"Agent: {intro}The next opening with {clinician} is {when} at {at}.",
                     "Caller: I'll take it.",
                     f"Agent: Great, {when} at {at} it is."]
        return lines, (when, at, clinician)

    def nurse_callback(self) -> str:
        return self.rng.choice((
            "Agent: A nurse will call you back later today.",
            "Agent: I've passed this on. A nurse will call you back this afternoon.",
            "Agent: A nurse will call you back within 24 hours to talk it through.",
        ))

    @staticmethod
    def plan_for(booking: tuple[str, str, str]) -> str:
        return f"Follow-up with {booking[2]}"

    # intents ---------------------------------------------------------------------------------------------
    def book_follow_up(self, day: date) -> Call:
        r = self.rng
        lines = [self.opening()]
        if r.random() < 0.8:
            cond = self.condition()
            said = self.phrase(cond)
            codes = [cond.code]
            subjective = f"Requests follow-up for {said.removeprefix('a ')}"
            assessment = cond.label
            style = r.randrange(4)
            if style == 0:
                lines.append(f"Caller: {self.hello()} I need a follow-up appointment for my {said.removeprefix('a ')}.")
            elif style == 1:
                asked = self.doctor()
                lines.append(f"Caller: {self.hello()} {asked} asked me to come back in two weeks about my "
                             f"{said.removeprefix('a ')}.")
            elif style == 2:
                lines.append(f"Caller: {self.hello()} I'd like to book a check-up. I still have {said}.")
            else:
                lines.append(f"Caller: {self.hello()} Can I get a follow-up visit? It's about my "
                             f"{said.removeprefix('a ')}.")
            objective = "Phone call, no exam"
            if cond.code == "I10" and r.random() < 0.5:
                reading = f"{r.randint(138, 168)}/{r.randint(86, 102)}"
                lines.append(f"Caller: My home reading this morning was {reading}.")
                objective = f"Home BP {reading}"
        else:
            codes = []
            lines.append(f"Caller: {self.hello()} " + r.choice((
                "I need to book my annual check-up.",
                "I'm due for my yearly check-up. Can I book it?",
                "I'd like a routine check-up appointment.",
            )))
            subjective = "Requests routine check-up"
            assessment = "Routine check-up"
            objective = "Phone call, no exam"
        lines += self.identity()
        more, booking = self.booked(day, r.choice(("", "Let me look. ", "Sure. ")))
        lines += more
        return Call("book_follow_up", lines, codes, subjective, objective, assessment, self.plan_for(booking),
                    booking, True)

    def medication_refill(self, day: date) -> Call:
        r = self.rng
        lines = [self.opening()]
        if r.random() < 0.8:
            cond = r.choice([c for c in CONDITIONS if c.medication])
            med = cond.medication or ""
            said = self.phrase(cond).removeprefix("a ")
            codes = [cond.code]
            assessment = f"{cond.label}, on {med}"
            reason = f" for my {said}" if r.random() < 0.5 else f". I take it for {said}"
        else:
            med = r.choice(("vitamin D", "levothyroxine", "iron tablets", "folic acid"))
            codes, reason, assessment = [], "", "Repeat prescription"
        left = r.choice((2, 3, 4, 5, 7))
        style = r.randrange(3)
        if style == 0:
            lines.append(f"Caller: {self.hello()} I need a refill of my {med}{reason}. I have {left} days left.")
            lines.append("Agent: Which pharmacy should we send it to?")
            pharmacy = r.choice(PHARMACIES)
            lines.append(f"Caller: {pharmacy[0].upper()}{pharmacy[1:]}.")
        elif style == 1:
            lines.append(f"Caller: {self.hello()} I'm running out of {med}{reason}.")
            lines.append("Agent: How many days of it do you have left?")
            lines.append(f"Caller: About {left} days.")
        else:
            lines.append(f"Caller: {self.hello()} Could you renew my {med} prescription{reason}? "
                         f"Only {left} days left.")
        lines += self.identity()
        roll = r.random()
        booking, needed = None, False
        if roll < 0.12:  # hard case: needed, but not scheduled
            lines.append("Agent: Your dose changed recently, so I can't send it straight away.")
            lines.append(self.nurse_callback())
            plan, needed = "Nurse to call back", True
        elif roll < 0.30:
            more, booking = self.booked(day, "We need a medication review first. ")
            lines += more
            plan, needed = self.plan_for(booking), True
        else:
            lines.append(r.choice((
                "Agent: Done. The refill is sent and should be ready tomorrow.",
                "Agent: I've sent the refill request to your pharmacy.",
                "Agent: The refill is approved. You can collect it in two days.",
            )))
            plan = "Refill sent to pharmacy"
        return Call("medication_refill", lines, codes, f"Requests {med} refill", f"{left} days of {med} left",
                    assessment, plan, booking, needed)

    def test_results(self, day: date) -> Call:
        r = self.rng
        lines = [self.opening()]
        tests: list[tuple[str, str | None]] = [
            ("blood test", None), ("cholesterol test", None), ("chest X-ray", None), ("blood sugar test", "E11.9"),
            ("urine test", None), ("urine test for my urinary tract infection", "N39.0"),
        ]
        test, code = r.choice(tests)
        short = test.removesuffix(" for my urinary tract infection")
        codes = [code] if code else []
        style = r.randrange(3)
        taken = self.past_date(day)
        orderer = self.doctor()
        if style == 0:
            lines.append(f"Caller: {self.hello()} I'm calling about my {test} from {taken}.")
        elif style == 1:
            lines.append(f"Caller: {self.hello()} Have the results of my {test} come back?")
        else:
            lines.append(f"Caller: {self.hello()} {orderer} ordered a {test} for me. Are the results in?")
        lines += self.identity()
        roll = r.random()
        booking, needed = None, False
        if roll < 0.45:
            lines.append(r.choice(("Agent: Yes, they're in and everything is normal.",
                                   "Agent: The results are back and they are normal. No action is needed.",
                                   "Agent: Good news, your results are normal.")))
            objective, assessment, plan = f"{short[0].upper()}{short[1:]} normal", "Normal results", "No action needed"
        elif roll < 0.58:
            lines.append("Agent: The results are in, but I can't discuss them on this line.")
            lines.append(self.nurse_callback())
            objective, assessment, plan = f"{short[0].upper()}{short[1:]} results available", "Results to review", \
                "Nurse to call back"
            needed = True
        else:
            value = r.choice(("abnormal", "unclear") if "X-ray" in test or "urine" in test else
                             ("slightly high", "abnormal", "borderline"))
            lines.append(f"Agent: The results are {value}, so the doctor wants to go over them with you.")
            more, booking = self.booked(day, "", taken)
            lines += more
            objective, assessment, plan = f"{short[0].upper()}{short[1:]} {value}", "Results need review", \
                self.plan_for(booking)
            needed = True
        if codes:
            assessment = f"{BY_CODE[codes[0]].label}; {assessment[0].lower()}{assessment[1:]}"
        return Call("test_results", lines, codes, f"Asks for {short} results", objective, assessment, plan,
                    booking, needed)

    def symptom_report(self, day: date) -> Call:
        r = self.rng
        lines = [self.opening()]
        first = self.condition(acute=True)
        conds = [first]
        if r.random() < 0.25:
            conds.append(self.condition(acute=True, exclude=(first.code,)))
        said = [self.phrase(c) for c in conds]
        span, objective = self.duration()
        style = r.randrange(3)
        if style == 0:
            text = f"I've had {said[0]} for {span}."
            if len(said) > 1:
                text += f" Now I also have {said[1]}."
        elif style == 1:
            text = f"My {said[0].removeprefix('a ')} started {span} ago"
            text += f" and I have {said[1]} too." if len(said) > 1 else " and it's getting worse."
        else:
            both = " and ".join(said)
            text = f"I'm calling because of {both}. It's been {span}."
        lines.append(f"Caller: {self.hello()} {text}")
        lines.append("Agent: Do you have a fever or trouble breathing?")
        lines.append(f"Caller: {r.choice(('No, neither.', 'No fever.', 'A little warm, but breathing is fine.'))}")
        lines += self.identity()
        roll = r.random()
        booking, needed = None, True
        if roll < 0.30:  # hard case: needed, but not scheduled
            lines.append(self.nurse_callback())
            plan = "Nurse to call back"
        elif roll < 0.72:
            more, booking = self.booked(day, r.choice(("You should be seen. ", "Let's get you seen. ")))
            lines += more
            plan = self.plan_for(booking)
        else:
            lines.append(r.choice((
                "Agent: That sounds mild. Rest, drink fluids, and call us if it gets worse.",
                "Agent: Try over-the-counter relief and rest. Call back if it is not better in a week.",
            )))
            plan, needed = "Self-care advice given", False
        subjective = "Reports " + " and ".join(s.removeprefix("a ") for s in said)
        assessment = "; ".join(c.label for c in conds)
        return Call("symptom_report", lines, [c.code for c in conds], subjective, objective, assessment, plan,
                    booking, needed)

    def billing_question(self, day: date) -> Call:
        r = self.rng
        lines = [self.opening()]
        visit, doctor = self.past_date(day), self.doctor()
        amount = r.choice((25, 35, 40, 45, 60, 75, 90, 120))
        style = r.randrange(4)
        if style == 0:
            ask = f"There's a charge of {amount} dollars on my last bill I don't understand."
            reply = f"That is the fee for your visit with {doctor} on {visit}."
            subjective, plan = "Asks about a charge on last bill", "Charge explained"
        elif style == 1:
            ask = f"I was billed twice for my visit on {visit}."
            reply = "I see the second charge. I've removed it, and you'll get a corrected bill."
            subjective, plan = "Reports double billing", "Duplicate charge removed"
        elif style == 2:
            ask = f"Can I pay my bill of {amount * 3} dollars in instalments?"
            reply = "Yes, we can split it into three monthly payments."
            subjective, plan = "Asks to pay bill in instalments", "Payment plan set up"
        else:
            ask = f"I paid my copay at the desk on {visit} but got a bill for it."
            reply = f"I found your payment of {amount} dollars. The bill is cancelled."
            subjective, plan = "Reports copay billed after payment", "Bill cancelled"
        lines.append(f"Caller: {self.hello()} {ask}")
        lines += self.identity()
        lines.append(f"Agent: {reply}")
        lines.append(f"Caller: {r.choice(('Great, thanks.', 'Okay, thank you.', 'Thanks for sorting it.'))}")
        return Call("billing_question", lines, [], subjective, "Phone call, no exam", "Billing query", plan,
                    None, False)

    def cancel_appointment(self, day: date) -> Call:
        r = self.rng
        lines = [self.opening()]
        old_when, old_at = self.slot(day)
        old_with = self.clinician()
        codes: list[str] = []
        style = r.randrange(3)
        if style == 0:
            lines.append(f"Caller: {self.hello()} I need to cancel my appointment with {old_with} on {old_when} "
                         f"at {old_at}.")
        elif style == 1:
            cond = self.condition(acute=True)
            codes = [cond.code]
            lines.append(f"Caller: {self.hello()} My {self.phrase(cond).removeprefix('a ')} is better, so I want "
                         f"to cancel my visit on {old_when} at {old_at} with {old_with}.")
        else:
            lines.append(f"Caller: {self.hello()} I can't make it on {old_when}. Please cancel the {old_at} "
                         f"appointment with {old_with}.")
        lines += self.identity()
        lines.append("Agent: It's cancelled. Would you like to book another time?")
        booking, needed = None, False
        if r.random() < 0.35:
            lines.append("Caller: Yes, please.")
            more, booking = self.booked(day, "", old_when, old_at, old_with)
            lines += more
            plan, needed = f"Rebooked with {booking[2]}", True
        else:
            lines.append(r.choice(("Caller: No, I'll call again when I need one.", "Caller: No, not right now.",
                                   "Caller: No thanks.")))
            plan = "Appointment cancelled, no rebooking"
        assessment = BY_CODE[codes[0]].label + ", improving" if codes else "Administrative"
        return Call("cancel_appointment", lines, codes, f"Cancels appointment on {old_when}",
                    "Phone call, no exam", assessment, plan, booking, needed)

    def insurance_update(self, day: date) -> Call:
        r = self.rng
        lines = [self.opening()]
        member = f"{r.choice('ABCDEFGHKLMNPRSTWXYZ')}{r.choice('ABCDEFGHKLMNPRSTWXYZ')}{r.randint(100000, 999999)}"
        insurer = r.choice(("Blue Harbor Health", "Northstar Mutual", "Evergreen Care Plans", "Summit Health Plan"))
        style = r.randrange(3)
        if style == 0:
            lines.append(f"Caller: {self.hello()} I changed jobs and have new insurance with {insurer}.")
            lines.append("Agent: What is the member ID?")
            lines.append(f"Caller: It's {member}.")
        elif style == 1:
            lines.append(f"Caller: {self.hello()} I need to update my insurance. The new member ID is {member}.")
            lines.append("Agent: And the insurer?")
            lines.append(f"Caller: {insurer}.")
        else:
            lines.append(f"Caller: {self.hello()} My insurance card changed. It's {insurer} now, member ID {member}.")
        lines += self.identity()
        lines.append(r.choice(("Agent: Thank you. Your insurance details are updated.",
                               "Agent: Got it. I've updated your record.",
                               "Agent: All set, the new insurance is on file.")))
        lines.append("Caller: Thanks, bye.")
        return Call("insurance_update", lines, [], f"Reports new insurance with {insurer}",
                    "Phone call, no exam", "Administrative", "Insurance details updated", None, False)

    def referral_request(self, day: date) -> Call:
        r = self.rng
        lines = [self.opening()]
        cond = r.choice([c for c in CONDITIONS if c.specialty])
        said = self.phrase(cond).removeprefix("a ")
        specialty = cond.specialty or ""
        doctor = self.doctor()
        style = r.randrange(3)
        if style == 0:
            lines.append(f"Caller: {self.hello()} I'd like a referral to {specialty} for my {said}.")
        elif style == 1:
            lines.append(f"Caller: {self.hello()} {doctor} said I should see {specialty} about my {said}. "
                         "Can you set up the referral?")
        else:
            lines.append(f"Caller: {self.hello()} My {said} isn't improving. Can I be referred to {specialty}?")
        lines += self.identity()
        # Hard case: a clinician is named and a date may be mentioned, but nothing is booked.
        lines.append(f"Agent: {doctor} will review the request and sign the referral.")
        lines.append(r.choice((
            "Agent: The specialist's office will contact you directly to arrange a time.",
            f"Agent: The referral letter should go out by {(day + timedelta(days=r.randint(2, 6))).isoformat()}, "
            "and they will call you to schedule.",
            "Agent: You'll get a letter from them with an appointment.",
        )))
        lines.append("Caller: Okay, thanks.")
        target = specialty.removeprefix("a ").removeprefix("the ")
        return Call("referral_request", lines, [cond.code], f"Requests referral to {target} for {said}",
                    "Phone call, no exam", cond.label, f"Referral to {target} requested", None, False)

    def make(self, intent: str, day: date) -> Call:
        maker: Callable[[date], Call] = getattr(self, intent)
        return self.fit(maker(day))


# --------------------------------------------------------------------------------------------------------------
# The contract's correctness rule (used to check every label)

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^\d{2}:\d{2}$")


def indicated_codes(transcript: str) -> set[str]:
    text = transcript.lower()
    return {code for code, words in INDICATORS.items() if any(w in text for w in words)}


def is_correct(transcript: str, answer_text: str) -> bool:
    """The contract's rule: valid JSON of the shape, indicated codes only, grounded follow-up values."""
    try:
        answer = json.loads(answer_text)
    except ValueError:
        return False
    if not isinstance(answer, dict) or set(answer) != {"intent", "soap", "icd10", "follow_up"}:
        return False
    if answer["intent"] not in INTENT_WEIGHTS:
        return False
    soap, codes, follow = answer["soap"], answer["icd10"], answer["follow_up"]
    if not isinstance(soap, dict) or set(soap) != {"subjective", "objective", "assessment", "plan"}:
        return False
    if not all(isinstance(v, str) for v in soap.values()):
        return False
    if not isinstance(codes, list) or not all(isinstance(c, str) and c in INDICATORS for c in codes):
        return False
    if not set(codes) <= indicated_codes(transcript):
        return False
    if not isinstance(follow, dict) or set(follow) != {"needed", "date", "time", "clinician"}:
        return False
    if not isinstance(follow["needed"], bool):
        return False
    for key, pattern in (("date", DATE_RE), ("time", TIME_RE), ("clinician", None)):
        value = follow[key]
        if value is None:
            continue
        if not isinstance(value, str) or (pattern and not pattern.match(value)) or value not in transcript:
            return False
    return True


# --------------------------------------------------------------------------------------------------------------
# Teacher mistakes


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def make_wrong(rng: random.Random, kind: str, call: Call, day: date) -> str:
    """A teacher answer with one mistake of this kind, which the correctness rule catches."""
    answer = call.answer()
    transcript = call.transcript
    follow = answer["follow_up"]
    if kind == "invalid_json":
        text = dumps(answer)
        style = rng.random()
        if style < 0.6:
            return text[: rng.randint(len(text) // 3, len(text) - 3)]
        if style < 0.8:
            return text.replace(":true", ":True").replace(":false", ":False").replace(":null", ":None")
        return text.replace('"intent":', "'intent':").replace('"soap":', "'soap':")
    if kind == "missing_field":
        where = rng.choice(("soap.plan", "soap.assessment", "follow_up", "icd10", "follow_up.date",
                            "follow_up.clinician"))
        head, _, key = where.rpartition(".")
        del (answer[head] if head else answer)[key]
        return dumps(answer)
    if kind == "wrong_code":
        present = indicated_codes(transcript)
        wrong = rng.choice([c for c in INDICATORS if c not in present])
        if answer["icd10"] and rng.random() < 0.6:
            answer["icd10"][rng.randrange(len(answer["icd10"]))] = wrong
        else:
            answer["icd10"].append(wrong)
        return dumps(answer)
    if kind == "ungrounded_date":
        base = date.fromisoformat(follow["date"]) if follow["date"] else day
        while True:
            invented = (base + timedelta(days=rng.choice((-3, -2, -1, 1, 2, 3, 7)))).isoformat()
            if invented not in transcript:
                break
        follow.update(needed=True, date=invented)
    elif kind == "ungrounded_time":
        while True:
            invented = rng.choice(TIMES)
            if invented not in transcript:
                break
        follow.update(needed=True, time=invented)
    elif kind == "ungrounded_clinician":
        while True:
            invented = rng.choice(CLINICIANS)
            if invented.split()[-1] not in transcript:
                break
        follow.update(needed=True, clinician=invented)
    else:
        raise ValueError(f"unknown error kind {kind!r}")
    if kind == "ungrounded_clinician" and call.booking:  # the teacher's plan names the clinician it invented
        answer["soap"]["plan"] = answer["soap"]["plan"].replace(call.booking[2], follow["clinician"])
    return dumps(answer)


# --------------------------------------------------------------------------------------------------------------
# Export lines


def approx_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def completion_id(rng: random.Random) -> str:
    return f"chatcmpl-{rng.getrandbits(96):024x}"


def content_key(messages: list[tuple[str, str]]) -> str:
    return hashlib.sha256(dumps(messages).encode()).hexdigest()


@dataclass
class Line:
    """One line of an export file, with what the labels say about it."""

    created: int  # where the line sorts; the line itself may carry no or a bad `created`
    text: str
    kind: str  # trace | quarantine | duplicate | do_not_train (duplicates are recomputed in file order)
    completion_id: str | None = None
    intent: str | None = None
    teacher_correct: bool | None = None
    error_kind: str | None = None
    quarantine_reason: str | None = None
    reference: dict[str, Any] | None = None
    content: str | None = None  # the hash of request + response, for de-duplication
    shape: str = "stored"  # stored (a stored completion) or chat (a chat example)
    record: dict[str, Any] = field(default_factory=dict)


def stored_completion(cid: str, created: int, user: str, answer_text: str, metadata: dict[str, str]) -> dict:
    prompt_tokens = approx_tokens(SYSTEM_PROMPT) + approx_tokens(user) + 7
    completion_tokens = approx_tokens(answer_text)
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": answer_text, "refusal": None}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "metadata": metadata,
        "request_messages": [{"id": f"{cid}-0", "role": "system", "content": SYSTEM_PROMPT},
                             {"id": f"{cid}-1", "role": "user", "content": user}],
    }


def chat_example(cid: str | None, created: int | None, user: str, answer_text: str,
                 metadata: dict[str, str]) -> dict:
    record: dict[str, Any] = {}
    if cid is not None:
        record["id"] = cid
    if created is not None:
        record["created"] = created
        record["model"] = MODEL
    record["messages"] = [{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": user},
                          {"role": "assistant", "content": answer_text}]
    record["metadata"] = metadata
    return record


class Corpus:
    """Draws every call, teacher answer and defect from one seeded generator."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.maker = CallMaker(self.rng)
        self.seen_transcripts: set[str] = set()
        self.seen_ids: set[str] = set()
        self.intents = list(INTENT_WEIGHTS)
        self.weights = list(INTENT_WEIGHTS.values())
        self.outcomes: list[str] = []
        self.error_kinds: list[str] = []
        self.reasons: list[str] = []

    def outcome(self) -> str:
        """correct, wrong or do_not_train, dealt from shuffled decks of 100 so the shares hold exactly."""
        if not self.outcomes:
            wrong, dnt = round(100 * WRONG_SHARE), round(100 * DO_NOT_TRAIN_SHARE)
            self.outcomes = ["wrong"] * wrong + ["do_not_train"] * dnt + ["correct"] * (100 - wrong - dnt)
            self.rng.shuffle(self.outcomes)
        return self.outcomes.pop()

    def error_kind(self) -> str:
        """Error kinds dealt in turn from shuffled decks, so each is about equally common."""
        if not self.error_kinds:
            self.error_kinds = list(ERROR_KINDS)
            self.rng.shuffle(self.error_kinds)
        return self.error_kinds.pop()

    def new_id(self) -> str:
        while True:
            cid = completion_id(self.rng)
            if cid not in self.seen_ids:
                self.seen_ids.add(cid)
                return cid

    def new_call(self, day: date) -> Call:
        intent = self.rng.choices(self.intents, self.weights)[0]
        for _ in range(100):
            call = self.maker.make(intent, day)
            if call.transcript not in self.seen_transcripts:
                self.seen_transcripts.add(call.transcript)
                return call
        raise RuntimeError(f"could not draw a unique {intent} call")

    def trace(self, day: date, created: int, *, chat_shape: bool = False, outcome: str | None = None) -> Line:
        """A well-formed trace: a correct or wrong teacher answer, sometimes marked do-not-train."""
        rng = self.rng
        call = self.new_call(day)
        reference = call.answer()
        correct_text = dumps(reference)
        transcript = call.transcript
        if not is_correct(transcript, correct_text):
            raise AssertionError(f"a reference answer breaks the rule: {correct_text}\n{transcript}")
        metadata = {"agent": AGENT, "intent": call.intent, "layer": "teacher",
                    "ttft_ms": str(rng.randint(250, 900))}
        kind, error_kind, answer_text = "trace", None, correct_text
        outcome = outcome or self.outcome()
        if outcome == "wrong":
            error_kind = self.error_kind()
            answer_text = make_wrong(rng, error_kind, call, day)
            if is_correct(transcript, answer_text):
                raise AssertionError(f"a {error_kind} answer passes the rule: {answer_text}")
        elif outcome == "do_not_train":
            kind = "do_not_train"
            metadata["do_not_train"] = "true"
        cid: str | None = self.new_id()
        if chat_shape:
            if rng.random() < 0.5:
                cid = None
            record = chat_example(cid, created if rng.random() < 0.6 else None, transcript, answer_text, metadata)
        else:
            record = stored_completion(cid or "", created, transcript, answer_text, metadata)
        content = content_key([("system", SYSTEM_PROMPT), ("user", transcript), ("assistant", answer_text)])
        return Line(created, dumps(record), kind, cid, call.intent, error_kind is None, error_kind, None,
                    reference, content, "chat" if chat_shape else "stored", record)

    def quarantine_reason(self) -> str:
        if not self.reasons:
            self.reasons = ["invalid_json", "missing_id", "wrong_type", "wrong_type", "empty_answer"]
            self.rng.shuffle(self.reasons)
        return self.reasons.pop()

    def quarantined(self, day: date, created: int, reason: str) -> Line:
        """A line the pipeline must quarantine."""
        good = self.trace(day, created, outcome="correct")
        record: dict[str, Any] = json.loads(good.text)
        cid: str | None = record["id"]
        if reason == "invalid_json":
            text = good.text[: self.rng.randint(40, len(good.text) - 40)]
            return Line(created, text, "quarantine", quarantine_reason=reason)
        if reason == "missing_id":
            del record["id"]
            cid = None
        elif reason == "wrong_type":
            which = self.rng.randrange(4)
            if which == 0:
                record["created"] = "yesterday"
            elif which == 1:
                record["metadata"] = "x"
            elif which == 2:
                record["choices"] = {}
            else:
                record["usage"]["prompt_tokens"] = str(record["usage"]["prompt_tokens"])
        elif reason == "empty_answer":
            record["choices"][0]["message"]["content"] = ""
        else:
            raise ValueError(reason)
        return Line(created, dumps(record), "quarantine", completion_id=cid, quarantine_reason=reason)

    def exact_copy(self, original: Line) -> Line:
        return Line(original.created, original.text, "duplicate", original.completion_id, original.intent,
                    content=original.content, shape=original.shape, record=original.record)

    def content_copy(self, original: Line, created: int) -> Line:
        """The same request and answer under a new id (a client retry), sometimes as a chat example."""
        record = original.record
        answer_text = record["choices"][0]["message"]["content"]
        transcript = record["request_messages"][1]["content"]
        metadata = dict(record["metadata"], ttft_ms=str(self.rng.randint(250, 900)))
        if self.rng.random() < 0.25:
            copy, cid, shape = chat_example(None, None, transcript, answer_text, metadata), None, "chat"
        else:
            cid, shape = self.new_id(), "stored"
            copy = stored_completion(cid, created, transcript, answer_text, metadata)
        return Line(created, dumps(copy), "duplicate", cid, original.intent, content=original.content, shape=shape,
                    record=copy)


def day_bounds(day: date) -> tuple[int, int]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return start, start + 86400 - 1


def build_day(corpus: Corpus, day: date, *, part2: bool, overlap: bool) -> dict[str, list[Line]]:
    """The export files of one day: the main file and, on some days, a second part."""
    rng = corpus.rng
    start, end = day_bounds(day)
    n_lines = rng.randint(44, 56)
    n_quarantine = rng.choices((0, 1, 2), (25, 45, 30))[0]
    n_exact, n_content = rng.choices(((0, 0), (1, 0), (0, 1), (1, 1)), (30, 25, 25, 20))[0]
    n_chat = rng.choice((1, 1, 2, 3)) if rng.random() < 0.25 else 0
    n_traces = n_lines - n_quarantine - n_exact - n_content
    times = sorted(rng.randint(start, end - 3600) for _ in range(n_traces))
    chat_at = set(rng.sample(range(n_traces), n_chat))
    lines = [corpus.trace(day, t, chat_shape=i in chat_at) for i, t in enumerate(times)]
    copyable = [ln for ln in lines if ln.kind == "trace" and ln.shape == "stored"]
    for original in rng.sample(copyable, n_exact):
        lines.insert(lines.index(original) + 1, corpus.exact_copy(original))
    for original in rng.sample(copyable, n_content):
        lines.append(corpus.content_copy(original, min(end, original.created + rng.randint(60, 3000))))
    for _ in range(n_quarantine):
        lines.append(corpus.quarantined(day, rng.randint(start, end), corpus.quarantine_reason()))
    lines.sort(key=lambda ln: ln.created)  # stable: an exact copy stays right after its original
    files = {f"{day.isoformat()}.jsonl": lines}
    if part2:
        later = sorted(rng.randint(end - 3500, end) for _ in range(rng.randint(3, 5)))
        extra = [corpus.trace(day, t) for t in later]
        # The exports overlap: one line is in both files (same id, same content). The second part sorts first
        # by name ("-part2" < "."), so its copy is the first occurrence and the main file's is the duplicate.
        if overlap:
            shared = [ln for ln in lines if ln.kind == "trace" and ln.shape == "stored"][-1]
            extra.insert(0, replace(shared))
        files[f"{day.isoformat()}-part2.jsonl"] = extra
    return files


# --------------------------------------------------------------------------------------------------------------
# Labels


def label_files(files: dict[str, list[Line]]) -> list[dict[str, Any]]:
    """One label per line, in file-name then line order; the first occurrence of an id or content wins."""
    labels: list[dict[str, Any]] = []
    seen: dict[str, set[str]] = {}
    for name in sorted(files):
        partition = name[:10]
        day_seen = seen.setdefault(partition, set())
        for number, line in enumerate(files[name], start=1):
            kind = line.kind
            if kind != "quarantine":
                keys = {line.content or ""} | ({line.completion_id} if line.completion_id else set())
                if keys & day_seen:
                    kind = "duplicate"
                elif kind == "duplicate":
                    raise AssertionError(f"{name}:{number} is marked duplicate but is the first occurrence")
                day_seen |= keys
            row = kind in ("trace", "do_not_train")
            labels.append({
                "partition": partition,
                "file": name,
                "line": number,
                "kind": kind,
                "completion_id": line.completion_id,
                "intent": line.intent,
                "teacher_correct": line.teacher_correct if row else None,
                "error_kind": line.error_kind if row else None,
                "quarantine_reason": line.quarantine_reason,
                "reference": line.reference if row else None,
            })
    return labels


# --------------------------------------------------------------------------------------------------------------
# General examples


WORDS = ("river", "lantern", "quiet", "orange", "meadow", "copper", "window", "garden", "silver", "harbor",
         "pencil", "thunder", "violet", "marble", "candle", "forest", "ladder", "pepper", "saddle", "tunnel",
         "velvet", "walnut", "basket", "cobalt", "dragon", "ember", "falcon", "glacier", "hazel", "island")
SUBJECTS = ("the old ferry", "a small robot", "my neighbour's cat", "the night train", "a patient gardener",
            "the city library", "our team captain", "a curious student", "the morning bus", "the village baker")
VERBS = ("crosses", "paints", "watches", "repairs", "follows", "visits", "carries", "counts", "builds", "finds")
OBJECTS = ("the quiet river", "seven blue lanterns", "a broken clock", "the copper bridge", "fresh bread",
           "the tall windmill", "a pile of letters", "the northern hills", "an empty stage", "three paper boats")
FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("Ada", "Ravi", "Mina", "Theo", "Lina", "Omar"),
    "city": ("Lyon", "Oslo", "Porto", "Quito", "Perth", "Graz"),
    "colour": ("green", "blue", "amber", "violet", "teal"),
    "team": ("Falcons", "Rovers", "Comets", "Herons"),
    "role": ("editor", "pilot", "teacher", "chef", "analyst"),
    "pet": ("parrot", "rabbit", "goldfish", "tortoise"),
    "language": ("Finnish", "Greek", "Swahili", "Portuguese"),
    "fruit": ("mango", "plum", "kiwi", "apricot"),
    "country": ("Chile", "Kenya", "Norway", "Vietnam"),
    "day": ("Tuesday", "Friday", "Sunday", "Monday"),
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def sentence(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"


def gen_arithmetic(rng: random.Random) -> tuple[str, str, str, str]:
    style = rng.randrange(5)
    a, b = rng.randint(12, 99), rng.randint(3, 40)
    if style == 0:
        return f"What is {a} + {b}? Answer with the number only.", str(a + b), "exact", str(a + b)
    if style == 1:
        return f"What is {a} * {b}? Answer with the number only.", str(a * b), "exact", str(a * b)
    if style == 2:
        big = a + b * 7
        return f"Subtract {b} from {big}. Reply with just the result.", str(big - b), "exact", str(big - b)
    if style == 3:
        product = a * b
        return f"What is {product} divided by {b}?", f"{product} divided by {b} is {a}.", "contains", f"is {a}"
    percent, base = rng.choice((10, 20, 25, 50)), rng.randint(2, 40) * 20
    result = base * percent // 100
    return f"What is {percent}% of {base}?", f"{percent}% of {base} is {result}.", "contains", f"is {result}"


def gen_date(rng: random.Random) -> tuple[str, str, str, str]:
    start = date(2026, 1, 1) + timedelta(days=rng.randint(0, 360))
    style = rng.randrange(4)
    n = rng.randint(3, 60)
    if style == 0:
        out = (start + timedelta(days=n)).isoformat()
        return f"What date is {n} days after {start.isoformat()}? Answer as YYYY-MM-DD.", out, "exact", out
    if style == 1:
        out = (start - timedelta(days=n)).isoformat()
        return f"What date was {n} days before {start.isoformat()}? Answer as YYYY-MM-DD.", out, "exact", out
    if style == 2:
        end = start + timedelta(days=n)
        return (f"How many days are there from {start.isoformat()} to {end.isoformat()}? Answer with the number "
                "only."), str(n), "exact", str(n)
    weekday = WEEKDAYS[start.weekday()]
    return f"What day of the week is {start.isoformat()}?", f"{start.isoformat()} is a {weekday}.", "contains", \
        weekday


def gen_units(rng: random.Random) -> tuple[str, str, str, str]:
    style = rng.randrange(6)
    if style == 0:
        km = rng.randint(2, 60)
        return f"Convert {km} km to metres.", f"{km} km is {km * 1000} metres.", "contains", f"{km * 1000} metres"
    if style == 1:
        h = rng.randint(2, 30)
        return f"How many minutes are in {h} hours?", f"{h} hours is {h * 60} minutes.", "contains", f"{h * 60} minutes"
    if style == 2:
        kg = rng.randint(2, 40) / 2
        grams = int(kg * 1000)
        return f"Convert {kg:g} kg to grams.", f"{kg:g} kg is {grams} grams.", "contains", f"{grams} grams"
    if style == 3:
        c = rng.randrange(-20, 105, 5)
        f = c * 9 // 5 + 32
        return (f"Convert {c} degrees Celsius to Fahrenheit.", f"{c} degrees Celsius is {f} degrees Fahrenheit.",
                "contains", f"{f} degrees")
    if style == 4:
        inches = rng.randint(2, 40)
        cm = f"{inches * 2.54:.2f}".rstrip("0").rstrip(".")
        return f"How many centimetres is {inches} inches?", f"{inches} inches is {cm} cm.", "contains", f"{cm} cm"
    litres = rng.randint(2, 25)
    return f"Convert {litres} litres to millilitres.", f"{litres} litres is {litres * 1000} millilitres.", \
        "contains", f"{litres * 1000} millilitres"


def gen_rewrite(rng: random.Random) -> tuple[str, str, str, str]:
    text = sentence(rng)
    style = rng.randrange(3)
    if style == 0:
        out = text.upper()
        return f"Rewrite in uppercase: {text}", out, "exact", out
    if style == 1:
        out = " ".join(reversed(text.split()))
        return f"Reverse the word order of this sentence: {text}", out, "exact", out
    out = " ".join(w.capitalize() for w in text.split())
    return f"Write this in title case: {text}", out, "exact", out


def gen_list(rng: random.Random) -> tuple[str, str, str, str]:
    style = rng.randrange(4)
    if style == 0:
        words = rng.sample(WORDS, rng.randint(4, 7))
        out = ", ".join(sorted(words))
        return f"Sort these words alphabetically: {', '.join(words)}", out, "exact", out
    if style == 1:
        items = rng.sample(WORDS, rng.randint(3, 9))
        return f"How many items are in this list: {', '.join(items)}? Answer with the number only.", \
            str(len(items)), "exact", str(len(items))
    if style == 2:
        numbers = rng.sample(range(1, 200), rng.randint(4, 7))
        out = str(max(numbers))
        return f"Which is the largest number: {', '.join(map(str, numbers))}? Answer with the number only.", out, \
            "exact", out
    numbers = rng.sample(range(1, 100), rng.randint(4, 6))
    out = ", ".join(map(str, sorted(numbers)))
    return f"Sort these numbers from smallest to largest: {', '.join(map(str, numbers))}", out, "exact", out


def gen_format(rng: random.Random) -> tuple[str, str, str, str]:
    keys = rng.sample(sorted(FIELDS), rng.randint(2, 4))
    pairs = {k: rng.choice(FIELDS[k]) for k in keys}
    style = rng.randrange(2)
    block = "\n".join(f"{k}: {v}" for k, v in pairs.items())
    if style == 0:
        out = dumps(pairs)
        return f"Turn these lines into a compact JSON object with string values:\n{block}", out, "exact", out
    key = rng.choice(keys)
    return f"In these lines, what is the value of {key}?\n{block}\nAnswer with the value only.", pairs[key], \
        "exact", pairs[key]


GENERAL_CATEGORIES: dict[str, Callable[[random.Random], tuple[str, str, str, str]]] = {
    "arithmetic": gen_arithmetic,
    "date_arithmetic": gen_date,
    "unit_conversion": gen_units,
    "rewriting": gen_rewrite,
    "list_tasks": gen_list,
    "format_tasks": gen_format,
}
GENERAL_COUNT = 320
GENERAL_DUPLICATES = 3


def general_examples(rng: random.Random) -> list[dict[str, Any]]:
    unique: list[dict[str, Any]] = []
    prompts: set[str] = set()
    names = list(GENERAL_CATEGORIES)
    while len(unique) < GENERAL_COUNT - GENERAL_DUPLICATES:
        category = names[len(unique) % len(names)]
        prompt, answer, check, value = GENERAL_CATEGORIES[category](rng)
        if prompt in prompts:
            continue
        prompts.add(prompt)
        assert (answer == value) if check == "exact" else (value in answer), (prompt, answer)
        unique.append({"category": category,
                       "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                       "check": {"type": check, "value": value}})
    out = list(unique)
    for original in rng.sample(unique, GENERAL_DUPLICATES):
        out.insert(rng.randrange(out.index(original) + 1, len(out) + 1), dict(original))
    return [{"id": f"gen-{i:04d}", **example} for i, example in enumerate(out, start=1)]


# --------------------------------------------------------------------------------------------------------------
# Writing


def build(seed: int = SEED) -> tuple[dict[str, list[Line]], list[dict[str, Any]], list[dict[str, Any]]]:
    corpus = Corpus(seed)
    rng = corpus.rng
    days = [FIRST_DAY + timedelta(days=i) for i in range(DAYS)]
    part2_days = set(rng.sample(days, 3))
    overlap_day = min(part2_days)
    files: dict[str, list[Line]] = {}
    for day in days:
        files.update(build_day(corpus, day, part2=day in part2_days, overlap=day == overlap_day))
    labels = label_files(files)
    general = general_examples(random.Random(seed + 1))
    return files, labels, general


def summary(files: dict[str, list[Line]], labels: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = Counter(lb["kind"] for lb in labels)
    rows = [lb for lb in labels if lb["kind"] in ("trace", "do_not_train")]
    return {
        "files": len(files),
        "lines": len(labels),
        "kinds": dict(sorted(kinds.items())),
        "wrong_answers": dict(sorted(Counter(lb["error_kind"] for lb in rows if lb["error_kind"]).items())),
        "quarantine_reasons": dict(sorted(Counter(lb["quarantine_reason"] for lb in labels
                                                  if lb["quarantine_reason"]).items())),
        "intents": dict(Counter(lb["intent"] for lb in rows).most_common()),
        "chat_example_lines": sum(ln.shape == "chat" for lines in files.values() for ln in lines),
    }


README = """# Bundled sample corpus (synthetic)

Everything here is made up by `data/generate_sample.py` (fixed seed, standard library only): callers, clinicians,
clinics, calls and the teacher's answers. No real people or patient data.

- `traces/YYYY-MM-DD*.jsonl`: one JSONL export per day, 2026-10-01 .. 2026-10-30, three days with a second part.
  Each line is a stored completion (`GET /v1/chat/completions/{{id}}` plus `request_messages`) or a chat
  example (`{{"messages": [...], "metadata": {{...}}}}`), with a few malformed and duplicate lines planted.
- `labels.jsonl`: the truth about each non-blank line (kind, teacher correctness, error kind, quarantine
  reason, reference answer), in file-name then line order (lines numbered from 1). The pipeline never reads it;
  tests use it to score the pipeline.
- `../general/general_examples.jsonl`: general-purpose chat examples mixed into training.

Regenerate (byte-identical): `python data/generate_sample.py`

## Totals

{totals}
"""


def render_totals(stats: dict[str, Any], general: list[dict[str, Any]]) -> str:
    lines = [f"- files: {stats['files']}, lines: {stats['lines']}"]
    lines.append("- lines by kind: " + ", ".join(f"{k} {v}" for k, v in stats["kinds"].items()))
    wrong = sum(stats["wrong_answers"].values())
    rows = stats["kinds"].get("trace", 0) + stats["kinds"].get("do_not_train", 0)
    lines.append(f"- wrong teacher answers: {wrong} of {rows} trace rows ({wrong / rows:.1%}): "
                 + ", ".join(f"{k} {v}" for k, v in stats["wrong_answers"].items()))
    lines.append("- quarantined by reason: " + ", ".join(f"{k} {v}" for k, v in stats["quarantine_reasons"].items()))
    lines.append(f"- chat-example lines: {stats['chat_example_lines']}")
    lines.append("- trace rows by intent: " + ", ".join(f"{k} {v}" for k, v in stats["intents"].items()))
    categories = Counter(g["category"] for g in general)
    lines.append(f"- general examples: {len(general)} (" + ", ".join(f"{k} {v}" for k, v in categories.items())
                 + f"), {GENERAL_DUPLICATES} of them exact duplicates")
    return "\n".join(lines)


def write(out: Path, seed: int = SEED) -> dict[str, Any]:
    files, labels, general = build(seed)
    traces_dir = out / "sample" / "traces"
    traces_dir.mkdir(parents=True, exist_ok=True)
    for stale in traces_dir.glob("2026-*.jsonl"):
        if stale.name not in files:
            stale.unlink()
    for name, lines in files.items():
        (traces_dir / name).write_text("".join(ln.text + "\n" for ln in lines), encoding="utf-8")
    (out / "sample" / "labels.jsonl").write_text("".join(dumps(lb) + "\n" for lb in labels), encoding="utf-8")
    stats = summary(files, labels)
    totals = render_totals(stats, general)
    (out / "sample" / "README.md").write_text(README.format(totals=totals), encoding="utf-8")
    (out / "general").mkdir(parents=True, exist_ok=True)
    (out / "general" / "general_examples.jsonl").write_text("".join(dumps(g) + "\n" for g in general),
                                                             encoding="utf-8")
    print(totals)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder to write sample/ and general/ into (default: the folder of this script)")
    args = parser.parse_args(argv)
    write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
