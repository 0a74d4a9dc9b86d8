"""A small, bounded thread pool per embedded model, so inference never blocks the event loop.

faster-whisper (CTranslate2), onnxruntime (Piper) and llama.cpp release the GIL while they
compute, so worker threads give real parallelism with the event loop: RTP, SIP and WebSocket
I/O keep flowing while a model runs. One pool per model (not asyncio's shared default pool)
bounds how many inferences of that model run at once, so two busy calls cannot starve the
cores for everyone else and a slow model cannot hold threads another model needs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ModelExecutor:
    """``await executor.run(fn, *args)`` runs ``fn`` on one of ``workers`` threads."""

    def __init__(self, name: str, workers: int) -> None:
        self.name = name
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"voxgate-{name}")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Like ``run`` but returns the future at once (call from the event loop thread)."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
