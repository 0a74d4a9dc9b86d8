"""Glare against sipp (RFC 3261 14.1): both ends re-INVITE at once; we answer theirs 491, and
when ours gets 491 we back off and offer the hold again instead of dropping it.

The pure rules (back-off ranges, 500 + Retry-After) are covered on a virtual clock in
``tests/sip/test_glare.py``; this checks the asyncio glue in ``call_reoffer`` against a real
peer. sipp generated the Call-ID, so our back-off is 0-2 s."""

from __future__ import annotations

import asyncio

import pytest

from tests.sip.apps import ControlApp, manager_for, wait_for
from tests.sip.interop.peers import free_port, needs_sipp, run_sipp, running_edge, scenario, target
from voxgate.calls.session import CallSession

pytestmark = [pytest.mark.interop, needs_sipp]


async def test_reinvite_glare_491_both_ways_then_hold_is_retried() -> None:
    held: list[bool] = []

    async def hold(session: CallSession) -> None:
        await asyncio.sleep(0.3)
        await session.control.hold()  # raises if the 491 were the final word
        held.append(True)

    app = ControlApp(hold)
    async with running_edge(manager_for(app)) as edge:
        args = [
            "-sf", scenario("uac_glare.xml"), target(edge, "tcp"), "-t", "t1", "-s", "agent",
            "-p", str(free_port()), "-mp", str(free_port()), "-m", "1",
        ]  # fmt: skip
        result = await run_sipp(*args, timeout_s=20)
        await wait_for(lambda: not edge.calls)
    # sipp checked: our 491 to its re-INVITE, our ACK to its 491, a=sendonly in both offers.
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.errors == []
    assert held == [True]
    assert app.holds == []  # the re-INVITE we refused with 491 changed nothing
    assert app.sessions[0].end_reason == "caller_hangup"
