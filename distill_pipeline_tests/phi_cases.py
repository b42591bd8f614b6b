"""A labelled set of synthetic PHI for measuring redaction recall and precision per type.

Every person, number and address here is made up (phone numbers use the 555-01xx
range, e-mail domains are example.* or common providers with invented users).
Each case is a short text in the shape the redactor sees: a transcript line or
two (`Agent:` / `Caller:`), or a fragment of a JSON answer. PHI is marked inline
as `<<type:exact span>>`; everything unmarked must survive, including the
distractors at the end (times, follow-up dates, ICD-10 codes, clinicians,
amounts, claim and member numbers, clinic and insurer names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARK = re.compile(r"<<(\w+):(.*?)>>", re.DOTALL)


@dataclass(frozen=True)
class PhiCase:
    text: str  # the plain text, markup removed
    spans: frozenset[tuple[int, int, str]]  # (start, end, type) of every PHI span expected


def parse_case(marked: str) -> PhiCase:
    plain: list[str] = []
    spans = set()
    last = 0
    length = 0
    for mark in _MARK.finditer(marked):
        before = marked[last:mark.start()]
        plain.append(before)
        length += len(before)
        plain.append(mark.group(2))
        spans.add((length, length + len(mark.group(2)), mark.group(1)))
        length += len(mark.group(2))
        last = mark.end()
    plain.append(marked[last:])
    return PhiCase("".join(plain), frozenset(spans))


PHONE = [
    "Caller: You can reach me at <<phone:(415) 555-0132>> after five.",
    "Caller: My cell is <<phone:415-555-0198>>.",
    "Agent: Is <<phone:312.555.0147>> still the best number for you?",
    "Caller: Call me back on <<phone:+1 646 555 0101>>, please.",
    "Caller: The office line is <<phone:1-800-555-0199 ext. 12>>, ask for me.",
    "Caller: Text me at <<phone:5035550176>> when it's ready.",
    "Caller: My daughter's number is <<phone:(206) 555-0113>>.",
    "Caller: It's <<phone:+44 20 7946 0958>>, I'm in London this month.",
    "Caller: Home phone <<phone:555-0142>>, but I'm rarely in.",
    "Caller: My mobile number changed to <<phone:617 555 0165>>.",
    "Agent: We have <<phone:(718)555-0120>> on file. Is that right?",
    "Caller: You can call <<phone:202-555-0173>> or <<phone:202-555-0188>>.",
    "Caller: Reach me on <<phone:+1-303-555-0154>> any time.",
    "Caller: it's <<phone:415.555.0109>>, that's my work line.",
    '{"plan":"Nurse to call patient at <<phone:773-555-0121>>"}',
    "Caller: The number is <<phone:(305) 555-0136>>, not the old one, <<phone:(305) 555-0110>>.",
    "Caller: Please use my landline, <<phone:480 555 0192>>.",
    "Caller: My number in Berlin is <<phone:+49 30 901820>>.",
    "Agent: What's the best number to call you back on?\nCaller: <<phone:650-555-0127>>.",
    "Caller: Hi, it's <<name:Nico Baptiste>>, <<phone:917-555-0164>>, about my refill.",
    'Caller: Best to ring my husband on <<phone:(512) 555-0187>>.',
    "Agent: I'll text the reminder to <<phone:929-555-0114>>.",
    'Caller: My new cell phone number is <<phone:702.555.0139>>, the old one is gone.',
    'Caller: Work number <<phone:+1 (415) 555-0171>>, extension is on the card.',
    "Agent: What's a good callback number?\nCaller: <<phone:8015550128>>.",
    'Caller: You can leave a message on <<phone:303 555 0117>>.',
    'Caller: Call me at <<phone:404-555-0150>>, or email, either is fine.',
    "Caller: my number's <<phone:206-555-0145>>",
    'Agent: Confirming your phone, <<phone:(617) 555-0103>>?',
    "Caller: It's <<phone:1 (800) 555-0166>>, the toll-free one.",
    'Caller: Reach me at <<phone:+1.415.555.0190>>.',
    'Caller: Please call <<phone:973-555-0182>> after 17:00.',
    # National numbers with spaces (issue 16).
    "Caller: My mobile is <<phone:07700 900 123>>.",
    "Caller: Ring me on <<phone:020 7946 0958>> after lunch.",
    "Caller: It's <<phone:+61 412 345 678>>, I'm in Sydney.",
    "Caller: You can text <<phone:0412 345 678>>.",
    "Caller: Best number is <<phone:+353 1 234 5678>>.",
]

EMAIL = [
    "Caller: My email is <<email:maya.rivera@example.com>>.",
    "Caller: Send it to <<email:t.novak+clinic@mailbox.org>>, please.",
    "Agent: I have <<email:aisha_mensah@example.net>> on file.",
    "Caller: It's <<email:JONAS.LARSEN@EXAMPLE.COM>>, all capitals is fine.",
    "Caller: Email me at <<email:priya.ortega@health-mail.co.uk>>.",
    "Caller: My e-mail is <<email:lucas dot sato at example dot com>>.",
    "Caller: Sure, the email is <<email:noor dot keller at gmail dot com>>.",
    "Caller: The portal login is <<email:elena.duarte@example.org>>.",
    "Agent: The confirmation goes to <<email:kwame.h@example.com>>; is that right?",
    "Caller: Use my daughter's email, <<email:sofia.petrov99@example.com>>, for everything.",
    "Caller: Either <<email:rafael@farah.example>> or <<email:r.farah@example.com>> works.",
    '{"plan":"Send results to <<email:ingrid.winter@example.com>>"}',
    "Caller: It's <<email:yusuf.aziz@example.com>>. <<name:Y-U-S-U-F>>.",
    "Caller: email: <<email:hana_moretti@post.example.com>>",
    "Caller: Use <<email:mateo-lund@example.io>> for the invoice.",
    "Caller: My e-mail address is <<email:freya underscore tanaka at outlook dot com>>.",
    "Agent: Updated to <<email:arjun.brooks@example.com>>.",
    "Agent: What email should we use?\nCaller: <<email:leila.jansen@example.com>>, thanks.",
    'Caller: My address for the portal is <<email:d.petrov@example.com>>.',
    "Agent: I'll send the form to <<email:camila.reyes@example.org>> today.",
    'Caller: Write to <<email:ayla.marek2001@example.net>>, with the 2001.',
    'Caller: The e-mail is <<email:greta dot holm at example dot com>>.',
    '{"plan":"Emailed instructions to <<email:z.kaur@example.co>>"}',
    'Caller: Please cc my son, <<email:bruno.silva@example.com>>.',
    "Caller: It's <<email:m.okoro@example.com>>, M dot <<name:Okoro>>.",
    'Agent: Is <<email:tanaka.lena@example.jp>> correct?',
    'Caller: you can email <<email:ravi_kaur@example.com>> or call.',
    'Caller: Send it to my email, <<email:omar dot nowak at yahoo dot com>>.',
]

SSN = [
    "Caller: My social security number is <<ssn:123-45-6789>>.",
    "Caller: SSN <<ssn:219-09-9999>>.",
    "Caller: It's <<ssn:078-05-1120>>.",
    "Caller: Social is <<ssn:536 22 8841>>.",
    "Caller: My SSN is <<ssn:401558812>>.",
    "Agent: What's your social security number?\nCaller: <<ssn:612-40-3381>>.",
    "Agent: And your social?\nCaller: It's <<ssn:287 65 4321>>.",
    '{"objective":"SSN <<ssn:345-67-8901>> verified"}',
    "Caller: For insurance they need my social, <<ssn:452-19-7734>>.",
    "Caller: social security no. <<ssn:318-22-4456>>",
    "Caller: I gave <<ssn:529-33-1088>> last time, is that on file?",
    "Caller: my husband's SSN: <<ssn:634-11-2290>>",
    "Caller: The number on the form, <<ssn:180-72-6634>>, is wrong; it should be <<ssn:180-72-6643>>.",
    "Caller: My Social Security number: <<ssn:055 48 9012>>.",
    "Caller: Social security <<ssn:266-81-4507>>, date of birth <<dob:1977-02-14>>.",
    "Agent: I need the SSN for the form.\nCaller: Okay, <<ssn:701445120>>.",
    'Caller: The social security number is <<ssn:372-81-0046>>.',
    'Agent: Please confirm your SSN.\nCaller: <<ssn:604-27-1938>>.',
    "Caller: My social's <<ssn:455 90 3127>>.",
    'Caller: SSN on the claim form: <<ssn:239-64-5810>>.',
    '{"objective":"Caller gave SSN <<ssn:518-30-9924>> for billing"}',
    'Caller: Social security number <<ssn:229-71-4408>>, if you need it.',
    'Caller: SSN is <<ssn:532 18 0077>>.',
    'Agent: What are the nine digits of your social?\nCaller: <<ssn:448-02-1163>>.',
    "Caller: I think it's <<ssn:319-55-2781>>, my social.",
]

MRN = [
    "Caller: My MRN is <<mrn:00482913>>.",
    "Agent: Can you read me your medical record number?\nCaller: <<mrn:MR-2231874>>.",
    "Caller: Medical record number <<mrn:4821-9934>>.",
    "Caller: MRN: <<mrn:A7730215>>.",
    "Caller: The chart number on my letter is <<mrn:CH-559102>>.",
    "Caller: patient ID <<mrn:7734512>>",
    "Agent: I found MRN <<mrn:00917342>> under your name.",
    "Caller: My hospital number is <<mrn:H4410283>>.",
    '{"objective":"Chart pulled, MRN <<mrn:3391027>>"}',
    "Caller: I'm MRN <<mrn:00482913>>, and my son is MRN <<mrn:00482977>>.",
    "Caller: It's on the wristband: medical record no. <<mrn:66120394>>",
    "Agent: What's your MRN?\nCaller: It's <<mrn:MRN-0031187>>.",
    "Caller: My medical record number is <<mrn:20-331-874>>.",
    "Caller: Patient number <<mrn:PT448120>>.",
    "Caller: Sorry, the MRN on the form says <<mrn:5512047>>.",
    "Caller: Medical record #<<mrn:88012345>>.",
    'Caller: The MRN on my discharge papers is <<mrn:00771264>>.',
    'Caller: medical record number, let me see, <<mrn:3320-1187>>.',
    'Agent: Could I have your MRN?\nCaller: Sure, <<mrn:K0093318>>.',
    'Caller: My patient ID at the hospital was <<mrn:55081742>>.',
    '{"objective":"MRN <<mrn:6604127>> on file"}',
    'Caller: Hospital number <<mrn:HN-4471902>>.',
    'Agent: I see medical record number <<mrn:21-447-390>> for you.',
    'Caller: MRN <<mrn:000558213>>, I have it on my app.',
    'Caller: The chart # is <<mrn:C-7732190>>.',
    # A bare record number after a shorter cue (issue 16).
    "Caller: My record number is <<mrn:00878040>>.",
    "Agent: What's the record number?\nCaller: It's <<mrn:189003>>.",
    "Caller: The chart number is <<mrn:5521907>>.",
    "Caller: Patient ID <<mrn:PT-448120>>, from the letter.",
]

DOB = [
    "Agent: Can you confirm your date of birth, please?\nCaller: Sure, it's <<dob:1998-09-02>>.",
    "Caller: My date of birth is <<dob:03/14/1985>>.",
    "Caller: DOB <<dob:7/4/62>>.",
    "Caller: I was born on <<dob:March 4, 1985>>.",
    "Caller: Born <<dob:12 January 1990>>, if that helps.",
    "Caller: <<dob:1972-11-30>> is my date of birth.",
    "Caller: It's <<name:Maya Rivera>>, DOB <<dob:1980-05-17>>.",
    '{"objective":"DOB <<dob:1955-08-21>> verified"}',
    "Agent: And the date of birth?\nCaller: <<dob:June 9th, 1979>>.",
    "Caller: D.O.B. <<dob:02.11.1968>>",
    "Caller: My son was born on <<dob:2015-06-01>>.",
    "Caller: birth date <<dob:1949-12-25>>",
    "Agent: Can you confirm your date of birth, please?\nCaller: Sure, it's <<dob:1961-02-28>>.\n"
    "Agent: Dr. Okafor can see you on 2026-10-18 at 14:00.",
    "Caller: my DOB is the <<dob:3rd of May 1991>>",
    "Caller: Date of birth: <<dob:1988-01-07>>. Phone <<phone:415-555-0119>>.",
    "Caller: I'm calling for my mother, <<name:Rosa Keller>>, date of birth <<dob:04/22/1940>>.",
    "Caller: The date of birth on file is wrong. It should be <<dob:1983-10-05>>.",
    "Caller: <<dob:11/02/1959>> (DOB), and I need a refill.",
    "Agent: Date of birth?\nCaller: <<dob:Sept. 30, 1966>>.",
    "Agent: Can you confirm your date of birth, please?\nCaller: Sure, it's <<dob:1974-07-23>>.\n"
    "Agent: I'm calling about the test from 2026-09-20.",
    'Caller: My DOB is <<dob:1993-04-18>>, and my name is <<name:Ines Winter>>.',
    'Agent: Could you give me your date of birth?\nCaller: Yes, <<dob:August 2, 1971>>.',
    'Caller: Born <<dob:1958-10-09>>.',
    "Caller: My daughter's date of birth is <<dob:2012-01-30>>.",
    "Caller: It's <<dob:5/16/1987>> for the date of birth.",
    'Agent: Date of birth, please.\nCaller: <<dob:1966-12-03>>.',
    'Caller: date of birth <<dob:1979-06-15>>, name <<name:Lina Sato>>.',
    'Agent: Can you confirm your date of birth, please?\nCaller: Yes, <<dob:October 12, 1950>>.',
    'Caller: I was born <<dob:1/9/1999>>.',
    "Caller: <<dob:1962-03-27>>, that's my DOB.",
    # Month names and day-first orders (issue 16).
    "Caller: Date of birth is <<dob:4 March 1985>>.",
    "Caller: My DOB is <<dob:14th of February, 1972>>.",
    "Agent: Could you confirm your date of birth?\nCaller: <<dob:21/06/1990>>, day first.",
    "Caller: I was born on the <<dob:9th of November 1961>>.",
    "Caller: Born <<dob:30 Sept 1948>>.",
    "Caller: DOB <<dob:July 4th 1959>>.",
    "Caller: My date of birth is the <<dob:fourteenth of March, nineteen eighty-five>>.",
    "Agent: And your birthday?\nCaller: <<dob:March the 3rd, two thousand and one>>.",
    "Caller: Birthday's <<dob:2nd Feb 1977>>.",
    "Caller: Born <<dob:12-Mar-1970>>.",
]

ADDRESS = [
    "Caller: I moved to <<address:42 Oak Street>>.",
    "Caller: My new address is <<address:1180 West Maple Avenue, Apt 4B, Springfield, IL 62704>>.",
    "Caller: Send it to <<address:221B Baker Street>>, please.",
    "Caller: It's <<address:77 Harbor View Rd>>, the blue house.",
    "Caller: I live at <<address:3600 Cedar Lane, Unit 12>>.",
    "Caller: The mailing address is <<address:PO Box 4471>>.",
    "Caller: <<address:15 N. Main St, Dayton>>.",
    "Caller: We're at <<address:908 Sunset Boulevard, Los Angeles, CA 90046>>.",
    '{"plan":"Mail letter to <<address:56 Elm Court>>"}',
    "Caller: My address changed from <<address:12 Birch Road>> to <<address:340 Lakeview Drive>>.",
    "Caller: It's <<address:1600 Pennsylvania Avenue NW, Washington, DC 20500>>.",
    "Caller: <<address:7 Willow Way>> is the new one.",
    "Caller: Deliver to <<address:250 5th Avenue, Suite 300>>.",
    "Caller: I'm staying at <<address:19 Kingfisher Close>> for now.",
    "Caller: The house is <<address:4 Rosewood Terrace, #2>>, round the back.",
    "Agent: We have <<address:88 Queen Street East>> on file.",
    "Caller: <<address:1021 Old Mill Road, Apt. 3>>, second floor.",
    'Caller: Our address is <<address:450 Pine Street, Apt 12C>>.',
    'Caller: Please update it to <<address:9 Station Road>>.',
    "Caller: I'm at <<address:2210 E. Jefferson Ave, Detroit, MI 48207>> now.",
    'Caller: send the letter to <<address:31 Hawthorn Crescent>>, thanks',
    '{"plan":"Home visit at <<address:118 River Lane>>"}',
    "Caller: It's <<address:16 Cherry Tree Lane>>.",
    "Caller: I'm at <<address:5 Harbour Road, Apt 7>>, near the ferry.",
    'Caller: Mail goes to <<address:P.O. Box 902>>.',
    'Caller: New address: <<address:73 Grove Street, Portland, OR 97205>>.',
    "Caller: The postcode is <<address:LS1 4AB>>.",
]

NAME = [
    "Caller: Hi, this is <<name:Maya Rivera>>. I need a refill.",
    "Caller: Hello, <<name:Tomas Novak>> here. Calling about my results.",
    "Caller: Hi, my name is <<name:Aisha Mensah>>.",
    "Caller: Hello, it's <<name:Jonas Larsen>>. I need to cancel.",
    "Caller: My name is <<name:Priya>>.",
    "Caller: I'm calling for my mother, <<name:Elena Duarte>>.",
    "Caller: I'm <<name:Kwame Hughes>>, calling about a bill.",
    "Caller: Hi, this is <<name:Sofia O'Brien>>.",
    "Caller: Hello, it's <<name:Rafael Costa-Lima>>.",
    "Caller: Patient name: <<name:Ingrid Winter>>.",
    "Caller: Hi, this is <<name:Yusuf Aziz>>. Can I get a refill?\nAgent: Of course, <<name:Yusuf>>. Which pharmacy?",
    'Caller: Hello, it\'s <<name:Hana Moretti>>.\n{"subjective":"<<name:Hana Moretti>> reports sore throat"}',
    "Caller: My name is <<name:Mateo Lund>> and my date of birth is <<dob:1990-03-03>>.",
    "Caller: It's <<name:Arjun Brooks>>. Dr. Haddad asked me to call.",
    "Caller: Hi, this is <<name:Leila Jansen>>. Nurse Patel said to call back.",
    "Caller: hi, my name's <<name:Camila Reyes>>.",
    "Caller: Hello, <<name:Dmitri Petrov>> here, returning Dr. Varga's call.",
    "Caller: This is <<name:Zara Kaur>> calling about my prescription.",
    "Caller: I'm calling on behalf of my father, <<name:Oskar Eriksen>>. <<name:Oskar>> can't come in on 2026-10-12.",
    "Caller: Hello, this is <<name:Greta Holm>>, and my husband <<name:Emil Holm>> needs an appointment too.",
    'Caller: Hi there, this is <<name:Olivia Quinn>>.',
    'Caller: Hello, my name is <<name:Bruno Silva>>, I had a visit last week.',
    'Caller: Good morning, <<name:Ayla Marek>> here.',
    "Caller: It's <<name:Samir Farah>> again, sorry to call twice.",
    "Caller: I'm calling for my daughter, <<name:Lena Nowak>>.",
    "Caller: Yes, it's <<name:Felix Jansen>>. Is Dr. Amari in today?",
    "Caller: Hi, it's <<name:Amara Fischer>> calling back.",
    'Caller: Hello, this is <<name:Marek Sandoval>>. Dr. Castillo asked me to call.',
    'Caller: My name is <<name:Noor Keller>>. I need a refill of metformin.',
    'Caller: Hi, this is <<name:Kofi Mensah>>.\nAgent: Thanks, <<name:Kofi>>. How can I help?',
    # Names without the usual cue phrases (issue 16): titles, for someone else, "Last, First", spelled, repeated.
    "Caller: <<name:Tariq Haddad>> calling about the bill from last month.",
    "Caller: Yes, you've got <<name:Imogen Fairweather>> on the line.",
    "Caller: The name is <<name:Okonkwo>>, <<name:Chidi Okonkwo>>.",
    "Caller: I'm ringing about my results. It's <<name:Bartholomew Quist>>.",
    "Agent: Thank you, Mr. <<name:Delacroix>>. I'll check.",
    "Agent: I have it here, Mrs. <<name:Abernathy>>, the refill went out.",
    "Caller: It's about my husband, <<name:Ravi>>. He can't get out of bed.",
    "Caller: Account under <<name:Chen>>, <<name:Wei Chen>>.",
    "Caller: It's under <<name:Szymanski>>, <<name:Agnieszka>>.",
    "Caller: My surname is <<name:Nwachukwu>>, that's <<name:N-W-A-C-H-U-K-W-U>>.",
    "Caller: Sure. <<name:H-A-N-N-E-L-O-R-E>>, first name <<name:Hannelore>>.",
    "Caller: This is about <<name:Lucia Ferreira>>, my mum. <<name:Lucia>> fell yesterday.",
    "Agent: Okay <<name:Matteo>>, what pharmacy do you use?",
    "Caller: Ms. <<name:Oyelaran>> speaking, returning a call.",
    "Caller: Hi there. <<name:Siobhan Gallagher>>. I'm after a refill of my Ventolin.",
    "Caller: I'm calling for <<name:Kenji Watanabe>>, he's my father.",
    "Caller: Booked under <<name:Dubois>> I think, <<name:Amelie Dubois>>.",
    "Caller: Morning, <<name:Ifeoma>> here, about my blood sugar.",
    "Agent: Can I take your name?\nCaller: <<name:Rhiannon Pryce>>.",
    "Caller: Can you tell Dr. Haddad that <<name:Mateusz Wrobel>> called?",
    '{"subjective":"<<name:Tariq Haddad>> reports heartburn"}',
    "Caller: Hello, <<name:Jun Andersen>> here.",
    "Agent: Who am I speaking with?\nCaller: <<name:Aurelio>>. <<name:Aurelio Bettencourt>>.",
]

DISTRACTORS = [
    "Agent: Dr. Lindqvist can see you on 2026-10-18 at 14:00.",
    "Agent: I have 2026-10-21 at 09:15 or 2026-10-22 at 16:45, both with Nurse Kowalski.",
    "Caller: Can I come in at 14:30 instead?",
    "Agent: Take 2 tablets at 08:00 and 20:00.",
    "Agent: The code for your asthma is J45.909, and for the reflux K21.9.",
    '{"icd10":["M54.50","R51.9"],"follow_up":{"needed":true,"date":"2026-11-03","time":"10:30",'
    '"clinician":"Dr. Okafor"}}',
    "Caller: There's a charge of $120.50 on my last bill.",
    "Caller: I paid 75 dollars at the desk on 2026-09-14.",
    "Caller: My home reading this morning was 148/92.",
    "Agent: Your claim number is CLM-2026-004512.",
    "Caller: My member ID is XY482913, with Blue Harbor Health.",
    "Caller: My insurance card changed. It's Northstar Mutual now, member ID KT771204.",
    "Caller: It's Evergreen Care Plans now.",
    "Agent: Westbrook Medical, this is the virtual assistant. How can I help?",
    "Agent: Hello, you've reached Maple Street Clinic. How may I help you?",
    "Caller: Please send it to the pharmacy on Mill Road.",
    "Agent: I've sent the refill to the late-night pharmacy on Bridge Street.",
    "Caller: Hi, this is Nurse Patel from Elm Park Surgery.",
    "Caller: This is Doctor Okafor's office calling back.",
    "Caller: I don't know my MRN, but my claim number is 448812.",
    "Caller: My policy number is 88213-004 and the group number is 55120.",
    "Agent: Your prescription number is 7712093.",
    "Caller: I was born in 1985, and I need to book for 2026-10-12.",
    "Agent: Thanks for confirming your date of birth. Dr. Osei can see you on 2026-10-14.",
    "Agent: Can you confirm your date of birth, please?\nCaller: I'd rather not say.\n"
    "Agent: Okay. The next opening is 2026-10-21 at 09:15.",
    "Caller: I'm calling about my blood test from 2026-09-20.",
    "Caller: My birthday party is on 2026-11-02, so not that day.",
    "Agent: The referral letter should go out by 2026-10-06.",
    "Agent: Log in at portal dot riverside dot com to see your results.",
    "Caller: The forms are on example.com/forms, I think.",
    "Caller: It's been 14 days and I still have a headache.",
    "Caller: I have 3 days of lisinopril left.",
    "Agent: Your confirmation code is 123-45-67890.",
    "Agent: Order 1234567890 has shipped.",
    "Agent: Room 204 is on the second floor, next to Suite 300.",
    "Caller: Dr. Moreau said I should see cardiology about my high blood pressure.",
    "Agent: Booked with Dr. Fitzgerald on 2026-10-30 at 11:45.",
    "Caller: I live near 5th Avenue, by the station.",
    "Agent: Your visit on 10/14/2026 is confirmed.",
    "Caller: My copay was $25 and the invoice is 2026-0042.",
    "Agent: You're booked with Nurse Dubois on 2026-10-27 at 15:15.",
    'Caller: The total was $1,240.00 and I paid $40.',
    'Agent: Your diagnosis code is E11.9 and the visit was 2026-10-02.',
    'Caller: My member number is AB345678 with Summit Health Plan.',
    'Caller: Claim 2026-77120 was denied.',
    'Agent: Our fax is on the website.',
    "Caller: I've had the headache for 10 days.",
    "Caller: It's Summit Health Plan now.",
    'Agent: Thanks for calling Riverside Clinic. What can I do for you today?',
    'Caller: My date of birth should be on file already. Can I book for 2026-10-19?',
    'Agent: Dr. Whitlock has 2026-11-04 at 08:45.',
    'Caller: The pharmacy at Elm Park is fine.',
    "Caller: It's Harbor Family Practice I usually go to.",
    'Agent: The next opening with Dr. Brennan is 2026-10-29 at 13:00.',
    'Caller: My test on 2026-09-30 came back, right?',
    "Caller: I'm Not Sure what the code was.",
    'Caller: Policy 4471-2290-11 is the new one.',
    'Agent: Your balance is $310.75 after the $45 copay.',
    'Caller: Hi, this is Nurse Adeyemi from the ward.',
    'Agent: We open at 08:00 on Monday.',
    'Caller: Dose is 500 mg twice a day.',
    'Caller: My reading was 152/96 this morning.',
    # Capitalised words that are not people (issue 16).
    "Caller: I need a refill of my Ventolin and the Lipitor.",
    "Caller: I'm calling about my X-ray from last week.",
    "Caller: I'm in London this month, back in May.",
    "Agent: You've reached Greenfield Family Practice. How can I help?",
    "Agent: Dr. Okafor can see you on 2026-10-18. Okafor is in room 4.",
    "Caller: Is Nurse Practitioner Alvarez in today?",
    "Agent: Please bring your Medicare card.",
    "Caller: Self-care has not helped the low back pain.",
]

CASES: dict[str, list[str]] = {"phone": PHONE, "email": EMAIL, "ssn": SSN, "mrn": MRN, "dob": DOB,
                               "address": ADDRESS, "name": NAME}


def all_cases() -> list[PhiCase]:
    return [parse_case(text) for texts in CASES.values() for text in texts] + [parse_case(t) for t in DISTRACTORS]
