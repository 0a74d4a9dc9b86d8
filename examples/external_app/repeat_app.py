"""An external voice app built on ``voxgate.client``: it repeats what the caller said.

It listens until the caller pauses (a simple energy detector), then plays the utterance
back followed by a mark; if the caller talks over the playback it clears it (barge-in).
Point a voxgate route at it::

    python examples/external_app/repeat_app.py --port 8765 --protocol twilio
    # voxgate route: app = "ws://127.0.0.1:8765", protocol = "twilio"

The same app runs unchanged behind a real Twilio number (``<Connect><Stream>``), since it
speaks Twilio's Media Streams protocol.
"""

from __future__ import annotations

import argparse
import asyncio

import numpy as np

from voxgate.client import AppCall, CallerAudio, MarkPlayed, serve

SPEECH_DBFS = -40.0
PAUSE_MS = 500
MIN_SPEECH_MS = 200


def loud(pcm: np.ndarray) -> bool:
    if pcm.size == 0:
        return False
    rms = float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2)))
    return rms > 0 and 20 * np.log10(rms / 32768.0) > SPEECH_DBFS


async def repeat(call: AppCall) -> None:
    """One call: collect an utterance, play it back, mark it, repeat until hang-up."""
    utterance: list[np.ndarray] = []
    speech_ms = silence_ms = 0.0
    playing: str | None = None
    count = 0
    async for event in call:
        if isinstance(event, MarkPlayed):
            if event.name == playing:
                playing = None
            continue
        if not isinstance(event, CallerAudio):
            continue
        ms = 1000 * len(event.pcm) / event.sample_rate
        if loud(event.pcm):
            if playing is not None:  # the caller talks over us: stop talking
                await call.clear()
                playing = None
            utterance.append(event.pcm)
            speech_ms += ms
            silence_ms = 0.0
        elif utterance:
            utterance.append(event.pcm)
            silence_ms += ms
            if silence_ms >= PAUSE_MS:
                if speech_ms >= MIN_SPEECH_MS:
                    count += 1
                    playing = f"repeat-{count}"
                    await call.send_audio(np.concatenate(utterance), event.sample_rate)
                    await call.mark(playing)
                utterance, speech_ms, silence_ms = [], 0.0, 0.0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--protocol", choices=["twilio", "native"], default="twilio")
    parser.add_argument("--auth-header", default=None, help="required Authorization value")
    args = parser.parse_args()
    async with serve(
        repeat, args.host, args.port, protocol=args.protocol, auth_header=args.auth_header
    ):
        print(f"repeat app on ws://{args.host}:{args.port} ({args.protocol})", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
