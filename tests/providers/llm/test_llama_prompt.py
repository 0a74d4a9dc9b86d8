"""The embedded LLM's prompt across tool choices (pure: no model is loaded).

A route must not change the prompt's system+tools block: llama.cpp re-reads everything after
the first changed token, and a narrowed tool list cost ~1.5-5 s per turn (bench/tool_calls.py).
"""

from __future__ import annotations

import asyncio

import pytest

from voxgate.agent.records import TurnRecord
from voxgate.calls.session import CallSession, UnsupportedControl
from voxgate.knowledge.runtime import KeywordRouter, Knowledge, TurnPlan
from voxgate.knowledge.tools import ToolRegistry
from voxgate.providers.base import ChatMessage, ToolSchema, check_tool_choice

pytest.importorskip("llama_cpp")

from voxgate.providers.llm.llama import forced_call_prefix, parse_call, render_chatml  # noqa: E402

SYSTEM = "You are the receptionist of a dental clinic."


def _registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool()
    async def check_order(order_number: str) -> str:
        """Status of an order.

        Args:
            order_number: The order number.
        """
        return "shipped"

    @reg.tool()
    async def cancel_order(order_number: str) -> str:
        """Cancel an order.

        Args:
            order_number: The order number.
        """
        return "cancelled"

    return reg


def _plan(text: str) -> TurnPlan:
    router = KeywordRouter([(r"\bwhere\b", "check_order"), (r"\bcancel\b", "cancel_order"), (r"\bhours\b", None)])
    knowledge = Knowledge(tools=_registry(), router=router)
    session = CallSession("local", None, UnsupportedControl("test"), 16000)  # type: ignore[arg-type]
    ck = knowledge.for_call(session)
    messages = [ChatMessage("system", SYSTEM), ChatMessage("user", text)]
    return asyncio.run(ck.prepare(messages, TurnRecord(0)))


def _system_block(prompt: str) -> str:
    return prompt[: prompt.index("<|im_start|>user")]


def test_the_system_and_tools_block_is_identical_whatever_the_route() -> None:
    plans = [_plan("Where is my order 456?"), _plan("Cancel order 456."), _plan("What are your hours?"), _plan("Hello there.")]
    assert [p.tool_choice for p in plans] == ["check_order", "cancel_order", "none", "auto"]
    prompts = [render_chatml(p.messages, p.tools) for p in plans]
    blocks = {_system_block(p) for p in prompts}
    assert len(blocks) == 1, "a route changed the cached prefix"
    block = blocks.pop()
    assert '"name": "check_order"' in block and '"name": "cancel_order"' in block
    narrowed = render_chatml(plans[0].messages, [t for t in plans[0].tools if t.name == "check_order"])
    assert not narrowed.startswith(block)  # what the old narrowing did: a different prefix


def test_a_forced_call_extends_the_prompt_and_parses_as_the_template_writes_it() -> None:
    plan = _plan("Where is my order 456?")
    prompt = render_chatml(plan.messages, plan.tools)
    head = forced_call_prefix("check_order")
    assert head.startswith("<tool_call>\n") and (prompt + head).startswith(prompt)
    call = parse_call(head.removeprefix("<tool_call>\n") + '{"order_number": "456"}}\n', plan.tools)
    assert call is not None and call.name == "check_order"


def test_tool_choice_must_name_an_offered_tool() -> None:
    tools = [ToolSchema("check_order", "Status")]
    assert check_tool_choice("check_order", tools) == "check_order"
    assert check_tool_choice("none", tools) == "none"
    with pytest.raises(ValueError, match="cancel_order"):
        check_tool_choice("cancel_order", tools)
