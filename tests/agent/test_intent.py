"""Early intent: speculate on a stable partial; keep it only if the final agrees."""

from __future__ import annotations

from voxgate.agent.intent import EarlyIntent, IntentConfig
from voxgate.agent.text import is_backchannel, normalize, substantive_words


def test_normalize_ignores_case_punctuation_and_fillers() -> None:
    assert normalize("Um, What time do you OPEN?") == "what time do you open"
    assert normalize("what time do you close") != normalize("What time do you open?")


def test_backchannel_detection() -> None:
    assert is_backchannel("Mm-hm.")
    assert is_backchannel("Okay, yeah.")
    assert is_backchannel("uh huh")
    assert not is_backchannel("")
    assert not is_backchannel("Okay, but what about Tuesday?")
    assert substantive_words("yeah, wait a second") == ["wait", "a", "second"]


def test_speculates_only_when_stable_and_silent() -> None:
    e = EarlyIntent(IntentConfig(stable_ms=250))
    e.on_partial("what time do", 0.0)
    e.on_partial("what time do you open", 0.3)
    assert e.should_start(0.5, silent_since=0.3) is None  # stable 200 ms only
    assert e.should_start(0.6, silent_since=None) is None  # caller still talking
    assert e.should_start(0.6, silent_since=0.5) is None  # unchanged, but only 100 ms silent
    assert e.should_start(0.6, silent_since=0.3) == "what time do you open"
    assert e.should_start(0.7, silent_since=0.3) is None  # only once


def test_final_text_is_stable_at_once() -> None:
    e = EarlyIntent()
    e.on_final("What time do you open?", 1.0)
    assert e.should_start(1.0, silent_since=0.99) == "what time do you open"


def test_commit_when_final_means_the_same() -> None:
    e = EarlyIntent()
    e.on_partial("what time do you open", 0.0)
    assert e.should_start(1.0, 0.0)
    assert e.resolve("What time do you open?", e.close_turn()) is True
    assert (e.committed, e.discarded) == (1, 0)


def test_discard_when_final_differs() -> None:
    e = EarlyIntent()
    e.on_partial("what time do you open", 0.0)
    assert e.should_start(1.0, 0.0)
    assert e.resolve("What time do you close?", e.close_turn()) is False
    assert (e.committed, e.discarded) == (0, 1)


def test_one_word_partials_are_not_speculated_on() -> None:
    e = EarlyIntent()
    e.on_partial("yes", 0.0)
    assert e.should_start(5.0, 0.0) is None


def test_invalidate_and_disabled() -> None:
    e = EarlyIntent()
    e.on_partial("book an appointment", 0.0)
    assert e.should_start(1.0, 0.0)
    e.invalidate()
    assert e.speculating_on is None and e.discarded == 1
    assert e.close_turn() is None
    assert e.resolve("book an appointment", None) is False
    off = EarlyIntent(IntentConfig(enabled=False))
    off.on_partial("book an appointment", 0.0)
    assert off.should_start(9.0, 0.0) is None
