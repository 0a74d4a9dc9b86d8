"""Cost per call from a price table: each kind priced in its own unit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voxgate.observability.cost import PriceTable, ProviderPrice, UsageMeter


def test_cost_split_and_per_minute() -> None:
    prices = PriceTable(
        providers={
            "deepgram": ProviderPrice(stt_per_minute=0.0043),
            "openai": ProviderPrice(llm_per_1k_input_tokens=0.00015, llm_per_1k_output_tokens=0.0006),
            "elevenlabs": ProviderPrice(tts_per_1k_chars=0.18),
            "edge:sip": ProviderPrice(telephony_per_minute=0.0085),
        }
    )
    meter = UsageMeter()
    meter.add_stt("deepgram", 90)
    meter.add_llm("openai", 2000, 500)
    meter.add_llm("openai", 1000, 100)
    meter.add_tts("elevenlabs", 400)
    cost = meter.cost(prices, "sip", call_seconds=120)
    assert cost["stt"] == pytest.approx(0.0043 * 1.5)
    assert cost["llm"] == pytest.approx(0.00015 * 3 + 0.0006 * 0.6)
    assert cost["tts"] == pytest.approx(0.18 * 0.4)
    assert cost["telephony"] == pytest.approx(0.0085 * 2)
    assert cost["total"] == pytest.approx(cost["stt"] + cost["llm"] + cost["tts"] + cost["telephony"], abs=1e-5)
    assert cost["per_minute"] == pytest.approx(cost["total"] / 2, abs=1e-5)


def test_unpriced_providers_cost_nothing() -> None:
    meter = UsageMeter()
    meter.add_stt("embedded", 60)
    assert meter.cost(PriceTable(), "webrtc", 60)["total"] == 0.0


def test_negative_price_rejected() -> None:
    with pytest.raises(ValidationError):
        ProviderPrice(stt_per_minute=-1)
