"""LlamaLLM on the embedded Qwen model: template, streaming, cancellation, tool calls."""

from __future__ import annotations

import json

import pytest

from tests.providers.conftest import max_loop_gap
from voxgate.providers.base import ChatMessage, TextDelta, ToolCall, ToolSchema, Usage
from voxgate.providers.llm.llama import LlamaLLM, parse_call, render_chatml

pytestmark = pytest.mark.models

SYSTEM = (
    "You are the receptionist of Bright Smile Dental, open Monday to Friday 9am to 5pm. "
    "Answer in one short sentence."
)
BOOK = ToolSchema(
    "book_appointment",
    "Book a dental appointment",
    {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "day": {"type": "string"},
            "time": {"type": "string"},
        },
        "required": ["service", "day", "time"],
    },
)


def _wire(m: ChatMessage) -> dict[str, object]:
    out: dict[str, object] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"type": "function", "function": {"name": c.name, "arguments": json.loads(c.arguments)}}
            for c in m.tool_calls
        ]
    return out


@pytest.mark.parametrize("with_tools", [False, True])
def test_prompt_matches_the_gguf_chat_template(llama: LlamaLLM, with_tools: bool) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    assert llama.chat_template and "<|im_start|>" in llama.chat_template
    conversation = [
        ChatMessage("system", SYSTEM),
        ChatMessage("user", "Book me a cleaning."),
        ChatMessage("assistant", "", (ToolCall("c1", "book_appointment", '{"day": "Tuesday"}'),)),
        ChatMessage("tool", '{"ok": true}', tool_call_id="c1"),
        ChatMessage("assistant", "Booked."),
        ChatMessage("user", "Thanks, bye."),
    ]
    tools = [BOOK] if with_tools else []
    formatter = Jinja2ChatFormatter(llama.chat_template, "<|im_end|>", "<|endoftext|>")
    wire_tools = [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]
    expected = formatter(messages=[_wire(m) for m in conversation], tools=wire_tools or None).prompt
    assert llama.render(conversation, tools) == expected
    assert render_chatml([ChatMessage("user", "hi")]).startswith("<|im_start|>system\nYou are Qwen")


async def test_short_answer_streams_tokens(llama: LlamaLLM) -> None:
    msgs = [ChatMessage("system", SYSTEM), ChatMessage("user", "What are your opening hours?")]
    events, gap = await max_loop_gap(_collect(llama, msgs))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 3
    assert isinstance(events[-1], Usage) and events[-1].completion_tokens >= len(deltas)
    assert "".join(d.text for d in deltas).strip()
    print(f"max event-loop gap while generating: {gap * 1000:.1f} ms")
    assert gap < 0.1


async def _collect(
    llama: LlamaLLM, msgs: list[ChatMessage], tools: list[ToolSchema] | None = None
) -> list[object]:
    return [e async for e in llama.chat(msgs, tools or [])]


async def test_cancellation_stops_generation(llama: LlamaLLM) -> None:
    msgs = [ChatMessage("user", "Count from one to one hundred in words, comma separated.")]
    before = llama.tokens_generated
    gen = llama.chat(msgs)
    for _ in range(3):
        assert isinstance(await anext(gen), TextDelta)
    await gen.aclose()  # type: ignore[attr-defined]
    await llama.executor.run(lambda: None)  # the worker has returned
    generated = llama.tokens_generated - before
    assert generated < 15, f"{generated} tokens after cancel (max_tokens {llama.max_tokens})"
    # the model is free again: a new turn completes
    events = await _collect(llama, [ChatMessage("user", "Say hi.")])
    assert isinstance(events[-1], Usage)


async def test_tool_call_for_booking(llama: LlamaLLM) -> None:
    msgs = [
        ChatMessage("system", SYSTEM),
        ChatMessage("user", "Book me a cleaning on Tuesday at 3 pm"),
    ]
    retries = llama.grammar_retries
    events = await _collect(llama, msgs, [BOOK])
    print(f"tool call redone under the grammar: {llama.grammar_retries - retries > 0}")
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert len(calls) == 1 and calls[0].name == "book_appointment"
    args = json.loads(calls[0].arguments)
    assert "tuesday" in args["day"].lower() and "3" in args["time"]
    assert "clean" in args["service"].lower()


def test_parse_call_rejects_malformed() -> None:
    assert parse_call('{"name": "book_appointment", "arguments": {""}}', [BOOK]) is None
    assert parse_call('{"name": "nope", "arguments": {}}', [BOOK]) is None
    assert parse_call('{"name": "book_appointment", "arguments": {"day": "x"}}', [BOOK]) is None
    ok = parse_call(
        '{"name": "book_appointment", "arguments": {"service": "s", "day": "d", "time": "t"}}\n</tool_call>',
        [BOOK],
    )
    assert ok is not None and json.loads(ok.arguments)["day"] == "d"


def test_parse_call_enforces_enum_values() -> None:
    transfer = ToolSchema(
        "transfer_call", "Transfer the caller.",
        {"type": "object", "properties": {"target": {"const": "front desk", "type": "string"}}, "required": ["target"]},
    )
    assert parse_call('{"name": "transfer_call", "arguments": {"target": "billing office"}}', [transfer]) is None
    ok = parse_call('{"name": "transfer_call", "arguments": {"target": "Front Desk"}}', [transfer])
    assert ok is not None and json.loads(ok.arguments) == {"target": "front desk"}


CANCEL = ToolSchema(
    "cancel_appointment",
    "Cancel the caller's appointment",
    {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]},
)


async def test_tool_choice_named_tool_is_called_even_when_the_words_ask_for_another(llama: LlamaLLM) -> None:
    msgs = [ChatMessage("system", SYSTEM), ChatMessage("user", "Book me a cleaning on Tuesday at 3 pm")]
    events = [e async for e in llama.chat(msgs, [BOOK, CANCEL], tool_choice="cancel_appointment")]
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [c.name for c in calls] == ["cancel_appointment"]
    assert "tuesday" in json.loads(calls[0].arguments)["day"].lower()
    assert not [e for e in events if isinstance(e, TextDelta)]


async def test_tool_choice_none_answers_in_words(llama: LlamaLLM) -> None:
    msgs = [ChatMessage("system", SYSTEM), ChatMessage("user", "Book me a cleaning on Tuesday at 3 pm")]
    auto = [e async for e in llama.chat(msgs, [BOOK, CANCEL])]
    assert any(isinstance(e, ToolCall) for e in auto)  # the same request calls a tool on "auto"
    events = [e async for e in llama.chat(msgs, [BOOK, CANCEL], tool_choice="none")]
    assert not any(isinstance(e, ToolCall) for e in events)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip() and "<tool_call>" not in text and not text.lstrip().startswith("{")
