"""Two-track call recording (caller / agent) as PCM16 WAV files, written as the call runs.

Two mono files per call instead of one mixed or stereo file: each side can be transcribed,
listened to or measured alone (who talked over whom is plain to see), and the two tracks are
time-aligned from the same origin, so laying them side by side gives the call as it happened.

What the agent track holds: audio *as played*, not as written. Agents write replies faster
than real time and barge-in clears what has not been heard yet, so recording every write
would put words in the file the caller never heard. :class:`RecordingSink` therefore models
the far end's playout: audio written while the sink is idle starts playing "now", audio
written while it plays queues behind it, and ``clear()`` drops the queued, unheard part.
Only audio whose play time has passed is committed to the file; audio still queued when the
call ends is dropped for the same reason.

Alignment: both tracks count samples from the recorder's start on one monotonic clock. When a
side goes quiet (DTX, hold, a lost stream, an agent that is thinking) the gap is filled with
digital silence, so the n-th second of both files is the same n-th second of the call.

Crash safety: data is written straight through, and every ``sync_every_s`` of audio the WAV
header's sizes are patched to cover what is on disk. After ``kill -9`` the file is a valid WAV
with all but the last moments of audio; closing it finalises the header exactly.

Files are small sequential writes from the event loop (a 20 ms frame is 320-960 bytes into a
buffered file); the header patch is two tiny writes per second, so no thread is needed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
from sqlalchemy import select

from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.calls.session import AudioSink, CallSession
from voxgate.observability.records import CallRecords
from voxgate.observability.schema import CallRow

log = logging.getLogger(__name__)

Track = Literal["caller", "agent"]
TRACKS: tuple[Track, ...] = ("caller", "agent")

_HEADER_BYTES = 44
_SILENCE = np.zeros(48000, dtype=np.int16)


def _wav_header(sample_rate: int, data_bytes: int) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavTrackWriter:
    """A mono PCM16 WAV file that grows sample by sample and stays readable while it does."""

    def __init__(self, path: Path, sample_rate: int, sync_every_s: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.sample_rate = sample_rate
        self.samples = 0
        self._sync_every = max(1, int(sync_every_s * sample_rate))
        self._unsynced = 0
        self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115 (lives as long as the call)
        self._file.write(_wav_header(sample_rate, 0))
        self._file.flush()

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, pcm: Pcm16) -> None:
        if self._file is None or pcm.shape[0] == 0:
            return
        self._file.write(pcm.astype("<i2", copy=False).tobytes())
        self._advance(int(pcm.shape[0]))

    def silence(self, count: int) -> None:
        """Append ``count`` samples of digital silence (bounded memory for long gaps)."""
        while count > 0 and self._file is not None:
            n = min(count, _SILENCE.shape[0])
            self._file.write(_SILENCE[:n].tobytes())
            self._advance(n)
            count -= n

    def _advance(self, count: int) -> None:
        self.samples += count
        self._unsynced += count
        if self._unsynced >= self._sync_every:
            self.sync()

    def sync(self) -> None:
        """Make the header describe every sample on disk (data first, then the sizes)."""
        f = self._file
        if f is None:
            return
        f.flush()
        data_bytes = 2 * self.samples
        f.seek(4)
        f.write(struct.pack("<I", 36 + data_bytes))
        f.seek(40)
        f.write(struct.pack("<I", data_bytes))
        f.seek(_HEADER_BYTES + data_bytes)
        f.flush()
        self._unsynced = 0

    def close(self) -> None:
        if self._file is None:
            return
        self.sync()
        self._file.close()
        self._file = None


class _InboundTrack:
    """The caller's side: frames are written as they arrive, gaps in arrival become silence.

    Arrival jitter below ``slack`` is absorbed (a frame that comes 30 ms late is not preceded
    by 30 ms of silence); frames that arrive in a burst are written back to back, so the track
    may run ahead of the clock by at most the burst, never drift behind it.
    """

    def __init__(self, writer: WavTrackWriter, slack_s: float) -> None:
        self.writer = writer
        self._slack = int(slack_s * writer.sample_rate)

    def feed(self, pcm: Pcm16, now_pos: int) -> None:
        start = now_pos - int(pcm.shape[0])
        gap = start - self.writer.samples
        if gap > self._slack:
            self.writer.silence(gap)
        self.writer.write(pcm)

    def pad_to(self, pos: int) -> None:
        self.writer.silence(pos - self.writer.samples)


class _PlayoutTrack:
    """The agent's side: a model of the far end's playout queue (see the module docstring)."""

    def __init__(self, writer: WavTrackWriter) -> None:
        self.writer = writer
        self._queue: deque[Pcm16] = deque()
        self._queued = 0
        self.cleared_samples = 0

    def advance(self, now_pos: int) -> None:
        """Commit the queued audio whose play time has passed."""
        due = now_pos - self.writer.samples
        while due > 0 and self._queue:
            head = self._queue[0]
            if head.shape[0] <= due:
                self._queue.popleft()
                self.writer.write(head)
                self._queued -= int(head.shape[0])
                due -= int(head.shape[0])
            else:
                self.writer.write(head[:due])
                self._queue[0] = head[due:]
                self._queued -= due
                due = 0

    def write(self, pcm: Pcm16, now_pos: int) -> None:
        self.advance(now_pos)
        if not self._queue:
            # Idle: playback of this audio starts now; the time since the last audio was quiet.
            self.writer.silence(now_pos - self.writer.samples)
        self._queue.append(pcm.copy())
        self._queued += int(pcm.shape[0])

    def clear(self, now_pos: int) -> None:
        self.advance(now_pos)
        self.cleared_samples += self._queued
        self._queue.clear()
        self._queued = 0

    def finish(self, now_pos: int) -> None:
        """Call over: what played is committed, what was still queued was never heard."""
        self.clear(now_pos)
        self.writer.silence(now_pos - self.writer.samples)


class CallRecorder:
    """Records one call to ``<dir>/<caller_path>`` and ``<dir>/<agent_path>``.

    Feed it with :meth:`caller_frame` (a ``CallSession`` tap) and through a
    :class:`RecordingSink`. It never raises into the media path: an I/O error (disk full)
    is logged once and stops the recording, the call goes on.
    """

    def __init__(
        self,
        directory: Path,
        call_id: str,
        *,
        caller_rate: int,
        agent_rate: int,
        clock: Callable[[], float] = time.monotonic,
        started: datetime | None = None,
        sync_every_s: float = 1.0,
        slack_s: float = 0.1,
    ) -> None:
        self.directory = directory
        self.clock = clock
        self._t0 = clock()
        day = (started or datetime.now(UTC)).strftime("%Y-%m-%d")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", call_id)[:120].lstrip(".") or "call"
        self.paths: dict[Track, str] = {t: f"{day}/{safe}.{t}.wav" for t in TRACKS}
        """Paths relative to ``directory``: what the call record stores."""
        self._caller = _InboundTrack(
            WavTrackWriter(directory / self.paths["caller"], caller_rate, sync_every_s), slack_s
        )
        self._agent = _PlayoutTrack(
            WavTrackWriter(directory / self.paths["agent"], agent_rate, sync_every_s)
        )
        self.failed = False
        self.skipped_frames = 0
        """Frames at a rate other than their track's (an edge bug; counted, not recorded)."""

    @property
    def closed(self) -> bool:
        return self._caller.writer.closed

    @property
    def cleared_ms(self) -> float:
        """Agent audio written but cleared before it was heard (barge-in)."""
        return 1000.0 * self._agent.cleared_samples / self._agent.writer.sample_rate

    def _pos(self, rate: int) -> int:
        return round((self.clock() - self._t0) * rate)

    def _guard(self, action: Callable[[], None]) -> None:
        if self.failed or self.closed:
            return
        try:
            action()
        except OSError:
            self.failed = True
            log.exception("call recording stopped: cannot write to %s", self.directory)

    def caller_frame(self, frame: AudioFrame) -> None:
        def run() -> None:
            if frame.sample_rate != self._caller.writer.sample_rate:
                self.skipped_frames += 1
                return
            self._caller.feed(frame.samples, self._pos(frame.sample_rate))
            self._agent.advance(self._pos(self._agent.writer.sample_rate))

        self._guard(run)

    def agent_frame(self, frame: AudioFrame) -> None:
        def run() -> None:
            if frame.sample_rate != self._agent.writer.sample_rate:
                self.skipped_frames += 1
                return
            self._agent.write(frame.samples, self._pos(frame.sample_rate))

        self._guard(run)

    def agent_clear(self) -> None:
        self._guard(lambda: self._agent.clear(self._pos(self._agent.writer.sample_rate)))

    def close(self) -> None:
        """Finish both tracks at the same instant, so they have the same duration."""

        def run() -> None:
            now = self.clock()
            self._agent.finish(round((now - self._t0) * self._agent.writer.sample_rate))
            end_s = max(
                now - self._t0, self._caller.writer.samples / self._caller.writer.sample_rate
            )
            self._caller.pad_to(round(end_s * self._caller.writer.sample_rate))
            self._agent.writer.silence(
                round(end_s * self._agent.writer.sample_rate) - self._agent.writer.samples
            )

        self._guard(run)
        for writer in (self._caller.writer, self._agent.writer):
            try:
                writer.close()
            except OSError:
                log.exception("closing recording %s failed", writer.path)


class RecordingSink:
    """An ``AudioSink`` that passes everything to ``inner`` and records what gets played."""

    def __init__(self, inner: AudioSink, recorder: CallRecorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.sample_rate = inner.sample_rate

    def write(self, frame: AudioFrame) -> None:
        self.inner.write(frame)  # first: a frame the edge rejects is not recorded either
        self.recorder.agent_frame(frame)

    def clear(self) -> None:
        self.inner.clear()
        self.recorder.agent_clear()

    def mark(self, name: str) -> None:
        self.inner.mark(name)


def attach(session: CallSession, recorder: CallRecorder) -> None:
    """Tap the session's inbound audio and wrap its sink (before the app reads ``sink``)."""
    session.taps.append(recorder.caller_frame)
    session.sink = RecordingSink(session.sink, recorder)


class RecordingHooks:
    """``CallManager`` listeners that record every call ``enabled`` approves.

    Register ``on_start`` after the records observer's (the call row must exist for the paths
    to be stored) and ``on_end`` anywhere. Paths are stored at start, so a call cut short by
    a crash still points at its (readable) files.
    """

    def __init__(
        self,
        directory: Path,
        records: CallRecords | None = None,
        *,
        enabled: Callable[[CallSession], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sync_every_s: float = 1.0,
    ) -> None:
        self.directory = directory
        self.records = records
        self.enabled = enabled
        self.clock = clock
        self.sync_every_s = sync_every_s
        self.active: dict[str, CallRecorder] = {}

    async def on_start(self, session: CallSession) -> None:
        if self.enabled is not None and not self.enabled(session):
            return
        try:
            recorder = CallRecorder(
                self.directory,
                session.call_id,
                caller_rate=session.sample_rate,
                agent_rate=session.sink.sample_rate,
                clock=self.clock,
                sync_every_s=self.sync_every_s,
            )
        except OSError:
            log.exception("cannot start recording call %s", session.call_id)
            return
        attach(session, recorder)
        self.active[session.call_id] = recorder
        if self.records is not None:
            try:
                await self.records.update_call(
                    session.call_id,
                    recording_caller=recorder.paths["caller"],
                    recording_agent=recorder.paths["agent"],
                )
            except Exception:  # a records outage must not stop the call from starting
                log.exception("cannot store recording paths of call %s", session.call_id)

    async def on_end(self, session: CallSession) -> None:
        recorder = self.active.pop(session.call_id, None)
        if recorder is None:
            return
        if recorder.caller_frame in session.taps:
            session.taps.remove(recorder.caller_frame)
        recorder.close()

    def close_all(self) -> None:
        """Shutdown: finalise every open recording."""
        for recorder in self.active.values():
            recorder.close()
        self.active.clear()


def resolve(directory: Path, stored: str | None) -> Path | None:
    """The file a call record points at, or None if absent or outside ``directory``.

    Records hold paths relative to the recordings directory; anything that resolves outside
    it (an absolute path, ``..``) is refused, so a tampered row cannot serve arbitrary files.
    """
    if not stored:
        return None
    root = directory.resolve()
    path = (root / stored).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


@dataclass(frozen=True, slots=True)
class RetentionResult:
    calls_deleted: int
    files_deleted: int


async def apply_retention(
    records: CallRecords | None, directory: Path, days: int
) -> RetentionResult:
    """Delete recordings and call records older than ``days`` (``days <= 0``: keep all).

    Files of the expiring calls are looked up before the rows go; files left behind by rows
    deleted some other way (or by a crash before the row existed) are swept by age.
    """
    if days <= 0:
        return RetentionResult(0, 0)
    cutoff = datetime.now(UTC) - timedelta(days=days)
    stored: list[str] = []
    deleted_calls = 0
    if records is not None:
        async with records.engine.connect() as conn:
            rows = await conn.execute(
                select(CallRow.recording_caller, CallRow.recording_agent).where(
                    CallRow.ended_at < cutoff
                )
            )
            stored = [p for row in rows for p in row if p]
        deleted_calls = await records.delete_older_than(days)
    return RetentionResult(
        deleted_calls,
        await asyncio.to_thread(_delete_files, directory, stored, cutoff.timestamp()),
    )


def _delete_files(directory: Path, stored: list[str], cutoff_ts: float) -> int:
    deleted = 0
    for rel in stored:
        path = resolve(directory, rel)
        if path is not None:
            path.unlink(missing_ok=True)
            deleted += 1
    if not directory.is_dir():
        return deleted
    for path in directory.rglob("*.wav"):
        try:
            if path.stat().st_mtime < cutoff_ts:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            continue
    for sub in sorted(directory.iterdir()):
        if sub.is_dir() and not any(sub.iterdir()):
            os.rmdir(sub)
    return deleted


async def retention_loop(
    records: CallRecords | None, directory: Path, days: int, interval_s: float = 3600.0
) -> None:
    """Run :func:`apply_retention` now and every ``interval_s`` until cancelled."""
    while True:
        try:
            result = await apply_retention(records, directory, days)
            if result.calls_deleted or result.files_deleted:
                log.info(
                    "retention: deleted %d calls and %d recordings older than %d days",
                    result.calls_deleted, result.files_deleted, days,
                )
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(interval_s)


__all__ = [
    "CallRecorder",
    "RecordingHooks",
    "RecordingSink",
    "RetentionResult",
    "WavTrackWriter",
    "apply_retention",
    "attach",
    "resolve",
    "retention_loop",
]
