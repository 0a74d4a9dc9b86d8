"""Config: TOML < environment < flags, and precise errors for bad values."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.config import load_settings
from voxgate.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "voxgate.toml"
    path.write_text(text)
    return path


def test_defaults_bind_loopback() -> None:
    s = load_settings()
    assert s.server.host == "127.0.0.1"
    assert s.sip.host == "127.0.0.1"


def test_toml_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[server]\nport = 9000\n[sip]\nport = 5070\n")
    assert load_settings(path).server.port == 9000
    monkeypatch.setenv("VOXGATE_SERVER__PORT", "9100")
    s = load_settings(path)
    assert s.server.port == 9100
    assert s.sip.port == 5070
    assert load_settings(path, server={"port": 9200}).server.port == 9200


def test_bad_value_names_key_value_and_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "[sip]\nport = 70000\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    msg = str(info.value)
    assert "sip.port" in msg and "70000" in msg and "less than or equal to 65535" in msg


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sip\.prot.*unknown key"):
        load_settings(write(tmp_path, "[sip]\nprot = 5070\n"))


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nhost = "nope"\n[media]\nrtp_port_min = 30000\nrtp_port_max = 20000\n')
    msg = str(pytest.raises(ConfigError, load_settings, path).value)
    assert "server.host" in msg and "'nope'" in msg
    assert "media.rtp_port_max" in msg and "rtp_port_min" in msg


def test_bad_network_in_allow_list(tmp_path: Path) -> None:
    path = write(tmp_path, '[sip]\nallowed_sources = ["10.0.0.0/33"]\n')
    with pytest.raises(ConfigError, match="not an IP network"):
        load_settings(path)


def test_toml_syntax_error_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(write(tmp_path, "[server\nport = 1"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_api_token_generated_when_none() -> None:
    s = load_settings()
    token = s.ensure_api_token()
    assert token and len(token) >= 24
    assert s.ensure_api_token() is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_garbage_toml_only_raises_config_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "x.toml"
    path.write_bytes(text.encode("utf-8", "replace"))
    with contextlib.suppress(ConfigError):
        load_settings(path)


def test_readme_example_config_is_valid(tmp_path: Path) -> None:
    """The configuration a user copies from the README must load as written."""
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert block is not None
    s = load_settings(write(tmp_path, block.group(1)))
    assert s.providers.llm == ["embedded", "openai"] and s.routes[0].callee == "support*"
