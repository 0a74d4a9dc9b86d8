"""Build providers from config names, and load the embedded models once per process.

Config says ``stt = "embedded"``, ``llm = "openai"``, ``tts = "fake"``; this module turns the
names into objects. The embedded models are big (tiny.en 106 MB, Piper 118 MB, Qwen 548 MB
resident) and take ~2-3 s to load, so they are loaded once, at start-up, by
``load_embedded`` (with a progress line per model), and every call shares them: each provider
runs inference on its own bounded executor, so sharing is safe.

Heavy runtimes (faster-whisper, onnxruntime/piper, llama.cpp) are imported only when an
embedded provider is actually built, so a deployment using hosted providers only does not
need the ``models`` extra.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voxgate.errors import ConfigError
from voxgate.providers import models
from voxgate.providers.base import LLM, TTS, StreamingSTT

if TYPE_CHECKING:
    from voxgate.providers.llm.llama import LlamaLLM
    from voxgate.providers.stt.whisper import WhisperSTT
    from voxgate.providers.tts.piper import PiperTTS

Progress = Callable[[str], None]


@dataclass
class EmbeddedModels:
    """The loaded embedded providers (None for a kind not requested)."""

    stt: WhisperSTT | None = None
    llm: LlamaLLM | None = None
    tts: PiperTTS | None = None
    load_seconds: dict[str, float] = field(default_factory=dict)

    def close(self) -> None:
        for p in (self.stt, self.llm, self.tts):
            if p is not None:
                p.close()


FAKE_STT_SENTENCE = "Hello, I would like to know your opening hours."

_lock = threading.Lock()
_embedded = EmbeddedModels()


def _quiet(_: str) -> None:
    pass


def load_embedded(
    progress: Progress = _quiet,
    *,
    stt: bool = True,
    llm: bool = True,
    tts: bool = True,
    whisper_model: str = "tiny.en",
) -> EmbeddedModels:
    """Load the requested embedded models once; later calls return the same objects.

    ``progress`` gets one line per model, e.g. ``loading whisper tiny.en ... 0.5 s`` (pass
    ``print`` from the CLI). Raises ``ModelNotFoundError`` naming the package to install.
    Blocking (~2-3 s): call it before the event loop starts serving calls, or in a thread.
    """
    with _lock:
        e = _embedded
        if stt and e.stt is None:
            from voxgate.providers.stt.whisper import WhisperSTT

            e.stt = _timed(f"whisper {whisper_model}", progress, lambda: WhisperSTT(whisper_model))
            e.load_seconds[f"whisper {whisper_model}"] = e.stt.load_seconds
        if llm and e.llm is None:
            from voxgate.providers.llm.llama import LlamaLLM

            e.llm = _timed("qwen2.5-coder-0.5b-instruct q4", progress, LlamaLLM)
            e.load_seconds["qwen2.5-coder-0.5b-instruct q4"] = e.llm.load_seconds
        if tts and e.tts is None:
            from voxgate.providers.tts.piper import PiperTTS

            e.tts = _timed(f"piper {models.PIPER_VOICE_NAME}", progress, PiperTTS)
            e.load_seconds[f"piper {models.PIPER_VOICE_NAME}"] = e.tts.load_seconds
        return e


def _timed(label: str, progress: Progress, factory: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    obj = factory()
    progress(f"loading {label} ... {time.perf_counter() - t0:.1f} s")
    return obj


def describe_models() -> list[dict[str, Any]]:
    """One dict per embedded model for ``voxgate doctor``: name, role, path, found, size,
    load_seconds (None until loaded in this process), hint (how to install when missing)."""
    out = []
    for info in models.inventory():
        out.append(
            {
                "name": info.name,
                "role": info.role,
                "path": str(info.path) if info.path else None,
                "found": info.found,
                "size": info.size,
                "load_seconds": _embedded.load_seconds.get(info.name),
                "hint": info.hint,
            }
        )
    return out


def build_stt(name: str, **options: Any) -> StreamingSTT:
    """``"embedded"`` (shared Whisper; ``model="base"`` for the larger one) or ``"fake"``."""
    if name == "embedded":
        loaded = load_embedded(
            stt=True, llm=False, tts=False, whisper_model=options.get("model", "tiny.en")
        )
        assert loaded.stt is not None
        return loaded.stt
    if name == "fake":
        from voxgate.providers.stt.fake import FakeSTT

        # From config (no options): a fake that "hears" one fixed sentence per utterance, so
        # a node on fake providers has real turns (smoke tests, drain/crash tests).
        return FakeSTT(**(options or {"utterances": [FAKE_STT_SENTENCE], "repeat": True}))
    raise ConfigError(f"unknown STT provider {name!r}; choose embedded or fake")


def build_llm(name: str, **options: Any) -> LLM:
    """``"embedded"`` (shared Qwen), ``"openai"`` (``base_url``, ``model``, ``api_key``, ...:
    any OpenAI-compatible server) or ``"fake"``."""
    if name == "embedded":
        loaded = load_embedded(stt=False, llm=True, tts=False)
        assert loaded.llm is not None
        return loaded.llm
    if name == "openai":
        from voxgate.providers.llm.openai_compat import OpenAICompatLLM

        try:
            return OpenAICompatLLM(**options)
        except TypeError as exc:
            raise ConfigError(f"openai LLM options: {exc}") from exc
    if name == "fake":
        from voxgate.providers.llm.fake import FakeLLM

        return FakeLLM(**options)
    raise ConfigError(f"unknown LLM provider {name!r}; choose embedded, openai or fake")


def build_tts(name: str, **options: Any) -> TTS:
    """``"embedded"`` (shared Piper) or ``"fake"``."""
    if name == "embedded":
        loaded = load_embedded(stt=False, llm=False, tts=True)
        assert loaded.tts is not None
        return loaded.tts
    if name == "fake":
        from voxgate.providers.tts.fake import FakeTTS

        return FakeTTS(**options)
    raise ConfigError(f"unknown TTS provider {name!r}; choose embedded or fake")
