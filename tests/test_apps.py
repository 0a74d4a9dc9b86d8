"""Provider chains built from config report failures and fallbacks to Prometheus."""

from __future__ import annotations

from voxgate.apps import build_providers, switch_metrics
from voxgate.config import load_settings
from voxgate.observability.metrics import PROVIDER_ERRORS, PROVIDER_FALLBACKS
from voxgate.providers.fallback import FallbackLLM, SwitchEvent


def test_switch_hook_counts_errors_and_fallbacks() -> None:
    errors = PROVIDER_ERRORS.labels(kind="llm", provider="primary")
    fallbacks = PROVIDER_FALLBACKS.labels(kind="llm")
    e0, f0 = errors._value.get(), fallbacks._value.get()
    hook = switch_metrics("llm")
    hook(SwitchEvent("llm", "primary", "backup", "timeout", None))
    hook(SwitchEvent("llm", "primary", None, "error", RuntimeError("down")))
    assert errors._value.get() == e0 + 2
    assert fallbacks._value.get() == f0 + 1


def test_chains_from_config() -> None:
    settings = load_settings(providers={"stt": ["fake"], "llm": ["fake", "fake"], "tts": ["fake"], "vad": "webrtc"})
    p = build_providers(settings.providers, print, None)
    assert isinstance(p.llm, FallbackLLM)
    assert p.vad_factory() is not None
