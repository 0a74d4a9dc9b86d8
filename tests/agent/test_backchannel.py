"""Backchannel policy: acknowledge long talk at short pauses, sparingly."""

from __future__ import annotations

from voxgate.agent.backchannel import BackchannelConfig, BackchannelPolicy


def run(policy: BackchannelPolicy, pattern: list[tuple[int, bool]]) -> list[tuple[float, str]]:
    now, out = 0.0, []
    for ms, speech in pattern:
        for _ in range(ms // 20):
            now += 0.02
            phrase = policy.update(now, speech)
            if phrase is not None:
                out.append((round(now, 3), phrase))
    return out


def test_off_by_default() -> None:
    assert run(BackchannelPolicy(), [(5000, True), (300, False)]) == []


def test_acknowledges_long_talk_at_short_pause() -> None:
    p = BackchannelPolicy(BackchannelConfig(enabled=True))
    out = run(p, [(4500, True), (300, False)])
    assert out == [(4.7, "Mm-hm.")]


def test_not_before_min_talk_or_on_short_pause() -> None:
    p = BackchannelPolicy(BackchannelConfig(enabled=True))
    assert run(p, [(2000, True), (300, False), (1000, True), (100, False)]) == []


def test_rate_limited_and_phrases_rotate() -> None:
    p = BackchannelPolicy(BackchannelConfig(enabled=True, min_interval_s=6.0))
    pattern = [(4500, True), (300, False)] + [(2000, True), (300, False)] * 4
    out = run(p, pattern)
    assert [phrase for _, phrase in out] == ["Mm-hm.", "I see."]
    assert out[1][0] - out[0][0] >= 6.0


def test_suppressed_while_agent_speaks_and_reset_by_long_silence() -> None:
    p = BackchannelPolicy(BackchannelConfig(enabled=True))
    p.suppressed = True
    assert run(p, [(5000, True), (300, False)]) == []
    p.suppressed = False
    # 1.2 s of silence ends the caller's talk: 3 s more is not "long" again.
    assert run(p, [(1200, False), (3000, True), (300, False)]) == []
