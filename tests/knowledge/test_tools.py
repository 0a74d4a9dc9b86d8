"""Tool declaration, validation, filler/timeout policy and call-control tools (no models)."""

from __future__ import annotations

import asyncio
import datetime
import enum
import json
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from voxgate.agent.vclock import run_virtual
from voxgate.knowledge.calltools import call_control_tools
from voxgate.knowledge.tools import (
    FALLBACK_SAY,
    FILLER_SAY,
    Tool,
    ToolContext,
    ToolRegistry,
    ToolReply,
    tool,
)
from voxgate.providers.base import ToolCall


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@tool
async def book(
    ctx: ToolContext,
    name: str,
    day: datetime.date,
    at: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")],
    reason: Literal["cleaning", "checkup"] = "checkup",
    note: str | None = None,
    color: Color = Color.RED,
) -> dict[str, object]:
    """Book an appointment.

    More detail that is not part of the description.

    Args:
        name: The caller's full name.
        day: Day of the appointment.
    """
    ctx.state["booked"] = name
    return {"ok": True, "day": day, "at": at, "reason": reason, "note": note, "color": color.value}


class OrderQuery(BaseModel):
    order: int = Field(description="order number")


@tool
async def order_status(q: OrderQuery) -> str:
    """Order status."""
    return f"order {q.order} shipped"


def call(name: str, args: object, cid: str = "c1") -> ToolCall:
    return ToolCall(cid, name, json.dumps(args) if not isinstance(args, str) else args)


def test_schema_from_signature_and_docstring() -> None:
    schema = {s.name: s for s in ToolRegistry([book, order_status]).schemas()}
    b = schema["book"]
    assert b.description == "Book an appointment."
    props = b.parameters["properties"]
    assert b.parameters["type"] == "object"
    assert b.parameters["required"] == ["name", "day", "at"]
    assert props["name"] == {"type": "string", "description": "The caller's full name."}
    assert props["day"]["format"] == "date" and props["day"]["type"] == "string"
    assert props["at"]["pattern"].startswith("^(")
    assert props["reason"]["enum"] == ["cleaning", "checkup"]
    assert props["note"] == {"type": "string"}  # Optional[...] = None: plain and not required
    assert props["color"]["enum"] == ["red", "blue"]  # Enum inlined, no $ref
    assert "ctx" not in props  # the context never reaches the model
    assert "title" not in json.dumps(b.parameters)
    o = schema["order_status"]
    assert o.parameters["properties"]["order"] == {"type": "integer", "description": "order number"}


def test_registry_decorator_and_sync_function_refused() -> None:
    reg = ToolRegistry()

    @reg.tool(timeout=1.0)
    async def ping() -> str:
        """Ping."""
        return "pong"

    assert reg.names == ["ping"] and reg.get("ping") is not None
    with pytest.raises(ValueError, match="twice"):
        reg.add(Tool.from_function(ping))

    def sync() -> str:
        return ""

    with pytest.raises(TypeError, match="async"):
        Tool.from_function(sync)  # type: ignore[arg-type]


async def test_valid_call_returns_json_and_uses_context() -> None:
    ctx = ToolContext(call_id="x")
    reg = ToolRegistry([book, order_status])
    r = await reg.call(call("book", {"name": "Ann", "day": "2026-12-01", "at": "15:00", "extra": 1}), ctx)
    assert r.ok and r.arguments is not None and r.arguments["day"] == "2026-12-01"
    assert json.loads(r.content)["reason"] == "checkup"
    assert ctx.state["booked"] == "Ann"
    r = await reg.call(call("order_status", {"order": "456"}))  # lax: "456" -> 456
    assert r.ok and r.content == "order 456 shipped"


async def test_bad_arguments_become_a_clear_message_for_the_llm() -> None:
    reg = ToolRegistry([book])
    r = await reg.call(call("book", {"name": "Ann", "day": "next tuesday", "at": "3pm", "reason": "whitening"}))
    assert r.status == "invalid" and not r.ok and r.say is None
    for fragment in ("day:", "at:", "reason:", '"next tuesday"', "Call book again"):
        assert fragment in r.content
    r = await reg.call(call("book", {"day": "2026-12-01", "at": "15:00"}))
    assert r.status == "invalid" and "name: Field required" in r.content
    r = await reg.call(call("book", "{not json"))
    assert r.status == "invalid" and "not valid JSON" in r.content
    r = await reg.call(call("nope", {}))
    assert r.status == "unknown" and "available tools: book" in r.content


def test_slow_tool_triggers_filler_then_returns() -> None:
    said: list[str] = []

    @tool(timeout=5.0)
    async def slow() -> str:
        """Slow lookup."""
        await asyncio.sleep(1.2)
        return "done"

    @tool
    async def fast() -> str:
        """Fast lookup."""
        await asyncio.sleep(0.3)
        return "done"

    reg = ToolRegistry([slow, fast])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r = await reg.call(call("fast", {}), on_slow=said.append, clock=loop.time)
        assert r.ok and not r.slow and said == []
        r = await reg.call(call("slow", {}), on_slow=said.append, clock=loop.time)
        assert r.ok and r.slow and r.content == "done"
        assert r.seconds == pytest.approx(1.2)

    run_virtual(main())
    assert said == [FILLER_SAY]


def test_timeout_and_exception_give_spoken_fallback() -> None:
    @tool(timeout=2.0)
    async def hangs() -> str:
        """Never answers."""
        await asyncio.sleep(60)
        return "late"

    @tool
    async def broken() -> str:
        """Raises."""
        raise RuntimeError("database down")

    reg = ToolRegistry([hangs, broken])

    async def main() -> None:
        said: list[str] = []
        r = await reg.call(call("hangs", {}), on_slow=said.append)
        assert r.status == "timeout" and r.say == FALLBACK_SAY and r.final and r.slow
        assert said == [FILLER_SAY]
        r = await reg.call(call("broken", {}))
        assert r.status == "error" and r.say == FALLBACK_SAY and "database down" in r.content

    run_virtual(main())


class RecordingControl:
    def __init__(self) -> None:
        self.actions: list[str] = []

    async def hangup(self, reason: str = "agent_hangup") -> None:
        self.actions.append(f"hangup:{reason}")

    async def transfer(self, target: str) -> None:
        self.actions.append(f"transfer:{target}")

    async def hold(self) -> None:
        self.actions.append("hold")

    async def unhold(self) -> None:
        self.actions.append("unhold")

    async def send_dtmf(self, digits: str) -> None:
        self.actions.append(f"dtmf:{digits}")


async def test_call_control_tools_map_to_session_control() -> None:
    control = RecordingControl()
    targets = {"front desk": "sip:fd@clinic", "billing": "sip:billing@clinic"}
    reg = ToolRegistry(call_control_tools(targets))
    ctx = ToolContext(control=control, transfer_targets=targets)
    schema = {s.name: s for s in reg.schemas()}
    assert schema["transfer_call"].parameters["properties"]["target"]["enum"] == ["front desk", "billing"]

    r = await reg.call(call("transfer_call", {"target": "billing"}), ctx)
    assert r.ok and r.final and r.say is not None and "billing" in r.say
    assert control.actions == []  # deferred until the agent has said it
    await ctx.run_deferred()
    assert control.actions == ["transfer:sip:billing@clinic"]

    r = await reg.call(call("transfer_call", {"target": "sip:attacker@evil"}), ctx)
    assert r.status == "invalid" and ctx.deferred == []  # only allowed targets

    r = await reg.call(call("send_dtmf", {"digits": "12#"}), ctx)
    assert r.ok and control.actions[-1] == "dtmf:12#"  # immediate
    assert (await reg.call(call("send_dtmf", {"digits": "12a"}), ctx)).status == "invalid"

    await reg.call(call("hold", {}), ctx)
    r = await reg.call(call("end_call", {}), ctx)
    assert r.final and r.say
    await ctx.run_deferred()
    assert control.actions[-2:] == ["hold", "hangup:agent_end_call"]


def test_no_targets_means_no_transfer_tool() -> None:
    assert "transfer_call" not in ToolRegistry(call_control_tools({}))


async def test_tool_reply_say_and_final() -> None:
    @tool
    async def confirm() -> ToolReply:
        """Confirm."""
        return ToolReply({"ok": True}, say="Done.", final=True)

    r = await ToolRegistry([confirm]).call(call("confirm", {}))
    assert r.ok and r.final and r.say == "Done." and json.loads(r.content) == {"ok": True}
    assert r.to_dict()["name"] == "confirm"
