"""Text pieces for sentence-level TTS streaming.

Synthesizing sentence by sentence lets the first audio leave after one sentence instead of
the whole reply, and gives barge-in a point to stop between pieces. Splitting happens only at
punctuation followed by whitespace, so "3.5" and "p.m." inside a sentence stay whole, and a
very long sentence is cut again at commas so its first audio is not late.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_CLAUSE_END = re.compile(r"(?<=,)\s+")
LONG_WORDS = 25


def split_sentences(text: str, long_words: int = LONG_WORDS) -> list[str]:
    """Non-empty pieces of ``text`` in order; whitespace-only text gives none."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        if not sentence.strip():
            continue
        if len(sentence.split()) <= long_words:
            pieces.append(sentence.strip())
            continue
        current: list[str] = []
        for clause in _CLAUSE_END.split(sentence):
            current.append(clause)
            if sum(len(c.split()) for c in current) >= long_words // 2:
                pieces.append(" ".join(current).strip())
                current = []
        if current:
            pieces.append(" ".join(current).strip())
    return [p for p in pieces if p]
