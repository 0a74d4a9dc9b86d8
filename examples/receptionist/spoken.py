"""Names, spelled letters and self-corrections as callers say them (and Whisper writes them).

Kept apart from ``normalize`` (days, times, numbers): these rules decide *which words* of a
turn are a name or the caller's final choice, not what a value means.

- Whisper writes a person's name capitalised and letters spelled aloud as capitals
  ("Okafor, that's O K A F O R"); a name is looked for after the phrases people introduce
  one with ("my name is", "under the name", "for my daughter, ..."), never guessed.
- Callers correct themselves mid-sentence ("Thursday at ten, no wait, make that Friday");
  what they said after the last correction is what they want.
"""

from __future__ import annotations

import re

__all__ = ["after_correction", "code_letters", "join_spelled", "name_in", "said_as_name"]

_CORRECTION = re.compile(
    r"\b(?:no,? wait|wait,? no|no,? sorry|sorry,? (?:i mean|i meant|make (?:that|it))|i mean|i meant"
    r"|(?<!can't )(?<!cannot )(?<!not )make (?:that|it)|or rather|scratch that|let me correct that)\b",
    re.I,
)


def after_correction(text: str) -> str:
    """What the caller said after their last self-correction ("Thursday at ten, no wait,
    make that Friday" -> " Friday"), or ``text`` unchanged when they made none."""
    ends = [m.end() for m in _CORRECTION.finditer(text)]
    return text[ends[-1] :] if ends else text


_SPELLED = re.compile(r"\b[A-Z](?:[ ,.-]+[A-Z])+\b")
_SPELLED_AFTER = re.compile(
    r"\b([A-Z][\w'-]*),?\s+(?:that's|that is|spelled|spelt|it's)\s+([A-Z](?:[ ,.-]+[A-Z])+)\b,?"
)


def join_spelled(text: str) -> str:
    """Names spelled letter by letter as words: "Jon, that's J O N, Peterson" -> "Jon
    Peterson", "J O N Peterson" -> "Jon Peterson" (the spelling wins over the word it
    spells). Runs mixing letters and digits (codes) are left alone."""

    def word(letters: str) -> str:
        joined = re.sub(r"[^A-Z]", "", letters)
        return joined[:1] + joined[1:].lower()

    text = _SPELLED_AFTER.sub(lambda m: word(m[2]) + " ", text)
    return _SPELLED.sub(lambda m: word(m[0]), text)


_STOP = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "i", "i'm", "i'd", "i'll", "dr", "doctor", "mr", "mrs", "ms",
    "the", "a", "an", "and", "but", "so", "thanks", "thank", "please", "okay", "ok", "yes",
    "no", "yeah", "hi", "hello", "hey", "um", "uh", "sorry", "can", "could", "would", "is",
    "it", "it's", "that", "that's", "what", "when", "how", "do", "does", "will", "my",
    "bright", "smile", "dental", "am", "pm", "noon", "today", "tomorrow", "next", "this",
}
_KIN = r"(?:son|daughter|wife|husband|kid|child|mother|mom|mum|father|dad|partner|boy|girl|brother|sister)"
_INTRO = re.compile(
    r"(?i:\b(?:my name is|my name's|the name is|the name's|name is|name's|this is|i'm|i am"
    r"|under the name(?: of)?|booked under|it's under|under|in the name of"
    rf"|(?:for|to cancel for|is for) my {_KIN},?(?: named| called)?|my {_KIN}(?:'s name is|'s name's|,)"
    r"|for|patient is|patient's name is))"
    r"\s+((?:[A-Z][\w'-]*(?:\s+|$|(?=[,.?!]))){1,3})"
)


def name_in(text: str) -> str:
    """The name a caller introduces ("my name is Sarah Jones", "this is Tom", "the name's
    Daniel Okafor", "it's under Tom Becker", "for my daughter, Emily Nguyen", "for John
    Smith") or "". Only capitalised words count, without weekdays, months, titles and
    fillers ("for Friday", "this is about my crown" are not names)."""
    for m in _INTRO.finditer(join_spelled(text)):
        words = m[1].split()
        if words[0].lower().strip(".") in _STOP:  # "for Friday", "this is Dr. Chen": not a name
            continue
        while words[-1].lower().strip(".") in _STOP:
            words.pop()
        if words:
            return " ".join(words)
    return ""


def said_as_name(value: str, said: str) -> bool:
    """Every word of ``value`` was said capitalised (as Whisper writes names): "Dentist" or
    "checkup" copied from "see the dentist for a checkup" is not a name."""
    heard = {w for w in re.findall(r"[A-Za-z][\w'-]*", join_spelled(said)) if w[:1].isupper()}
    words = re.findall(r"[A-Za-z][\w'-]*", join_spelled(value))
    return bool(words) and all(w[:1].upper() + w[1:] in heard or w in heard for w in words)


_AS_IN = re.compile(r"\b([A-Za-z])\s+(?:as in|for|like)\s+[A-Z][a-z]+\b")


def code_letters(text: str) -> str:
    """Letters spelled the way people do on the phone, as the letter: "M as in Mary, 4" ->
    "M, 4"."""
    return _AS_IN.sub(lambda m: m[1].upper(), text)
