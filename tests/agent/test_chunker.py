"""Clause chunker: early first chunk, sentence and clause cuts, no cuts inside numbers."""

from __future__ import annotations

import re

from voxgate.agent.chunker import ChunkerConfig, ClauseChunker


def stream(text: str, chunker: ClauseChunker | None = None) -> list[str]:
    c = chunker or ClauseChunker()
    out: list[str] = []
    for delta in re.findall(r"\S+\s*", text):  # word by word, like an LLM
        out.extend(c.push(delta))
    return out + c.flush()


def test_sentences_are_cut_when_the_next_word_starts() -> None:
    c = ClauseChunker()
    assert c.push("We open at nine.") == []  # could still be "nine.5"? no: wait for a space
    assert c.push(" On") == ["We open at nine."]
    assert c.flush() == ["On"]


def test_first_chunk_cut_early_at_a_comma() -> None:
    chunks = stream("Sure thing, I can book that for you on Tuesday, at three in the afternoon.")
    assert chunks[0] == "Sure thing,"
    # later commas need min_chars (40) before they cut
    assert chunks[1:] == ["I can book that for you on Tuesday, at three in the afternoon."]


def test_short_first_clause_is_not_cut() -> None:
    assert stream("Hi, how are you?") == ["Hi, how are you?"]


def test_numbers_and_abbreviations_do_not_cut() -> None:
    chunks = stream("Dr. Smith sees patients at 3.5 hours past noon. Bye.")
    assert chunks == ["Dr. Smith sees patients at 3.5 hours past noon.", "Bye."]


def test_long_text_without_punctuation_is_cut_at_a_space() -> None:
    text = " ".join(["word"] * 100)
    chunks = stream(text, ClauseChunker(ChunkerConfig(max_chars=50)))
    assert all(len(c) <= 50 for c in chunks)
    assert " ".join(chunks) == text


def test_concatenation_preserves_text() -> None:
    text = "Yes! We are open Monday to Friday, nine to five; on Saturdays, ten to two. Anything else?"
    assert " ".join(stream(text)) == text


def test_reset_restores_early_first_chunk() -> None:
    c = ClauseChunker()
    stream("Okay, that is fine, thanks.", c)
    c.reset()
    assert c.push("Sure thing, ") == ["Sure thing,"]
