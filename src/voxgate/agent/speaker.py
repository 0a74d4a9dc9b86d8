"""The agent's voice going out: resampling to the sink, playback marks, what was heard.

Barge-in needs two things from the output side: stop now (``sink.clear()``), and know how
much of the reply the caller actually heard, so the conversation history does not claim the
agent said things the caller never heard. A mark goes into the sink after every clause; the
edge reports ``MarkPlayed`` when playback passes it, so "heard" is exactly the clauses whose
marks came back. A mark before the first clause tells when the caller started hearing.

Synchronous (no awaits): called from the reply tasks and, for ``clear``, straight from the
frame handler, so the sink is cleared in the same frame as the barge-in decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.audio.resample import StreamResampler
from voxgate.calls.session import AudioSink

__all__ = ["MarkInfo", "Speaker"]


@dataclass(frozen=True, slots=True)
class MarkInfo:
    reply_id: int
    clause: int
    """-1 for the start-of-reply mark."""
    text: str


@dataclass(slots=True)
class _ReplyOut:
    started: bool = False
    heard: list[str] = field(default_factory=list)
    pending: int = 0
    samples: int = 0


class Speaker:
    """Writes reply audio to one sink; see the module docstring."""

    def __init__(self, sink: AudioSink) -> None:
        self.sink = sink
        self._resampler: StreamResampler | None = None
        self._marks: dict[str, MarkInfo] = {}
        self._replies: dict[int, _ReplyOut] = {}
        self.clears = 0

    def _reply(self, reply_id: int) -> _ReplyOut:
        out = self._replies.get(reply_id)
        if out is None:
            out = self._replies[reply_id] = _ReplyOut()
        return out

    def _mark(self, reply_id: int, clause: int, text: str) -> None:
        name = f"r{reply_id}.{'start' if clause < 0 else clause}"
        self._marks[name] = MarkInfo(reply_id, clause, text)
        self._reply(reply_id).pending += 1
        self.sink.mark(name)

    def write(self, reply_id: int, pcm: Pcm16, rate: int) -> bool:
        """Queue audio of the reply's current clause; True if it was the reply's first."""
        out = self._reply(reply_id)
        first = not out.started
        if first:
            out.started = True
            self._mark(reply_id, -1, "")
        target = self.sink.sample_rate
        if rate != target:
            rs = self._resampler
            if rs is None or rs.in_rate != rate or rs.out_rate != target:
                rs = self._resampler = StreamResampler(rate, target, "HQ")
            pcm = rs.process(pcm)
        if pcm.shape[0]:
            out.samples += int(pcm.shape[0])
            self.sink.write(AudioFrame(pcm, target))
        return first

    def end_clause(self, reply_id: int, clause: int, text: str) -> None:
        """All audio of ``clause`` is written: drain the resampler and mark the point."""
        if self._resampler is not None:
            tail = self._resampler.flush()
            if tail.shape[0]:
                self._reply(reply_id).samples += int(tail.shape[0])
                self.sink.write(AudioFrame(tail, self.sink.sample_rate))
        self._mark(reply_id, clause, text)

    def on_mark(self, name: str) -> MarkInfo | None:
        """Playback passed mark ``name``; returns what it marked (None if not ours/stale)."""
        info = self._marks.pop(name, None)
        if info is None:
            return None
        out = self._reply(info.reply_id)
        out.pending -= 1
        if info.clause >= 0:
            out.heard.append(info.text)
        return info

    def clear(self) -> None:
        """Drop all unplayed audio and its marks now (barge-in)."""
        self.sink.clear()
        self.clears += 1
        self._marks.clear()
        for out in self._replies.values():
            out.pending = 0
        if self._resampler is not None:
            self._resampler.reset()

    def heard_text(self, reply_id: int) -> str:
        out = self._replies.get(reply_id)
        return " ".join(out.heard) if out else ""

    def pending_marks(self, reply_id: int) -> int:
        out = self._replies.get(reply_id)
        return out.pending if out else 0

    def started(self, reply_id: int) -> bool:
        out = self._replies.get(reply_id)
        return bool(out and out.started)

    def forget(self, reply_id: int) -> None:
        """The reply is over and recorded: free its bookkeeping."""
        self._replies.pop(reply_id, None)

    @property
    def playing(self) -> bool:
        """Audio (with marks) still queued in the sink."""
        return bool(self._marks)
