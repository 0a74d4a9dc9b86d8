"""Shared fixtures: the embedded models, loaded once per test session.

Tests marked ``models`` need them; they skip with the install command when a model is absent
(CI installs the models, so there they run).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from voxgate.providers import models

if TYPE_CHECKING:
    from voxgate.providers.llm.llama import LlamaLLM
    from voxgate.providers.stt.whisper import WhisperSTT
    from voxgate.providers.tts.piper import PiperTTS


def _need(found: bool, what: str, hint: str) -> None:
    if not found:
        pytest.skip(f"{what} not installed; run: {hint}")


@pytest.fixture(scope="session")
def whisper() -> Iterator[WhisperSTT]:
    _need(models.whisper_tiny_dir() is not None, "Whisper tiny.en", models.MODELS_EXTRA_HINT)
    from voxgate.providers.registry import load_embedded

    stt = load_embedded(print, stt=True, llm=False, tts=False).stt
    assert stt is not None
    yield stt


@pytest.fixture(scope="session")
def piper() -> Iterator[PiperTTS]:
    _need(models.piper_voice() is not None, "Piper voice", models.MODELS_EXTRA_HINT)
    from voxgate.providers.registry import load_embedded

    tts = load_embedded(print, stt=False, llm=False, tts=True).tts
    assert tts is not None
    yield tts


@pytest.fixture(scope="session")
def llama() -> Iterator[LlamaLLM]:
    path = models.qwen_gguf_path()
    _need(
        path.is_file() and path.stat().st_size == models.QWEN_GGUF_SIZE,
        "Qwen GGUF",
        models.MODELS_EXTRA_HINT,
    )
    from voxgate.providers.registry import load_embedded

    llm = load_embedded(print, stt=False, llm=True, tts=False).llm
    assert llm is not None
    yield llm


async def max_loop_gap(work: Awaitable[Any], tick: float = 0.02) -> tuple[Any, float]:
    """Run ``work`` while a ticker sleeps ``tick`` s in a loop; return (result, worst gap in s).

    The gap beyond the tick is how long the event loop was blocked: the measure of whether a
    model really runs off the loop.
    """
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(tick)
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        done.set()
        await task
    return result, worst
