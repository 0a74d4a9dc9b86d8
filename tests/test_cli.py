"""The CLI parses flags, reports config errors with exit code 2, and doctor runs its checks."""

from __future__ import annotations

import pytest

from voxgate.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("voxgate ")


def test_bad_flag_value_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--no-models", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "server.port" in err and "greater than or equal to 1" in err


def test_doctor_lists_codecs_and_ports(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--no-models", "--port", "18089", "--sip-port", "15069"])
    out = capsys.readouterr().out
    assert "codec PCMU" in out and "port http 127.0.0.1:18089" in out
    assert code in (0, 1)
