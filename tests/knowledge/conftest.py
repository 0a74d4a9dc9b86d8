"""The embedded-model fixture of the agent tests (Whisper, Qwen, Piper, Silero), shared."""

from __future__ import annotations

from tests.agent.conftest import embedded

__all__ = ["embedded"]
