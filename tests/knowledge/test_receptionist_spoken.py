"""The receptionist's reading of names, spelled letters and self-corrections (``spoken.py``)."""

from __future__ import annotations

import pytest
from examples.receptionist.spoken import (
    after_correction,
    code_letters,
    join_spelled,
    name_in,
    said_as_name,
)


@pytest.mark.parametrize(
    ("text", "tail"),
    [
        ("Thursday at ten, no wait, make that Friday.", " Friday."),
        ("Tuesday at two, sorry, I mean three.", " three."),
        ("Monday, or rather Tuesday", " Tuesday"),
        ("I can't make it Thursday", "I can't make it Thursday"),  # not a correction
        ("Book Friday at ten", "Book Friday at ten"),
    ],
)
def test_after_correction(text: str, tail: str) -> None:
    assert after_correction(text) == tail


def test_spelled_names_become_words() -> None:
    assert join_spelled("my name is Jon, that's J O N, Peterson") == "my name is Jon  Peterson"
    assert join_spelled("Okafor, that's O K A F O R.") == "Okafor ."
    assert join_spelled("for R A V I Shah") == "for Ravi Shah"
    assert join_spelled("code K 7 Q 2") == "code K 7 Q 2"  # a code stays a code


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hi, my name's Ana Lee", "Ana Lee"),
        ("The name's Daniel Okafor, that's O K A F O R.", "Daniel Okafor"),
        ("It's booked under Tom Becker.", "Tom Becker"),
        ("For my son, Liam O'Connor, please", "Liam O'Connor"),
        ("Could you book Friday at four for John Smith?", "John Smith"),
        ("Hello, this is Tom Baker I need a filling", "Tom Baker"),
        ("I'd like to book for Friday", ""),  # a day, not a name
        ("This is about my crown", ""),
        ("I'm calling about my crown", ""),
        ("Can I come in for Dr. Chen?", ""),
    ],
)
def test_name_in(text: str, name: str) -> None:
    assert name_in(text) == name


def test_said_as_name() -> None:
    said = "I want to see the dentist on Friday, my name is Grace Liu"
    assert said_as_name("Grace Liu", said)
    assert not said_as_name("Dentist", said)  # said in lower case: a word, not a name
    assert not said_as_name("John Doe", said)


def test_code_letters() -> None:
    assert code_letters("code M as in Mary, 4, T as in Tom, 9") == "code M, 4, T, 9"
