"""An asyncio event loop on virtual time, for deterministic, faster-than-real-time calls.

Agent behaviour depends on time (silence thresholds, playout pacing, provider latencies), so
tests that run in wall time are slow and flaky. This loop's clock only moves when nothing is
ready to run: it then jumps straight to the next timer. Everything built on ``loop.time()``
and ``asyncio.sleep`` (the pipeline's injected clock, the local edge's 20 ms ticks, the fake
providers' delays) therefore behaves exactly as in real time, in the same order, every run,
in a fraction of the wall time.

Limit: work done in threads (embedded models) takes no virtual time while the loop has
timers to jump to; use real time for those.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _JumpingSelector(selectors.BaseSelector):
    """Wraps the real selector: polls without blocking, and turns a wait into a time jump."""

    def __init__(self, loop_ref: VirtualTimeLoop, inner: selectors.BaseSelector) -> None:
        self._loop_ref = loop_ref
        self._inner = inner

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout is None:
            # Nothing scheduled (timeout None): only real I/O or a thread can wake us.
            return ready if ready or timeout is not None else self._inner.select(None)
        if timeout > 0:
            self._loop_ref.advance(timeout)
        return ready

    def close(self) -> None:
        self._inner.close()

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._inner.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """``time()`` is virtual and jumps to the next timer whenever the loop would sleep."""

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_now = start
        super().__init__(_JumpingSelector(self, selectors.DefaultSelector()))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds


def run_virtual(coro: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop(start)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
