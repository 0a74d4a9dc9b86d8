"""Documents -> sections -> overlapping chunks, for txt, Markdown, HTML and PDF.

Why chunk by headings and paragraphs: a phone question ("do you take Delta Dental?") is
answered by one section of a business's document, and an embedding of a whole page blurs
it with everything else. So a chunk never crosses a heading, carries its heading path as a
prefix ("Insurance: ..."; the heading often holds the words the caller uses), and packs
whole paragraphs up to ``max_chars``. Consecutive chunks of a section share their boundary
paragraph (``overlap_chars``) so an answer split across two chunks is whole in at least one.

HTML goes through the standard library's ``html.parser`` (headings, paragraphs, list items,
table rows become blocks; script/style are dropped); PDF through ``pypdf`` (optional: the
``models`` extra), one section per page, paragraphs split on blank lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["Chunk", "Section", "chunk_sections", "load_sections", "SUPPORTED"]

SUPPORTED = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"}


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    """Heading path, e.g. "Clinic > Insurance" ("" before the first heading)."""
    paragraphs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    """What is embedded and given to the LLM: heading prefix + paragraphs."""
    heading: str
    index: int


def _clean(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text).strip()


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks; single newlines inside a block are joined (wrapped text),
    except list items, which stay separate lines."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        if all(re.match(r"^([-*+]|\d+[.)])\s", ln) for ln in lines[1:]) and len(lines) > 1:
            out.append("\n".join(lines))
        else:
            out.append(" ".join(lines))
    return [_clean(p) if "\n" not in p else p for p in out]


def sections_from_text(text: str) -> list[Section]:
    paras = _paragraphs(text)
    return [Section("", tuple(paras))] if paras else []


def sections_from_markdown(text: str) -> list[Section]:
    """Split on ATX headings (``#``..``######``), keeping the heading path."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buf: list[str] = []
    in_code = False

    def flush() -> None:
        paras = _paragraphs("\n".join(buf))
        if paras:
            sections.append(Section(" > ".join(h for _, h in path), tuple(paras)))
        buf.clear()

    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            flush()
            level = len(m.group(1))
            path = [(lv, h) for lv, h in path if lv < level] + [(level, m.group(2))]
        else:
            buf.append(re.sub(r"(\*\*|__|`)", "", line))
    flush()
    return sections


class _HtmlText(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "li", "tr", "br", "section", "article", "dd", "dt", "blockquote", "td", "th"})
    _SKIP = frozenset({"script", "style", "head", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._paras: list[str] = []
        self._text: list[str] = []
        self._heading: int | None = None
        self._skip = 0

    def _end_block(self) -> None:
        text = _clean(" ".join(self._text))
        self._text = []
        if not text:
            return
        if self._heading is not None:
            self._flush_section()
            level = self._heading
            self._path = [(lv, h) for lv, h in self._path if lv < level] + [(level, text)]
        else:
            self._paras.append(text)

    def _flush_section(self) -> None:
        if self._paras:
            heading = " > ".join(h for _, h in self._path)
            self.sections.append(Section(heading, tuple(self._paras)))
        self._paras = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._end_block()
            self._heading = int(tag[1])
        elif tag in self._BLOCKS:
            self._end_block()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self._end_block()
            self._heading = None
        elif tag in self._BLOCKS:
            self._end_block()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._text.append(data)

    def close(self) -> None:
        super().close()
        self._end_block()
        self._flush_section()


def sections_from_html(text: str) -> list[Section]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    return parser.sections


def sections_from_pdf(path: Path) -> list[Section]:
    try:
        from pypdf import PdfReader
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("PDF ingestion needs pypdf: pip install -e '.[models]'") from exc
    out = []
    for i, page in enumerate(PdfReader(str(path)).pages, start=1):
        paras = _paragraphs(page.extract_text() or "")
        if paras:
            out.append(Section(f"page {i}", tuple(paras)))
    return out


def load_sections(path: Path) -> list[Section]:
    """Sections of one file, by its extension (see ``SUPPORTED``)."""
    ext = path.suffix.lower()
    if ext == ".pdf":
        return sections_from_pdf(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if ext in (".md", ".markdown"):
        return sections_from_markdown(text)
    if ext in (".html", ".htm"):
        return sections_from_html(text)
    if ext in (".txt", ".text"):
        return sections_from_text(text)
    raise ValueError(f"unsupported document type {ext!r} ({path}); supported: {sorted(SUPPORTED)}")


def _split_long(p: str, max_chars: int) -> list[str]:
    """A paragraph longer than ``max_chars`` split at sentence ends (then hard)."""
    if len(p) <= max_chars:
        return [p]
    out: list[str] = []
    cur = ""
    for s in re.split(r"(?<=[.!?])\s+", p):
        while len(s) > max_chars:
            out.append(s[:max_chars])
            s = s[max_chars:]
        if cur and len(cur) + 1 + len(s) > max_chars:
            out.append(cur)
            cur = s
        else:
            cur = f"{cur} {s}".strip()
    if cur:
        out.append(cur)
    return out


def chunk_sections(
    sections: list[Section], *, max_chars: int = 700, overlap_chars: int = 200
) -> list[Chunk]:
    """Pack paragraphs into chunks per section (see the module docstring)."""
    chunks: list[Chunk] = []
    for sec in sections:
        prefix = f"{sec.heading.split(' > ')[-1]}: " if sec.heading else ""
        paras = [q for p in sec.paragraphs for q in _split_long(p, max_chars)]
        cur: list[str] = []
        for p in paras:
            if cur and sum(len(x) + 1 for x in cur) + len(p) > max_chars:
                chunks.append(Chunk(prefix + "\n".join(cur), sec.heading, len(chunks)))
                tail = cur[-1]
                keep = len(tail) <= overlap_chars and len(tail) + 1 + len(p) <= max_chars
                cur = [tail] if keep else []
            cur.append(p)
        if cur:
            chunks.append(Chunk(prefix + "\n".join(cur), sec.heading, len(chunks)))
    return chunks
