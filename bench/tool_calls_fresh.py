"""Fresh caller requests for ``bench/tool_calls.py`` (``--set fresh``): set C.

Written from the tool signatures and docstrings (``examples/receptionist/app.py``,
``voxgate/knowledge/calltools.py``) and the clinic's document (``clinic.md``) only, without
reading the intent router's example phrasings (``intents.py``), the normaliser's patterns
(``normalize.py``) or the cases of the other held-out sets that failed, and committed before
any run and before any change made to improve the score. It is never tuned on: changes are
judged on the original set and held-out sets A and B, and C only measures them.

Phone-style phrasing: fillers, numbers and times as words, relative days, spelled names,
indirect requests, corrections ("no wait, Friday"), FAQ and small talk that need no tool
(including questions that mention cancelling or booking), asking for a person, goodbyes,
cancellations and reschedules with partial information.

"Today" is Wednesday 2026-11-25 (as in the other sets): tomorrow = Thursday 26, Friday 27,
Saturday 28, Monday 30, Tuesday = December 1, next Wednesday / a week from today = December 2.
"""

from __future__ import annotations

import datetime as dt

from bench.tool_calls import TODAY, Case, _any, _date, _digits, _has, _time
from bench.tool_calls_heldout import _no_day

THU, FRI, SAT, MON, TUE, WED = (TODAY + dt.timedelta(days=d) for d in (1, 2, 3, 5, 6, 7))
DEC = lambda day: dt.date(2026, 12, day)  # noqa: E731
ASKS_BACK = (None, {})
"""Text (the agent asks for what is missing) is an acceptable answer to a partial request."""

FRESH = [
    # book_appointment (11)
    Case("Hi there, uh, I'd like to book a check-up for this Friday, around quarter to ten in the morning if you have it.",
         "book_appointment", {"date": _date(FRI), "time": _time(9, 45)}),
    Case("Can you book me in for a cleaning on Monday at two in the afternoon? The name's Daniel Okafor, that's O K A F O R.",
         "book_appointment", {"date": _date(MON), "time": _time(14), "name": _has("okafor")}),
    Case("I want to make an appointment on Thursday at ten, no wait, sorry, make that Friday, same time.",
         "book_appointment", {"date": _date(FRI), "time": _time(10)}),
    Case("Could I get my daughter in for a kids' check-up on the first of December at four p.m.? Her name is Sofia Marquez.",
         "book_appointment", {"date": _date(DEC(1)), "time": _time(16), "name": _has("sofia")}),
    Case("Yes, I'd like a filling appointment a week from today, at noon please.",
         "book_appointment", {"date": _date(WED), "time": _time(12)}),
    Case("Tomorrow at half past three works for me, go ahead and book it.",
         "book_appointment", {"date": _date(THU), "time": _time(15, 30)}),
    Case("Um, hello, I need a whitening appointment, Saturday, eleven fifteen in the morning, under the name Grace Liu.",
         "book_appointment", {"date": _date(SAT), "time": _time(11, 15), "name": _has("liu")}),
    Case("Book me for Monday the thirtieth at nine o'clock, please.",
         "book_appointment", {"date": _date(MON), "time": _time(9)}),
    Case("My tooth's been killing me since yesterday, can I come in tomorrow morning at nine?",
         "book_appointment", {"date": _date(THU), "time": _time(9)}),
    Case("Put me down for Tuesday at two, sorry, I mean three in the afternoon.",
         "book_appointment", {"date": _date(TUE), "time": _time(15)}),
    Case("Hello, I'd like to make an appointment for a cleaning.",
         None, alt=(("book_appointment", {"date": _no_day}), ("check_availability", {"date": _no_day}))),
    # check_availability (6)
    Case("What've you got on Thursday afternoon?", "check_availability", {"date": _date(THU)}),
    Case("Is there anything open the day after tomorrow?", "check_availability", {"date": _date(FRI)}),
    Case("Do you have any free slots on December the fourth?", "check_availability", {"date": _date(DEC(4))}),
    Case("Hmm, how's your schedule looking for this coming Monday?", "check_availability", {"date": _date(MON)}),
    Case("When could Dr. Lopez see me on Saturday?", "check_availability", {"date": _date(SAT)}),
    Case("Are you all booked up on Tuesday, or is there still room?", "check_availability", {"date": _date(TUE)}),
    # cancel_appointment (5)
    Case("Hi, I need to cancel my appointment, the confirmation code is M, 4, T, 9.",
         "cancel_appointment", {"name_or_code": _digits("M4T9")}),
    Case("I'm calling to cancel my husband's cleaning, it's booked under Tom Becker.",
         "cancel_appointment", {"name_or_code": _has("becker")}),
    Case("Please cancel Friday's appointment, I've come down with the flu.",
         "cancel_appointment", {"name_or_code": _any}),
    Case("I'm afraid I have to call off my visit for tomorrow.", "cancel_appointment", {"name_or_code": _any}),
    Case("Could you just delete my booking? The code is two, X, seven, L.",
         "cancel_appointment", {"name_or_code": _digits("2X7L")}),
    # reschedule_appointment (5)
    Case("I need to move my appointment from Thursday to Monday at ten thirty.",
         "reschedule_appointment", {"date": _date(MON), "time": _time(10, 30)}),
    Case("Could we push my cleaning back to next Wednesday, same time, um, two o'clock?",
         "reschedule_appointment", {"date": _date(WED), "time": _time(14)}),
    Case("My code is Q 5 R 8, can I change it to Saturday at twelve?",
         "reschedule_appointment", {"date": _date(SAT), "time": _time(12), "name_or_code": _digits("Q5R8")}),
    Case("I can't come on Friday after all, could you do Tuesday at nine instead?",
         "reschedule_appointment", {"date": _date(TUE), "time": _time(9)}),
    Case("I'd like to reschedule my appointment, please.",
         "reschedule_appointment", {"date": _no_day}, alt=(ASKS_BACK,)),
    # check_order_status (3)
    Case("Hi, I'm wondering if my retainer is back from the lab, the order number's five five two.",
         "check_order_status", {"order_number": _digits("552")}),
    Case("Any news on my crown? It's order eight zero one.", "check_order_status", {"order_number": _digits("801")}),
    Case("Can you look up an order for me? It's number 349.", "check_order_status", {"order_number": _digits("349")}),
    # transfer_call (3)
    Case("Could I speak with the office manager about my bill?", "transfer_call", {"target": _has("front desk")}),
    Case("Is there someone there I can ask about my insurance claim? Put me through, please.",
         "transfer_call", {"target": _has("front desk")}),
    Case("I'd rather not do this with a machine, can I get a person on the line?",
         "transfer_call", {"target": _has("front desk")}),
    # end_call (3)
    Case("Okay, perfect, that's all I needed. Bye now.", "end_call"),
    Case("Great, thanks so much, you've been really helpful. Have a nice day.", "end_call"),
    Case("Nope, that's it, cheers.", "end_call"),
    # FAQ and small talk: no tool (9)
    Case("What time do you close on Fridays?", None, fact="5"),
    Case("Do you take Medicaid?", None, fact="not"),
    Case("Is there somewhere to park near you?", None, fact="behind"),
    Case("How much does a filling cost?", None, fact="120"),
    Case("Is there a fee if I cancel at the last minute?", None, fact="25"),
    Case("Do you see kids? My son is three.", None, fact="children"),
    Case("How long does a check-up with a cleaning take?", None, fact="45"),
    Case("Oh sorry, my dog is barking, give me one second.", None),
    Case("Hello? Can you hear me okay?", None),
]
assert len(FRESH) == 45
