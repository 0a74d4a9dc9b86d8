"""A local knowledge base: chunks + embeddings in SQLite, brute-force cosine search in numpy.

Why no vector database: a business's documents are hundreds to a few thousand chunks. The
vectors are unit-length float32 (384-d: 1.5 kB each), so the whole index is one matrix in
memory and a search is one matrix-vector product: ~0.1 ms for 1,000 chunks, well under the
~15 ms it takes to embed the question (measured in ``tests/knowledge`` and RESULTS). SQLite
keeps it one file next to the records database, shared by every process of a node, with no
server. Vectors are stored as raw float32 blobs; the embedder's name and dimension are
stored with each knowledge base so a mismatched model fails loudly instead of returning
nonsense.

Several named knowledge bases (``kb``) live in one file; documents are keyed by source path
and content hash, so re-adding an unchanged file is a no-op and a changed one is replaced.
All methods are synchronous (sqlite3, numpy); the agent calls ``asearch``, which runs the
embedding and search off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.knowledge.embeddings import F32, Embedder
from voxgate.knowledge.ingest import SUPPORTED, Chunk, chunk_sections, load_sections

__all__ = ["KnowledgeBase", "Passage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_meta (kb TEXT PRIMARY KEY, embedder TEXT NOT NULL, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kb_documents (
    id INTEGER PRIMARY KEY, kb TEXT NOT NULL, source TEXT NOT NULL, sha256 TEXT NOT NULL,
    added_at REAL NOT NULL, UNIQUE (kb, source));
CREATE TABLE IF NOT EXISTS kb_chunks (
    id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
    kb TEXT NOT NULL, idx INTEGER NOT NULL, heading TEXT NOT NULL, text TEXT NOT NULL,
    vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS kb_chunks_kb ON kb_chunks (kb);
"""


@dataclass(frozen=True, slots=True)
class Passage:
    text: str
    score: float
    """Cosine similarity to the question (-1..1; ~0.3+ is related for MiniLM)."""
    source: str
    heading: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": round(self.score, 4), "source": self.source, "heading": self.heading}


class KnowledgeBase:
    """One named knowledge base in a SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, embedder: Embedder, *, name: str = "default") -> None:
        self.path = str(path)
        self.name = name
        self.embedder = embedder
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._matrix: F32 | None = None
        self._rows: list[tuple[str, str, str]] = []  # (text, source, heading) per matrix row
        self.last_search_ms: dict[str, float] = {}
        self._check_meta()

    def _check_meta(self) -> None:
        row = self._db.execute("SELECT embedder, dim FROM kb_meta WHERE kb = ?", (self.name,)).fetchone()
        if row is None:
            with self._db:
                self._db.execute(
                    "INSERT INTO kb_meta VALUES (?, ?, ?)", (self.name, self.embedder.name, self.embedder.dim)
                )
        elif tuple(row) != (self.embedder.name, self.embedder.dim):
            raise ValueError(
                f"knowledge base {self.name!r} in {self.path} was built with {row[0]} ({row[1]}-d), "
                f"not {self.embedder.name} ({self.embedder.dim}-d): rebuild it or use that embedder"
            )

    # --- ingestion ----------------------------------------------------------------------------

    def add_path(self, path: str | Path, *, max_chars: int = 700, overlap_chars: int = 200) -> int:
        """Add a file, or every supported file under a directory; returns chunks added."""
        p = Path(path)
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in SUPPORTED) if p.is_dir() else [p]
        return sum(self.add_file(f, max_chars=max_chars, overlap_chars=overlap_chars) for f in files)

    def add_file(self, path: Path, *, max_chars: int = 700, overlap_chars: int = 200) -> int:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        source = str(path.resolve())
        old = self._db.execute(
            "SELECT id, sha256 FROM kb_documents WHERE kb = ? AND source = ?", (self.name, source)
        ).fetchone()
        if old is not None and old[1] == digest:
            return 0
        chunks = chunk_sections(load_sections(path), max_chars=max_chars, overlap_chars=overlap_chars)
        return self.add_chunks(source, chunks, digest)

    def add_text(self, source: str, text: str, *, markdown: bool = True) -> int:
        """Add in-memory text (tests, app-provided facts) under a made-up source name."""
        from voxgate.knowledge.ingest import sections_from_markdown, sections_from_text

        sections = sections_from_markdown(text) if markdown else sections_from_text(text)
        return self.add_chunks(source, chunk_sections(sections), hashlib.sha256(text.encode()).hexdigest())

    def add_chunks(self, source: str, chunks: Sequence[Chunk], digest: str) -> int:
        vectors = self.embedder.embed([c.text for c in chunks]) if chunks else np.zeros((0, 0), np.float32)
        with self._lock, self._db:
            self._db.execute("DELETE FROM kb_documents WHERE kb = ? AND source = ?", (self.name, source))
            cur = self._db.execute(
                "INSERT INTO kb_documents (kb, source, sha256, added_at) VALUES (?, ?, ?, ?)",
                (self.name, source, digest, time.time()),
            )
            doc_id = cur.lastrowid
            self._db.executemany(
                "INSERT INTO kb_chunks (doc_id, kb, idx, heading, text, vector) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (doc_id, self.name, c.index, c.heading, c.text, np.asarray(v, "<f4").tobytes())
                    for c, v in zip(chunks, vectors, strict=True)
                ],
            )
            self._matrix = None
        return len(chunks)

    def remove(self, source: str) -> bool:
        with self._lock, self._db:
            n = self._db.execute(
                "DELETE FROM kb_documents WHERE kb = ? AND source = ?", (self.name, source)
            ).rowcount
            self._matrix = None
        return bool(n)

    # --- search -------------------------------------------------------------------------------

    def _load(self) -> tuple[F32, list[tuple[str, str, str]]]:
        with self._lock:
            if self._matrix is None:
                rows = self._db.execute(
                    "SELECT c.text, d.source, c.heading, c.vector FROM kb_chunks c "
                    "JOIN kb_documents d ON d.id = c.doc_id WHERE c.kb = ? ORDER BY c.id",
                    (self.name,),
                ).fetchall()
                dim = self.embedder.dim
                m = np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").reshape(len(rows), dim)
                self._matrix = m.astype(np.float32)
                self._rows = [(r[0], r[1], r[2]) for r in rows]
            return self._matrix, self._rows

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM kb_chunks WHERE kb = ?", (self.name,)).fetchone()[0])

    def sources(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT source FROM kb_documents WHERE kb = ? ORDER BY id", (self.name,))]

    def search(self, question: str, k: int = 3, *, min_score: float = 0.0) -> list[Passage]:
        """The ``k`` chunks most similar to ``question`` (cosine), best first."""
        t0 = time.perf_counter()
        q = self.embedder.embed([question])[0]
        t1 = time.perf_counter()
        matrix, rows = self._load()
        if not rows:
            return []
        scores = matrix @ q
        top = np.argsort(-scores)[:k]
        t2 = time.perf_counter()
        self.last_search_ms = {"embed": (t1 - t0) * 1e3, "search": (t2 - t1) * 1e3}
        return [
            Passage(rows[i][0], float(scores[i]), rows[i][1], rows[i][2])
            for i in top
            if scores[i] >= min_score
        ]

    async def asearch(self, question: str, k: int = 3, *, min_score: float = 0.0) -> list[Passage]:
        """``search`` on a worker thread (embedding takes milliseconds of CPU)."""
        return await asyncio.to_thread(self.search, question, k, min_score=min_score)

    def close(self) -> None:
        self._db.close()
