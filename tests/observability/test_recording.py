"""Two-track call recording: alignment, barge-in clears, crash-readable files, retention."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from voxgate.audio.frame import AudioFrame
from voxgate.audio.wav import read_wav
from voxgate.calls.session import CallSession, UnsupportedControl
from voxgate.observability.recording import (
    CallRecorder,
    RecordingHooks,
    RecordingSink,
    apply_retention,
    resolve,
)
from voxgate.observability.records import CallRecords


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeSink:
    def __init__(self, rate: int) -> None:
        self.sample_rate = rate
        self.log: list[str] = []

    def write(self, frame: AudioFrame) -> None:
        self.log.append(f"write:{frame.num_samples}")

    def clear(self) -> None:
        self.log.append("clear")

    def mark(self, name: str) -> None:
        self.log.append(f"mark:{name}")


def tone(rate: int, seconds: float, value: int) -> AudioFrame:
    return AudioFrame(np.full(round(rate * seconds), value, dtype=np.int16), rate)


def feed_caller(rec: CallRecorder, clock: Clock, seconds: float, value: int = 500) -> None:
    """Caller frames of 20 ms at 8 kHz, each delivered when its last sample was captured."""
    for _ in range(round(seconds / 0.02)):
        clock.now += 0.02
        rec.caller_frame(tone(8000, 0.02, value))


def segments(pcm: np.ndarray, rate: int) -> list[tuple[float, float, int]]:
    """(start_s, end_s, value) runs of constant samples, rounded to 10 ms."""
    out: list[tuple[float, float, int]] = []
    edges = np.flatnonzero(np.diff(pcm)) + 1
    starts = [0, *edges.tolist()]
    ends = [*edges.tolist(), len(pcm)]
    for s, e in zip(starts, ends, strict=True):
        out.append((round(s / rate, 2), round(e / rate, 2), int(pcm[s])))
    return out


def test_tracks_are_time_aligned_and_same_length(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecorder(tmp_path, "c1", caller_rate=8000, agent_rate=16000, clock=clock)
    sink = RecordingSink(FakeSink(16000), rec)
    feed_caller(rec, clock, 0.2)
    sink.write(tone(16000, 0.5, 900))  # written at once at 0.2 s, plays 0.2 - 0.7 s
    feed_caller(rec, clock, 0.8)
    rec.close()
    caller, caller_rate = read_wav(tmp_path / rec.paths["caller"])
    agent, agent_rate = read_wav(tmp_path / rec.paths["agent"])
    assert (caller_rate, agent_rate) == (8000, 16000)
    assert len(caller) / caller_rate == pytest.approx(1.0)
    assert len(agent) / agent_rate == pytest.approx(1.0)
    assert segments(agent, agent_rate) == [(0.0, 0.2, 0), (0.2, 0.7, 900), (0.7, 1.0, 0)]
    assert segments(caller, caller_rate) == [(0.0, 1.0, 500)]


def test_replies_written_while_playing_queue_behind(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecorder(tmp_path, "c2", caller_rate=8000, agent_rate=8000, clock=clock)
    sink = RecordingSink(FakeSink(8000), rec)
    sink.write(tone(8000, 0.3, 100))
    clock.now += 0.1
    sink.write(tone(8000, 0.3, 200))  # still playing the first: starts at 0.3 s, not 0.1 s
    clock.now += 0.9
    rec.close()
    agent, rate = read_wav(tmp_path / rec.paths["agent"])
    assert segments(agent, rate) == [(0.0, 0.3, 100), (0.3, 0.6, 200), (0.6, 1.0, 0)]


def test_clear_drops_unheard_audio(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecorder(tmp_path, "c3", caller_rate=8000, agent_rate=8000, clock=clock)
    inner = FakeSink(8000)
    sink = RecordingSink(inner, rec)
    sink.write(tone(8000, 1.0, 700))
    sink.mark("m1")
    feed_caller(rec, clock, 0.3)
    sink.clear()  # barge-in at 0.3 s: the remaining 0.7 s was never heard
    feed_caller(rec, clock, 0.5)
    rec.close()
    assert inner.log == ["write:8000", "mark:m1", "clear"]
    agent, rate = read_wav(tmp_path / rec.paths["agent"])
    assert segments(agent, rate) == [(0.0, 0.3, 700), (0.3, 0.8, 0)]
    assert rec.cleared_ms == pytest.approx(700)


def test_audio_queued_at_hangup_is_not_recorded(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecorder(tmp_path, "c4", caller_rate=8000, agent_rate=8000, clock=clock)
    RecordingSink(FakeSink(8000), rec).write(tone(8000, 2.0, 300))
    clock.now += 0.5
    rec.close()
    agent, rate = read_wav(tmp_path / rec.paths["agent"])
    assert segments(agent, rate) == [(0.0, 0.5, 300)]


def test_caller_gaps_become_silence_small_jitter_does_not(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecorder(tmp_path, "c5", caller_rate=8000, agent_rate=8000, clock=clock)
    feed_caller(rec, clock, 0.2, value=11)
    clock.now += 0.05  # a late frame: within the slack, written back to back
    feed_caller(rec, clock, 0.2, value=22)
    clock.now += 0.55  # the stream stops (DTX / hold) for 0.55 s
    feed_caller(rec, clock, 0.2, value=33)
    rec.close()
    caller, rate = read_wav(tmp_path / rec.paths["caller"])
    assert segments(caller, rate) == [
        (0.0, 0.2, 11), (0.2, 0.4, 22), (0.4, 1.0, 0), (1.0, 1.2, 33)
    ]


def test_frames_at_the_wrong_rate_are_counted_not_recorded(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecorder(tmp_path, "c6", caller_rate=8000, agent_rate=8000, clock=clock)
    rec.caller_frame(tone(16000, 0.02, 5))
    rec.close()
    assert rec.skipped_frames == 1


def test_unsafe_call_ids_make_safe_paths(tmp_path: Path) -> None:
    rec = CallRecorder(tmp_path, "../../etc/passwd", caller_rate=8000, agent_rate=8000)
    rec.close()
    for rel in rec.paths.values():
        assert ".." not in Path(rel).parts and (tmp_path / rel).resolve().is_relative_to(tmp_path)


def test_resolve_refuses_paths_outside_the_directory(tmp_path: Path) -> None:
    inside = tmp_path / "rec" / "a.wav"
    inside.parent.mkdir()
    inside.write_bytes(b"x")
    (tmp_path / "secret.wav").write_bytes(b"x")
    root = tmp_path / "rec"
    assert resolve(root, "a.wav") == inside.resolve()
    assert resolve(root, "../secret.wav") is None
    assert resolve(root, str(tmp_path / "secret.wav")) is None
    assert resolve(root, "missing.wav") is None and resolve(root, None) is None


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import numpy as np
    from voxgate.audio.frame import AudioFrame
    from voxgate.observability.recording import CallRecorder
    t = [0.0]
    rec = CallRecorder(Path(sys.argv[1]), "crash", caller_rate=8000, agent_rate=8000,
                       clock=lambda: t[0], sync_every_s=0.5)
    for i in range(125):  # 2.5 s of caller audio
        t[0] += 0.02
        rec.caller_frame(AudioFrame(np.full(160, 1234, dtype=np.int16), 8000))
    print(rec.paths["caller"], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_kill_9_leaves_a_readable_wav(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    caller, rate = read_wav(tmp_path / proc.stdout.strip())
    assert len(caller) / rate >= 2.0  # everything up to the last header sync
    assert set(np.unique(caller).tolist()) == {1234}


async def test_hooks_record_a_session_and_store_paths(tmp_path: Path) -> None:
    records = await CallRecords.open(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    try:
        clock = Clock()
        hooks = RecordingHooks(tmp_path / "rec", records, clock=clock)
        sink = FakeSink(8000)
        session = CallSession("websocket", sink, UnsupportedControl("websocket"), 8000)
        await records.start_call(session.call_id, edge="websocket")
        await hooks.on_start(session)
        assert isinstance(session.sink, RecordingSink) and session.sink.inner is sink
        for _ in range(10):
            clock.now += 0.02
            session.feed_audio(tone(8000, 0.02, 42))
        session.sink.write(tone(8000, 0.1, 7))
        clock.now += 0.2
        await hooks.on_end(session)
        assert session.taps == [] and hooks.active == {}
        row = await records.get_call(session.call_id)
        assert row is not None
        caller = resolve(tmp_path / "rec", row["recording_caller"])
        agent = resolve(tmp_path / "rec", row["recording_agent"])
        assert caller is not None and agent is not None
        assert segments(read_wav(caller)[0], 8000) == [(0.0, 0.2, 42), (0.2, 0.4, 0)]
        assert segments(read_wav(agent)[0], 8000) == [(0.0, 0.2, 0), (0.2, 0.3, 7), (0.3, 0.4, 0)]
    finally:
        await records.close()


async def test_hooks_skip_calls_not_enabled(tmp_path: Path) -> None:
    hooks = RecordingHooks(tmp_path, None, enabled=lambda s: s.route == "record-me")
    session = CallSession("sip", FakeSink(8000), UnsupportedControl("sip"), 8000, route="other")
    await hooks.on_start(session)
    assert session.taps == [] and not isinstance(session.sink, RecordingSink)
    assert not os.listdir(tmp_path)


async def test_retention_deletes_old_files_and_rows(tmp_path: Path) -> None:
    records = await CallRecords.open(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    rec_dir = tmp_path / "rec"
    try:
        old_start = datetime.now(UTC) - timedelta(days=40)
        paths: dict[str, list[Path]] = {}
        for call_id, start in (("old", old_start), ("new", datetime.now(UTC))):
            recorder = CallRecorder(
                rec_dir, call_id, caller_rate=8000, agent_rate=8000, started=start
            )
            recorder.close()
            paths[call_id] = [rec_dir / p for p in recorder.paths.values()]
            await records.start_call(call_id, edge="sip", started_at=start)
            await records.update_call(
                call_id,
                recording_caller=recorder.paths["caller"],
                recording_agent=recorder.paths["agent"],
            )
            await records.end_call(call_id, "completed", ended_at=start + timedelta(minutes=1))
        orphan = rec_dir / "1999-01-01" / "lost.caller.wav"
        orphan.parent.mkdir()
        orphan.write_bytes(b"RIFF")
        old_ts = time.time() - 60 * 86400
        os.utime(orphan, (old_ts, old_ts))

        kept = await apply_retention(records, rec_dir, 0)  # 0 days: retention off
        assert (kept.calls_deleted, kept.files_deleted) == (0, 0)
        assert all(p.exists() for p in paths["old"])

        result = await apply_retention(records, rec_dir, 30)
        assert result.calls_deleted == 1 and result.files_deleted == 3
        assert not any(p.exists() for p in paths["old"]) and not orphan.exists()
        assert not orphan.parent.exists()
        assert all(p.exists() for p in paths["new"])
        assert await records.get_call("old") is None
        assert await records.get_call("new") is not None
    finally:
        await records.close()
