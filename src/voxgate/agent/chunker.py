"""Cut a streaming LLM reply into clauses for the TTS.

Text-to-speech sounds right only on whole phrases (prosody needs the clause), but waiting for
the whole reply wastes the LLM's streaming. So we cut at sentence ends, and at commas,
semicolons and dashes once a chunk is long enough to be worth a TTS call. The first chunk is
cut earlier than the rest, because time to first audio is what the caller feels; later
chunks can be longer since they are synthesized while earlier ones play. A first sentence
with no early comma ("The order number 456 is currently in the processing stage.") is cut
after ``first_max_words`` words, at the first word that does not leave the phrase dangling
(not "the", "is", "to"... nor a number): its audio starts ~0.1-0.3 s earlier (fewer tokens to
wait for, less to synthesize), and the rest is synthesized while it plays.

Pure: ``push(delta)`` returns the chunks completed by that delta, ``flush()`` the rest.
A full stop is only a sentence end when followed by whitespace (or the end of the reply) and
not part of a number ("3.5") or a common abbreviation ("Dr.", "e.g.").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxgate.agent.turns import CONTINUATION_WORDS

__all__ = ["ChunkerConfig", "ClauseChunker"]

_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "approx", "p.m", "a.m"}
)
_SENTENCE_END = ".!?"
_CLAUSE_END = ",;:\u2014\u2013"


@dataclass(frozen=True, slots=True)
class ChunkerConfig:
    first_min_chars: int = 5
    """A clause boundary ends the first chunk once it has this many characters."""
    min_chars: int = 40
    """Later chunks end at a clause boundary only once this long (sentence ends always cut)."""
    max_chars: int = 220
    """A chunk with no boundary is cut at the last space beyond this length."""
    first_max_words: int = 0
    """With no boundary yet, the first chunk is cut after this many words (0: never), at the
    first word that ends a phrase acceptably (see the module docstring). Off here (pure
    punctuation rules); the agent turns it on (``AgentSettings.chunker_first_max_words``)."""


class ClauseChunker:
    """One reply's chunker; create a new one (or call :meth:`reset`) per reply."""

    def __init__(self, config: ChunkerConfig | None = None) -> None:
        self.config = config or ChunkerConfig()
        self._buf = ""
        self._emitted = 0

    def reset(self) -> None:
        self._buf = ""
        self._emitted = 0

    def push(self, delta: str) -> list[str]:
        self._buf += delta
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            chunk, self._buf = self._buf[:cut].strip(), self._buf[cut:].lstrip()
            if chunk:
                out.append(chunk)
                self._emitted += 1
        return out

    def flush(self) -> list[str]:
        chunk, self._buf = self._buf.strip(), ""
        if not chunk:
            return []
        self._emitted += 1
        return [chunk]

    def _find_cut(self) -> int | None:
        """Index just past the first acceptable boundary in the buffer, if any."""
        buf = self._buf
        cfg = self.config
        min_clause = cfg.first_min_chars if self._emitted == 0 else cfg.min_chars
        # A boundary counts only once the next character is whitespace: we have seen past it.
        for m in re.finditer(r"[.!?,;:\u2014\u2013]+(?=\s)", buf):
            end = m.end()
            mark = m.group()[-1]
            if mark in _SENTENCE_END:
                if mark == "." and self._is_abbreviation_or_number(buf, m.start()):
                    continue
                if end >= 2:  # a lone "." is no sentence
                    return end
            elif mark in _CLAUSE_END and end >= min_clause:
                return end
        if self._emitted == 0 and cfg.first_max_words > 0:
            cut = self._first_words_cut(buf, cfg.first_max_words)
            if cut is not None:
                return cut
        if len(buf) > cfg.max_chars:
            space = buf.rfind(" ", 0, cfg.max_chars)
            return space if space > 0 else cfg.max_chars
        return None

    @staticmethod
    def _first_words_cut(buf: str, max_words: int) -> int | None:
        """End of the first complete word from the ``max_words``-th on that may end a phrase."""
        for n, m in enumerate(re.finditer(r"\S+(?=\s)", buf), start=1):
            if n < max_words:
                continue
            word = m.group().lower().strip("\"'()")
            if word in CONTINUATION_WORDS or any(ch.isdigit() for ch in word):
                continue
            return m.end()
        return None

    @staticmethod
    def _is_abbreviation_or_number(buf: str, dot: int) -> bool:
        before = re.search(r"([A-Za-z.]+)$", buf[:dot])
        return bool(before and before.group(1).lower() in _ABBREVIATIONS)
