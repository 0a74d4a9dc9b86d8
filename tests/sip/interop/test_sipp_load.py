"""Load: sipp places 40 calls at 20 calls/s, each with PCMA audio both ways; all succeed."""

from __future__ import annotations

import pytest

from tests.sip.apps import EchoApp, manager_for, wait_for
from tests.sip.interop.peers import (
    edge_options,
    free_port,
    needs_sipp,
    run_sipp,
    running_edge,
    scenario,
    target,
)

pytestmark = [pytest.mark.interop, needs_sipp]

CALLS = 40


async def test_forty_concurrent_calls_with_media_all_succeed() -> None:
    app = EchoApp()
    peak = 0

    def track(_: object) -> None:
        nonlocal peak
        peak = max(peak, len(edge.calls))

    async with running_edge(manager_for(app), edge_options(rtp_ports=(38000, 38400))) as edge:
        edge.manager.on_start.append(lambda s: _noop(track(s)))
        result = await run_sipp(
            "-sf", scenario("uac_audio.xml"), target(edge), "-s", "agent", "-p", str(free_port()),
            "-mp", str(free_port()), "-m", str(CALLS), "-r", "20", "-l", str(CALLS), "-d", "3000",
            timeout_s=40,
        )  # fmt: skip
        await wait_for(lambda: not edge.calls, 15)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert len(app.sessions) == CALLS
    assert all(s.end_reason == "caller_hangup" for s in app.sessions)
    assert sum(1 for s in app.sessions) == CALLS and peak >= 20
    assert app.loud_frames > CALLS * 50  # every call carried speech (>= 1 s of loud frames each)


async def _noop(_: object) -> None:
    return None
