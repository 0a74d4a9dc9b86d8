"""``TurnRecord``: when each stage of one conversational turn happened.

"The agent feels slow" is not actionable; "endpointing waited 1.1 s, the LLM took 380 ms to
its first token" is. Each turn stamps the moments its stages were reached (all on the
pipeline's clock, in seconds), and the derived properties split the caller's voice-to-voice
latency (end of speech -> first agent audio) into stage contributions that add up exactly:

    voice_to_voice = endpointing + stt + llm_ttft + llm_first_clause + tts_first_chunk + overhead

where ``stt`` counts only STT time *after* the endpoint was decided (a final that arrived
during the silence cost the caller nothing), and ``overhead`` is whatever the pipeline itself
added between stages (queueing, resampling, scheduling). ``llm_first_clause`` is the LLM's generation time
until the chunker has a phrase worth speaking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["TurnRecord"]


def _gap(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return b - a


@dataclass(slots=True)
class TurnRecord:
    """One caller turn and the agent's reply; times in seconds on the pipeline clock."""

    index: int
    user_text: str = ""
    agent_text: str = ""
    """What the agent meant to say (the whole generated reply)."""
    heard_text: str = ""
    """What the caller heard of it (all of it unless interrupted)."""
    speech_start: float | None = None
    speech_end: float | None = None
    endpoint: float | None = None
    """End of turn decided."""
    stt_final: float | None = None
    llm_start: float | None = None
    llm_first_token: float | None = None
    tts_start: float | None = None
    """First chunk of text handed to the TTS."""
    tts_first_audio: float | None = None
    first_audio_out: float | None = None
    """First agent audio written to the sink (leaves the pipeline)."""
    first_audio_played: float | None = None
    """The edge reported playback of the first clause (its mark)."""
    reply_done: float | None = None
    interrupted_at: float | None = None
    interruption_onset: float | None = None
    """When the caller's barge-in speech began (VAD)."""
    sink_cleared_at: float | None = None
    speculative: bool = False
    """The reply came from an early-intent speculation that was committed."""
    speculations_discarded: int = 0
    errors: list[str] = field(default_factory=list)
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    """Knowledge-base passages put into the LLM context (text, score, source), for audit."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls of the reply (name, arguments, status, result, seconds), in order."""

    # --- derived stage latencies (seconds) ---------------------------------------------

    @property
    def endpointing(self) -> float | None:
        return _gap(self.speech_end, self.endpoint)

    def _stt_done(self) -> float | None:
        """When the pipeline had both the endpoint and the final text (LLM can start)."""
        if self.endpoint is None or self.stt_final is None:
            return None
        return max(self.endpoint, self.stt_final)

    @property
    def stt(self) -> float | None:
        done = self._stt_done()
        return None if done is None or self.endpoint is None else done - self.endpoint

    @property
    def llm_ttft(self) -> float | None:
        """LLM start -> first token; with a committed speculation only the part after the
        STT final counts (the rest overlapped the caller's silence)."""
        done = self._stt_done()
        if done is None or self.llm_start is None or self.llm_first_token is None:
            return None
        return max(0.0, self.llm_first_token - max(self.llm_start, done))

    @property
    def llm_first_clause(self) -> float | None:
        """First token -> first clause complete (the chunker waits for a phrase to speak)."""
        done = self._stt_done()
        if done is None or self.llm_first_token is None or self.tts_start is None:
            return None
        return max(0.0, self.tts_start - max(self.llm_first_token, done))

    @property
    def tts_first_chunk(self) -> float | None:
        done = self._stt_done()
        if done is None or self.tts_start is None or self.tts_first_audio is None:
            return None
        return max(0.0, self.tts_first_audio - max(self.tts_start, done))

    @property
    def voice_to_voice(self) -> float | None:
        """Caller end of speech -> first agent audio out of the pipeline."""
        return _gap(self.speech_end, self.first_audio_out)

    @property
    def overhead(self) -> float | None:
        """What the pipeline itself added between the stages (never negative)."""
        total = self.voice_to_voice
        parts = (self.endpointing, self.stt, self.llm_ttft, self.llm_first_clause, self.tts_first_chunk)
        if total is None or any(p is None for p in parts):
            return None
        return max(0.0, total - sum(p for p in parts if p is not None))

    @property
    def clear_delay(self) -> float | None:
        """Barge-in decision -> sink cleared."""
        return _gap(self.interrupted_at, self.sink_cleared_at)

    def stages(self) -> dict[str, float | None]:
        """Stage latencies in seconds, in pipeline order (for tables and logs)."""
        return {
            "endpointing": self.endpointing,
            "stt": self.stt,
            "llm_ttft": self.llm_ttft,
            "llm_first_clause": self.llm_first_clause,
            "tts_first_chunk": self.tts_first_chunk,
            "overhead": self.overhead,
            "voice_to_voice": self.voice_to_voice,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TurnRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
