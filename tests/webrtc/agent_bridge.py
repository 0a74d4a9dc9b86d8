"""Runs the real AgentPipeline as a CallApp and mirrors its state to the live-event hook.

Until the pipeline calls ``voxgate.webrtc.events.publish`` itself, this bridge polls what it
exposes (transcript, turn records) and publishes transcripts and turn latencies, so the talk
page can be tested end to end with the agent.
"""

from __future__ import annotations

import asyncio
import contextlib

from voxgate.agent.pipeline import AgentPipeline, AgentProviders
from voxgate.calls.session import CallSession
from voxgate.webrtc import events


class AgentApp:
    name = "agent"

    def __init__(self, providers: AgentProviders) -> None:
        self.providers = providers
        self.pipelines: list[AgentPipeline] = []

    async def run(self, session: CallSession) -> None:
        pipeline = AgentPipeline(session, self.providers)
        self.pipelines.append(pipeline)
        mirror = asyncio.create_task(self._mirror(session, pipeline))
        try:
            await pipeline.run()
        finally:
            mirror.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mirror

    async def _mirror(self, session: CallSession, pipeline: AgentPipeline) -> None:
        said = turns = 0
        while True:
            transcript = pipeline.transcript
            for role, text in transcript[said:]:
                who = "agent" if role == "assistant" else "caller"
                events.publish(
                    session, {"type": "transcript", "role": who, "text": text, "final": True}
                )
            said = len(transcript)
            for record in pipeline.records[turns:]:
                if record.voice_to_voice is None:
                    break
                stages = {
                    k: round(v * 1000, 1) for k, v in record.stages().items() if v is not None
                }
                events.publish(
                    session,
                    {
                        "type": "turn",
                        "index": record.index,
                        "latency_ms": record.voice_to_voice * 1000,
                        "stages": stages,
                    },
                )
                turns += 1
            await asyncio.sleep(0.05)
