#!/usr/bin/env python3
"""Generate the blind PHI-redaction test set: batch1.jsonl and batch2.jsonl.

Written by a helper that never read the project's redaction detectors or their
tests.  The set is fully deterministic (fixed seed): run

    python distill_pipeline_tests/phi_blind/make_blind.py

to rewrite both files, validate them and print the per-type counts.
``python make_blind.py --check`` only validates the files already on disk.

Every transcript is assembled from hand-written phrase variants.  Batch 1 and
batch 2 draw from *disjoint* variant lists for every PHI cue (intro, name
request, spelling, DOB / MRN / phone / email / SSN / address questions and
answers, value formats), from disjoint name pools and disjoint street names,
so batch 2 can be held back to check that a fix generalises.
"""
from __future__ import annotations

import json
import random
import re
import sys
import unicodedata
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261103
N_BATCH = {1: 212, 2: 110}
MIN_PER_TYPE = {1: 30, 2: 20}
MIN_NO_PHI = {1: 8, 2: 4}

PHI_TYPES = ["name", "mrn", "phone", "dob", "email", "ssn", "address"]
KEEP_KINDS = ["clinician", "follow_up_date", "time", "icd10", "amount"]
EXTRA_KEEP_KINDS = ["reference", "medication", "clinic"]

# --------------------------------------------------------------------------
# Name pools.  "First g" where g is f/m.  Each group's lists are split: the
# first two thirds go to batch 1, the rest to batch 2 (new names in batch 2).
# Every first name and every surname is used in at most two transcripts.
# Surnames of the clinicians (and of the clinicians seen in the sample traces)
# are deliberately absent.
# --------------------------------------------------------------------------
NAME_GROUPS = {
    "english": (
        "Oliver m|Charlotte f|Harriet f|George m|Imogen f|Beatrice f|Rupert m|Eleanor f|Theodore m|"
        "Matilda f|Jasper m|Florence f|Barnaby m|Penelope f|Dominic m|Rosalind f|Tabitha f|Gareth m",
        "Ashworth|Pemberton|Hargreaves|Whitfield|Thornbury|Cartwright|Fairclough|Blackwood|Ellison|"
        "Kingsley|Merriweather|Fenwick|Stanton|Bramley|Radcliffe|Pickering|Lowther|Holloway",
    ),
    "irish_scottish": (
        "Siobhan f|Niamh f|Ciaran m|Aoife f|Padraig m|Eoin m|Saoirse f|Fionnuala f|Cormac m|"
        "Roisin f|Lachlan m|Isla f|Ewan m|Morag f|Callum m",
        "O'Sullivan|McAllister|Donnelly|MacLeod|Gallagher|O'Rourke|Kavanagh|McCrae|Doherty|"
        "Quinlan|Buchanan|Moynihan|Sweeney|Lennox|Carmichael",
    ),
    "hispanic": (
        "Alejandro m|Guadalupe f|Joaquín m|Ximena f|Rodrigo m|Marisol f|Esteban m|Catalina f|"
        "Valentina f|Santiago m|Itzel f|Ignacio m|Lucía f|Fernando m|Rocío f|Maribel f",
        "Hernández|Villanueva|Castañeda|Gutiérrez|Ochoa|Zamora|Espinoza|Fuentes|Quintero|Salazar|"
        "Montoya|Cárdenas|Navarro|Ibarra|Delgado|Peña",
    ),
    "lusophone": (
        "João m|Thiago m|Larissa f|Beatriz f|Gabriela f|Leandro m|Juliana f|Vinícius m|Fernanda f|"
        "Caio m|Renata f|Adriano m",
        "Carvalho|Ferreira|Monteiro|Albuquerque|Barbosa|Cavalcanti|Pereira|Nascimento|Rocha|"
        "Teixeira|Azevedo|Moreira",
    ),
    "chinese": (
        "Wei m|Xiaoling f|Jianhua m|Meilin f|Zhiwei m|Yuxin f|Haoran m|Shuang f|Qiang m|Lihua f|"
        "Xinyi f|Ruolan f|Bingwen m|Zhen m",
        "Chen|Zhang|Huang|Zhou|Zhao|Wang|Liang|Guo|Tang|Feng|Deng|Luo|Jiang|Cao",
    ),
    "vietnamese": (
        "Linh f|Thao f|Quang m|Huong f|Ngoc f|Tuan m|Phuong f|Khanh m|Minh m|Trang f|Hieu m|Thanh m",
        "Nguyen|Pham|Hoang|Phan|Duong|Truong|Dinh|Huynh|Vuong|Lam|Trinh|Quach",
    ),
    "korean_japanese": (
        "Jiwoo f|Seojun m|Minji f|Hyunwoo m|Eunji f|Dohyun m|Yejin f|Sungmin m|Haruto m|Sakura f|"
        "Kaito m|Hina f|Daiki m|Yuna f|Riku m",
        "Choi|Jung|Kang|Yoon|Jang|Hwang|Kwon|Takahashi|Watanabe|Yamamoto|Kobayashi|Matsumoto|"
        "Inoue|Hayashi|Shimizu",
    ),
    "south_asian": (
        "Aarav m|Priyanka f|Rohan m|Lakshmi f|Vikram m|Ananya f|Siddharth m|Kavitha f|Meenakshi f|"
        "Rajesh m|Deepika f|Harpreet f|Venkatesh m|Ishaan m|Imran m|Ayesha f|Faisal m|Nusrat f|"
        "Tariq m|Farzana f",
        "Raghunathan|Iyer|Chatterjee|Deshpande|Malhotra|Reddy|Krishnan|Banerjee|Kulkarni|Nair|"
        "Agarwal|Choudhury|Menon|Sandhu|Qureshi|Chaudhry|Siddiqui|Hossain|Akhtar|Mirza",
    ),
    "arabic_persian_turkish": (
        "Yousef m|Layla f|Omar m|Mariam f|Khalid m|Noura f|Hamza m|Rania f|Tarek m|Salma f|Bilal m|"
        "Huda f|Dariush m|Shirin f|Reza m|Parisa f|Mehmet m|Elif f|Emre m|Zeynep f",
        "Al-Masri|Khoury|Nasser|Al-Amin|Saleh|Farouk|Abboud|Mansour|El-Sayed|Darwish|Hamdan|"
        "Barakat|Tehrani|Moradi|Karimi|Hosseini|Yilmaz|Demir|Aydin|Ozturk",
    ),
    "west_african": (
        "Chidi m|Ngozi f|Oluwaseun m|Funmilayo f|Emeka m|Adaeze f|Babatunde m|Chiamaka f|Yetunde f|"
        "Obinna m|Ifeoma f|Kelechi m|Folake f|Kwabena m|Akosua f|Abena f",
        "Okonkwo|Nwosu|Balogun|Ogunleye|Abubakar|Olatunji|Adebayo|Igwe|Afolabi|Chukwu|Bello|"
        "Boateng|Asante|Owusu|Nwankwo|Oyelowo",
    ),
    "east_african": (
        "Wanjiru f|Otieno m|Achieng f|Tesfaye m|Selamawit f|Abdirahman m|Hodan f|Baraka m|Zawadi f",
        "Kariuki|Mwangi|Odhiambo|Wambui|Bekele|Tadesse|Haile|Warsame|Kiprono",
    ),
    "slavic": (
        "Katarzyna f|Tomasz m|Agnieszka f|Svetlana f|Oleksandr m|Yulia f|Miroslav m|Jelena f|"
        "Bogdan m|Zuzana f|Radek m|Anastasia f|Piotr m|Milena f|Vesna f|Stanislav m",
        "Kowalczyk|Wiśniewski|Zielinski|Sokolov|Kuznetsova|Shevchenko|Bondarenko|Horvat|Dvořák|"
        "Petrović|Jovanović|Lewandowska|Morozov|Kravets|Marković|Mazur",
    ),
    "nordic_germanic": (
        "Astrid f|Bjørn m|Freja f|Magnus m|Sindre m|Sigrid f|Eero m|Aino f|Henrik m|Solveig f|"
        "Torsten m|Linnea f|Annika f|Jannik m|Wiebke f|Pieter m|Femke f|Joost m",
        "Lindgren|Haugen|Johansen|Bergström|Nieminen|Virtanen|Sandvik|Halvorsen|Korhonen|Dahl|"
        "Holmberg|Nyström|Schneider|Hoffmann|Vogel|Krüger|van Dijk|de Vries",
    ),
    "southern_european": (
        "Giulia f|Lorenzo m|Chiara f|Francesco m|Alessia f|Davide m|Dimitra f|Nikos m|Eleni f|"
        "Stavros m|Mathilde f|Étienne m|Camille f|Margaux f|Guillaume m|Solène f",
        "Esposito|Romano|Colombo|Ricci|Greco|Galli|Papadopoulos|Georgiou|Konstantinou|Marchetti|"
        "Lefebvre|Fournier|Girard|Rousseau|Mercier|Chevalier",
    ),
    "filipino_hebrew": (
        "Maricel f|Jericho m|Rowena f|Ramil m|Analyn f|Rodel m|Avraham m|Tamar f|Yosef m|Shira f|"
        "Eitan m|Moshe m",
        "Dela Cruz|Bautista|Macaraeg|Villareal|Manalo|Pascual|Aquino|Rosenberg|Friedman|"
        "Goldstein|Mizrahi|Ben-David",
    ),
}

# Clinicians: (first, surname, role).  role: dr / nurse / np
CLINICIANS = {
    1: [("Chinedu", "Okafor", "dr"), ("Ingrid", "Lindqvist", "dr"), ("Anjali", "Patel", "nurse"),
        ("Amara", "Singh", "dr"), ("Lucia", "Castillo", "dr"), ("Mark", "Whitlock", "dr"),
        ("Sofia", "Ivanova", "dr"), ("Peter", "Varga", "dr"), ("Claire", "Dubois", "nurse"),
        ("Kenji", "Aoki", "dr"), ("Rebecca", "Thorne", "dr"), ("Grace", "Obuya", "nurse"),
        ("Hamid", "Mahmoud", "dr"), ("Elin", "Sorensen", "dr"), ("Ruth", "Fraser", "nurse"),
        ("Diego", "Estrada", "dr"), ("Arup", "Bhattacharya", "dr"), ("Marta", "Wojcik", "dr"),
        ("Joseph", "Kimathi", "nurse"), ("Farah", "Qasim", "dr")],
    2: [("Helen", "Abernathy", "dr"), ("Chikondi", "Mwale", "dr"), ("Teresa", "Gallardo", "dr"),
        ("Hiroshi", "Tanabe", "dr"), ("Ines", "Costa", "dr"), ("Anand", "Rao", "dr"),
        ("Nils", "Eklund", "dr"), ("Fiona", "Baird", "np"), ("Uchenna", "Nwachukwu", "dr"),
        ("Daniel", "Feldman", "dr"), ("Maeve", "Harlow", "nurse"), ("Kai", "Lindholm", "nurse"),
        ("Olga", "Petrenko", "np"), ("Samuel", "Achterberg", "dr")],
}

CLINICS = {
    1: ["Northgate Health Centre", "Riverside Clinic", "Elm Park Surgery", "Maple Street Clinic",
        "Harbor Family Practice", "Westbrook Medical", "Lakeview Medical Group",
        "St. Brendan's Family Clinic", "Cedar Hollow Health", "Kingsway Medical Practice"],
    2: ["Bayside Community Health", "Foxglove Lane Surgery", "Summit Ridge Clinic",
        "Old Mill Medical Centre", "Pinecrest Family Medicine", "Canal Street Health"],
}

CONDITIONS = {  # (phrase for caller, ICD-10 code, description for agent)
    1: [("sore throat", "J02.9", "acute sore throat"), ("runny nose", "J06.9", "upper respiratory infection"),
        ("high blood pressure", "I10", "essential hypertension"), ("asthma", "J45.909", "asthma"),
        ("back pain", "M54.5", "low back pain"), ("heartburn", "K21.9", "reflux"),
        ("migraines", "G43.909", "migraine"), ("eczema", "L20.9", "atopic dermatitis"),
        ("type 2 diabetes", "E11.9", "type 2 diabetes"), ("anxiety", "F41.1", "generalised anxiety"),
        ("thyroid", "E03.9", "hypothyroidism"), ("cholesterol", "E78.5", "high cholesterol"),
        ("pink eye", "H10.9", "conjunctivitis"), ("knee pain", "M25.561", "right knee pain"),
        ("hay fever", "J30.9", "allergic rhinitis"), ("bladder infection", "N39.0", "urinary tract infection")],
    2: [("low mood", "F32.9", "depression"), ("weight", "E66.9", "obesity"), ("stomach cramps", "K58.9", "IBS"),
        ("knee arthritis", "M17.11", "osteoarthritis of the right knee"), ("chest cold", "J20.9", "acute bronchitis"),
        ("prostate", "N40.0", "enlarged prostate"), ("headaches", "R51.9", "headache"),
        ("psoriasis", "L40.0", "psoriasis"), ("toenail fungus", "B35.1", "fungal nail infection"),
        ("irregular heartbeat", "I48.91", "atrial fibrillation"), ("sinus infection", "J32.9", "chronic sinusitis"),
        ("vitamin D", "E55.9", "vitamin D deficiency"), ("fibromyalgia", "M79.7", "fibromyalgia"),
        ("diabetes", "E11.65", "type 2 diabetes with hyperglycaemia"), ("COPD", "J44.9", "COPD"),
        ("blood pressure", "I10", "hypertension"), ("allergies", "J30.2", "seasonal allergic rhinitis")],
}

CHILD_CONDITIONS = {
    1: [("an ear infection", "H66.90", "otitis media"), ("a sore throat", "J02.9", "acute sore throat"),
        ("asthma", "J45.909", "asthma"), ("eczema", "L20.9", "atopic dermatitis"), ("pink eye", "H10.9", "conjunctivitis"),
        ("a bad cold", "J06.9", "upper respiratory infection"), ("chickenpox", "B01.9", "varicella")],
    2: [("croup", "J05.0", "croup"), ("a high temperature", "R50.9", "fever"), ("hand, foot and mouth", "B08.4", "hand, foot and mouth disease"),
        ("a tummy bug", "A08.4", "viral gastroenteritis"), ("head lice", "B85.0", "head lice"),
        ("impetigo", "L01.00", "impetigo"), ("tonsillitis", "J03.90", "acute tonsillitis")],
}

MEDS_FOR = {  # ICD-10 code -> medications that treat it (refill calls pair the two)
    1: {"J45.909": ["salbutamol inhaler", "Ventolin"], "I10": ["lisinopril", "amlodipine"], "E11.9": ["metformin"],
        "E78.5": ["atorvastatin", "Lipitor"], "F41.1": ["sertraline", "Zoloft"], "E03.9": ["levothyroxine", "Synthroid"],
        "K21.9": ["omeprazole", "Nexium"]},
    2: {"E11.65": ["insulin glargine", "Januvia"], "J44.9": ["Symbicort"], "I10": ["losartan"], "J30.2": ["montelukast"],
        "I48.91": ["Eliquis"], "F32.9": ["escitalopram", "Lexapro"], "J32.9": ["fluticasone spray"],
        "N40.0": ["tamsulosin"], "M79.7": ["gabapentin"], "J20.9": ["prednisolone"]},
}

STREETS = {
    1: ["Larkspur", "Juniper", "Hawthorne", "Willowbrook", "Chestnut", "Sycamore", "Magnolia", "Heather",
        "Ashgrove", "Kestrel", "Fernhill", "Orchard", "Linden", "Primrose", "Rosewood", "Harcourt",
        "Wexford", "Aldridge", "Greenfield", "Tamarack", "Cobblestone", "Foxhall", "Quarry", "Ridgeview"],
    2: ["Bramblewood", "Marigold", "Osprey", "Thistle", "Clearwater", "Millbrook", "Beacon", "Alder",
        "Ironwood", "Saltmarsh", "Pelham", "Westcott", "Lavender", "Copperfield", "Blackthorn", "Meadowlark"],
}
STREET_TYPES = {
    1: ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Court", "Place", "Way",
        "Boulevard", "Terrace", "Crescent", "Close"],
    2: ["Circle", "Parkway", "Row", "Gardens", "Square", "Trail", "Grove", "Mews", "Pike", "Blvd", "Heights"],
}
CITIES = {
    1: ["Springfield, IL 62704", "Dayton, OH 45402", "Fresno, CA 93721", "Tacoma, WA 98402",
        "Albany, NY 12207", "Durham, NC 27701", "Leeds LS6 2AB", "Bristol BS8 1TH", "Manchester M14 5RG",
        "London N1 7GU"],
    2: ["Boise, ID 83702", "Eugene, OR 97401", "Savannah, GA 31401", "Toledo, OH 43604",
        "Sheffield S10 2TN", "Cardiff CF10 3AT", "Norwich NR2 4PD"],
}
ZIPS = {1: ["62704", "45402", "93721", "98402", "12207", "27701", "60614", "30309"],
        2: ["83702", "97401", "31401", "43604", "55408", "80205", "73102"]}

EMAIL_DOMAINS = {1: ["gmail.com", "yahoo.com", "outlook.com", "hotmail.co.uk", "icloud.com", "proton.me", "aol.com"],
                 2: ["yahoo.co.uk", "web.de", "mail.com", "gmx.net", "live.com", "fastmail.com", "btinternet.com"]}

US_AREAS = {1: ["415", "212", "312", "617", "503", "206", "713", "404"], 2: ["646", "720", "919", "480", "651", "305"]}

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
MONTH_AB = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
ONES = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORD_WORDS = ["", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
             "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
             "eighteenth", "nineteenth", "twentieth", "twenty-first", "twenty-second", "twenty-third",
             "twenty-fourth", "twenty-fifth", "twenty-sixth", "twenty-seventh", "twenty-eighth",
             "twenty-ninth", "thirtieth", "thirty-first"]
TIMES = [f"{h:02d}:{m:02d}" for h in range(7, 19) for m in (0, 15, 30, 45) if (h, m) >= (7, 30) and h < 18]


def ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suf = "th"
    else:
        suf = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suf}"


def two_words(n: int) -> str:
    if n < 10:
        return "oh " + ONES[n]
    if n < 20:
        return TEENS[n - 10]
    return TENS[n // 10] if n % 10 == 0 else f"{TENS[n // 10]}-{ONES[n % 10]}"


def spoken_year(y: int) -> str:
    if y < 2000:
        return "nineteen " + two_words(y - 1900)
    if y < 2010:
        return "two thousand" + ("" if y == 2000 else " and " + ONES[y - 2000])
    return "twenty " + two_words(y - 2000)


def fold(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def lower_first(s: str) -> str:
    """Lower-case the first letter of a sentence unless it is the word "I"."""
    return s if re.match(r"I\b", s) else s[:1].lower() + s[1:]


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# --------------------------------------------------------------------------
MARK_RE = re.compile("\x01(phi|keep)\\|(\\w+)\x02(.*?)\x03")


def unmark(s: str) -> str:
    return MARK_RE.sub(lambda m: m.group(3), s)


class Tr:
    """One transcript under construction.

    Values are returned wrapped in invisible markers instead of being registered
    directly, because phrase variants are written as lists of f-strings (all of
    which are evaluated).  Only the values that end up in the chosen lines are
    registered, by finish()."""

    def __init__(self):
        self.lines: list[str] = []
        self.phi: list[dict] = []
        self.keep: list[dict] = []

    def A(self, s):
        self.lines.append("Agent: " + s)

    def C(self, s):
        self.lines.append("Caller: " + s)

    @staticmethod
    def p(typ, v):
        assert typ in PHI_TYPES
        return f"\x01phi|{typ}\x02{unmark(v)}\x03"

    @staticmethod
    def k(kind, v):
        assert kind in KEEP_KINDS + EXTRA_KEEP_KINDS
        return f"\x01keep|{kind}\x02{unmark(v)}\x03"

    def finish(self):
        for line in self.lines:
            for cat, kind, val in MARK_RE.findall(line):
                e = {"type": kind, "value": val} if cat == "phi" else {"kind": kind, "value": val}
                lst = self.phi if cat == "phi" else self.keep
                if e not in lst:
                    lst.append(e)
        self.lines = [unmark(l) for l in self.lines]
        assert not any(ch in l for l in self.lines for ch in "\x01\x02\x03")

    def text(self):
        return "Transcript:\n" + "\n".join(self.lines)


class Person:
    def __init__(self, first, last, gender):
        self.first, self.last, self.gender = first, last, gender

    @property
    def full(self):
        return f"{self.first} {self.last}"

    @property
    def he(self):
        return "he" if self.gender == "m" else "she"

    @property
    def his(self):
        return "his" if self.gender == "m" else "her"


class Ctx:
    def __init__(self, B: int, rng: random.Random, name_usage: Counter):
        self.B = B
        self.rng = rng
        self.name_usage = name_usage
        self.full_names = set()
        self._decks: dict = {}
        # name bags: every first name and surname twice
        self.firsts, self.lasts = {}, {}
        for g, (fs, ls) in NAME_GROUPS.items():
            fl = [x.rsplit(" ", 1) for x in fs.split("|")]
            ll = ls.split("|")
            cf, cl = -(-len(fl) * 2 // 3), -(-len(ll) * 2 // 3)
            fl = fl[:cf] if B == 1 else fl[cf:]
            ll = ll[:cl] if B == 1 else ll[cl:]
            bag_f = [tuple(x) for x in fl] * 2
            bag_l = list(ll) * 2
            rng.shuffle(bag_f)
            rng.shuffle(bag_l)
            self.firsts[g], self.lasts[g] = bag_f, bag_l
        self.clinicians = CLINICIANS[B]
        self.clinics = CLINICS[B]

    # ---- per-transcript state
    def start(self):
        self.t = Tr()
        self.used_first: set[str] = set()
        self.used_last: set[str] = set()
        self.used_clin: dict = {}
        self.dob_given = False
        self.clinic = self.t.k("clinic", self.dk(self.clinics))

    def dk(self, options):
        """Pick from a shuffled deck (one deck per call site), so that every variant
        of a list is used about equally often instead of at random."""
        options = list(options)
        key = (sys._getframe(1).f_code.co_name, sys._getframe(1).f_lineno, len(options))
        deck = self._decks.get(key)
        if not deck:
            deck = list(range(len(options)))
            self.rng.shuffle(deck)
            self._decks[key] = deck
        return options[deck.pop()]

    def v(self, b1, b2):
        """A hand-written phrase variant: batch 1 and batch 2 have separate lists."""
        options = list(b1 if self.B == 1 else b2)
        key = ("v", sys._getframe(1).f_code.co_name, sys._getframe(1).f_lineno, len(options))
        deck = self._decks.get(key)
        if not deck:
            deck = list(range(len(options)))
            self.rng.shuffle(deck)
            self._decks[key] = deck
        return options[deck.pop()]

    def ch(self, seq):
        return self.rng.choice(seq)

    def chance(self, p):
        return self.rng.random() < p

    def digits(self, n, lead_zero=False):
        s = "".join(str(self.rng.randint(0, 9)) for _ in range(n))
        if not lead_zero and s[0] == "0":
            s = str(self.rng.randint(1, 9)) + s[1:]
        return s

    # ---- people
    def _take_pair(self, g, gender, last=None):
        """Take an unused (first, last) pair from group g; None if impossible."""
        fb, lb = self.firsts[g], self.lasts[g]
        for i, (f, gd) in enumerate(fb):
            if f in self.used_first or gender not in (None, gd):
                continue
            cands = [last] if last else [l for l in lb if l not in self.used_last]
            for l in cands:
                if f"{f} {l}" in self.full_names:
                    continue
                fb.pop(i)
                self.used_first.add(f)
                self.name_usage[f] += 1
                if not last:
                    lb.remove(l)
                    self.used_last.add(l)
                    self.name_usage[l] += 1
                self.full_names.add(f"{f} {l}")
                p = Person(f, l, gd)
                p.group = g
                return p
        return None

    def _group_order(self, first_choice=None):
        groups = [g for g in self.firsts if self.firsts[g]]
        weights = [len(self.firsts[g]) + len(self.lasts[g]) for g in groups]
        order = []
        while groups:
            g = self.rng.choices(groups, weights)[0]
            i = groups.index(g)
            groups.pop(i)
            weights.pop(i)
            order.append(g)
        if first_choice in order:
            order.remove(first_choice)
            order.insert(0, first_choice)
        return order

    def person(self, gender=None):
        for g in self._group_order():
            p = self._take_pair(g, gender)
            if p:
                return p
        raise RuntimeError("name pool exhausted")

    def relative(self, of: Person, gender=None):
        """Family member sharing the surname (same transcript)."""
        for g in self._group_order(of.group):
            p = self._take_pair(g, gender, last=of.last)
            if p:
                return p
        raise RuntimeError("name pool exhausted")

    def title(self, p: Person):
        if p.gender == "m":
            return self.v(["Mr.", "Mr"], ["Mr", "Mr."])
        return self.v(["Mrs.", "Ms.", "Miss", "Ms"], ["Mrs", "Ms.", "Miss", "Mrs."])

    # ---- clinicians (keep)
    def clin(self, role=None):
        pool = [c for c in self.clinicians if role is None or c[2] == role]
        c = self.dk(pool)
        if c in self.used_clin:
            return self.used_clin[c]
        first, last, r = c
        if r == "dr":
            form = self.v([f"Dr. {last}"] * 4 + [f"Dr {last}", f"Doctor {last}", f"Dr. {first} {last}"],
                          [f"Dr. {last}"] * 3 + [f"Doctor {last}", f"Dr {first} {last}", f"Dr. {first} {last}"])
            # the task description's own examples
            if (first, last) == ("Amara", "Singh") and self.chance(.5):
                form = "Dr. Amara Singh"
            elif last == "Lindqvist" and self.chance(.5):
                form = "Doctor Lindqvist"
        elif r == "nurse":
            form = self.v([f"Nurse {last}"] * 3 + [f"Nurse {first} {last}"], [f"Nurse {last}", f"Nurse {first} {last}"])
        else:
            form = self.dk([f"Nurse Practitioner {last}", f"Nurse Practitioner {first} {last}"])
        form = self.t.k("clinician", form)
        self.used_clin[c] = form
        return form

    def clin_short(self, form):
        """A later, shorter reference to the same clinician ("Dr. Amara Singh" -> "Dr. Singh")."""
        parts = unmark(form).split()
        if parts[0] in ("Dr.", "Dr", "Doctor") and len(parts) == 3:
            s = f"Dr. {parts[2]}"
        elif parts[0] == "Nurse" and len(parts) == 3 and parts[1] != "Practitioner":
            s = f"Nurse {parts[2]}"
        else:
            s = form
        return self.t.k("clinician", s)

    # ---- keep values
    def fdate(self):
        d = date(2026, 10, 5) + timedelta(days=self.rng.randint(0, 80))
        return self.t.k("follow_up_date", d.isoformat())

    def ftime(self, exclude=(), after=None, before=None, part=None):
        ex = {unmark(x) for x in exclude}
        pool = [x for x in TIMES if x not in ex
                and (after is None or x > unmark(after)) and (before is None or x < unmark(before))
                and (part is None or (x < "12:00") == (part == "morning"))]
        return self.t.k("time", self.ch(pool or TIMES))

    def cond(self):
        return self.dk(CONDITIONS[self.B])

    def amount(self, big=False):
        r = self.rng
        n = self.ch([25, 35, 40, 45, 60, 75, 80, 95, 110, 120, 150, 210, 340])
        c = self.ch([0, 0, 0, 50, 25, 75, 40])
        if self.B == 1:
            form = self.dk(["usd2", "usd0", "dollars", "dollars", "usd2", "gbp"] + ["big"] * (3 if big else 0))
        else:
            form = self.dk(["usd2", "code", "dollars_cents", "eur", "gbp2", "usd0"] + ["big2"] * (3 if big else 0))
        if form == "usd2":
            s = f"${n}.{c:02d}"
        elif form == "usd0":
            s = f"${n}"
        elif form == "dollars":
            s = f"{n} dollars"
        elif form == "big":
            s = f"${r.randint(1, 3)},{r.randint(0, 999):03d}.00"
        elif form == "gbp":
            s = f"£{n}.00"
        elif form == "code":
            s = f"USD {n}.{c:02d}"
        elif form == "dollars_cents":
            s = f"{n} dollars and {max(c, 10)} cents"
        elif form == "big2":
            s = f"${r.randint(1, 4)},{r.randint(100, 999)}.{c:02d}"
        elif form == "eur":
            s = f"€{n}"
        else:
            s = f"£{n}.{c:02d}"
        return self.t.k("amount", s)

    def ref(self, kind=None):
        """A claim / invoice / reference number (kept; NOT a medical record number)."""
        kinds1 = ["invoice", "invoice_num", "claim", "reference", "confirmation"]
        kinds2 = ["authorization", "statement", "ticket", "case", "receipt"]
        kind = kind or self.v(kinds1, kinds2)
        d = self.digits
        val, cue = {
            "invoice": (f"INV-{d(5)}", "invoice"),
            "invoice_num": (d(6), "invoice number"),
            "claim": (f"CLM-{d(6)}", "claim number"),
            "reference": (f"RF-{d(4)}-{d(2)}", "reference number"),
            "confirmation": (f"BK{d(4)}", "confirmation number"),
            "authorization": (f"PA-{d(6)}", "authorization number"),
            "statement": (f"{d(5)}-{d(1)}", "statement number"),
            "ticket": (d(5), "ticket number"),
            "case": (f"C-2026-{d(4)}", "case number"),
            "receipt": (f"R-{d(5, True)}", "receipt number"),
        }[kind]
        return cue, self.t.k("reference", val)

    # ---- PHI value generators
    def dob(self, child=False, elderly=False):
        y = (self.rng.randint(2010, 2023) if child else self.rng.randint(1937, 1945) if elderly
             else self.rng.randint(1938, 2005))
        m = self.rng.randint(1, 12)
        d = self.rng.randint(1, 28)
        M, Ma = MONTHS[m - 1], MONTH_AB[m - 1]
        if self.B == 1:
            f = self.dk(["iso", "iso", "dmy_slash", "mdy_slash", "d_M_y", "M_d_y", "M_dth_y", "the_dth_of_M_y",
                         "Mab_d_y", "dmy_dot", "dth_M_y"])
        else:
            f = self.dk(["d_Mab_y_dash", "Mabdot_dth_yy", "mdy_short", "ymd_slash", "the_word_of_M_y",
                         "M_the_dth_y", "d_Mab_y", "M_dth_spoken", "iso"])
        lead = ""
        if f == "iso":
            v = f"{y}-{m:02d}-{d:02d}"
        elif f == "dmy_slash":
            v = f"{d:02d}/{m:02d}/{y}"
        elif f == "mdy_slash":
            v = f"{m}/{d}/{y}"
        elif f == "d_M_y":
            v = f"{d} {M} {y}"
        elif f == "M_d_y":
            v = f"{M} {d}, {y}"
        elif f == "M_dth_y":
            v = f"{M} {ordinal(d)}, {y}"
        elif f == "the_dth_of_M_y":
            lead, v = "the ", f"{ordinal(d)} of {M} {y}"
        elif f == "Mab_d_y":
            v = f"{Ma} {d}, {y}"
        elif f == "dmy_dot":
            v = f"{d:02d}.{m:02d}.{y}"
        elif f == "dth_M_y":
            v = f"{ordinal(d)} {M} {y}"
        elif f == "d_Mab_y_dash":
            v = f"{d:02d}-{Ma}-{y}"
        elif f == "Mabdot_dth_yy":
            ab = "Sept" if m == 9 else Ma
            v = f"{ab}{'' if ab == 'May' else '.'} {ordinal(d)}, '{y % 100:02d}"
        elif f == "mdy_short":
            v = f"{m}/{d}/{y % 100:02d}"
        elif f == "ymd_slash":
            v = f"{y}/{m:02d}/{d:02d}"
        elif f == "the_word_of_M_y":
            lead, v = "the ", f"{ORD_WORDS[d]} of {M}, {y}"
        elif f == "M_the_dth_y":
            v = f"{M} the {ordinal(d)}, {y}"
        elif f == "d_Mab_y":
            ab = "Sept" if m == 9 else Ma
            v = f"{d} {ab} {y}"
        else:  # M_dth_spoken
            v = f"{M} {ordinal(d)}, {spoken_year(y)}"
        return lead + self.t.p("dob", v)

    def mrn(self):
        d = self.digits
        if self.B == 1:
            v = self.dk([lambda: d(6), lambda: f"{self.dk('ABKM')}-{d(5)}", lambda: "00" + d(6, True),
                         lambda: f"{d(2)}-{d(5)}", lambda: f"PT-{d(6)}", lambda: f"M{d(7)}"])()
        else:
            v = self.dk([lambda: f"H{d(7)}", lambda: f"{d(4)} {d(4)}", lambda: f"C-{d(6)}",
                         lambda: f"{d(7)}-{d(1)}", lambda: f"NH{d(6)}", lambda: d(7)])()
        return self.t.p("mrn", v)

    def phone(self):
        r, d = self.rng, self.digits
        area = self.ch(US_AREAS[self.B])
        if r.random() < 0.6:
            ex, line = "555", "01" + d(2, True)
        else:
            ex, line = str(r.randint(2, 9)) + d(2, True), d(4, True)
        if self.B == 1:
            f = self.dk(["paren", "dash", "dot", "space", "plus1", "paren_ext", "dash_ext", "uk_intl", "uk_mob",
                         "uk_land", "in", "ng", "au", "de", "fr", "cn", "ae", "plus1dash"])
        else:
            f = self.dk(["ie", "za", "jp", "pl", "br", "au_local", "plus1paren", "space_ext", "uk00", "vn",
                         "se", "dash", "dot_x"])
        v = {
            "paren": lambda: f"({area}) {ex}-{line}",
            "dash": lambda: f"{area}-{ex}-{line}",
            "dot": lambda: f"{area}.{ex}.{line}",
            "space": lambda: f"{area} {ex} {line}",
            "plus1": lambda: f"+1 {area} {ex} {line}",
            "plus1dash": lambda: f"+1-{area}-{ex}-{line}",
            "paren_ext": lambda: f"({area}) {ex}-{line} extension {r.randint(2, 450)}",
            "dash_ext": lambda: f"{area}-{ex}-{line} ext. {r.randint(10, 99)}",
            "uk_intl": lambda: f"+44 20 7946 0{d(3, True)}",
            "uk_mob": lambda: f"07700 900{d(3, True)}" if r.random() < .5 else f"07700 900 {d(3, True)}",
            "uk_land": lambda: f"020 7946 0{d(3, True)}",
            "in": lambda: f"+91 98{d(3)} {d(5)}",
            "ng": lambda: f"+234 803 {d(3)} {d(4)}",
            "au": lambda: f"+61 4{d(2, True)} {d(3)} {d(3)}",
            "de": lambda: f"+49 30 {d(8)}",
            "fr": lambda: f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
            "cn": lambda: f"+86 138 {d(4)} {d(4)}",
            "ae": lambda: f"+971 50 {d(3)} {d(4)}",
            "ie": lambda: f"+353 87 {d(3)} {d(4)}",
            "za": lambda: f"+27 82 {d(3)} {d(4)}",
            "jp": lambda: f"+81 90-{d(4)}-{d(4)}",
            "pl": lambda: f"+48 {d(3)} {d(3)} {d(3)}",
            "br": lambda: f"+55 11 9{d(4)}-{d(4)}",
            "au_local": lambda: f"04{d(2, True)} {d(3)} {d(3)}",
            "plus1paren": lambda: f"+1 ({area}) {ex}-{line}",
            "space_ext": lambda: f"{area} {ex} {line} ext {r.randint(2, 60)}",
            "uk00": lambda: f"00 44 7911 {d(6)}",
            "vn": lambda: f"+84 91 {d(3)} {d(4)}",
            "se": lambda: f"+46 70 {d(3)} {d(2)} {d(2)}",
            "dot_x": lambda: f"{area}.{ex}.{line} x{r.randint(10, 300)}",
        }[f]()
        return self.t.p("phone", v)

    def email(self, p: Person, spoken=None):
        r = self.rng
        f = re.sub(r"[^a-z]", "", fold(p.first).lower())
        l = re.sub(r"[^a-z]", "", fold(p.last).lower())
        yy = f"{r.randint(60, 99)}" if r.random() < .6 else f"{r.randint(0, 12):02d}"
        if self.B == 1:
            local = self.dk([f"{f}.{l}", f"{f[0]}{l}{yy}", f"{f}_{l}", f"{f}{l[0]}", f"{f}.{l}{r.randint(1, 9)}"])
        else:
            local = self.dk([f"{l}.{f}", f"{f}{r.randint(10, 99)}", f"{f}-{l}", f"{f[0]}.{l}{r.randint(1950, 2001)}",
                             f"{l}{f[0]}"])
        dom = self.dk(EMAIL_DOMAINS[self.B])
        v = f"{local}@{dom}"
        if r.random() < .2:
            v = v[0].upper() + v[1:]
        if spoken is None:
            spoken = r.random() < .4
        if spoken:
            v = v.lower()
            v = (v.replace("@", " at ").replace(".", " dot ").replace("_", " underscore ")
                 .replace("-", " dash "))
        return self.t.p("email", v)

    def ssn(self):
        r = self.rng
        area = r.choice([a for a in range(1, 900) if a != 666])
        g, s = r.randint(1, 99), r.randint(1, 9999)
        fmts = ["dash", "dash", "space", "plain"] if self.B == 1 else ["dash", "space", "plain", "dot"]
        f = self.dk(fmts)
        sep = {"dash": "-", "space": " ", "plain": "", "dot": "."}[f]
        return self.t.p("ssn", f"{area:03d}{sep}{g:02d}{sep}{s:04d}")

    def address(self, split=False):
        """Returns the text of an address; registers the PHI value(s)."""
        r = self.rng
        n = r.randint(2, 4800) if r.random() < .7 else r.randint(1, 99)
        street = f"{self.dk(STREETS[self.B])} {self.dk(STREET_TYPES[self.B])}"
        if self.B == 2 and r.random() < .2:
            street = f"{self.dk(['North', 'South', 'East', 'West'])} {street}"
        num = f"{n}{self.ch('ABC')}" if (self.B == 2 and r.random() < .25) else str(n)
        base = f"{num} {street}"
        if split:
            return self.t.p("address", base)
        unit = ""
        if r.random() < .45:
            u = f"{r.randint(1, 30)}{self.ch(['', '', 'A', 'B', 'C'])}"
            unit = self.v([f"Apartment {u}", f"Apt {u}", f"apartment {u}", f"Flat {r.randint(1, 9)}",
                           f"Unit {r.randint(1, 20)}"],
                          [f"#{r.randint(101, 920)}", f"Apt. {u}", f"Unit {u}", f"apartment number {u}"])
        city = ""
        if r.random() < .4:
            city = self.dk(CITIES[self.B])
        if unit and not unit.startswith("#") and r.random() < .3:
            v = f"{unit}, {base}"
        elif unit:
            v = f"{base}, {unit}"
        else:
            v = base
        if city:
            v = f"{v}, {city}"
        elif self.B == 2 and r.random() < .3:
            v = f"{v}, {self.dk(ZIPS[2])}"
        return self.t.p("address", v)


# --------------------------------------------------------------------------
# Phrase slots.  Each slot has a batch-1 list and a disjoint batch-2 list.
# --------------------------------------------------------------------------
def greet(c: Ctx):
    k = c.clinic
    c.t.A(c.v([f"Good morning, {k}. How can I help you today?",
               f"Thanks for calling {k}. What can I do for you today?",
               f"{k}, this is the virtual assistant. How can I help?",
               f"Hello, you've reached {k}. How may I help you?",
               f"Good afternoon, {k}, you're speaking with the automated assistant.",
               f"Hi there, this is the {k} front desk assistant. What's the reason for your call?"],
              [f"{k}, good evening. What can I help with?",
               f"You're through to {k}. I'm the assistant, how can I help?",
               f"Welcome to {k}. Please tell me how I can help today.",
               f"Hello, {k} appointments line. How can I help?",
               f"Hi, {k} here. What are you calling about?"]))


def spell(c: Ctx, word: str) -> str:
    letters = list(fold(word).upper())
    style = c.v(["hy", "hy", "hy", "sp"], ["hy", "sp", "cm"])
    return {"hy": "-", "sp": " ", "cm": ", "}[style].join(letters)


def spellable(word: str) -> bool:
    return fold(word).isalpha() and len(word) >= 3


def ask_name(c: Ctx, p: Person, proxy=False):
    t = c.t
    if proxy:
        t.A(c.v(["And what's the patient's name?", "Who is the appointment for?",
                 "Can I take the patient's full name?"],
                ["What's the name of the person you're calling about?", "And the patient is?"]))
    else:
        t.A(c.v(["Can I take your full name, please?", "Who am I speaking with?", "May I have your name?",
                 "What name is the account under?", "Could I get your first and last name?"],
                ["And your name is?", "Whose file should I pull up?", "Can you give me the name on the record?",
                 "Sorry, I didn't catch your name.", "What name would that be under?"]))
    F, L = p.first, p.last
    if c.B == 1:
        style = c.dk(["plain", "last_then_full", "spell", "last_comma_first", "account_under", "title_first",
                      "first_then_full", "spell_first"] if not proxy else
                     ["plain", "spell", "first_then_full", "last_comma_first"])
    else:
        style = c.dk(["surname_first", "spell2", "under", "middle", "callerid", "title_then_first", "plain2"]
                     if not proxy else ["surname_first", "spell2", "plain2"])
    if style in ("spell", "spell2", "spell_first") and not spellable(L if style != "spell_first" else F):
        style = "plain" if c.B == 1 else "plain2"
    if style == "plain":
        t.C(f"{t.p('name', p.full)}.")
    elif style == "last_then_full":
        t.C(f"It's {t.p('name', L)}. {t.p('name', p.full)}.")
    elif style == "spell":
        t.C(f"{t.p('name', p.full)}.")
        t.A(c.dk(["Could you spell the last name for me?", "How do you spell the surname?",
                  "And how is that spelled?"]))
        t.C(c.dk(["{}.", "Sure, {}.", "It's {}."]).format(t.p("name", spell(c, L))))
    elif style == "spell_first":
        t.C(f"{t.p('name', p.full)}, that's {t.p('name', spell(c, F))} for the first name.")
    elif style == "last_comma_first":
        t.C(f"It should be under {t.p('name', L)}, {t.p('name', F)}.")
    elif style == "account_under":
        t.C(f"The account's under {t.p('name', L)}, {t.p('name', p.full)}.")
    elif style == "title_first":
        t.C(f"{c.title(p)} {t.p('name', L)}. First name {t.p('name', F)}.")
    elif style == "first_then_full":
        t.C(f"{t.p('name', F)}. {t.p('name', p.full)}.")
    elif style == "surname_first":
        t.C(f"Surname {t.p('name', L)}, first name {t.p('name', F)}.")
    elif style == "spell2":
        t.C(f"Last name {t.p('name', L)}, {t.p('name', spell(c, L))}, and the first name is {t.p('name', F)}.")
    elif style == "under":
        t.C(f"It'd be under {t.p('name', p.full)}.")
    elif style == "middle":
        mi = c.ch("ABCDEFGHJKLMNPRSTW")
        t.C(f"{t.p('name', f'{F} {mi}. {L}')}.")
    elif style == "callerid":
        # the agent reads the name off the caller-ID match
        t.lines.pop()
        t.A(f"This number is linked to {t.p('name', p.full)}. Is that you?")
        t.C(c.ch(["Yes, that's me.", "Yep, that's right.", "That's me, yes."]))
    elif style == "title_then_first":
        t.C(f"{c.title(p)} {t.p('name', L)}. First name's {t.p('name', F)}, if you need it.")
    else:  # plain2
        t.C(f"Oh, sorry. {t.p('name', p.full)}.")


def intro(c: Ctx, p: Person | None, reason: str, topic: str):
    """First caller turn.  Introduces the caller (p) in one of many ways, or not at all (p None)."""
    t = c.t
    if p is None:
        t.C(c.v([f"Hi. {reason}", f"Hello, {lower_first(reason)}", f"Yes, hi. {reason}"],
                [f"Hey there. {reason}", f"Morning. {reason}", reason]))
        return
    F, L, FL = p.first, p.last, p.full
    if c.B == 1:
        style = c.dk(["this_is", "its", "youve_got", "calling_about", "name_end", "booked_under", "first_here",
                      "patient_of", "ask", "ask", "ask", "dob_volunteer"])
    else:
        style = c.dk(["speaking", "again", "names", "by_the_way", "title_here", "middle_intro", "ask", "ask",
                      "ask", "after_reason"])
    if style == "this_is":
        t.C(f"Hi, this is {t.p('name', FL)}. {reason}")
    elif style == "its":
        t.C(f"Hello, it's {t.p('name', FL)}. {reason}")
    elif style == "youve_got":
        t.C(f"Hi, you've got {t.p('name', FL)} here. {reason}")
    elif style == "calling_about":
        t.C(f"{t.p('name', FL)} calling about {topic}. {reason}")
    elif style == "name_end":
        t.C(f"Hi. {reason} My name's {t.p('name', FL)}.")
    elif style == "booked_under":
        t.C(f"Yes, hello. {reason} The name is {t.p('name', FL)}.")
    elif style == "first_here":
        t.C(f"Morning. It's {t.p('name', F)} here, {t.p('name', FL)}. {reason}")
    elif style == "patient_of":
        cl = c.clin("dr")
        t.C(f"Hi there, I'm {t.p('name', FL)}, I'm one of {cl}'s patients. {reason}")
    elif style == "dob_volunteer":
        t.C(f"Hi, {t.p('name', FL)}, date of birth {c.dob()}. {reason}")
        c.dob_given = True
    elif style == "speaking":
        t.C(f"Good morning, {t.p('name', FL)} speaking. {reason}")
    elif style == "again":
        t.C(f"Hey, it's {t.p('name', FL)} again. {reason}")
    elif style == "names":
        t.C(f"Yeah, hi. Name's {t.p('name', FL)}. {reason}")
    elif style == "by_the_way":
        t.C(f"{reason} This is for {t.p('name', FL)}, by the way.")
    elif style == "title_here":
        t.C(f"Hi, {c.title(p)} {t.p('name', L)} here. {reason}")
        t.A(c.ch(["And your first name?", "Can I have your first name too?"]))
        t.C(f"{t.p('name', F)}.")
    elif style == "middle_intro":
        mi = c.ch("ABCDEFGHJKLMNPRSTW")
        t.C(f"Hello there, {t.p('name', f'{F} {mi}. {L}')}. {reason}")
    elif style == "after_reason":
        t.C(f"{reason} Sorry, I should have said, I'm {t.p('name', FL)}.")
    else:  # ask
        t.C(c.v([f"Hi. {reason}", f"Hello. {reason}", reason], [f"Hey. {reason}", f"Good morning. {reason}", reason]))
        ask_name(c, p)


def repeat_name(c: Ctx, p: Person, where="mid"):
    """Agent (or caller) says the name again later."""
    t = c.t
    if where == "mid":
        s = c.v([f"Thanks, {t.p('name', p.first)}. I've found your record.",
                 f"Thank you, {c.title(p)} {t.p('name', p.last)}, I have your file open.",
                 f"Okay {t.p('name', p.first)}, let me check."],
                [f"Got you, {t.p('name', p.full)}.",
                 f"Right, {c.title(p)} {t.p('name', p.last)}, one moment.",
                 f"Lovely, {t.p('name', p.first)}, bear with me."])
    else:
        s = c.v([f"Thanks, {t.p('name', p.first)}. Have a good day.",
                 f"You're all set, {c.title(p)} {t.p('name', p.last)}.",
                 f"Thank you, {c.title(p)} {t.p('name', p.last)}, goodbye.",
                 f"Anything else I can help with, {t.p('name', p.first)}?"],
                [f"Take care, {t.p('name', p.first)}.",
                 f"Right, {c.title(p)} {t.p('name', p.last)}, that's everything.",
                 f"Perfect, {t.p('name', p.full)}, you're all sorted.",
                 f"Bye now, {c.title(p)} {t.p('name', p.last)}."])
    t.A(s)


# ---- verification slots ---------------------------------------------------
def v_dob(c: Ctx, proxy: Person | None = None):
    t = c.t
    if proxy is None:
        t.A(c.v(["Can you confirm your date of birth, please?", "And your date of birth?",
                 "For security, can I have your date of birth?", "What's the date of birth on the account?",
                 "I just need a date of birth to find the record."],
                ["Just to verify, date of birth?", "Can you tell me when you were born?",
                 "What birthday do we have for you?", "Security check: DOB, please."]))
        d = c.dob()
        t.C(cap(c.v([f"Sure, it's {d}.", f"{d}.", f"I was born on {d}.", f"It's {d}.", f"Date of birth {d}.",
                     f"Born {d}."],
                    [f"Mm, {d}.", f"That'd be {d}.", f"My birthday's {d}.", f"{d}, same as last time.",
                     f"Uh, {d}."])))
    else:
        said = re.search(r"(?<!\w)" + re.escape(proxy.first) + r"(?!\w)", unmark(" ".join(t.lines)))
        n = t.p("name", proxy.first) if said else "the patient"
        t.A(cap(c.v([f"And {n}'s date of birth?", "What's the patient's date of birth?",
                     f"Can you give me {n}'s date of birth?"],
                    [f"When was {n} born?", "Patient's DOB?", f"And {n}'s birthday, for the file?"])))
        d = c.dob(child=getattr(proxy, "child", False), elderly=getattr(proxy, "elderly", False))
        t.C(cap(c.v([f"{cap(proxy.he)} was born {d}.", f"{d}.", f"{cap(proxy.his)} birthday is {d}."],
                    [f"Um, {d}.", f"{d}, {proxy.he}'s {c.ch(['the youngest', 'the eldest', 'my only one'])}.",
                     f"That's {d}."] if getattr(proxy, "child", False) else
                    [f"Um, {d}.", f"{cap(proxy.he)}'s born {d}.", f"That's {d}."])))


def v_mrn(c: Ctx, proxy=False):
    t = c.t
    who = "the patient's" if proxy else "your"
    if c.dk([0, 1]):
        t.A(c.v([f"Do you have {who} medical record number handy?", "What's the record number?",
                 f"Could you read me {who} patient ID from the card?", "Do you have a chart number?"],
                [f"Is there a hospital number on {who} letter?", "Have you got the patient number?",
                 "Can you give me the number on the patient card?", "What's the MRN on the paperwork?"]))
        m = c.mrn()
        t.C(c.v([f"Yes, it's {m}.", f"{m}.", f"The record number is {m}.", f"It says MRN: {m} on the letter.",
                 f"Chart number {m}.", f"Patient ID {m}."],
                [f"Hospital number is {m}.", f"It's {m}, I think.", f"Patient number {m}.",
                 f"The letter says medical record number {m}.", f"Let me look... {m}."]))
    else:
        m = c.mrn()
        if proxy:
            t.C(c.v([f"The record number is {m}, if that helps.", f"I have the chart number here, it's {m}.",
                     f"MRN {m}."],
                    [f"I've got the hospital number: {m}.", f"The patient number's {m}, if you need it.",
                     f"Medical record number, {m}."]))
        else:
            t.C(c.v([f"My record number is {m}, if that helps.", f"I have the chart number here, it's {m}.",
                     f"The patient ID on my card is {m}.", f"MRN {m}."],
                    [f"I've got my hospital number: {m}.", f"My patient number's {m}, if you need it.",
                     f"Medical record number, {m}."]))
    if c.chance(.3):
        t.A(c.v([f"Record {m}, got it.", f"Thanks, I've pulled up chart {m}."],
                [f"{m}, found it.", f"Okay, number {m} is on screen."]))


def v_phone(c: Ctx):
    t = c.t
    if c.dk([0, 1, 1]):
        t.A(c.v(["What's the best number to reach you?", "Which number should the nurse call?",
                 "Can I get a callback number?", "Is there a phone number we can text the reminder to?"],
                ["Where can we reach you?", "What number are you on?",
                 "Got a number for the callback?", "Landline or mobile, either is fine. What's the number?"]))
        p = c.phone()
        if c.B == 2 and c.chance(.2):
            p2 = c.phone()
            rel = c.ch(["husband's", "wife's", "son's", "daughter's"])
            t.C(f"{p}, or my {rel} is {p2}.")
        else:
            t.C(c.v([f"{p}.", f"It's {p}.", f"My mobile, {p}.", f"You can reach me on {p}.",
                     f"Best to call {p}, I'm at work till five.", f"{p}, that's my cell."],
                    [f"Try {p}.", f"Ring me on {p}.", f"Home is {p}.", f"Cell's {p}, text is fine.",
                     f"It's {p}, after six is best."]))
    else:
        p = c.phone()
        t.C(c.v([f"My new number is {p}, the old one's disconnected.", f"Please call me back on {p}.",
                 f"Can the nurse ring {p}?"],
                [f"Oh, and I've got a new phone, it's {p}.", f"You'll get me on {p} during the day.",
                 f"If it's easier, text {p}."]))
    if c.chance(.25):
        t.A(c.v([f"That's {p}, correct?", f"Let me read that back: {p}."],
                [f"So {p}?", f"I've noted {p}."]))
        t.C(c.ch(["Yes.", "That's right.", "Correct."]))


def v_email(c: Ctx, p: Person):
    t = c.t
    if c.dk([0, 1, 1]):
        t.A(c.v(["What email should I send it to?", "Do you have an email for the portal?",
                 "Can I get your email address?"],
                ["Which email do you want on file?", "Email for the confirmation?",
                 "Where should the link go? I'll need an email."]))
        spoken = c.chance(.4)
        e = c.email(p, spoken)
        if spoken:
            t.C(c.v([f"Sure, it's {e}.", f"{e}.", f"It's {e}, all lowercase."],
                    [f"{e}, all lower case.", f"The address is {e}.", f"Okay: {e}."]))
        else:
            t.C(c.v([f"{e}.", f"It's {e}.", f"My email is {e}."],
                    [f"Use {e}.", f"It's {e}, not the old one.", f"{e} is best."]))
    else:
        e = c.email(p)
        t.C(c.v([f"Could you send it to {e}?", f"My email is {e}, by the way."],
                [f"Email me at {e}, please.", f"You can use {e} for anything in writing."]))


def v_ssn(c: Ctx, proxy=False):
    t = c.t
    if c.dk([0, 1, 1]):
        t.A(c.v(["For the insurance form I need the social security number.",
                 "Can you give me your SSN to verify?" if not proxy else "Can you give me the patient's SSN?",
                 "What's the social on the account?"],
                ["Last thing, the social security number for the billing file?",
                 "I'll need the patient's social.", "The form also wants an SSN. Do you have it?"]))
        s = c.ssn()
        t.C(c.v([f"{s}.", f"It's {s}.", f"My social security number is {s}." if not proxy else f"The patient's is {s}.",
                 f"Social is {s}.", f"SSN {s}."],
                [f"{s}, that's {'my' if not proxy else 'the'} social.", f"OK, it's {s}.", f"Hang on... {s}.",
                 f"Social security {s}."]))
    else:
        s = c.ssn()
        t.C(c.v([f"If you need it, my social is {s}.", f"I can give you the SSN, it's {s}."],
                [f"My social security number is {s}, if that's needed.", f"Do you need the social? It's {s}."]))


def v_address(c: Ctx, moved=False, proxy=False):
    t = c.t
    if proxy:
        t.A(c.v(["What's the patient's home address?", "Where does the patient live?"],
                ["And the patient's address?", "Which address do we post letters to for them?"]))
        a = c.address()
        t.C(c.v([f"{a}.", f"It's {a}."], [f"Still {a}.", f"{a}, I think you have it."]))
        return
    if c.B == 2 and c.chance(.25):
        t.A(c.ch(["Postal address?", "Can you confirm the street address?"]))
        s = c.address(split=True)
        t.C(f"{s}.")
        t.A(c.ch(["And the zip code?", "Zip code?"]))
        z = t.p("address", c.ch(ZIPS[2]))
        t.C(f"{z}.")
        return
    if moved or c.dk([0, 1]):
        a = c.address()
        t.C(c.v([f"I've moved, the new address is {a}.", f"We're at {a} now.", f"Please update my address to {a}."],
                [f"New address: {a}.", f"I moved last month, I'm at {a} now.", f"The address changed, it's {a}."]))
    else:
        t.A(c.v(["What's your home address?", "Where should we post the letter?", "And the address on file?",
                 "What address should the statement go to?"],
                ["Postal address?", "Can you confirm the street address?", "Where do you live now?"]))
        a = c.address()
        t.C(c.v([f"{a}.", f"I live at {a}.", f"It's {a}.", f"Send it to {a}, please."],
                [f"{a}, the house with the green gate.", f"We're at {a}.", f"My place is {a}."]))


# ---- keep slots -------------------------------------------------------------
def offer(c: Ctx, role=None):
    t = c.t
    C1 = c.clin(role)
    D = c.fdate()
    H = c.ftime(before="16:00") if c.B == 2 else c.ftime(after="08:00")
    if c.B == 1:
        s = c.dk(range(6))
        if s == 0:
            t.A(f"{C1} has {D} at {H}. Does that work?")
            t.C("Yes, that's fine.")
            t.A(f"You're booked with {C1} on {D} at {H}.")
        elif s == 1:
            D2, H2 = c.fdate(), c.ftime((H,))
            t.A(f"I have {D} at {H} or {D2} at {H2}, both with {C1}.")
            if c.chance(.5):
                t.C("The first one, please.")
                t.A(f"Confirmed for {D} at {H} with {C1}.")
            else:
                t.C("The second one, please.")
                t.A(f"Confirmed for {D2} at {H2} with {C1}.")
        elif s == 2:
            t.A(f"The next opening with {C1} is {D} at {H}.")
            t.C("I'll take it.")
            t.A(f"Great, {D} at {H} it is.")
        elif s == 3:
            C2 = c.clin()
            if C2 == C1:
                t.A(f"{C1} can see you on {D} at {H}.")
            else:
                t.A(f"{C2} is fully booked this month. {C1} can see you on {D} at {H}.")
            t.C("Fine, book it.")
            t.A(f"Booked with {c.clin_short(C1)}.")
        elif s == 4:
            t.A(f"How about {D}, {H}, with {C1}?")
            t.C("Perfect.")
            t.A("Done. You'll get a reminder the day before.")
        else:
            t.A(f"Let me look. {C1} has {D} at {H}.")
            t.C("Is there anything earlier in the day?")
            H2 = c.ftime((H,), before=H)
            t.A(f"{c.clin_short(C1)} also has {H2} that day.")
            t.C("That's better, thanks.")
    else:
        s = c.dk(range(5))
        if s == 0:
            t.A(f"Earliest I can do is {D} at {H} with {C1}.")
            t.C("Anything later in the day?")
            H2 = c.ftime((H,), after=H)
            t.A(f"{c.clin_short(C1)} also has {H2} that day.")
            t.C("Go on then.")
            t.A(f"Booked: {D}, {H2}.")
        elif s == 1:
            t.A(f"{C1} is running a clinic on {D}; {H} is free.")
            t.C("Lovely, put me in.")
        elif s == 2:
            t.A(f"Would {D} at {H} suit? It'd be with {C1}.")
            t.C("Yes, that suits.")
            t.A(f"All booked. That's {D}, {H}.")
        elif s == 3:
            t.A(f"I can put you in with {C1} on {D}. Morning or afternoon?")
            part = c.ch(["morning", "afternoon"])
            t.C("Afternoon, please." if part == "afternoon" else "Morning if possible.")
            t.A(f"{c.ftime(part=part)} then. You're in.")
        else:
            D2 = c.fdate()
            if unmark(D2) < unmark(D):
                D, D2 = D2, D
            t.A(f"There's {D} or {D2}, both at {H}, with {C1}.")
            t.C("The later one.")
            t.A(f"{D2} at {H} is yours.")


def icd_mention(c: Ctx, cond=None, ctx="clinical"):
    """An ICD-10 code said aloud (kept).  ctx: clinical (notes, referral, chart) or billing
    (insurer, claim, forms, prior authorisation)."""
    t = c.t
    phrase, code, desc = cond or c.cond()
    phrase = re.sub(r"^(a|an) ", "", phrase)
    code = t.k("icd10", code)
    if ctx == "clinical":
        s = c.v([f"The referral lists the diagnosis code {code}, {desc}.",
                 f"I've noted this call under {code}.",
                 f"I've added {code}, {desc}, to the notes for the doctor."],
                [f"On the note I'll put {code}, that's {desc}.",
                 f"Your chart shows {code} as the active problem.",
                 f"The doctor's summary lists {code} for the {phrase}."])
        t.A(s)
        return
    if c.B == 1:
        s = c.dk(range(3))
        if s == 0:
            t.C("My insurer says they need the diagnosis code.")
            t.A(f"It's {code}, for {desc}.")
        elif s == 1:
            t.C(f"The form asks for an ICD code. Is it {code}?")
            t.A(f"Yes, {code} is right for {desc}.")
        else:
            t.A(f"The claim went in under {code}, {desc}.")
    else:
        s = c.dk(range(3))
        if s == 0:
            t.A(f"For the prior authorisation the pharmacy needs code {code}; I'll send it over.")
        elif s == 1:
            t.C("What diagnosis code do I give the insurance people?")
            t.A(f"Give them {code}.")
        else:
            other = c.cond()
            if other[1] == unmark(code):
                t.A(f"The code on the claim is {code}.")
            else:
                t.A(f"They rejected it because it was coded {t.k('icd10', other[1])}; it should have been {code}.")


def close(c: Ctx, p: Person | None):
    t = c.t
    if p is not None and c.chance(.35):
        repeat_name(c, p, "end")
        if c.chance(.5):
            t.C(c.ch(["Thanks, bye.", "Cheers.", "Thank you."]))
    elif c.chance(.4):
        t.C(c.v(["Thanks, bye.", "Great, thank you.", "That's all, thanks."],
                ["Brilliant, cheers.", "Okay, ta.", "Thanks so much."]))


# ---- scenarios -----------------------------------------------------------
def verify(c: Ctx, p: Person | None, probs: dict, proxy=False):
    order = [k for k in ("dob", "mrn", "ssn", "phone", "email", "address") if c.chance(probs.get(k, 0))]
    for k in order:
        if k == "dob":
            if not c.dob_given:
                v_dob(c)
        elif k == "mrn":
            v_mrn(c, proxy)
        elif k == "ssn":
            v_ssn(c, proxy)
        elif k == "phone":
            v_phone(c)
        elif k == "email" and p is not None:
            v_email(c, p)
        elif k == "address":
            v_address(c, proxy=proxy)
    return order


def sc_book(c: Ctx):
    t = c.t
    cond = c.cond()
    reason = c.v(["I'd like to book a check-up.", f"I need a follow-up appointment for my {cond[0]}.",
                  f"Can I see someone about my {cond[0]}?", "I need to book my annual physical."],
                 [f"I was told to come back about my {cond[0]}.", f"Is there anything this week for my {cond[0]}?",
                  f"I'm due my review for my {cond[0]}."])
    p = c.person()
    intro(c, p, reason, c.ch(["an appointment", f"my {cond[0]}"]))
    verify(c, p, {"dob": .55, "mrn": .2, "phone": .25, "email": .2, "ssn": .05})
    if c.chance(.3):
        repeat_name(c, p)
    offer(c)
    if c.chance(.2):
        icd_mention(c, cond)
    if c.chance(.15):
        t.A(f"Just so you know, the copay is {c.amount()}.")
    close(c, p)


def sc_resched(c: Ctx):
    t = c.t
    C1 = c.clin()
    D0, H0 = c.fdate(), c.ftime()
    reason = c.v([f"I need to move my appointment on {D0} at {H0}.",
                  f"I've got {D0} at {H0} with {C1} and I can't make it."],
                 [f"Something's come up and I can't do {D0}, {H0}.",
                  f"My slot with {C1} on {D0} at {H0} clashes with work."])
    p = c.person()
    intro(c, p, reason, "my appointment")
    verify(c, p, {"dob": .5, "mrn": .25, "phone": .2})
    offer(c)
    if c.chance(.2):
        t.A(f"Since it's more than 24 hours ahead there's no fee; otherwise it would be {c.amount()}.")
    close(c, p)


def sc_refill(c: Ctx):
    t = c.t
    cond = c.dk([x for x in CONDITIONS[c.B] if x[1] in MEDS_FOR[c.B]])
    m = t.k("medication", c.dk(MEDS_FOR[c.B][cond[1]]))
    reason = c.v([f"Could you renew my {m} prescription? Only {c.ch([3, 4, 5, 7])} days left.",
                  f"I'm running out of my {m} for my {cond[0]}.", f"I need a refill of {m}."],
                 [f"My {m} is nearly finished, can I get a repeat?",
                  f"The pharmacy says my {m} needs a new script.", f"I've got two {m} left."])
    p = c.person()
    intro(c, p, reason, f"my {m}")
    verify(c, p, {"dob": .6, "mrn": .25, "phone": .2, "address": .15})
    if c.chance(.35):
        icd_mention(c, cond, c.ch(["clinical", "billing"]))
    if c.chance(.25):
        t.A(f"The prescription charge is {c.amount()}.")
    t.A(c.v(["Done. The refill is sent and should be ready tomorrow.",
             "A nurse will call you back within 24 hours to talk it through."],
            ["I've sent it to your usual pharmacy.", "The doctor needs to sign it first, so give it two days."]))
    close(c, p)


def sc_results(c: Ctx):
    t = c.t
    test = c.v(["blood test", "urine test", "cholesterol test", "X-ray"],
               ["thyroid panel", "ECG", "stool sample", "ultrasound"])
    reason = c.v([f"Are my {test} results back?", f"I'm calling about my {test}."],
                 [f"Any news on my {test}?", f"I was told to ring for my {test} results."])
    p = c.person()
    intro(c, p, reason, f"my {test}")
    verify(c, p, {"dob": .6, "mrn": .4})
    t.A(c.v(["The results are in, but I can't discuss them on this line.",
             "The results are borderline, so the doctor wants to go over them with you."],
            ["They're back. The doctor would like a word about them.", "They're normal, nothing to worry about."]))
    if c.chance(.5):
        offer(c)
    else:
        v_phone(c)
        t.A(c.ch(["A nurse will call you back this afternoon.", "Someone will ring you before the end of the day."]))
    close(c, p)


def sc_billing(c: Ctx):
    t = c.t
    cue, ref = c.ref()
    amt = c.amount(big=True)
    reason = c.v([f"I got a bill for {amt} and I don't understand it.", f"I'd like to pay {cue} {ref}.",
                  f"I think I was overcharged on {cue} {ref}."],
                 [f"There's a {cue} {ref} on my letter and I'd like to query it.",
                  f"I was charged {amt} twice.", f"I want to settle my balance."])
    p = c.person() if c.chance(.9) else None
    intro(c, p, reason, "a bill")
    if ref not in " ".join(t.lines):
        t.A(f"Can you give me the {cue}?")
        t.C(f"It's {ref}.")
    if amt not in " ".join(t.lines):
        t.A(c.v([f"I see {cue} {ref} for {amt}.", f"There's an outstanding balance of {amt}."],
                [f"That one's for {amt}, after insurance.", f"You owe {amt} on that."]))
    verify(c, p, {"dob": .4, "mrn": .2, "ssn": .5, "address": .3, "email": .4})
    if c.chance(.25):
        icd_mention(c, None, "billing")
    t.A(c.v(["I've sent a receipt.", "A corrected statement will go out this week."],
            ["I've put a note on the account.", "The refund will take five to seven days."]))
    close(c, p)


def sc_register(c: Ctx):
    t = c.t
    reason = c.v(["I'd like to register as a new patient.", "We've just moved here and I want to sign up."],
                 ["Are you taking new patients? I'd like to join.", "I need to register with a doctor."])
    p = c.person()
    intro(c, p, reason, "registering")
    if c.chance(.3) and spellable(p.last):
        t.A(c.v(["Could you spell your surname?", "How is the last name spelled?"],
                ["Spell the surname for me?", "And the spelling?"]))
        t.C(f"{t.p('name', spell(c, p.last))}.")
    if not c.dob_given:
        v_dob(c)
    v_address(c)
    if c.chance(.8):
        v_phone(c)
    if c.chance(.75):
        v_email(c, p)
    if c.chance(.75):
        v_ssn(c)
    if c.chance(.4):
        m = c.mrn()
        t.A(c.v([f"You're registered. Your new patient ID is {m}.", f"Done. Your medical record number is {m}."],
                [f"All set; your hospital number will be {m}.", f"I've created chart {m} for you."]))
    if c.chance(.4):
        offer(c)
    close(c, p)


def sc_update(c: Ctx):
    t = c.t
    reason = c.v(["I need to update my contact details.", "I've moved house.", "I've changed my phone number."],
                 ["Can I change the details you have for me?", "My details are out of date.",
                  "Just updating my info."])
    p = c.person()
    intro(c, p, reason, "my details")
    verify(c, p, {"dob": .6, "mrn": .3})
    if c.chance(.3):
        repeat_name(c, p)
    did = 0
    if c.chance(.6):
        v_address(c, moved=True)
        did += 1
    if c.chance(.6) or not did:
        v_phone(c)
    if c.chance(.7):
        v_email(c, p)
    t.A(c.v(["Got it. I've updated your record.", "All updated."], ["That's changed now.", "Saved."]))
    close(c, p)


def sc_records(c: Ctx):
    t = c.t
    reason = c.v(["I need a copy of my medical records.", "Can my records be sent to my new doctor?"],
                 ["I'd like my notes transferred.", "Could I get a printout of my vaccination history?"])
    p = c.person()
    intro(c, p, reason, "my records")
    v_mrn(c)
    verify(c, p, {"dob": .5, "email": .6, "address": .4, "ssn": .2})
    if c.chance(.5):
        t.A(c.v([f"There's a copying fee of {c.amount()}.", f"The records fee is {c.amount()}."],
                [f"We charge {c.amount()} for that.", f"It'll cost {c.amount()}, payable online."]))
    close(c, p)


def sc_proxy_child(c: Ctx):
    t = c.t
    parent = c.person()
    child = c.relative(parent)
    child.child = True
    rel = "son" if child.gender == "m" else "daughter"
    pr = "mum" if parent.gender == "f" else "dad"
    cond = c.dk(CHILD_CONDITIONS[c.B])
    sym = cond[0]
    if c.B == 1:
        s = c.dk(range(5))
        if s == 0:
            t.C(f"Hi, I'm calling about my {rel}, {t.p('name', child.full)}. {cap(child.he)} has {sym}.")
        elif s == 1:
            t.C(f"This is {t.p('name', parent.full)}, {t.p('name', child.first)}'s {pr}. "
                f"{cap(child.he)}'s had {sym} for a few days.")
        elif s == 2:
            t.C(f"Hello, my {rel} needs to be seen for {sym}.")
            ask_name(c, child, proxy=True)
            t.A("And you are?")
            t.C(f"{t.p('name', parent.first)}, {child.his} {pr}.")
        elif s == 3:
            t.C(f"It's about {t.p('name', child.first)} {t.p('name', child.last)}, my {rel}, "
                f"{sym} again. I'm {t.p('name', parent.first)}.")
        else:
            t.C(f"Hi, {c.title(parent)} {t.p('name', parent.last)} here, I'm ringing for my little one, "
                f"{t.p('name', child.first)}. {cap(child.he)} has {sym}.")
    else:
        s = c.dk(range(4))
        if s == 0:
            t.C(f"Hiya, my {rel} {t.p('name', child.first)} has {sym}, can someone see {'him' if child.gender == 'm' else 'her'}?")
            t.A("Of course. What's the surname?")
            t.C(f"{t.p('name', child.last)}.")
        elif s == 1:
            t.C(f"I'm {t.p('name', parent.full)}; my {rel}'s been up all night with {sym}.")
            t.A(f"I'm sorry to hear that. What's your {rel}'s name?")
            t.C(f"{t.p('name', child.first)}.")
        elif s == 2:
            t.C(f"Calling on behalf of {t.p('name', child.full)}, I'm {child.his} {pr}. It's {sym}.")
        else:
            t.C(f"Morning, it's {t.p('name', parent.first)}, {t.p('name', child.full)}'s {pr}. "
                f"Quick question about {sym}.")
    v_dob(c, child)
    if c.chance(.35):
        v_mrn(c, proxy=True)
    if c.chance(.5):
        offer(c)
    else:
        v_phone(c)
        t.A("A nurse will call you back shortly.")
    if c.chance(.2):
        icd_mention(c, cond)
    close(c, None)


def sc_proxy_adult(c: Ctx):
    t = c.t
    caller = c.person()
    kind = c.dk(["parent", "spouse", "carer"])
    if kind == "parent":
        pt = c.relative(caller)
        relw = "father" if pt.gender == "m" else "mother"
        line = c.v([f"I'm calling on behalf of my {relw}, {t.p('name', pt.full)}.",
                    f"I'm {t.p('name', caller.full)}, I look after my {relw}, {t.p('name', pt.first)}."],
                   [f"Ringing for my {relw}; {pt.he}'s {t.p('name', pt.full)}.",
                    f"My {relw} {t.p('name', pt.first)} asked me to call, I'm {t.p('name', caller.first)}."])
    elif kind == "spouse":
        pt = c.relative(caller)
        relw = "husband" if pt.gender == "m" else "wife"
        line = c.v([f"My {relw} {t.p('name', pt.first)} needs an appointment. Surname {t.p('name', pt.last)}.",
                    f"Hi, it's {t.p('name', caller.first)}, I'm phoning for my {relw}, {t.p('name', pt.full)}."],
                   [f"Booking for my {relw}, {t.p('name', pt.full)}, {pt.he} can't get to the phone.",
                    f"It's for {t.p('name', pt.first)}, my {relw}. Family name {t.p('name', pt.last)}."])
    else:
        pt = c.person()
        line = c.v([f"I'm a carer for {c.title(pt)} {t.p('name', pt.last)}, {pt.he}'s in {pt.his} eighties.",
                    f"I look after my neighbour, {t.p('name', pt.full)}, {pt.he} can't manage the phone.",
                    f"This is {t.p('name', caller.full)} from the care home, calling about {t.p('name', pt.full)}."],
                   [f"I'm {t.p('name', pt.full)}'s support worker.",
                    f"Calling from Rosehill care home about our resident {t.p('name', pt.full)}.",
                    f"Hi, I'm {t.p('name', caller.first)}, I care for {c.title(pt)} {t.p('name', pt.last)}."])
    pt.child = False
    pt.elderly = kind in ("parent", "carer")
    cond = c.cond()
    t.C(f"{line} {cap(pt.he)} needs help with {pt.his} {cond[0]}.")
    v_dob(c, pt)
    verify(c, None, {"mrn": .3, "phone": .4, "address": .3, "ssn": .2}, proxy=True)
    if c.chance(.5):
        offer(c)
    if c.chance(.25):
        icd_mention(c, cond)
    close(c, None)


def sc_insurance(c: Ctx):
    t = c.t
    cue, ref = c.ref(c.v(["claim", "reference", "claim"], ["authorization", "case", "statement"]))
    reason = c.v([f"My insurer rejected {cue} {ref}.", "I need help with an insurance claim."],
                 [f"The insurance company wants more info on {cue} {ref}.", "Our insurer says you sent the wrong paperwork."])
    p = c.person()
    intro(c, p, reason, "an insurance claim")
    if ref not in " ".join(t.lines):
        t.A(f"What's the {cue}?")
        t.C(f"{ref}.")
    icd_mention(c, None, "billing")
    verify(c, p, {"dob": .6, "ssn": .85, "mrn": .25, "address": .2})
    if c.chance(.6):
        t.A(c.v([f"The amount in question is {c.amount(True)}.", f"They've paid, you owe {c.amount()}."],
                [f"The disputed amount is {c.amount(True)}.", f"Your share comes to {c.amount()}."]))
    close(c, p)


def sc_forms(c: Ctx):
    t = c.t
    reason = c.v(["I need a sick note for work.", "My employer sent a form the doctor has to fill in."],
                 ["I need a fit note.", "School wants a medical form signed."])
    p = c.person()
    intro(c, p, reason, "a form")
    verify(c, p, {"dob": .6, "mrn": .2, "email": .65, "ssn": .15})
    icd_mention(c, None, "billing")
    if c.chance(.5):
        t.A(c.v([f"There's a form fee of {c.amount()}.", f"That's {c.amount()} for the letter."],
                [f"Forms are {c.amount()} each.", f"It's {c.amount()}, paid when you collect."]))
    if c.chance(.4):
        t.A(f"{c.clin()} will sign it.")
    close(c, p)


def sc_referral(c: Ctx):
    t = c.t
    cond = c.cond()
    spec = c.ch(["specialist", "consultant", "hospital clinic"])
    reason = c.v([f"My {cond[0]} isn't improving. Can I be referred to a {spec}?",
                  f"I'd like a referral to a {spec} for my {cond[0]}."],
                 [f"Could someone refer me on for my {cond[0]}?", f"I want to see a {spec} about my {cond[0]}."])
    p = c.person()
    intro(c, p, reason, "a referral")
    verify(c, p, {"dob": .6, "mrn": .3, "phone": .2, "address": .2, "ssn": .15})
    C1 = c.clin("dr")
    t.A(f"{C1} will review the request and sign the referral.")
    icd_mention(c, cond)
    if c.chance(.3):
        offer(c)
    close(c, p)


def sc_cancel(c: Ctx):
    t = c.t
    D, H = c.fdate(), c.ftime()
    reason = c.v([f"I need to cancel my appointment on {D} at {H}.", f"Please cancel {D}, {H}."],
                 [f"I won't make {D} at {H}, can you take me off?", f"Cancel my {H} on {D}, please."])
    p = c.person()
    intro(c, p, reason, "cancelling")
    verify(c, p, {"dob": .5, "mrn": .2})
    if c.chance(.5):
        t.A(c.v([f"A late cancellation fee of {c.amount()} applies.", f"Cancelled. There's a {c.amount()} fee."],
                [f"Because it's same-day, we charge {c.amount()}.", f"That's cancelled; {c.amount()} will be billed."]))
    else:
        t.A("That's cancelled for you.")
    close(c, p)


def sc_general(c: Ctx):
    """No PHI at all."""
    t = c.t
    s = c.dk(range(5))
    if c.B == 1:
        if s == 0:
            t.C("Hi, what time do you open on Saturdays?")
            o = c.ftime(before="10:00")
            t.A(f"We open at {o} and close at {c.ftime(after='12:00')} on Saturdays.")
        elif s == 1:
            t.C("How much is a flu shot if I don't have insurance?")
            t.A(f"It's {c.amount()}. You can walk in any weekday.")
        elif s == 2:
            C1 = c.clin()
            t.C(f"Is {C1} taking new patients?")
            t.A(f"Yes, {C1} has new-patient slots from {c.fdate()} at {c.ftime()}.")
        elif s == 3:
            cond = c.cond()
            t.C(f"What does the code {t.k('icd10', cond[1])} on my bill mean?")
            t.A(f"That's the code for {cond[2]}. The charge was {c.amount()}.")
        else:
            t.C("I'd rather not give my name. Is it normal to have a rash after a vaccine?")
            t.A(f"Mild rashes are common. If it spreads, {c.clin()} can see people on {c.fdate()} at {c.ftime()}.")
    else:
        if s == 0:
            t.C("Do you do travel vaccines? How much are they?")
            t.A(f"Yes, {c.amount()} per dose. The next clinic is {c.fdate()} at {c.ftime()}.")
        elif s == 1:
            t.C("Can I just walk in or do I need an appointment?")
            o = c.ftime(before="11:00")
            t.A(f"Walk-ins are {o} to {c.ftime(after='14:00')} on weekdays.")
        elif s == 2:
            C1 = c.clin()
            t.C("Who does the smear tests?")
            t.A(f"{C1} runs those clinics; the next one is {c.fdate()} from {c.ftime()}.")
        elif s == 3:
            cond = c.cond()
            t.C(f"I got a letter with {t.k('icd10', cond[1])} on it, what's that?")
            t.A(f"That's {cond[2]}. It was billed at {c.amount()}.")
        else:
            t.C("Not giving my name, sorry, but how long should a cough last before I worry?")
            t.A(f"More than three weeks, come in. {c.clin()} has {c.fdate()} at {c.ftime()} free.")
    close(c, None)


SCENARIOS = [(sc_book, 16), (sc_resched, 7), (sc_refill, 9), (sc_results, 8), (sc_billing, 8),
             (sc_register, 8), (sc_update, 8), (sc_records, 6), (sc_proxy_child, 8), (sc_proxy_adult, 6),
             (sc_insurance, 8), (sc_forms, 5), (sc_referral, 6), (sc_cancel, 5)]
BOOSTERS = {"name": sc_book, "mrn": sc_records, "phone": sc_results, "dob": sc_book, "email": sc_update,
            "ssn": sc_insurance, "address": sc_register, "clinician": sc_book, "follow_up_date": sc_book,
            "time": sc_book, "icd10": sc_referral, "amount": sc_billing}
GENERAL_EVERY = 15  # every 15th transcript is a general enquiry with no PHI at all


def build_batch(B: int, rng: random.Random, name_usage: Counter):
    c = Ctx(B, rng, name_usage)
    rows, rejected = [], 0
    funcs = [f for f, _ in SCENARIOS]
    weights = [w for _, w in SCENARIOS]
    while len(rows) < N_BATCH[B]:
        c.start()
        greet(c)
        f = sc_general if len(rows) % GENERAL_EVERY == 7 else rng.choices(funcs, weights)[0]
        # keep every type on course for its minimum: past 30% of the batch, a type that lags
        # behind 125% of its pro-rata minimum gets a scenario that usually carries it
        if f is not sc_general and len(rows) > 0.3 * N_BATCH[B]:
            have = Counter(e["type"] for r in rows for e in r["phi"])
            have.update(e["kind"] for r in rows for e in r["keep"])
            due = 1.25 * MIN_PER_TYPE[B] * (len(rows) + 1) / N_BATCH[B]
            lagging = [k for k in PHI_TYPES + KEEP_KINDS if have[k] < due]
            if lagging:
                f = BOOSTERS[lagging[0]]
        f(c)
        c.t.finish()
        row = {"id": f"b{B}-{len(rows) + 1:03d}", "transcript": c.t.text(), "phi": c.t.phi, "keep": c.t.keep}
        errs = check_row(row)
        if errs:
            rejected += 1
            print(f"rejected draft (batch {B}): {errs}", file=sys.stderr)
            continue
        rows.append(row)
    return rows, rejected


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------
def _spans(text, value):
    out, start = [], 0
    while True:
        i = text.find(value, start)
        if i < 0:
            return out
        out.append((i, i + len(value)))
        start = i + 1


def check_row(row) -> list[str]:
    """Per-transcript checks: values present; a perfect redaction of the listed PHI
    leaves no PHI value behind and leaves every keep value intact."""
    text = row["transcript"]
    errs = []
    for e in row["phi"]:
        if e["type"] not in PHI_TYPES:
            errs.append(f"{row['id']}: bad type {e['type']}")
        if e["value"] not in text:
            errs.append(f"{row['id']}: phi value not in transcript: {e['value']!r}")
    for e in row["keep"]:
        if e["kind"] not in KEEP_KINDS + EXTRA_KEEP_KINDS:
            errs.append(f"{row['id']}: bad kind {e['kind']}")
        if e["value"] not in text:
            errs.append(f"{row['id']}: keep value not in transcript: {e['value']!r}")
    if errs:
        return errs
    mask = [False] * len(text)
    for e in row["phi"]:
        for a, b in _spans(text, e["value"]):
            for j in range(a, b):
                mask[j] = True
    redacted = "".join("\0" if m else ch for ch, m in zip(text, mask))
    for e in row["phi"]:
        v = e["value"]
        if v in redacted:
            errs.append(f"{row['id']}: phi value survives masking (substring): {v!r}")
        elif re.search(r"(?<!\w)" + re.escape(v) + r"(?!\w)", redacted, re.I):
            errs.append(f"{row['id']}: phi value survives masking (case-insensitive word): {v!r}")
    for e in row["keep"]:
        for a, b in _spans(text, e["value"]):
            if any(mask[a:b]):
                errs.append(f"{row['id']}: keep value overlaps PHI: {e['value']!r}")
                break
    # all PHI-looking items in the transcript must be labelled: every name token of a labelled
    # name must be covered wherever it occurs as a word
    for e in row["phi"]:
        if e["type"] != "name":
            continue
        for tok in re.findall(r"[^\W\d_][\w'’-]*", e["value"]):
            if len(tok) < 3:
                continue
            for m in re.finditer(r"(?<!\w)" + re.escape(tok) + r"(?!\w)", text):
                if not any(mask[m.start():m.end()]):
                    errs.append(f"{row['id']}: unlabelled occurrence of name token {tok!r}")
                    break
    # nothing number-like is left unlabelled: a digit outside every labelled value may only be
    # part of a short count ("24 hours", "only 3 days left")
    cover = mask[:]
    for e in row["keep"]:
        for a, b in _spans(text, e["value"]):
            for j in range(a, b):
                cover[j] = True
    for m in re.finditer(r"\d+", text):
        if not all(cover[m.start():m.end()]) and (len(m.group()) > 2 or any(cover[m.start():m.end()])):
            errs.append(f"{row['id']}: unlabelled number {m.group()!r}")
    return errs


def counts(rows):
    phi = Counter(e["type"] for r in rows for e in r["phi"])
    keep = Counter(e["kind"] for r in rows for e in r["keep"])
    no_phi = sum(1 for r in rows if not r["phi"])
    return phi, keep, no_phi


def validate(batches: dict) -> list[str]:
    errs = []
    ids = set()
    for B, rows in batches.items():
        for r in rows:
            if r["id"] in ids:
                errs.append(f"duplicate id {r['id']}")
            ids.add(r["id"])
            errs += check_row(r)
        phi, keep, no_phi = counts(rows)
        for k in PHI_TYPES:
            if phi[k] < MIN_PER_TYPE[B]:
                errs.append(f"batch{B}: only {phi[k]} {k} values (< {MIN_PER_TYPE[B]})")
        for k in KEEP_KINDS:
            if keep[k] < MIN_PER_TYPE[B]:
                errs.append(f"batch{B}: only {keep[k]} {k} keep values (< {MIN_PER_TYPE[B]})")
        if no_phi < MIN_NO_PHI[B]:
            errs.append(f"batch{B}: only {no_phi} transcripts without PHI")
        if len(rows) < N_BATCH[B]:
            errs.append(f"batch{B}: only {len(rows)} transcripts")
    # name reuse across the whole set: a full name at most once, any name word in at most 2 transcripts
    word_rows = Counter()
    full_rows = Counter()
    for rows in batches.values():
        for r in rows:
            words, fulls = set(), set()
            for e in r["phi"]:
                if e["type"] != "name" or re.fullmatch(r"([A-Z][ ,-]*)+", e["value"]):
                    continue  # spelled forms are counted through their plain form
                fulls.add(e["value"]) if " " in e["value"] and "." not in e["value"] else None
                words.update(w for w in re.findall(r"[^\W\d_][\w'’-]*", e["value"]) if len(w) > 1)
            word_rows.update(words)
            full_rows.update(fulls)
    particles = {"van", "de", "Dela", "Cruz", "Dijk", "Vries"}
    for w, n in word_rows.items():
        if n > 2 and w not in particles:
            errs.append(f"name word {w!r} used in {n} transcripts")
    for w, n in full_rows.items():
        if n > 1:
            errs.append(f"full name {w!r} used in {n} transcripts")
    # batch 2 names must be new
    b1_words = {w for r in batches.get(1, []) for e in r["phi"] if e["type"] == "name"
                for w in re.findall(r"[^\W\d_][\w'’-]*", e["value"]) if len(w) > 1}
    b2_words = {w for r in batches.get(2, []) for e in r["phi"] if e["type"] == "name"
                for w in re.findall(r"[^\W\d_][\w'’-]*", e["value"]) if len(w) > 1}
    shared = (b1_words & b2_words) - particles
    if shared:
        errs.append(f"names shared between batches: {sorted(shared)}")
    return errs


def print_counts(batches):
    for B, rows in batches.items():
        phi, keep, no_phi = counts(rows)
        print(f"batch{B}: {len(rows)} transcripts, {no_phi} without PHI")
        print("  phi:  " + ", ".join(f"{k}={phi[k]}" for k in PHI_TYPES))
        print("  keep: " + ", ".join(f"{k}={keep[k]}" for k in KEEP_KINDS + EXTRA_KEEP_KINDS))


def main(argv):
    if "--check" in argv:
        batches = {B: [json.loads(l) for l in (HERE / f"batch{B}.jsonl").read_text(encoding="utf-8").splitlines()
                       if l.strip()] for B in (1, 2)}
    else:
        rng = random.Random(SEED)
        usage = Counter()
        batches = {}
        for B in (1, 2):
            rows, rejected = build_batch(B, rng, usage)
            batches[B] = rows
            if rejected:
                print(f"batch{B}: {rejected} drafts rejected by the checks and redrawn", file=sys.stderr)
        for B, rows in batches.items():
            with open(HERE / f"batch{B}.jsonl", "w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    errs = validate(batches)
    print_counts(batches)
    if errs:
        print(f"{len(errs)} validation errors:")
        for e in errs[:50]:
            print("  " + e)
        return 1
    print("validation OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
