"""Turn detector: silence thresholds depend on how complete the words look."""

from __future__ import annotations

import pytest

from voxgate.agent.turns import (
    Completeness,
    EndOfTurn,
    Pause,
    SpeechStarted,
    SpeechStopped,
    TurnAbandoned,
    TurnConfig,
    TurnDetector,
    TurnEvent,
    completeness,
)

FRAME = 0.02


class Driver:
    """Feeds 20 ms frames with a virtual time; collects events."""

    def __init__(self, detector: TurnDetector) -> None:
        self.d = detector
        self.now = 0.0
        self.events: list[TurnEvent] = []

    def run(self, ms: int, speech: bool) -> list[TurnEvent]:
        out: list[TurnEvent] = []
        for _ in range(ms // 20):
            self.now += FRAME
            out.extend(self.d.update(self.now, speech))
        self.events.extend(out)
        return out

    def text(self, text: str) -> list[TurnEvent]:
        out = self.d.set_text(text, self.now)
        self.events.extend(out)
        return out


def ends(events: list[TurnEvent]) -> list[EndOfTurn]:
    return [e for e in events if isinstance(e, EndOfTurn)]


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("What time do you open on Saturday?", Completeness.COMPLETE),
        ("Yes, that works for me.", Completeness.COMPLETE),
        ("I would like to book an appointment for", Completeness.INCOMPLETE),
        ("I need to change my address and", Completeness.INCOMPLETE),
        ("Actually, cancel that,", Completeness.INCOMPLETE),
        ("I want to.", Completeness.INCOMPLETE),  # Whisper's full stop does not finish "to"
        ("book the...", Completeness.INCOMPLETE),
        ("what time do you open", Completeness.UNKNOWN),
        ("", Completeness.UNKNOWN),
    ],
)
def test_completeness(text: str, level: Completeness) -> None:
    assert completeness(text) is level


def test_complete_sentence_ends_after_min_silence() -> None:
    drv = Driver(TurnDetector())
    started = drv.run(1000, True)
    assert [type(e) for e in started] == [SpeechStarted]
    drv.text("What time do you open on Saturday?")
    assert ends(drv.run(480, False)) == []
    end = ends(drv.run(20, False))
    assert len(end) == 1
    assert end[0].completeness is Completeness.COMPLETE
    assert end[0].speech_end == pytest.approx(1.0)
    assert end[0].at == pytest.approx(1.5)
    assert end[0].speech_start == pytest.approx(0.0)


def test_incomplete_sentence_waits_for_max_silence() -> None:
    drv = Driver(TurnDetector())
    drv.run(800, True)
    drv.text("I would like to book an appointment for")
    assert ends(drv.run(1180, False)) == []
    assert len(ends(drv.run(20, False))) == 1


def test_600ms_mid_sentence_pause_does_not_end_turn_with_defaults() -> None:
    """With no words yet or unfinished words, a 600 ms thinking pause is not an endpoint."""
    for partial in ("", "I would like to book an appointment for", "I'd like to book a"):
        drv = Driver(TurnDetector())
        drv.run(900, True)
        drv.text(partial)
        drv.run(600, False)
        resumed = drv.run(700, True)
        assert ends(drv.events) == [], partial
        assert SpeechStarted(pytest.approx(1.5), True) in resumed  # type: ignore[arg-type]
        drv.text(partial + " next Tuesday at three.")
        assert len(ends(drv.run(500, False))) == 1


def test_final_text_arriving_during_silence_ends_turn_immediately() -> None:
    drv = Driver(TurnDetector())
    drv.run(600, True)
    drv.run(600, False)  # past min (500) but no words yet: unknown needs 800
    assert ends(drv.events) == []
    end = ends(drv.text("Yes, that works for me."))
    assert len(end) == 1 and end[0].at == pytest.approx(drv.now)


def test_pause_and_stop_events_in_order() -> None:
    drv = Driver(TurnDetector())
    drv.run(400, True)
    events = drv.run(200, False)
    assert [type(e) for e in events] == [SpeechStopped, Pause]
    assert isinstance(events[1], Pause) and events[1].speech_end == pytest.approx(0.4)


def test_short_noise_is_abandoned_not_a_turn() -> None:
    drv = Driver(TurnDetector())
    drv.run(80, True)
    drv.run(1000, False)
    assert ends(drv.events) == []
    assert any(isinstance(e, TurnAbandoned) for e in drv.events)
    assert not drv.d.in_turn


def test_single_speech_frame_in_pause_does_not_restart_silence() -> None:
    drv = Driver(TurnDetector())
    drv.run(600, True)
    drv.text("Please transfer me to a human agent.")
    drv.run(300, False)
    drv.run(20, True)  # one noisy frame: below speech_start_ms
    assert len(ends(drv.run(200, False))) == 1


def test_custom_thresholds_validated() -> None:
    with pytest.raises(ValueError):
        TurnConfig(min_silence_ms=900, unknown_silence_ms=800)
    cfg = TurnConfig(min_silence_ms=300, unknown_silence_ms=300, max_silence_ms=300)
    drv = Driver(TurnDetector(cfg))
    drv.run(400, True)
    assert len(ends(drv.run(300, False))) == 1
