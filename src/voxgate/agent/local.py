"""``LocalCall``: a caller made of WAV files, for tests, benchmarks and ``voxgate talk``.

It is an edge without a network: it creates a ``CallSession`` whose sink is a
:class:`PlayoutBuffer`, and every 20 ms tick feeds one caller frame in and pulls one agent
frame out (reporting playback marks), exactly like an RTP edge would. On a normal event loop
that happens in real time; on a :class:`~voxgate.agent.vclock.VirtualTimeLoop` the same code
runs faster than real time and deterministically (``run_virtual``).

The caller follows a script of steps: say this audio, stay silent, wait until the agent has
finished (or started) speaking, press a digit, hang up. The agent's side is captured to one
PCM track (silence where it said nothing) so it can be written to a WAV and re-transcribed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from voxgate.agent.config import AgentSettings
from voxgate.agent.interruption import Interrupt
from voxgate.agent.pipeline import AgentPipeline, AgentProviders
from voxgate.agent.records import TurnRecord
from voxgate.agent.store import ConversationStore
from voxgate.agent.vclock import run_virtual
from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.audio.resample import StreamResampler
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallSession, DtmfReceived, MarkPlayed

__all__ = [
    "HangUp",
    "LocalCall",
    "LocalCallResult",
    "PressDigit",
    "Say",
    "Silence",
    "WaitForAgent",
    "WaitForAgentSpeech",
]


@dataclass(frozen=True, slots=True)
class Say:
    """Caller speech (any rate; resampled to the call's rate)."""

    pcm: Pcm16
    rate: int
    label: str = ""


@dataclass(frozen=True, slots=True)
class Silence:
    seconds: float


@dataclass(frozen=True, slots=True)
class WaitForAgent:
    """Stay silent until the agent has spoken and then been quiet for ``settle`` seconds."""

    settle: float = 0.6
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class WaitForAgentSpeech:
    """Stay silent until the agent's audio has been playing for ``after`` seconds."""

    after: float = 0.0
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class PressDigit:
    digit: str


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


Step = Say | Silence | WaitForAgent | WaitForAgentSpeech | PressDigit | HangUp


@dataclass(slots=True)
class CallerUtterance:
    label: str
    start: float
    """Loop time the first frame was fed."""
    speech_end: float
    """Loop time the last voiced sample was fed (true end of speech, not the VAD's)."""


@dataclass(slots=True)
class LocalCallResult:
    transcript: list[tuple[str, str]]
    records: list[TurnRecord]
    agent_audio: Pcm16
    sample_rate: int
    end_reason: str
    interruptions: list[Interrupt]
    utterances: list[CallerUtterance]
    sink_clears: int
    start_time: float = 0.0
    """Loop time of the first tick: ``agent_audio[i]`` played at ``start_time + i / rate``."""
    errors: list[str] = field(default_factory=list)
    timed_out: bool = False

    def agent_audio_between(self, start: float, end: float | None = None) -> Pcm16:
        """The agent's track between two loop times (``end`` None: to the end of the call)."""
        a = max(0, round((start - self.start_time) * self.sample_rate))
        b = None if end is None else max(a, round((end - self.start_time) * self.sample_rate))
        return self.agent_audio[a:b]

    def agent_said(self) -> list[str]:
        return [text for role, text in self.transcript if role == "assistant"]

    def write_wav(self, path: str) -> None:
        from voxgate.audio.wav import write_wav

        write_wav(path, self.agent_audio, self.sample_rate)


class _LocalControl:
    def __init__(self) -> None:
        self.session: CallSession | None = None
        self.actions: list[str] = []

    async def hangup(self, reason: str = "agent_hangup") -> None:
        self.actions.append(f"hangup:{reason}")
        if self.session is not None:
            self.session.end(reason)

    async def transfer(self, target: str) -> None:
        self.actions.append(f"transfer:{target}")

    async def hold(self) -> None:
        self.actions.append("hold")

    async def unhold(self) -> None:
        self.actions.append("unhold")

    async def send_dtmf(self, digits: str) -> None:
        self.actions.append(f"dtmf:{digits}")


@dataclass(slots=True)
class _AgentWatch:
    """What the caller script can observe of the agent (updated every tick)."""

    speaking_since: float | None = None
    """Agent audio has been playing continuously since (None: no audio this tick)."""
    quiet_since: float = 0.0
    """Last time the agent was active (audio playing or a reply in progress)."""
    active: bool = False
    spoke: bool = False


def _last_voiced(pcm: Pcm16, rate: int, threshold: int = 300) -> float:
    """Seconds from the start of ``pcm`` to its last sample louder than ``threshold``."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    return float(loud[-1] + 1) / rate if loud.size else 0.0


class LocalCall:
    """One scripted call against an in-process agent; see the module docstring."""

    def __init__(
        self,
        providers: AgentProviders,
        settings: AgentSettings | None = None,
        *,
        rate: int = 16000,
        sink_rate: int | None = None,
        store: ConversationStore | None = None,
        conversation_id: str | None = None,
        frame_ms: int = 20,
        on_session: Callable[[CallSession], object] | None = None,
    ) -> None:
        self.providers = providers
        self.on_session = on_session
        """Called with the call's session before the agent starts (e.g. to set its
        ``greet_gate`` or start a task that watches it)."""
        self.settings = settings
        self.rate = rate
        self.sink_rate = sink_rate or rate
        self.store = store
        self.conversation_id = conversation_id
        self.frame_ms = frame_ms
        self.frame_samples = rate * frame_ms // 1000
        self.pipeline: AgentPipeline | None = None
        self.control = _LocalControl()

    def run_virtual(self, steps: Sequence[Step], *, max_seconds: float = 600.0) -> LocalCallResult:
        """Run on virtual time: deterministic and much faster than real time."""
        return run_virtual(self.run(steps, max_seconds=max_seconds))

    async def run(self, steps: Sequence[Step], *, max_seconds: float = 600.0) -> LocalCallResult:
        """Run the call on the current loop's time (real time on a normal loop)."""
        loop = asyncio.get_running_loop()
        playout = PlayoutBuffer(self.sink_rate, self.frame_ms)
        session = CallSession("local", playout, self.control, self.rate, caller="local")
        self.control.session = session
        if self.on_session is not None:
            self.on_session(session)
        pipeline = AgentPipeline(
            session,
            self.providers,
            self.settings,
            store=self.store,
            conversation_id=self.conversation_id,
            clock=loop.time,
        )
        self.pipeline = pipeline
        agent_task = loop.create_task(pipeline.run())
        # Start the caller's clock only once the agent is up: loading history from a store
        # that works in a thread (aiosqlite) takes no virtual time, so it must not race ticks.
        ready = loop.create_task(pipeline.ready.wait())
        await asyncio.wait([ready, agent_task], return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await agent_task  # failed while starting: raise its error
        out: list[Pcm16] = []
        utterances: list[CallerUtterance] = []
        silence_out = np.zeros(playout.frame_samples, dtype=np.int16)
        watch = _AgentWatch()
        script = self._frames(steps, session, utterances, watch, loop.time)
        t0 = loop.time()
        tick = 0
        timed_out = False
        while not session.ended:
            tick += 1
            delay = t0 + tick * self.frame_ms / 1000.0 - loop.time()
            await asyncio.sleep(max(0.0, delay))
            now = loop.time()
            if now - t0 > max_seconds:
                timed_out = True
                session.end("timeout")
                break
            frame = next(script, None)
            if frame is None:
                session.end("caller_hangup")
                break
            session.feed_audio(frame)
            pcm, marks = playout.pull()
            out.append(silence_out if pcm is None else pcm)
            for name in marks:
                session.feed_event(MarkPlayed(name))
            if pcm is not None:
                if watch.speaking_since is None:
                    watch.speaking_since = now
                watch.spoke = True
            else:
                watch.speaking_since = None
            watch.active = pcm is not None or pipeline.agent_speaking
            if watch.active:
                watch.quiet_since = now
        await agent_task
        audio = np.concatenate(out) if out else np.zeros(0, dtype=np.int16)
        return LocalCallResult(
            transcript=pipeline.transcript,
            records=list(pipeline.records),
            agent_audio=audio,
            sample_rate=self.sink_rate,
            end_reason=session.end_reason or "",
            interruptions=list(pipeline.interruptions),
            utterances=utterances,
            sink_clears=pipeline.sink_clears,
            start_time=t0 + self.frame_ms / 1000.0,
            errors=list(pipeline.errors),
            timed_out=timed_out,
        )

    def _frames(
        self,
        steps: Sequence[Step],
        session: CallSession,
        utterances: list[CallerUtterance],
        watch: _AgentWatch,
        time: Callable[[], float],
    ) -> Iterator[AudioFrame]:
        """Caller frames, one per tick, following the script (reads agent state live)."""
        seq = 0
        silent = np.zeros(self.frame_samples, dtype=np.int16)

        def frame(samples: Pcm16) -> AudioFrame:
            nonlocal seq
            seq += 1
            return AudioFrame(samples, self.rate, time(), seq)

        for step in steps:
            if isinstance(step, Say):
                pcm = step.pcm
                if step.rate != self.rate:
                    rs = StreamResampler(step.rate, self.rate)
                    pcm = np.concatenate([rs.process(pcm), rs.flush()])
                start = time()
                voiced = _last_voiced(pcm, self.rate)
                utterances.append(CallerUtterance(step.label, start, start + voiced))
                for i in range(0, pcm.shape[0], self.frame_samples):
                    chunk = pcm[i : i + self.frame_samples]
                    if chunk.shape[0] < self.frame_samples:
                        chunk = np.concatenate(
                            [chunk, np.zeros(self.frame_samples - chunk.shape[0], np.int16)]
                        )
                    yield frame(chunk)
            elif isinstance(step, Silence):
                for _ in range(round(step.seconds * 1000 / self.frame_ms)):
                    yield frame(silent)
            elif isinstance(step, WaitForAgent):
                start = time()
                watch.spoke = False
                while time() - start < step.timeout:
                    idle = not watch.active
                    if watch.spoke and idle and time() - watch.quiet_since >= step.settle:
                        break
                    yield frame(silent)
            elif isinstance(step, WaitForAgentSpeech):
                start = time()
                while time() - start < step.timeout:
                    since = watch.speaking_since
                    if since is not None and time() - since >= step.after:
                        break
                    yield frame(silent)
            elif isinstance(step, PressDigit):
                session.feed_event(DtmfReceived(step.digit))
                yield frame(silent)
            elif isinstance(step, HangUp):
                return
