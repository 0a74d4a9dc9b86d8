"""Tool-call accuracy and latency of the embedded LLM on the receptionist's tools.

Run: ``.venv/bin/python bench/tool_calls.py`` (``--set heldout|heldout_b|fresh|all``: the
held-out requests of bench/tool_calls_heldout.py and bench/tool_calls_fresh.py; ``--mode llm|agent``: one setup; ``--only N,M``: a
subset; ``--write-results``: replace this benchmark's section in bench/RESULTS.md with the
tables (the prose there is written by hand); ``--json``: per-request rows).

30 scripted caller requests, text level (as Whisper would write them), each sent to the LLM
exactly as the agent sends it: the receptionist's system prompt, the retrieved passages of
clinic.md (MiniLM, as in a call), the caller's words, and the receptionist's tools (five app
tools + ``transfer_call`` + ``end_call``). A request is correct when the model calls the
expected tool with arguments that mean the expected thing once normalised the way the tools
normalise them ("next Tuesday" -> the date, "three in the afternoon" -> 15:00) and check them
against the caller's words (``normalize.ground``), or, for FAQ questions and small talk,
answers in text without calling a tool; the arguments as the model wrote them are scored too.
Two setups:

- **LLM alone**: every request goes to the model;
- **agent**: the route's deterministic rules run first (escalation phrases transfer to the
  front desk, the app's goodbye phrases end the call, as the pipeline does), the model gets
  the rest with the turn's plan (``CallKnowledge.prepare``, as ``ReplyRun`` uses it): every
  tool, with ``tool_choice`` the routed tool when the router is sure, "none" for a question,
  else "auto" (+ the route as a hint).

Before the requests of each setup the model reads the system prompt with the tools block
once (``prewarm``, as the pipeline does while the greeting plays), so the first request is
timed like the first tool turn of a real call. Latency to tool call: from ``chat()`` to the
``ToolCall`` event (includes the grammar redo when the free-form call was malformed). "Today" is pinned to Wednesday 2026-11-25.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from examples.receptionist.app import RULES, Receptionist  # noqa: E402
from examples.receptionist.normalize import ground, parse_date, parse_time, spoken_digits  # noqa: E402

from voxgate.agent.config import AgentSettings  # noqa: E402
from voxgate.agent.records import TurnRecord  # noqa: E402
from voxgate.knowledge.rules import contains_phrase  # noqa: E402
from voxgate.providers.base import ChatMessage, TextDelta, ToolCall  # noqa: E402

TODAY = dt.date(2026, 11, 25)  # a Wednesday
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)  # 10:00 in New York: open
Args = dict[str, Any]


def _date(expected: dt.date) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and parse_date(v, TODAY) == expected


def _time(h: int, m: int = 0) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return isinstance(v, str) and (parse_time(v) or parse_time(f"at {v}")) == dt.time(h, m)

    return ok


def _has(*words: str) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and all(w.lower() in v.lower() for w in words)


def _digits(d: str) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str | int) and d in spoken_digits(str(v))


def _empty_or(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v in (None, "") or check(v)


def _any(v: Any) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    tool: str | None
    """None: an FAQ answered in text, no tool."""
    args: dict[str, Callable[[Any], bool]] = field(default_factory=dict)
    fact: str = ""
    """FAQ: a word the answer should contain (reported, not part of correctness)."""
    alt: tuple[tuple[str | None, dict[str, Callable[[Any], bool]]], ...] = ()
    """Other acceptable (tool, argument checks), e.g. asking back or a tool that asks back."""


TUE, WED, THU, FRI, SAT = (TODAY + dt.timedelta(days=d) for d in (6, 7, 1, 2, 3))
MON = TODAY + dt.timedelta(days=5)

CASES = [
    # book_appointment
    Case("Hi, I would like to book an appointment for next Tuesday at three in the afternoon.",
         "book_appointment", {"date": _date(TUE), "time": _time(15)}),
    Case("Can I get a cleaning on Friday at 10 a.m.?", "book_appointment",
         {"date": _date(FRI), "time": _time(10)}),
    Case("Book me in for a checkup tomorrow at 2 p.m. My name is Sarah Jones.", "book_appointment",
         {"date": _date(THU), "time": _time(14), "name": _has("sarah")}),
    Case("I'd like to see the dentist on December 3rd at 11 a.m.", "book_appointment",
         {"date": _date(dt.date(2026, 12, 3)), "time": _time(11)}),
    Case("Please schedule me for Monday at 9:30 in the morning.", "book_appointment",
         {"date": _date(MON), "time": _time(9, 30)}),
    Case("Could you book a whitening appointment next Wednesday at 4 p.m. for John Smith?",
         "book_appointment", {"date": _date(WED), "time": _time(16), "name": _has("john")}),
    Case("I need an appointment on Saturday at noon.", "book_appointment",
         {"date": _date(SAT), "time": _time(12)}),
    # check_availability
    Case("What times do you have free on Thursday?", "check_availability", {"date": _date(THU)}),
    Case("Are there any openings tomorrow?", "check_availability", {"date": _date(THU)}),
    Case("Do you have availability next Monday?", "check_availability", {"date": _date(MON)}),
    Case("Is anything free on December 5th?", "check_availability",
         {"date": _date(dt.date(2026, 12, 5))}),
    # cancel_appointment
    Case("I need to cancel my appointment. The code is K 7 Q 2.", "cancel_appointment",
         {"name_or_code": _digits("K7Q2")}),
    Case("Please cancel the appointment for Maria Garcia.", "cancel_appointment",
         {"name_or_code": _has("maria")}),
    Case("Cancel my appointment, please.", "cancel_appointment", {"name_or_code": _any}),
    Case("Actually, cancel that. I need to change my address instead.", "cancel_appointment",
         {"name_or_code": _any}),
    # reschedule_appointment
    Case("Can I move my appointment to Friday at 1 p.m.?", "reschedule_appointment",
         {"date": _date(FRI), "time": _time(13)}),
    Case("I'd like to reschedule my cleaning to next Thursday at 10 in the morning.",
         "reschedule_appointment", {"date": lambda v: _date(THU)(v) or _date(THU + dt.timedelta(days=7))(v), "time": _time(10)}),
    Case("Please change my appointment with code B 4 X 9 to Monday at 3 p.m.", "reschedule_appointment",
         {"date": _date(MON), "time": _time(15), "name_or_code": _digits("B4X9")}),
    # check_order_status
    Case("What is the status of my order number four five six?", "check_order_status",
         {"order_number": _digits("456")}),
    Case("Is my night guard ready? The order number is 123.", "check_order_status",
         {"order_number": _digits("123")}),
    Case("Can you check on lab order 789?", "check_order_status", {"order_number": _digits("789")}),
    # transfer_call
    Case("Please transfer me to the front desk.", "transfer_call", {"target": _has("front desk")}),
    Case("Can I talk to a real person?", "transfer_call", {"target": _has("front desk")}),
    Case("I'd rather speak with someone at your office, can you connect me?", "transfer_call",
         {"target": _has("front desk")}),
    # end_call
    Case("No, that's everything I needed. Thanks, bye.", "end_call"),
    Case("That's all, you can hang up now.", "end_call"),
    # FAQ, no tool (answered from retrieved passages)
    Case("What time do you open on Saturday?", None, fact="10"),
    Case("Do you accept Delta Dental insurance?", None, fact="yes"),
    Case("Where is your office?", None, fact="maple"),
    Case("How much is a cleaning?", None, fact="95"),
]
assert len(CASES) == 30


@dataclass(slots=True)
class Row:
    text: str
    expected: str | None
    got: str | None
    args: Args | None
    correct: bool
    correct_as_written: bool
    tool_ok: bool
    by_rule: bool
    seconds: float
    to_call: float | None
    answer: str
    fact_ok: bool | None
    grammar_redo: bool


def check(case: Case, call: ToolCall | None, *, as_written: bool = False) -> tuple[bool, bool, Args | None]:
    """(correct, right tool, parsed args); any of ``case.alt`` counts as well. Arguments are
    judged as the tools act on them (``normalize.ground``: checked against the caller's
    words, date/time read from either argument), or with ``as_written`` as the model wrote
    them (each normalised on its own)."""
    result = _check_one(case.tool, case.args, call, case.text, as_written)
    for tool, checks in case.alt:
        if not result[0]:
            other = _check_one(tool, checks, call, case.text, as_written)
            result = other if other[0] or (other[1] and not result[1]) else result
    return result


def _check_one(tool: str | None, checks: dict[str, Callable[[Any], bool]], call: ToolCall | None, said: str,
               as_written: bool) -> tuple[bool, bool, Args | None]:
    if call is None:
        return tool is None, tool is None, None
    try:
        args = json.loads(call.arguments)
    except json.JSONDecodeError:
        return False, call.name == tool, None
    if call.name != tool:
        return False, False, args
    seen = args if as_written or not isinstance(args, dict) else ground(tool, args, [said], TODAY)
    return all(ok(seen.get(k)) for k, ok in checks.items()), True, args


def by_rules(text: str, settings: AgentSettings | None = None) -> ToolCall | None:
    """The deterministic routing the pipeline does before the LLM (``settings``: the app's,
    whose goodbye phrases the pipeline checks)."""
    if contains_phrase(text, (settings or AgentSettings()).goodbye_phrases):  # the pipeline's order
        return ToolCall("rule", "end_call", "{}")
    if RULES.wants_human(text):
        return ToolCall("rule", "transfer_call", json.dumps({"target": RULES.escalation_target()}))
    return None


async def run_case(app: Receptionist, llm: Any, case: Case, system: str) -> tuple[ToolCall | None, str, float, float | None, bool]:
    ck = app.knowledge.for_call(_session())
    plan = await ck.prepare([ChatMessage("system", system), ChatMessage("user", case.text)], TurnRecord(0))
    redo_before = llm.grammar_retries
    t0 = time.perf_counter()
    call: ToolCall | None = None
    to_call = None
    text = ""
    stream = llm.chat(plan.messages, plan.tools, tool_choice=plan.tool_choice)  # as ReplyRun does
    async for ev in stream:
        if isinstance(ev, ToolCall) and call is None:
            call, to_call = ev, time.perf_counter() - t0
        elif isinstance(ev, TextDelta):
            text += ev.text
    return call, text.strip(), time.perf_counter() - t0, to_call, llm.grammar_retries > redo_before


async def prewarm(app: Receptionist, llm: Any, system: str) -> float:
    """What the pipeline does at call start (``_prewarm_llm``): read system + tools, stop at
    the first token. Returns the seconds it took."""
    t0 = time.perf_counter()
    stream = llm.chat([ChatMessage("system", system), ChatMessage("user", "Hello.")],
                      app.knowledge.for_call(_session()).schemas(), tool_choice="none")
    async for _ in stream:
        break
    await stream.aclose()
    return time.perf_counter() - t0


def _session() -> Any:
    from voxgate.calls.session import CallSession, UnsupportedControl

    return CallSession("local", None, UnsupportedControl("bench"), 16000)  # type: ignore[arg-type]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


SETS = {
    "original": "original 30 requests (the keyword router and prompt were tuned on these)",
    "heldout": "held-out A, 40 requests (bench/tool_calls_heldout.py HELDOUT; its misses guided two rounds of fixes: tuned)",
    "heldout_b": "held-out B, 24 requests (HELDOUT_B; its misses guided the phrasal router: tuned)",
    "fresh": "fresh C, 45 requests (bench/tool_calls_fresh.py FRESH; never tuned on)",
}


def load_set(name: str) -> list[Case]:
    if name == "original":
        return CASES
    if name == "fresh":
        from bench import tool_calls_fresh

        return list(tool_calls_fresh.FRESH)
    from bench import tool_calls_heldout

    return list(getattr(tool_calls_heldout, name.upper()))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated case numbers (1-based; with one --set)")
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--temperature", type=float, help="the LLM's sampling temperature (default: LlamaLLM's)")
    ap.add_argument("--mode", choices=("both", "llm", "agent"), default="both")
    ap.add_argument("--set", choices=(*SETS, "all"), default="original",
                    help="the 30 original requests, a held-out set (bench/tool_calls_heldout.py, tool_calls_fresh.py), or all")
    args = ap.parse_args()

    from voxgate.providers.llm.llama import LlamaLLM

    t0 = time.perf_counter()
    plain = Receptionist.create(now=lambda: NOW, route=False)
    routed = Receptionist.create(now=lambda: NOW, route=True)
    llm = LlamaLLM() if args.temperature is None else LlamaLLM(temperature=args.temperature)
    print(f"loaded LLM + KB in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    system = plain.settings.system_prompt
    blocks = []
    dump = {}
    for set_name in SETS if args.set == "all" else [args.set]:
        pool = load_set(set_name)
        cases = pool if not args.only else [pool[int(i) - 1] for i in args.only.split(",")]
        results: dict[str, list[Row]] = {"llm": [], "agent": []}
        for mode, app in (("llm", plain), ("agent", routed)):
            if args.mode not in ("both", mode):
                continue
            print(f"prewarm ({mode}): {asyncio.run(prewarm(app, llm, system)):.2f} s", file=sys.stderr)
            for i, case in enumerate(cases, 1):
                rule = by_rules(case.text, app.settings) if mode == "agent" else None
                if rule is not None:  # the pipeline acts before the LLM: no model call
                    call, text, secs, to_call, redo = rule, "", 0.0, None, False
                else:
                    call, text, secs, to_call, redo = asyncio.run(run_case(app, llm, case, system))
                correct, tool_ok, parsed = check(case, call)
                as_written = check(case, call, as_written=True)[0]
                fact = None if case.tool is not None else (case.fact.lower() in text.lower())
                results[mode].append(Row(case.text, case.tool, call.name if call else None, parsed, correct, as_written,
                                         tool_ok, rule is not None, secs, to_call, text, fact, redo))
                mark = "ok " if correct else "BAD"
                got = f"{call.name}({call.arguments})" if call else f"text: {text[:70]!r}"
                print(f"{set_name[:9]:9s} {mode:5s} {i:2d} {mark} {secs:5.2f}s {case.text[:50]:50s} -> {got}",
                      file=sys.stderr)
        results = {mode: rows for mode, rows in results.items() if rows}
        summary = {mode: summarize(rows) for mode, rows in results.items()}
        dump[set_name] = {"summary": summary, "rows": {m: [dataclasses.asdict(r) for r in rows] for m, rows in results.items()}}
        blocks.append(f"### {SETS[set_name]}\n\n" + render(results, summary))
        print(blocks[-1] + "\n", flush=True)
    if args.json:
        print(json.dumps(dump, indent=1, default=str))
    if args.write_results:
        write_results("\n\n".join(blocks))
    return 0


def summarize(rows: list[Row]) -> dict[str, Any]:
    lat = [r.to_call for r in rows if r.to_call is not None]
    faq = [r for r in rows if r.expected is None]
    model = [r for r in rows if not r.by_rule]
    return {
        "requests": len(rows),
        "correct": sum(r.correct for r in rows),
        "as_written": sum(r.correct_as_written for r in rows),
        "right_tool": sum(r.tool_ok for r in rows),
        "by_rule": len(rows) - len(model),
        "grammar_redos": sum(r.grammar_redo for r in rows),
        "to_call_p50": pct(lat, 0.5) if lat else float("nan"),
        "to_call_p95": pct(lat, 0.95) if lat else float("nan"),
        "reply_mean": statistics.mean(r.seconds for r in model) if model else float("nan"),
        "faq_fact": sum(bool(r.fact_ok) for r in faq),
        "faq": len(faq),
    }


def render(results: dict[str, list[Row]], summary: dict[str, dict[str, Any]]) -> str:
    names = {"llm": "LLM alone (all 7 tools, passages, no routing)",
             "agent": "agent (goodbye/escalation rules, then the route's tool_choice + hint, LLM)"}
    lines = [
        "| setup | right tool + arguments, as the tools act on them (text for FAQ) | ... arguments as the model wrote them | right tool | to tool call p50 / p95 | grammar redos | FAQ fact in answer |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, s in summary.items():
        n = s["requests"]
        lines.append(
            f"| {names[mode]} | {s['correct']}/{n} ({100 * s['correct'] / n:.0f} %) | "
            f"{s['as_written']}/{n} ({100 * s['as_written'] / n:.0f} %) | {s['right_tool']}/{n} | "
            f"{s['to_call_p50']:.2f} s / {s['to_call_p95']:.2f} s | {s['grammar_redos']} | {s['faq_fact']}/{s['faq']} |"
        )
    if len(results) < 2:
        return "\n".join(lines)
    lines += ["", "| # | request | expected | LLM alone | ok | agent | ok |", "|---:|---|---|---|:-:|---|:-:|"]
    for i, (a, b) in enumerate(zip(results["llm"], results["agent"], strict=True), 1):
        def got(r: Row) -> str:
            if r.by_rule:
                return f"rule: `{r.got}`"
            return (f"`{r.got}` {json.dumps(r.args)}" if r.got else f"text: {r.answer[:50]}").replace("|", "/")
        lines.append(f"| {i} | {a.text} | {a.expected or 'text'} | {got(a)} | {'yes' if a.correct else 'no'} | "
                     f"{got(b)} | {'yes' if b.correct else 'no'} |")
    return "\n".join(lines)


def write_results(table: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    head = "## Tool calls (bench/tool_calls.py)"
    cpu = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0]
    section = (
        f"{head}\n\nRun: `.venv/bin/python bench/tool_calls.py` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, load average {load:.1f} "
        "(shared machine). Qwen2.5-Coder-0.5B-Instruct Q4 via llama-cpp-python (2 threads), "
        "receptionist prompt + retrieved clinic.md passages + 7 tools.\n\n" + table + "\n"
    )
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    text = re.sub(rf"{re.escape(head)}\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip() + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
