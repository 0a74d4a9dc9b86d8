"""What a call cost, from a price table and the usage each provider reported.

Prices are per unit a provider bills in: minutes of STT audio, thousands of LLM tokens in
and out, thousands of TTS characters, minutes of telephony. Embedded models default to zero
(the machine is already paid for) but can be priced to compare against hosted ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class ProviderPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stt_per_minute: float = Field(0.0, ge=0)
    llm_per_1k_input_tokens: float = Field(0.0, ge=0)
    llm_per_1k_output_tokens: float = Field(0.0, ge=0)
    tts_per_1k_chars: float = Field(0.0, ge=0)
    telephony_per_minute: float = Field(0.0, ge=0)


class PriceTable(BaseModel):
    """Provider name -> prices; ``edge:sip`` style keys price telephony per edge."""

    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderPrice] = Field(default_factory=dict)

    def price(self, name: str) -> ProviderPrice:
        return self.providers.get(name) or ProviderPrice()


@dataclass
class UsageMeter:
    """Accumulates one call's billable usage as the call runs (cheap: a few adds per turn)."""

    stt_seconds: dict[str, float] = field(default_factory=dict)
    llm_tokens_in: dict[str, int] = field(default_factory=dict)
    llm_tokens_out: dict[str, int] = field(default_factory=dict)
    tts_chars: dict[str, int] = field(default_factory=dict)

    def add_stt(self, provider: str, seconds: float) -> None:
        self.stt_seconds[provider] = self.stt_seconds.get(provider, 0.0) + seconds

    def add_llm(self, provider: str, tokens_in: int, tokens_out: int) -> None:
        self.llm_tokens_in[provider] = self.llm_tokens_in.get(provider, 0) + tokens_in
        self.llm_tokens_out[provider] = self.llm_tokens_out.get(provider, 0) + tokens_out

    def add_tts(self, provider: str, chars: int) -> None:
        self.tts_chars[provider] = self.tts_chars.get(provider, 0) + chars

    def cost(self, prices: PriceTable, edge: str, call_seconds: float) -> dict[str, float]:
        """Cost split by kind, plus ``total`` and ``per_minute`` (USD or whatever unit)."""
        stt = sum(prices.price(p).stt_per_minute * s / 60 for p, s in self.stt_seconds.items())
        llm = sum(
            prices.price(p).llm_per_1k_input_tokens * n / 1000 for p, n in self.llm_tokens_in.items()
        ) + sum(
            prices.price(p).llm_per_1k_output_tokens * n / 1000
            for p, n in self.llm_tokens_out.items()
        )
        tts = sum(prices.price(p).tts_per_1k_chars * n / 1000 for p, n in self.tts_chars.items())
        telephony = prices.price(f"edge:{edge}").telephony_per_minute * call_seconds / 60
        total = stt + llm + tts + telephony
        minutes = call_seconds / 60
        return {
            "stt": round(stt, 6),
            "llm": round(llm, 6),
            "tts": round(tts, 6),
            "telephony": round(telephony, 6),
            "total": round(total, 6),
            "per_minute": round(total / minutes, 6) if minutes > 0 else 0.0,
        }
