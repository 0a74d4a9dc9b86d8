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


async def test_each_campaign_call_runs_its_campaigns_app(tmp_path: Path) -> None:
    """Two campaigns dialling the same number get their own app (the router honours the
    campaign's app before its callee rules); a campaign naming an unknown agent fails
    ``no_route`` instead of reaching some other app."""
    from voxgate.calls.manager import CallManager
    from voxgate.calls.router import CallApp, NoRoute, Router, RouteRule
    from voxgate.calls.session import CallSession
    from voxgate.cluster.campaign_db import CampaignStore
    from voxgate.cluster.campaigns import Campaigns, CampaignSpec, CampaignWorker
    from voxgate.cluster.jobs import LocalJobQueue
    from voxgate.observability.records import CallRecords

    class Script:
        def __init__(self, name: str) -> None:
            self.name = name

        async def run(self, session: CallSession) -> None:
            session.metadata["campaign_result"] = f'{{"script": "{self.name}"}}'
            await session.control.hangup("agent_hangup")

    scripts = {"reminder": Script("reminder"), "survey": Script("survey")}

    def agent(rule: RouteRule) -> CallApp:
        name = rule.app.partition(":")[2]
        if name not in scripts:
            raise NoRoute(f"unknown agent {name!r}")
        return scripts[name]

    # The callee rule would send every call to the survey: the campaign's app must win.
    manager = CallManager(Router([RouteRule(app="agent:survey", callee="*")], {"agent": agent}))
    port = free_sip_port()
    records = await CallRecords.open(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", node_id="n1")
    store = CampaignStore(records.engine)
    queue = LocalJobQueue()
    campaigns = Campaigns(store, queue, "n1")
    async with (
        running_edge(manager, edge_options(trunks=[SipTrunk(name="t", host="127.0.0.1", port=port)])) as edge,
        sipp("-sf", str(SCENARIOS / "uas_silent.xml"), "-p", str(port), "-mp", str(free_port()), "-m", "5"),
    ):
        await asyncio.sleep(0.3)
        worker = CampaignWorker(store, queue, SipDialer(edge, answer_timeout_s=5), "n1", poll_s=0.02)
        base = {"window": "00:00-24:00", "cps": 50, "max_concurrent": 2, "amd": False, "max_attempts": 1}
        ids = {
            app: await campaigns.create(CampaignSpec.model_validate(
                {**base, "app": app, "contacts": [{"phone": f"+1555700{i}"} for i in range(n)]}))
            for app, n in (("agent:reminder", 2), ("agent:survey", 2), ("agent:nope", 1))
        }  # fmt: skip
        await worker.start()
        try:
            async with asyncio.timeout(30):
                for cid in ids.values():
                    while (await store.campaign(cid) or {}).get("status") != "completed":  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
        finally:
            await worker.close()
    details = {app: await campaigns.detail(cid) for app, cid in ids.items()}
    await records.close()
    for app in ("agent:reminder", "agent:survey"):
        contacts = details[app]["contacts"]  # type: ignore[index]
        assert [(c["outcome"], c["result"]) for c in contacts] == [
            ("completed", {"script": app.split(":")[1]})] * 2, contacts  # fmt: skip
    (nope,) = details["agent:nope"]["contacts"]  # type: ignore[index]
    assert nope["outcome"] == "failed"


async def test_answering_machine_gets_the_message_from_the_campaign_agent() -> None:
    """The real route: SIP edge -> campaign's app (an in-process agent on fake providers) ->
    the agent holds its greeting on the AMD gate; sipp's 7 s spoken greeting is a machine,
    so after it ends the agent speaks the campaign's message with its TTS and hangs up."""
    from tests.agent.fakes import providers
    from voxgate.agent.config import AgentSettings
    from voxgate.apps import AgentApp
    from voxgate.calls.manager import CallManager
    from voxgate.calls.router import Router
    from voxgate.providers.tts.fake import FakeTTS

    class RecordingTTS(FakeTTS):
        texts: list[str] = []

        def synthesize(self, text: str):  # type: ignore[no-untyped-def]
            self.texts.append(text)
            return super().synthesize(text)

    tts = RecordingTTS(sample_rate=24000, seconds_per_char=0.04)
    agent = AgentApp(providers([], {}, tts=tts), AgentSettings())
    manager = CallManager(Router([], {"agent": lambda rule: agent}))
    port = free_sip_port()
    async with (
        running_edge(manager, edge_options(trunks=[SipTrunk(name="machine", host="127.0.0.1", port=port)])) as edge,
        sipp("-sf", str(SCENARIOS / "uas_machine.xml"), "-p", str(port), "-mp", str(free_port()), "-m", "1"),
    ):
        await asyncio.sleep(0.3)
        dialer = SipDialer(edge, answer_timeout_s=5)  # no pre-rendered message: the agent speaks
        outcome = await asyncio.wait_for(dialer.dial(contact("machine", 1, "Please call us back."), "agent"), 40)
    assert outcome.status == "voicemail", outcome
    assert outcome.detail == "amd long_greeting; message after silence"
    assert tts.texts == ["Please call us back."]  # no greeting to the machine, only the message
