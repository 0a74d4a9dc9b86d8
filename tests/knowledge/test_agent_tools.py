"""Tools, retrieval and rules inside the agent pipeline, with fake STT/LLM/TTS on virtual time.

The assertions are about plumbing: what the LLM was given, what was said, what was stored,
which call-control action happened. Scripts key on the conversation (not on call order) so
an early-intent speculation cannot shift them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from voxgate.agent.config import AgentSettings
from voxgate.agent.local import HangUp, LocalCall, LocalCallResult, Say, Silence, Step, WaitForAgent
from voxgate.agent.store import MemoryStore
from voxgate.agent.vclock import run_virtual
from voxgate.knowledge.embeddings import HashEmbedder
from voxgate.knowledge.rag import KnowledgeBase
from voxgate.knowledge.rules import AfterHours, OpeningHours, RouteRules
from voxgate.knowledge.runtime import KeywordRouter, Knowledge
from voxgate.knowledge.tools import FALLBACK_SAY, FILLER_SAY, INVALID_SAY, ToolRegistry
from voxgate.providers.base import ChatMessage, ToolCall, ToolSchema
from voxgate.providers.llm.fake import FakeLLM, FakeReply

from ..agent.fakes import providers, speech

SETTINGS = AgentSettings(early_intent=False)
TARGETS = {"front desk": "sip:frontdesk@clinic.example"}


def orders(delay: float = 0.0) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool(timeout=3.0)
    async def check_order(order_number: str) -> str:
        """Status of an order.

        Args:
            order_number: The order number.
        """
        await asyncio.sleep(delay)
        if order_number != "456":
            raise LookupError(order_number)
        return "shipped yesterday"

    return reg


def last_tool(messages: Sequence[ChatMessage]) -> ChatMessage | None:
    m = messages[-1]
    return m if m.role == "tool" else None


def order_bot(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
    tool = last_tool(messages)
    if tool is None:
        return FakeReply(tool_calls=[ToolCall("c1", "check_order", '{"order_number": "456"}')])
    return f"Your order {tool.content}."


def run(
    utterances: list[str],
    llm: FakeLLM,
    knowledge: Knowledge,
    *,
    settings: AgentSettings = SETTINGS,
    store: MemoryStore | None = None,
    steps: list[Step] | None = None,
) -> tuple[LocalCallResult, LocalCall, list[tuple[str, dict[str, Any]]]]:
    p = dataclasses.replace(providers(utterances, llm), knowledge=knowledge)
    call = LocalCall(p, settings, store=store, conversation_id="conv")
    events: list[tuple[str, dict[str, Any]]] = []
    script: list[Step] = steps or [WaitForAgent()]
    if steps is None:
        for _ in utterances:
            script += [Say(speech(1200), 16000), Silence(0.1), WaitForAgent(timeout=20)]
        script.append(HangUp())

    async def main() -> LocalCallResult:
        task = asyncio.ensure_future(call.run(script))
        await asyncio.sleep(0)
        assert call.pipeline is not None
        # Knowledge events only: transcripts and turn records go to other observers.
        call.pipeline.on_event = lambda kind, data: (
            None if kind in ("transcript", "turn_done") else events.append((kind, data))
        )
        return await task

    return run_virtual(main()), call, events


def test_tool_call_result_goes_back_to_the_llm_and_is_stored() -> None:
    llm = FakeLLM(order_bot)
    store = MemoryStore()
    result, _, events = run(["Where is my order four five six?"], llm, Knowledge(tools=orders()), store=store)
    assert result.errors == []
    assert result.agent_said()[-1] == "Your order shipped yesterday."
    # first call offered the tools (app + call control), second got the result
    (m1, t1), (m2, t2) = llm.calls
    assert {t.name for t in t1} == {"check_order", "end_call", "send_dtmf", "hold"}
    assistant, tool = m2[-2], m2[-1]
    assert assistant.role == "assistant" and assistant.tool_calls[0].name == "check_order"
    assert tool.role == "tool" and tool.content == "shipped yesterday" and tool.tool_call_id == "c1"
    # the turn record and the event hook carry the call for the call record
    (rec,) = result.records
    assert rec.tool_calls[0]["name"] == "check_order" and rec.tool_calls[0]["status"] == "ok"
    assert rec.tool_calls[0]["arguments"] == {"order_number": "456"}
    assert [k for k, _ in events] == ["tool_call"] and events[0][1]["turn"] == 0
    # the conversation store: user, assistant(tool_calls), tool, assistant + a tool-call record
    conv = run_virtual(store.load("conv"))
    assert conv is not None
    roles = [(m.message.role, bool(m.message.tool_calls)) for m in conv.messages]
    assert roles[1:] == [("user", False), ("assistant", True), ("tool", False), ("assistant", False)]
    (tc,) = conv.tool_calls
    assert tc.call.name == "check_order" and tc.result == "shipped yesterday" and not tc.error
    assert conv.turns[0].tool_calls[0]["name"] == "check_order"


def test_slow_tool_says_filler_while_it_runs() -> None:
    result, _, _ = run(["Where is my order?"], FakeLLM(order_bot), Knowledge(tools=orders(delay=1.5)))
    said = result.agent_said()[-1]
    assert said == f"{FILLER_SAY} Your order shipped yesterday."
    assert result.records[0].tool_calls[0]["slow"] is True


def test_tool_timeout_and_error_are_spoken_fallbacks_not_silence() -> None:
    llm = FakeLLM(order_bot)
    result, _, _ = run(["Where is my order?"], llm, Knowledge(tools=orders(delay=10)))
    assert result.agent_said()[-1] == f"{FILLER_SAY} {FALLBACK_SAY}"
    assert len(llm.calls) == 1  # no second LLM round after a failure
    assert result.records[0].tool_calls[0]["status"] == "timeout"

    def wrong_order(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
        if last_tool(messages) is None:
            return FakeReply(tool_calls=[ToolCall("c1", "check_order", '{"order_number": "999"}')])
        return "unreachable"

    result, _, _ = run(["Where is my order?"], FakeLLM(wrong_order), Knowledge(tools=orders()))
    assert result.agent_said()[-1] == FALLBACK_SAY
    assert result.records[0].tool_calls[0]["status"] == "error"


def test_bad_arguments_are_fed_back_once_then_the_caller_is_asked() -> None:
    def fixes_it(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
        tool = last_tool(messages)
        if tool is None:
            return FakeReply(tool_calls=[ToolCall("c1", "check_order", '{"order": 456}')])
        if tool.content.startswith("Invalid arguments"):
            assert "order_number: Field required" in tool.content
            return FakeReply(tool_calls=[ToolCall("c2", "check_order", '{"order_number": "456"}')])
        return f"Your order {tool.content}."

    llm = FakeLLM(fixes_it)
    result, _, _ = run(["Where is my order?"], llm, Knowledge(tools=orders()))
    assert result.agent_said()[-1] == "Your order shipped yesterday."
    assert [c["status"] for c in result.records[0].tool_calls] == ["invalid", "ok"]
    assert len(llm.calls) == 3

    def never_learns(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
        return FakeReply(tool_calls=[ToolCall("c", "check_order", "{}")])

    result, _, _ = run(["Where is my order?"], FakeLLM(never_learns), Knowledge(tools=orders()))
    assert result.agent_said()[-1] == INVALID_SAY


def test_tool_rounds_are_bounded_and_the_last_round_has_no_tools() -> None:
    def loops(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
        if not tools:
            return "Your order shipped yesterday."
        return FakeReply(tool_calls=[ToolCall("c", "check_order", '{"order_number": "456"}')])

    llm = FakeLLM(loops)
    result, _, _ = run(["Where is my order?"], llm, Knowledge(tools=orders(), max_tool_rounds=3))
    assert len(llm.calls) == 3 and llm.tool_choices == ["auto", "auto", "none"]
    assert llm.calls[2][1] == llm.calls[0][1]  # same tools block every round (prompt cache)
    assert result.agent_said()[-1] == "Your order shipped yesterday."


def test_escalation_phrase_transfers_without_asking_the_llm() -> None:
    llm = FakeLLM(["should not be used"])
    rules = RouteRules(transfer_targets=TARGETS, escalation_say="Transferring you now.")
    result, call, events = run(["Please transfer me to a human agent."], llm, Knowledge(rules=rules))
    assert llm.calls == []
    assert result.agent_said()[-1] == "Transferring you now."
    assert call.control.actions == ["transfer:sip:frontdesk@clinic.example"]
    assert ("escalation", {"phrase": "human", "target": "front desk"}) in events


def test_llm_transfer_and_end_call_tools_act_after_speaking() -> None:
    def bot(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
        said = messages[-1].content.lower()
        if "desk" in said:
            return FakeReply(tool_calls=[ToolCall("t", "transfer_call", '{"target": "front desk"}')])
        return FakeReply(tool_calls=[ToolCall("e", "end_call", "{}")])

    rules = RouteRules(transfer_targets=TARGETS, escalation_phrases=[])
    result, call, _ = run(["Can you put me through to the desk?"], FakeLLM(bot), Knowledge(rules=rules))
    assert result.agent_said()[-1] == "Let me transfer you to the front desk. One moment, please."
    assert call.control.actions == ["transfer:sip:frontdesk@clinic.example"]

    result, call, _ = run(
        ["No that's everything, thanks."],
        FakeLLM(bot),
        Knowledge(rules=rules, farewell="Bye now!"),
        steps=[WaitForAgent(), Say(speech(1200), 16000), Silence(0.1), WaitForAgent(timeout=20)],
    )
    assert result.agent_said()[-1] == "Bye now!"
    assert call.control.actions == ["hangup:agent_end_call"]
    assert result.end_reason == "agent_end_call"


def test_retrieved_passages_go_into_the_prompt_and_the_record() -> None:
    kb = KnowledgeBase(":memory:", HashEmbedder())
    kb.add_text("clinic.md", "# Clinic\n\n## Hours\n\nOn Saturday we open at 10 am.\n\n## Parking\n\nFree parking behind the building.")
    llm = FakeLLM.from_rules({"saturday": "We open at ten on Saturday."})
    result, _, events = run(["What time do you open on Saturday?"], llm, Knowledge(kb=kb, min_score=0.2, k=1))
    messages = llm.calls[0][0]
    ctx, user = messages[-2], messages[-1]
    assert user.role == "user" and ctx.role == "system"
    assert "On Saturday we open at 10 am." in ctx.content and "Parking" not in ctx.content
    assert messages[0].role == "system" and messages[0].content == SETTINGS.system_prompt  # stable prefix
    (rec,) = result.records
    assert rec.retrieved[0]["source"] == "clinic.md" and rec.retrieved[0]["heading"] == "Clinic > Hours"
    assert rec.retrieved[0]["score"] > 0.2
    kinds = [k for k, _ in events]
    assert kinds == ["retrieval"] and events[0][1]["question"] == "What time do you open on Saturday?"


def test_pii_is_redacted_in_the_store_but_not_in_the_live_context() -> None:
    store = MemoryStore()
    llm = FakeLLM.from_rules({"card": "Thanks, I noted card 4111 1111 1111 1111."})
    rules = RouteRules()
    result, call, _ = run(["My card is 4111 1111 1111 1111 and my number is 555-123-4567."], llm, Knowledge(rules=rules), store=store)
    conv = run_virtual(store.load("conv"))
    assert conv is not None
    stored = [m.message.content for m in conv.messages]
    assert stored[1] == "My card is [CARD] and my number is [PHONE]."
    assert stored[2] == "Thanks, I noted card [CARD]."
    assert conv.turns[0].user_text == "My card is [CARD] and my number is [PHONE]."
    assert "[CARD]" not in json.dumps([m.content for m in llm.calls[0][0]])  # the LLM saw it verbatim
    assert call.pipeline is not None and "4111" in call.pipeline.history.messages[1].content


def test_events_for_the_call_record_are_redacted() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    llm = FakeLLM.from_rules({"card": "Thanks."})
    p = dataclasses.replace(
        providers(["My card is 4111 1111 1111 1111."], llm), knowledge=Knowledge(rules=RouteRules())
    )
    call = LocalCall(p, SETTINGS)

    async def main() -> None:
        task = asyncio.ensure_future(call.run([WaitForAgent(), Say(speech(1200), 16000), Silence(0.1), WaitForAgent(), HangUp()]))
        await asyncio.sleep(0)
        assert call.pipeline is not None
        call.pipeline.on_event = lambda kind, data: seen.append((kind, data))
        await task

    run_virtual(main())
    # Finals (what the records store) are redacted; a partial such as "My card is 4111 1111"
    # cannot be recognised as a card number yet (it goes only to live displays).
    texts = [d["text"] for k, d in seen if k == "transcript" and d.get("final", True)]
    assert "My card is [CARD]." in texts and not any("4111" in t for t in texts)
    (rec,) = [d["record"] for k, d in seen if k == "turn_done"]
    assert rec.user_text == "My card is [CARD]."
    assert call.pipeline is not None and call.pipeline.records[0].user_text.startswith("My card is 4111")


def test_after_hours_message_and_hangup() -> None:
    rules = RouteRules(
        hours=OpeningHours(timezone="UTC", weekly={"mon-fri": "09:00-17:00"}),
        after_hours=AfterHours(mode="message_hangup", message="We are closed. Goodbye!"),
    )
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    k = Knowledge(rules=rules, now=lambda: sunday)
    result, call, events = run([], FakeLLM(), k, steps=[WaitForAgent(), Silence(15)])
    assert result.agent_said() == ["We are closed. Goodbye!"]
    assert result.end_reason == "goodbye" and ("after_hours", {"mode": "message_hangup"}) in events

    k = Knowledge(rules=rules.model_copy(update={"after_hours": AfterHours(greeting="Closed, but ask away.")}), now=lambda: sunday)
    llm = FakeLLM(["Sure."])
    result, _, _ = run(["Hello?"], llm, k)
    assert result.agent_said()[0] == "Closed, but ask away."
    assert llm.calls[0][0][0].content.endswith(AfterHours().prompt_note)


def test_speculative_reply_runs_tools_only_after_commit() -> None:
    calls: list[str] = []
    reg = ToolRegistry()

    @reg.tool
    async def book(day: str) -> str:
        """Book.

        Args:
            day: Day.
        """
        calls.append(day)
        return "booked"

    def bot(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
        if last_tool(messages) is None:
            return FakeReply(tool_calls=[ToolCall("b", "book", json.dumps({"day": messages[-1].content}))])
        return "Done."

    settings = AgentSettings(early_intent=True)
    result, _, _ = run(["Book me Tuesday please."], FakeLLM(bot), Knowledge(tools=reg), settings=settings)
    assert result.agent_said()[-1] == "Done."
    assert calls == ["Book me Tuesday please."]  # once, for the committed turn only
    assert result.records[0].speculative  # the reply came from the (held) speculation


def test_sure_route_makes_the_model_call_the_routed_tool_with_every_tool_offered() -> None:
    llm = FakeLLM(order_bot)
    router = KeywordRouter([(r"\border\b", "check_order"), (r"\bhours\b", None)])
    result, _, events = run(["Where is my order four five six?"], llm, Knowledge(tools=orders(), router=router))
    assert result.errors == []
    messages, tools = llm.calls[0]
    assert {"check_order", "end_call"} <= {t.name for t in tools}  # the tools block is not narrowed
    assert llm.tool_choices[0] == "check_order"
    assert messages[-1].content.endswith("(use the check_order tool)")
    assert ("route", {"turn": 0, "tool": "check_order", "sure": True}) in events


def test_sure_no_tool_route_offers_no_tools_but_passages() -> None:
    kb = KnowledgeBase(":memory:", HashEmbedder())
    kb.add_text("clinic.md", "# Clinic\n\n## Hours\n\nOur hours: Saturday from 10 am.")
    llm = FakeLLM.from_rules({"hours": "From ten on Saturday."})
    router = KeywordRouter([(r"\border\b", "check_order"), (r"\bhours\b", None)])
    result, _, _ = run(["What are your hours on Saturday?"], llm, Knowledge(tools=orders(), kb=kb, router=router, min_score=0.1))
    messages, tools = llm.calls[0]
    assert llm.tool_choices[0] == "none"  # a question: the model cannot call a tool on it
    assert {"check_order", "end_call"} <= {t.name for t in tools}
    assert any(m.role == "system" and "Saturday from 10 am" in m.content for m in messages)
    assert result.agent_said()[-1] == "From ten on Saturday."


def test_unsure_route_is_a_hint_with_every_tool() -> None:
    llm = FakeLLM(order_bot)
    result, _, _ = run(["Where is my order four five six?"], llm, Knowledge(tools=orders(), router=lambda text: "check_order"))
    messages, tools = llm.calls[0]
    assert {"check_order", "end_call"} <= {t.name for t in tools}
    assert llm.tool_choices[0] == "auto"
    assert messages[-1].content.endswith("(use the check_order tool)")


def test_llm_prewarm_reads_the_same_tools_block_as_the_turns() -> None:
    router = KeywordRouter([(r"\border\b", "check_order")])
    llm = FakeLLM(order_bot)
    settings = AgentSettings(early_intent=False, prewarm_llm=True)
    result, _, _ = run(["Where is my order four five six?"], llm, Knowledge(tools=orders(), router=router), settings=settings)
    assert result.errors == []
    (warm_msgs, warm_tools), (turn_msgs, turn_tools) = llm.calls[0], llm.calls[1]
    assert warm_msgs[-1].content == "Hello." and llm.tool_choices[:2] == ["none", "check_order"]
    assert warm_tools == turn_tools and warm_msgs[0] == turn_msgs[0]  # one cached system+tools prefix
