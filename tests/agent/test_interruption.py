"""Barge-in policy: real interruptions stop the agent; coughs and backchannels do not."""

from __future__ import annotations

from voxgate.agent.interruption import Interrupt, InterruptionConfig, InterruptionPolicy


def feed(policy: InterruptionPolicy, start: float, ms: int, speech: bool) -> tuple[float, list[Interrupt]]:
    now, out = start, []
    for _ in range(ms // 20):
        now += 0.02
        decision = policy.update(now, speech)
        if decision is not None:
            out.append(decision)
    return now, out


def speaking_policy(**kw: object) -> InterruptionPolicy:
    p = InterruptionPolicy(InterruptionConfig(**kw))  # type: ignore[arg-type]
    p.agent_started()
    return p


def test_no_interrupt_when_agent_silent() -> None:
    p = InterruptionPolicy()
    _, out = feed(p, 0.0, 2000, True)
    assert out == []


def test_cough_does_not_interrupt() -> None:
    p = speaking_policy()
    now, out = feed(p, 0.0, 200, True)  # 200 ms burst
    now, out2 = feed(p, now, 1000, False)
    assert out == out2 == []


def test_backchannel_does_not_interrupt() -> None:
    p = speaking_policy()
    now, out = feed(p, 0.0, 450, True)
    assert p.on_text("Mm-hm.", now) is None
    assert p.on_text("okay, yeah", now) is None
    assert out == []


def test_words_interrupt_after_min_speech() -> None:
    p = speaking_policy()
    now, out = feed(p, 0.0, 200, True)
    assert p.on_text("wait", now) is None  # words but still under 300 ms of speech
    now, out = feed(p, now, 100, True)
    assert len(out) == 1
    assert out[0].reason == "words" and out[0].speech_ms == 300
    assert out[0].onset == 0.0


def test_sustained_speech_interrupts_without_words() -> None:
    p = speaking_policy()
    _, out = feed(p, 0.0, 1400, True)
    assert len(out) == 1 and out[0].reason == "duration" and out[0].speech_ms == 1000


def test_duration_only_mode() -> None:
    p = speaking_policy(min_words=0, min_speech_ms=100)
    _, out = feed(p, 0.0, 200, True)
    assert len(out) == 1 and out[0].speech_ms == 100


def test_gap_resets_utterance() -> None:
    p = speaking_policy(long_speech_ms=600)
    now, _ = feed(p, 0.0, 400, True)
    now, _ = feed(p, now, 700, False)  # longer than gap_ms: a new utterance next
    _, out = feed(p, now, 400, True)
    assert out == []


def test_fires_once_and_disabled_policy_never_fires() -> None:
    p = speaking_policy(min_words=0)
    _, out = feed(p, 0.0, 3000, True)
    assert len(out) == 1
    off = speaking_policy(enabled=False, min_words=0)
    _, out = feed(off, 0.0, 3000, True)
    assert out == []


def test_agent_stopped_clears_state() -> None:
    p = speaking_policy()
    now, _ = feed(p, 0.0, 250, True)
    p.agent_stopped()
    p.agent_started()
    assert p.on_text("stop please", now) is None  # no speech counted in this new reply yet
