"""pipecat's Twilio echo, for bench/ws_streams.py: run from .venv-bench/pipecat, never the main venv.

``python bench/_pipecat_echo_server.py PORT`` serves ``/ws`` on 127.0.0.1 the way pipecat's
Twilio examples do: FastAPI accepts the socket, reads ``connected`` and ``start`` for the
stream SID, then runs a pipeline ``FastAPIWebsocketTransport.input() -> Echo ->
.output()`` with ``TwilioFrameSerializer`` (8 kHz in and out, so no resampling; 20 ms output
chunks like the input; no hang-up via Twilio's REST API). ``Echo`` turns every
``InputAudioRawFrame`` into an ``OutputAudioRawFrame``. RTVI and turn tracking are off, so
pipecat runs its leanest configuration for this job. uvicorn uses the same settings as the
voxgate server in the bench (uvloop, httptools, ws=websockets-sansio, no compression).
"""

from __future__ import annotations

import json
import sys

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

logger.remove()
logger.add(sys.stderr, level="ERROR")

app = FastAPI()


class Echo(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(
                OutputAudioRawFrame(
                    audio=frame.audio, sample_rate=frame.sample_rate, num_channels=1
                )
            )
        else:
            await self.push_frame(frame, direction)


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    messages = websocket.iter_text()
    start = None
    async for text in messages:  # connected, then start
        msg = json.loads(text)
        if msg.get("event") == "start":
            start = msg
            break
    if start is None:
        return
    serializer = TwilioFrameSerializer(
        stream_sid=start["start"]["streamSid"],
        call_sid=start["start"]["callSid"],
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=8000,
            audio_out_sample_rate=8000,
            audio_out_10ms_chunks=2,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    task = PipelineTask(
        Pipeline([transport.input(), Echo(), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        enable_rtvi=False,
        enable_turn_tracking=False,
        idle_timeout_secs=None,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: object, client: object) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="error",
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        lifespan="off",
        ws_per_message_deflate=False,
        backlog=4096,
    )
