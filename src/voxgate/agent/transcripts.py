"""Route STT transcripts to the caller turn they belong to.

The pipeline flushes the STT at every short pause, so one turn can span several STT
utterances, and a final can arrive after its turn has already ended (the endpoint was
decided during the decode) or even after the next turn began. Finals come back in flush
order, so a FIFO of "who flushed" is enough to attribute each final to its turn.
"""

from __future__ import annotations

import asyncio
from collections import deque

from voxgate.providers.base import Transcript

__all__ = ["TranscriptRouter", "TurnText"]


class TurnText:
    """The words of one caller turn: finals of its flushed segments + the live partial."""

    def __init__(self) -> None:
        self.finals: list[str] = []
        self.partial = ""
        self.pending = 0
        """Flushed segments whose final has not arrived yet."""
        self.last_final_at: float | None = None
        self.confidences: list[float] = []
        self._settled = asyncio.Event()
        self._settled.set()

    def text(self) -> str:
        parts = [*self.finals, self.partial] if self.partial else self.finals
        return " ".join(p.strip() for p in parts if p.strip())

    @property
    def from_finals_only(self) -> bool:
        return not self.partial and self.pending == 0 and bool(self.finals)

    def flushed(self) -> None:
        self.pending += 1
        self._settled.clear()

    def add_final(self, text: str, at: float, confidence: float | None) -> None:
        self.finals.append(text)
        self.partial = ""
        self.last_final_at = at
        if confidence is not None:
            self.confidences.append(confidence)
        self.pending = max(0, self.pending - 1)
        if self.pending == 0:
            self._settled.set()

    def abort(self) -> None:
        """The STT failed: stop waiting for finals that will never come."""
        self.pending = 0
        self._settled.set()

    async def settled(self) -> None:
        """Wait until every flushed segment has its final."""
        await self._settled.wait()


class TranscriptRouter:
    def __init__(self) -> None:
        self.current = TurnText()
        self._awaiting: deque[TurnText] = deque()

    def flushed(self) -> None:
        """The STT was flushed for the current turn: its next final belongs to it."""
        self.current.flushed()
        self._awaiting.append(self.current)

    def close_turn(self) -> TurnText:
        """The current turn ended; later partials go to a fresh one."""
        closed, self.current = self.current, TurnText()
        return closed

    def on_transcript(self, t: Transcript, now: float) -> TurnText:
        """File ``t`` under its turn and return that turn."""
        if not t.is_final:
            self.current.partial = t.text
            return self.current
        target = self._awaiting.popleft() if self._awaiting else self.current
        target.add_final(t.text, now, t.confidence)
        return target

    def abort(self) -> None:
        while self._awaiting:
            self._awaiting.popleft().abort()
