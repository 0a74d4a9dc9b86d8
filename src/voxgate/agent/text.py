"""Small text helpers shared by the turn, interruption and early-intent policies.

They live in one place so that "what counts as a word", "what is a backchannel" and "do
these two transcripts say the same thing" mean the same in every policy: if the barge-in
policy and the early-intent check disagreed on normalisation, a speculative reply could be
kept for a transcript the rest of the pipeline treats as different.
"""

from __future__ import annotations

import re

BACKCHANNELS: frozenset[str] = frozenset(
    {
        "mm-hm", "mm-hmm", "mhm", "mm", "mmm", "hm", "hmm", "uh-huh", "uh", "um", "ah", "oh",
        "okay", "ok", "yeah", "yep", "yes", "right", "sure", "alright", "i see", "got it",
        "uh huh", "mm hm", "mm hmm", "all right",
    }
)
"""Utterances a listener makes to show attention, not to take the floor."""

_WORD_RE = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_FILLERS = frozenset({"um", "uh", "er", "erm", "ah", "hmm", "mm"})


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; hyphenated tokens like "mm-hm" stay one word."""
    return _WORD_RE.findall(text.lower())


def normalize(text: str) -> str:
    """Meaning-preserving canonical form for comparing transcripts.

    Drops case, punctuation and hesitation fillers, so "Um, what time do you open?" and
    "what time do you open" compare equal, while any changed content word does not.
    """
    return " ".join(w for w in words(text) if w not in _FILLERS)


def substantive_words(text: str, backchannels: frozenset[str] = BACKCHANNELS) -> list[str]:
    """Words that are not part of a backchannel phrase (two-word phrases are matched first)."""
    ws = words(text)
    out: list[str] = []
    i = 0
    while i < len(ws):
        pair = " ".join(ws[i : i + 2])
        if i + 1 < len(ws) and pair in backchannels:
            i += 2
            continue
        if ws[i] not in backchannels:
            out.append(ws[i])
        i += 1
    return out


def is_backchannel(text: str, backchannels: frozenset[str] = BACKCHANNELS) -> bool:
    """True for non-empty text made only of backchannel phrases ("mm-hm", "okay, yeah")."""
    return bool(words(text)) and not substantive_words(text, backchannels)
