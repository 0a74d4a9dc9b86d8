"""Built-in call-control tools: ``transfer_call``, ``end_call``, ``send_dtmf``, ``hold``.

They map onto ``session.control`` (``CallControl``), which every edge implements (SIP REFER /
BYE / re-INVITE, Twilio-style messages, ...). Two decisions:

- ``transfer_call`` only offers the route's allowed targets: its ``target`` parameter is an
  ``enum`` of their spoken names, so the grammar-constrained model cannot even write another
  one, and the address behind a name never reaches the model.
- Transfer, hang-up and hold are *deferred* until the agent has said its last sentence
  ("Let me transfer you to the front desk."); acting at once would cut that sentence off.
  ``send_dtmf`` acts at once (it navigates a far-end menu while the agent waits).

The tools are built per route (the targets differ), hence a factory instead of module-level
``@tool`` functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from voxgate.knowledge.tools import Tool, ToolContext, ToolReply

__all__ = ["call_control_tools"]


def call_control_tools(
    targets: Mapping[str, str],
    *,
    farewell: str = "Thank you for calling. Goodbye!",
    include: tuple[str, ...] = ("transfer_call", "end_call", "send_dtmf", "hold"),
) -> list[Tool]:
    """The call-control tools for a route whose allowed transfer targets are ``targets``
    (spoken name -> address). ``transfer_call`` is left out when there are none."""
    names = tuple(targets)
    by_lower = {k.lower(): v for k, v in targets.items()}
    tools: list[Tool] = []

    if names and "transfer_call" in include:
        Target = Literal[names]  # type: ignore[valid-type]  # built from the route's config

        async def transfer_call(ctx: ToolContext, target: Target) -> ToolReply:
            """Transfer the caller to a person or department.

            Args:
                target: Who to transfer to.
            """
            address = by_lower[str(target).lower()]
            control = ctx.control
            if control is None:
                raise RuntimeError("this call has no call control")
            ctx.defer(lambda: control.transfer(address))
            return ToolReply(
                {"transferred_to": target},
                say=f"Let me transfer you to the {target}. One moment, please.",
                final=True,
            )

        transfer_call.__annotations__["target"] = Target
        tools.append(Tool.from_function(transfer_call, filler=None))

    if "end_call" in include:

        async def end_call(ctx: ToolContext) -> ToolReply:
            """Say goodbye and hang up, when the caller has nothing else to ask."""
            control = ctx.control
            if control is None:
                raise RuntimeError("this call has no call control")
            ctx.defer(lambda: control.hangup("agent_end_call"))
            return ToolReply({"ended": True}, say=farewell, final=True)

        tools.append(Tool.from_function(end_call, filler=None))

    if "send_dtmf" in include:

        async def send_dtmf(
            ctx: ToolContext, digits: Annotated[str, Field(pattern=r"^[0-9*#]{1,32}$")]
        ) -> str:
            """Press keys on the phone keypad (to navigate a phone menu).

            Args:
                digits: The keys, e.g. "1" or "1234#".
            """
            control = ctx.control
            if control is None:
                raise RuntimeError("this call has no call control")
            await control.send_dtmf(digits)
            return f"sent {digits}"

        tools.append(Tool.from_function(send_dtmf, filler=None))

    if "hold" in include:

        async def hold(ctx: ToolContext) -> ToolReply:
            """Put the caller on hold briefly."""
            control = ctx.control
            if control is None:
                raise RuntimeError("this call has no call control")
            ctx.defer(control.hold)
            return ToolReply({"on_hold": True}, say="I'll put you on hold for a moment.", final=True)

        tools.append(Tool.from_function(hold, filler=None))

    return tools
