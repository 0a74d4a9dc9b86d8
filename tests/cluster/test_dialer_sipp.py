"""``SipDialer`` through the real SIP edge against sipp: an answering machine (sipp plays a
7 s spoken greeting) gets the message after its greeting and is reported ``voicemail``; a
silent line is ``answered`` (AMD undecided, the app carries on); busy is ``busy``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.cluster.helpers import HoldApp
from tests.sip.apps import manager_for
from tests.sip.interop.peers import (
    edge_options,
    free_port,
    free_sip_port,
    needs_sipp,
    running_edge,
    sipp,
)
from voxgate.cluster.campaigns import Contact
from voxgate.cluster.dialer import SipDialer, tone_message
from voxgate.config import SipTrunk

pytestmark = [pytest.mark.interop, needs_sipp]
SCENARIOS = Path(__file__).parent / "scenarios"


def contact(trunk: str, n: int, message: str | None = "Hi, this is your reminder.") -> Contact:
    return Contact("camp", n, 1, f"+1555400{n}", variables={"trunk": trunk}, amd=True, voicemail_message=message)


async def test_machine_gets_a_message_silence_is_answered_busy_is_busy() -> None:
    ports = {"machine": free_sip_port(), "silent": free_sip_port(), "busy": free_sip_port()}
    trunks = [SipTrunk(name=k, host="127.0.0.1", port=v) for k, v in ports.items()]
    app = HoldApp()
    manager = manager_for(app)
    async with (
        running_edge(manager, edge_options(trunks=trunks)) as edge,
        sipp("-sf", str(SCENARIOS / "uas_machine.xml"), "-p", str(ports["machine"]), "-mp", str(free_port()), "-m", "1"),
        sipp("-sf", str(SCENARIOS / "uas_silent.xml"), "-p", str(ports["silent"]), "-mp", str(free_port()), "-m", "1"),
        sipp("-sf", str(SCENARIOS / "uas_busy.xml"), "-p", str(ports["busy"]), "-mp", str(free_port()), "-m", "1"),
    ):
        await asyncio.sleep(0.3)  # sipp binds its ports
        dialer = SipDialer(edge, answer_timeout_s=5, message_audio=tone_message(1.0))

        async def silent_then_hang_up() -> object:
            task = asyncio.create_task(dialer.dial(contact("silent", 2), "agent"))
            for _ in range(200):  # the app would talk; here the test ends the call after AMD
                live = [s for s in manager.calls.values()
                        if s.metadata.get("amd") and s.metadata.get("contact_id") == "2"]
                if live:
                    await live[0].control.hangup("agent_hangup")
                    break
                await asyncio.sleep(0.05)
            return await task

        machine, silent, busy = await asyncio.wait_for(asyncio.gather(
            dialer.dial(contact("machine", 1), "agent"), silent_then_hang_up(),
            dialer.dial(contact("busy", 3), "agent"),
        ), 40)  # fmt: skip
    assert machine.status == "voicemail", machine
    assert machine.detail == "amd long_greeting; message after silence"  # greeting over, then spoke
    assert silent.status == "answered" and "amd unknown" in silent.detail, silent  # type: ignore[attr-defined]
    assert busy.status == "busy", busy
