"""Registry: names to providers, doctor's model list (no models needed)."""

from __future__ import annotations

import pytest

from voxgate.errors import ConfigError
from voxgate.providers.llm.fake import FakeLLM
from voxgate.providers.llm.openai_compat import OpenAICompatLLM
from voxgate.providers.registry import build_llm, build_stt, build_tts, describe_models
from voxgate.providers.stt.fake import FakeSTT
from voxgate.providers.tts.fake import FakeTTS


async def test_build_by_name() -> None:
    assert isinstance(build_llm("fake", script=["hi"]), FakeLLM)
    assert isinstance(build_stt("fake", utterances=["hi"]), FakeSTT)
    assert isinstance(build_tts("fake", sample_rate=8000), FakeTTS)
    llm = build_llm("openai", base_url="http://127.0.0.1:1/v1", model="m", api_key="k")
    assert isinstance(llm, OpenAICompatLLM)
    await llm.aclose()


def test_unknown_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="choose embedded, openai or fake"):
        build_llm("gpt")
    with pytest.raises(ConfigError):
        build_stt("deepgram")
    with pytest.raises(ConfigError):
        build_tts("eleven")
    with pytest.raises(ConfigError, match="openai LLM options"):
        build_llm("openai", nonsense=1)


def test_describe_models_lists_every_model() -> None:
    rows = describe_models()
    names = {r["name"] for r in rows}
    assert {"whisper tiny.en", "qwen2.5-coder-0.5b-instruct q4", "silero vad"} <= names
    for r in rows:
        assert set(r) >= {"name", "path", "found", "size", "load_seconds", "hint"}
        assert r["found"] == (r["path"] is not None)
