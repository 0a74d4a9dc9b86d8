"""Packet loss concealment for codecs that have none of their own (G.711, linear PCM).

Modelled on ITU-T G.711 Appendix I: during a loss, repeat the last pitch period of the
decoded signal so voiced speech keeps its pitch instead of dropping to a click and silence;
fade it out because a repeated period sounds robotic once it runs long, reaching silence after
~60 ms of consecutive loss; and cross-fade into the first good packet so the join does not
click. This is a simplified version (one pitch estimate per loss burst, linear fades, no
period-doubling), cheap enough to run per frame in Python.

The concealer only sees decoded PCM, so one implementation serves every PCM-only codec and
it stays testable without a codec.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from voxgate.audio.frame import Pcm16

_HISTORY_MS = 48.75
"""History kept for pitch search, as in G.711 Appendix I (390 samples at 8 kHz)."""
_MIN_PITCH_MS = 2.5  # 400 Hz
_MAX_PITCH_MS = 15.0  # ~66 Hz
_CORR_WINDOW_MS = 20.0
_FULL_GAIN_MS = 10.0
"""The first 10 ms of a loss are played at full level: short gaps then sound unbroken."""
_SILENT_AFTER_MS = 60.0
_CROSSFADE_MS = 4.0


class PitchConcealer:
    """Per-stream concealment state: feed every good frame to :meth:`good`, ask
    :meth:`conceal` for every lost one.

    One instance per stream (it keeps the stream's history); not thread-safe.
    """

    __slots__ = (
        "_crossfade", "_full_gain", "_history_len", "_lost", "_max_lag", "_min_lag", "_period",
        "_phase", "_recent", "_recent_len", "_silent_after", "_window", "sample_rate",
    )

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._history_len = round(sample_rate * _HISTORY_MS / 1000)
        self._recent: deque[Pcm16] = deque()
        """The last frames played (references, newest last), just enough to cover the
        history. Copied into one array only when a loss needs it: every good frame passes
        through here (50 a second per call) and losses are rare."""
        self._recent_len = 0
        self._min_lag = max(1, round(sample_rate * _MIN_PITCH_MS / 1000))
        self._max_lag = round(sample_rate * _MAX_PITCH_MS / 1000)
        self._window = round(sample_rate * _CORR_WINDOW_MS / 1000)
        self._full_gain = round(sample_rate * _FULL_GAIN_MS / 1000)
        self._silent_after = round(sample_rate * _SILENT_AFTER_MS / 1000)
        self._crossfade = round(sample_rate * _CROSSFADE_MS / 1000)
        self._period: npt.NDArray[np.float32] | None = None
        self._phase = 0
        self._lost = 0
        """Samples concealed in the current loss burst (0: not in a loss)."""

    @property
    def in_loss(self) -> bool:
        return self._lost > 0

    def reset(self) -> None:
        self._recent.clear()
        self._recent_len = 0
        self._period = None
        self._phase = 0
        self._lost = 0

    def good(self, pcm: Pcm16) -> Pcm16:
        """Take a correctly decoded frame; returns it, cross-faded in if it ends a loss."""
        if self._lost and self._period is not None and pcm.shape[0]:
            n = min(self._crossfade, pcm.shape[0])
            tail = self._continue(n).astype(np.float32)
            ramp = (np.arange(1, n + 1, dtype=np.float32)) / (n + 1)
            head = pcm[:n].astype(np.float32) * ramp + tail * (1.0 - ramp)
            pcm = pcm.copy()
            pcm[:n] = np.clip(np.rint(head), -32768, 32767).astype(np.int16)
        self._lost = 0
        self._period = None
        self._remember(pcm)
        return pcm

    def conceal(self, num_samples: int) -> Pcm16:
        """Samples standing in for ``num_samples`` of lost audio."""
        if num_samples <= 0:
            return np.zeros(0, dtype=np.int16)
        if self._lost == 0:
            self._period = self._estimate_period()
            self._phase = 0
        out = self._continue(num_samples)
        self._lost += num_samples
        out16 = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
        # Concealed audio goes into the history too: a later loss burst then repeats what the
        # listener actually heard, not audio from before the previous gap.
        self._remember(out16)
        return out16

    def _continue(self, n: int) -> npt.NDArray[np.float32]:
        """Next ``n`` samples of the faded periodic continuation, advancing the phase."""
        if self._period is None or self._lost >= self._silent_after:
            self._phase += n
            return np.zeros(n, dtype=np.float32)
        period = self._period
        idx = (self._phase + np.arange(n)) % period.shape[0]
        self._phase += n
        t = self._lost + np.arange(n, dtype=np.float32)
        gain = np.clip(
            1.0 - (t - self._full_gain) / float(self._silent_after - self._full_gain), 0.0, 1.0
        )
        out: npt.NDArray[np.float32] = (period[idx] * gain).astype(np.float32)
        return out

    def _remember(self, pcm: Pcm16) -> None:
        """Keep ``pcm`` for the history. The array is kept, not copied: frames handed on to
        the call are not written to afterwards (nothing in voxgate mutates a frame)."""
        n = pcm.shape[0]
        if not n:
            return
        recent = self._recent
        recent.append(pcm)
        total = self._recent_len + n
        while total - recent[0].shape[0] >= self._history_len:
            total -= recent.popleft().shape[0]
        self._recent_len = total

    def _history(self) -> Pcm16:
        """The last ``history_len`` samples played, zeros before the stream's start."""
        recent, want = self._recent, self._history_len
        if not recent:
            return np.zeros(want, dtype=np.int16)
        joined = np.concatenate(recent) if len(recent) > 1 else recent[0]
        if joined.shape[0] >= want:
            return joined[-want:]
        return np.concatenate((np.zeros(want - joined.shape[0], dtype=np.int16), joined))

    def _estimate_period(self) -> npt.NDArray[np.float32] | None:
        """The last pitch period of the history, by normalised autocorrelation.

        Returns ``None`` for a silent history (nothing worth repeating).
        """
        x = self._history().astype(np.float32)
        if not np.any(x):
            return None
        w = self._window
        ref = x[-w:]
        lags = np.arange(self._min_lag, self._max_lag + 1)
        # Candidate segments x[-w-lag : -lag] for every lag, as rows of one strided view.
        views = np.lib.stride_tricks.sliding_window_view(x[: x.shape[0] - self._min_lag], w)
        starts = x.shape[0] - w - lags
        cands = views[starts]
        num = cands @ ref
        den = np.sqrt(np.einsum("ij,ij->i", cands, cands) * float(ref @ ref)) + 1e-9
        score = num / den
        lag = int(lags[int(np.argmax(score))])
        if float(score.max()) < 0.3:
            # Unvoiced or noise-like: repeating a "period" would impose a false pitch; use a
            # longer stretch (the correlation window) so the repetition sounds like noise.
            lag = w
        return x[-lag:].copy()
