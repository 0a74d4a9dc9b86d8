"""Delayed offer (RFC 3261 13.2.1, RFC 3264 section 5) against sipp: an INVITE without SDP
gets voxgate's offer in the 200 and the answer comes in the ACK. The carrier-style call then
carries RTP both ways; an ACK without an answer, or with an unusable one, ends the call with a
BYE whose Reason says why."""

from __future__ import annotations

import asyncio

import pytest

from tests.sip.apps import EchoApp, manager_for, wait_for
from tests.sip.interop.peers import free_port, needs_sipp, run_sipp, running_edge, scenario, target
from tests.sip.interop.test_sipp_calls import NetworkLog

pytestmark = [pytest.mark.interop, needs_sipp]


def _client(edge_target: str, name: str, *extra: str) -> list[str]:
    return [
        "-sf", scenario(name), edge_target, "-s", "agent", "-p", str(free_port()),
        "-mp", str(free_port()), "-m", "1", *extra,
    ]  # fmt: skip


async def test_invite_without_sdp_offer_in_200_answer_in_ack_with_media() -> None:
    app = EchoApp()
    observer = NetworkLog()
    async with running_edge(manager_for(app)) as edge:
        edge.observer = observer  # type: ignore[assignment]
        counts: list[tuple[int, int]] = []

        async def watch() -> None:
            await app.started.wait()
            call = next(iter(edge.calls.values()))
            while call.state != "ended":
                counts.append((call.media.packets_in, call.media.packets_out))
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        result = await run_sipp(*_client(target(edge), "uac_late_offer.xml", "-d", "7500"))
        await wait_for(lambda: not edge.calls)
        watcher.cancel()
    assert result.returncode == 0, result.stdout + result.stderr
    session = app.sessions[0]
    assert session.end_reason == "caller_hangup"
    assert observer.codecs == ["PCMA/8000"]  # what the answer in the ACK chose
    assert app.loud_frames > 100  # ~7 s of sipp's speech reached the app
    assert max(i for i, _ in counts) >= 230  # the pcap's 236 packets
    assert max(o for _, o in counts) >= 300  # our echo went to the port sipp answered with


@pytest.mark.parametrize("name", ["uac_late_offer_no_answer.xml", "uac_late_offer_bad_answer.xml"])
async def test_ack_without_usable_answer_ends_call_with_bye(name: str) -> None:
    app = EchoApp()
    async with running_edge(manager_for(app)) as edge:
        result = await run_sipp(*_client(target(edge), name), timeout_s=15)
        await wait_for(lambda: not edge.calls)
    assert result.returncode == 0, result.stdout + result.stderr  # BYE with Reason 488 came
    reason = app.sessions[0].end_reason
    assert reason == ("ack_without_answer" if "no_answer" in name else "incompatible_media")
