"""Inbound REFER (the far end asks voxgate to place a call): refused with 403 unless the
target is in ``refer_targets``; an allowed one is dialled through the trunk (a second sipp,
answering) and reported to the referrer with NOTIFYs carrying ``message/sipfrag``."""

from __future__ import annotations

import asyncio

import pytest

from tests.sip.apps import EchoApp, manager_for, wait_for
from tests.sip.interop.peers import (
    edge_options,
    free_port,
    needs_sipp,
    run_sipp,
    running_edge,
    scenario,
    sipp,
    target,
)
from voxgate.config import SipTrunk

pytestmark = [pytest.mark.interop, needs_sipp]


def _client(edge_target: str, name: str) -> list[str]:
    return [
        "-sf", scenario(name), edge_target, "-s", "agent", "-p", str(free_port()),
        "-mp", str(free_port()), "-m", "1", "-d", "500",
    ]  # fmt: skip


async def test_refer_to_unlisted_target_is_refused() -> None:
    app = EchoApp()
    port = free_port()
    trunk = SipTrunk(name="carrier", host="127.0.0.1", port=port)
    options = edge_options(trunks=[trunk], refer_targets=frozenset({"1000"}))
    async with running_edge(manager_for(app), options) as edge:
        result = await run_sipp(*_client(target(edge), "uac_refer_in_denied.xml"), timeout_s=15)
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [s.metadata["direction"] for s in app.sessions] == ["inbound"]  # nothing dialled
    assert app.sessions[0].end_reason == "caller_hangup"  # the call itself went on


async def test_refer_to_listed_target_is_dialled_and_notified() -> None:
    app = EchoApp()
    port = free_port()
    trunk = SipTrunk(name="carrier", host="127.0.0.1", port=port)
    options = edge_options(trunks=[trunk], refer_targets=frozenset({"1000"}))
    async with (
        running_edge(manager_for(app), options) as edge,
        sipp("-sn", "uas", "-p", str(port), "-mp", str(free_port()), "-m", "1", timeout_s=20) as callee,
    ):
        await asyncio.sleep(0.3)  # the callee sipp binds its port
        result = await run_sipp(*_client(target(edge), "uac_refer_in_allowed.xml"), timeout_s=15)
        referrer = app.sessions[0]
        referred = [c for c in edge.calls.values() if c.direction == "outbound"]
        assert referrer.metadata.get("referred_call") == referred[0].call_id
        assert referred[0].state == "answered" and referred[0].session.callee == "1000"
    await asyncio.wait_for(callee.wait(), 10)  # our BYE at close ended sipp's uas
    assert result.returncode == 0, result.stdout + result.stderr
    assert referrer.end_reason == "caller_hangup"
