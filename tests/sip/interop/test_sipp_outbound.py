"""voxgate dials out through a trunk pointing at sipp (UAS): answered calls carry audio both
ways (sipp echoes RTP), failures map to end reasons, the API needs its token."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.sip.apps import ToneApp, dominant_hz, manager_for, wait_for
from tests.sip.interop.peers import (
    edge_options,
    free_port,
    needs_sipp,
    running_edge,
    scenario,
    sipp,
)
from voxgate.api.app import create_app
from voxgate.config import Settings, SipTrunk
from voxgate.sip.transaction import TimerValues

pytestmark = [pytest.mark.interop, needs_sipp]
TOKEN = "t" * 32


def _trunk(port: int) -> SipTrunk:
    return SipTrunk(name="sipp", host="127.0.0.1", port=port, from_user="voxgate")


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://voxgate",  # type: ignore[arg-type]
        headers={"Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip


async def test_api_dials_out_and_hears_its_own_tone_echoed() -> None:
    port = free_port()
    app = ToneApp(ms=1200, hz=600.0, hangup_after=True)
    app.keep_audio = True
    manager = manager_for(app)
    settings = Settings(auth={"api_tokens": [SecretStr(TOKEN)]})  # type: ignore[arg-type]
    api = create_app(settings, manager)
    async with (
        running_edge(manager, edge_options(trunks=[_trunk(port)])) as edge,
        sipp("-sn", "uas", "-p", str(port), "-mp", str(free_port()), "-rtp_echo", "-m", "1") as peer,
        _client(api) as http,
    ):
        api.state.sip_edge = edge
        await asyncio.sleep(0.3)  # sipp binds its port
        assert (await http.post("/v1/calls", json={"to": "1000"}, headers={"Authorization": ""})).status_code == 401
        assert (await http.post("/v1/calls", json={"to": "1000", "trunk": "nope"})).status_code == 404
        created = await http.post("/v1/calls", json={"to": "1000", "trunk": "sipp"})
        assert created.status_code == 201, created.text
        call_id = created.json()["id"]
        await app.started.wait()
        live = (await http.get(f"/v1/calls/{call_id}")).json()
        assert live["live_status"]["state"] == "answered"
        await wait_for(lambda: not edge.calls, 15)
        rc = await asyncio.wait_for(peer.wait(), 10)
    assert rc == 0
    session = app.sessions[0]
    assert session.end_reason == "agent_hangup"
    assert session.metadata["direction"] == "outbound" and session.callee == "1000"
    heard = np.concatenate(app.audio)
    assert app.loud_frames > 20  # our tone came back through sipp's echo
    loud = heard[np.abs(heard) > 2000]
    assert loud.size > 0
    assert abs(dominant_hz(heard, session.sample_rate) - 600.0) < 30


def _status_scenario(folder: Path, status: int) -> Path:
    xml = folder / f"uas_{status}.xml"
    xml.write_text(Path(scenario("uas_status.xml")).read_text().replace("STATUS", str(status)))
    return xml


@pytest.mark.parametrize(("status", "reason"), [(486, "busy"), (503, "unavailable"), (603, "declined")])
async def test_failure_responses_end_the_call_with_a_reason(
    status: int, reason: str, tmp_path: Path
) -> None:
    port = free_port()
    app = ToneApp()
    xml = _status_scenario(tmp_path, status)
    async with (
        running_edge(manager_for(app), edge_options(trunks=[_trunk(port)])) as edge,
        sipp("-sf", str(xml), "-p", str(port), "-m", "1") as peer,
    ):
        await asyncio.sleep(0.3)
        call = edge.dial("1000", trunk="sipp")
        await call.wait_finished()
        rc = await asyncio.wait_for(peer.wait(), 10)
    assert rc == 0  # sipp got its ACK
    assert call.session.end_reason == reason
    assert app.sessions == []  # never answered: the app never ran


async def test_no_answer_times_out_as_408() -> None:
    app = ToneApp()
    timers = TimerValues(t1=0.02, t2=0.2, t4=0.2, d=0.2)
    async with running_edge(manager_for(app), edge_options(trunks=[_trunk(free_port())]), timers) as edge:
        call = edge.dial("1000", trunk="sipp")
        await asyncio.wait_for(call.wait_finished(), 10)
    assert call.session.end_reason == "no_answer"
