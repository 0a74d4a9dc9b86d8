"""RFC 4028 session timers and the 100rel decision against sipp, both directions.

The edge's policy is shortened for the test (Min-SE 2 s; ``Settings`` keeps RFC 4028's 90 s
floor); every scenario checks the headers it receives with sipp's ``ereg check_it``."""

from __future__ import annotations

import asyncio

import pytest

from tests.sip.apps import ControlApp, EchoApp, manager_for, wait_for
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
from voxgate.calls.session import CallSession
from voxgate.config import SipTrunk
from voxgate.sip.session_timer import SessionTimerPolicy

pytestmark = [pytest.mark.interop, needs_sipp]
SHORT = SessionTimerPolicy(interval=2, min_se=2)


def _client(edge_target: str, name: str, *extra: str) -> list[str]:
    return [
        "-sf", scenario(name), edge_target, "-s", "agent", "-p", str(free_port()),
        "-mp", str(free_port()), "-m", "1", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["uac_timer_update.xml", "uac_timer_reinvite.xml"])
async def test_voxgate_refreshes_as_refresher(name: str) -> None:
    app = EchoApp()
    async with running_edge(manager_for(app), edge_options(session_timer=SHORT)) as edge:
        result = await run_sipp(*_client(target(edge), name), timeout_s=20)
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.sessions[0].end_reason == "caller_hangup"


async def test_missed_refresh_ends_the_call_with_bye() -> None:
    app = EchoApp()
    async with running_edge(manager_for(app), edge_options(session_timer=SHORT)) as edge:
        result = await run_sipp(*_client(target(edge), "uac_timer_expire.xml"), timeout_s=15)
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr  # BYE with Reason 408 came
    assert app.sessions[0].end_reason == "session_expired"


async def test_too_small_interval_gets_422_then_the_retry_is_answered() -> None:
    app = EchoApp()
    async with running_edge(manager_for(app), edge_options(session_timer=SHORT)) as edge:
        result = await run_sipp(*_client(target(edge), "uac_timer_422.xml"), timeout_s=15)
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(app.sessions) == 1  # only the retry became a call
    assert app.sessions[0].end_reason == "caller_hangup"


async def test_invite_requiring_100rel_gets_420() -> None:
    app = EchoApp()
    async with running_edge(manager_for(app)) as edge:
        result = await run_sipp(*_client(target(edge), "uac_100rel.xml"), timeout_s=10)
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.sessions == []


async def test_outbound_call_retries_after_422_and_refreshes_with_update() -> None:
    async def talk_then_hang_up(session: CallSession) -> None:
        await asyncio.sleep(2.5)  # past the first refresh at 1.5 s
        await session.control.hangup()

    app = ControlApp(talk_then_hang_up)
    port = free_port()
    trunk = SipTrunk(name="sipp", host="127.0.0.1", port=port, from_user="voxgate")
    options = edge_options(trunks=[trunk], session_timer=SessionTimerPolicy(interval=2, min_se=1))
    async with (
        running_edge(manager_for(app), options) as edge,
        sipp("-sf", scenario("uas_timer.xml"), "-p", str(port), "-mp", str(free_port()), "-m", "1",
             timeout_s=20) as peer,
    ):  # fmt: skip
        await asyncio.sleep(0.3)  # sipp binds its port
        call = edge.dial("1000", trunk="sipp")
        await asyncio.wait_for(call.wait_finished(), 15)
        out, err = await asyncio.wait_for(peer.communicate(), 10)
    assert peer.returncode == 0, out.decode() + err.decode()
    assert call.session.end_reason == "agent_hangup"
    assert call.session_timer.refreshes >= 1
