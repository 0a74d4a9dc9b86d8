"""``voxgate kb add PATH`` and ``voxgate kb search "question"``: manage a local knowledge base.

The index file defaults to ``$VOXGATE_KB_DB`` or ``var/knowledge.db`` (beside the records
database's default ``var/voxgate.db``); ``--kb NAME`` picks one of several knowledge bases in
it (one per route or app). ``--hash`` uses the bag-of-words test embedder instead of the
MiniLM model (no model install needed; only for checking the plumbing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_kb_parser", "default_db"]


def default_db() -> Path:
    return Path(os.environ.get("VOXGATE_KB_DB", "var/knowledge.db"))


def _open(args: argparse.Namespace) -> Any:
    from voxgate.knowledge.embeddings import HashEmbedder, MiniLMEmbedder
    from voxgate.knowledge.rag import KnowledgeBase

    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    embedder = HashEmbedder() if args.hash else MiniLMEmbedder()
    return KnowledgeBase(db, embedder, name=args.kb)


def cmd_kb_add(args: argparse.Namespace) -> int:
    try:
        kb = _open(args)
    except (ImportError, ValueError) as exc:
        print(f"voxgate kb: {exc}", file=sys.stderr)
        return 2
    total = 0
    t0 = time.perf_counter()
    for p in args.paths:
        if not p.exists():
            print(f"voxgate kb: no such file or directory: {p}", file=sys.stderr)
            return 2
        try:
            n = kb.add_path(p, max_chars=args.max_chars)
        except (ValueError, ImportError) as exc:
            print(f"voxgate kb: {p}: {exc}", file=sys.stderr)
            return 2
        print(f"{p}: {n} chunks" + ("" if n else " (unchanged or empty)"))
        total += n
    print(f"kb {args.kb!r} in {args.db}: {len(kb)} chunks from {len(kb.sources())} documents "
          f"({total} added in {time.perf_counter() - t0:.1f} s)")
    kb.close()
    return 0


def cmd_kb_search(args: argparse.Namespace) -> int:
    try:
        kb = _open(args)
    except (ImportError, ValueError) as exc:
        print(f"voxgate kb: {exc}", file=sys.stderr)
        return 2
    hits = kb.search(args.question, args.k)
    if not hits:
        print(f"kb {args.kb!r} in {args.db} is empty: add documents with `voxgate kb add PATH`")
        return 1
    for i, h in enumerate(hits, 1):
        where = f"{h.source}" + (f" # {h.heading}" if h.heading else "")
        print(f"[{i}] {h.score:.3f}  {where}")
        print("    " + h.text.replace("\n", "\n    "))
    ms = kb.last_search_ms
    print(f"(embed {ms.get('embed', 0):.1f} ms, search {ms.get('search', 0):.2f} ms over {len(kb)} chunks)")
    kb.close()
    return 0


def add_kb_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kb`` on the CLI's subparsers (``argparse._SubParsersAction``)."""
    p: argparse.ArgumentParser = subparsers.add_parser("kb", help="local knowledge base (RAG): add documents, search")
    sub = p.add_subparsers(dest="kb_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--kb", default="default", help="knowledge base name (default: default)")
        q.add_argument("--db", default=str(default_db()), help="SQLite index file (default: %(default)s)")
        q.add_argument("--hash", action="store_true", help="bag-of-words test embedder (no model)")

    a = sub.add_parser("add", help="ingest txt/markdown/html/pdf files or directories")
    a.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    a.add_argument("--max-chars", type=int, default=700, help="chunk size (default: 700)")
    common(a)
    a.set_defaults(func=cmd_kb_add)

    s = sub.add_parser("search", help="the passages closest to a question")
    s.add_argument("question")
    s.add_argument("-k", type=int, default=3, help="passages to show (default: 3)")
    common(s)
    s.set_defaults(func=cmd_kb_search)
    return p
