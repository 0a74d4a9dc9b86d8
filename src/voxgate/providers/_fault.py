"""Failure injection shared by the fake providers.

One small value type instead of a flag per fake, so a test reads the same way whichever kind
of provider it breaks: ``FakeLLM(fault=Fault(error=ProviderError("boom")))``,
``FakeTTS(fault=Fault(hang=True))`` (never produces its first chunk, which is what a fallback
chain's timeout must catch), ``FakeSTT(fault=Fault(error=..., after=2, times=1))``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from voxgate.providers.base import ProviderError


@dataclass(slots=True)
class Fault:
    """What a fake provider does wrong, and when.

    ``after`` counts outputs (text deltas, audio chunks, transcripts) of one call/utterance
    before the fault fires: 0 means before the first output. ``times`` limits the fault to the
    first N calls (None: every call), so "fails once, then works" is one line. With ``hang``
    the fake stops producing output until it is cancelled instead of raising.
    """

    error: BaseException | None = None
    after: int = 0
    hang: bool = False
    times: int | None = None

    def __post_init__(self) -> None:
        if self.error is None and not self.hang:
            self.error = ProviderError("injected fault")


class FaultState:
    """Tracks how many calls a fault has fired on (each call asks ``arm()`` once)."""

    def __init__(self, fault: Fault | None) -> None:
        self.fault = fault
        self.fired = 0

    def arm(self) -> Fault | None:
        """The fault for a new call, or None when there is none or its ``times`` ran out."""
        f = self.fault
        if f is None or (f.times is not None and self.fired >= f.times):
            return None
        self.fired += 1
        return f


async def trigger(fault: Fault | None, produced: int) -> None:
    """Raise or hang if ``fault`` is due after ``produced`` outputs; return otherwise."""
    if fault is None or produced != fault.after:
        return
    if fault.hang:
        await asyncio.Event().wait()  # forever, until cancelled
    assert fault.error is not None
    raise fault.error
