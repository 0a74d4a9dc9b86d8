"""A pure playout queue for edges that pace audio themselves (RTP, WebRTC, local calls).

The agent writes frames of any length; the edge pulls exactly one frame of ``frame_samples``
per tick. Marks are reported when the last sample written before them has been pulled, which
is the closest an edge can get to "the caller heard it" without echo from the far end.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from voxgate.audio.frame import AudioFrame, Pcm16


class PlayoutBuffer:
    """Implements the ``AudioSink`` protocol; the edge calls :meth:`pull` once per tick."""

    __slots__ = (
        "_chunks", "_marks", "_offset", "_played", "_queued", "_written", "cleared_samples",
        "frame_samples", "sample_rate",
    )

    def __init__(self, sample_rate: int, frame_ms: int = 20) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        self._chunks: deque[Pcm16] = deque()
        self._offset = 0  # samples already consumed from _chunks[0]
        self._queued = 0  # samples queued in total
        self._written = 0  # samples ever written (position of the write head)
        self._played = 0  # samples ever pulled (position of the play head)
        self._marks: deque[tuple[int, str]] = deque()
        self.cleared_samples = 0

    @property
    def queued_ms(self) -> float:
        return 1000.0 * self._queued / self.sample_rate

    @property
    def is_playing(self) -> bool:
        return self._queued > 0

    def write(self, frame: AudioFrame) -> None:
        if frame.sample_rate != self.sample_rate:
            raise ValueError(
                f"playout buffer runs at {self.sample_rate} Hz, got a {frame.sample_rate} Hz frame"
            )
        samples = frame.samples
        n = samples.shape[0]
        if n == 0:
            return
        self._chunks.append(samples)
        self._queued += n
        self._written += n

    def mark(self, name: str) -> None:
        self._marks.append((self._written, name))

    def clear(self) -> None:
        self.cleared_samples += self._queued
        self._chunks.clear()
        self._offset = 0
        self._written = self._played
        self._queued = 0
        self._marks.clear()

    def pull(self) -> tuple[Pcm16 | None, list[str]]:
        """One frame of audio (zero-padded at the end of a stream) or None when idle.

        Returns the marks reached by this pull, in order.
        """
        if self._queued == 0:
            return None, self._reached()
        need = self.frame_samples
        head = self._chunks[0]
        if len(head) - self._offset >= need:
            # Common case: slice from one chunk without copying more than the frame.
            out = head[self._offset : self._offset + need]
            self._offset += need
            if self._offset == len(head):
                self._chunks.popleft()
                self._offset = 0
            taken = need
        else:
            out = np.zeros(need, dtype=np.int16)
            taken = 0
            while taken < need and self._chunks:
                head = self._chunks[0]
                n = min(need - taken, len(head) - self._offset)
                out[taken : taken + n] = head[self._offset : self._offset + n]
                taken += n
                self._offset += n
                if self._offset == len(head):
                    self._chunks.popleft()
                    self._offset = 0
        self._queued -= taken
        self._played += taken
        return out, self._reached()

    def _reached(self) -> list[str]:
        reached: list[str] = []
        while self._marks and self._marks[0][0] <= self._played:
            reached.append(self._marks.popleft()[1])
        return reached
