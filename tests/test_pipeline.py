"""The RAG pipeline on real files made here, with the real offline model and a real index."""

from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config.settings import Settings, load_config
from agent.errors import PermanentError
from agent.formats import SHORT_TYPES
from agent.pipeline import IngestPipeline, JobRequest
from agent.pipeline.chunk import Chunker
from agent.pipeline.detect import detect_type
from agent.pipeline.embed import bundled_tokenizer
from agent.pipeline.readers.extract import BLOCK_BYTES, Section
from agent.pipeline.readers.registry import extract
from agent.pipeline.result import PipelineResult
from tests.documents import PYTHON_DOCS, make_docx, make_pdf

DOCX = SHORT_TYPES["docx"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("pipeline-data")
    return load_config(None, environ={"INGEST_AGENT_AGENT__DATA_DIR": str(data)})


@pytest.fixture(scope="module")
def pipeline(settings: Settings) -> Iterator[IngestPipeline]:
    p = IngestPipeline(settings)
    yield p
    p.index.close()


def ingest(pipeline: IngestPipeline, path: Path, job_id: str | None = None) -> PipelineResult:
    return pipeline.run(JobRequest(job_id or f"job-{path.name}", str(path), "docs", path.name,
                                   []), lambda *_: None)


# -- detect ------------------------------------------------------------------------------------

def test_detection_uses_content_not_name(tmp_path: Path) -> None:
    """A PDF named .txt is a PDF; random bytes named .pdf are not accepted as one."""
    pdf = make_pdf(tmp_path / "looks-like.txt", ["hello"])
    assert detect_type(pdf) == "application/pdf"
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(b"\xfe\xed" + bytes(range(256)) * 16)  # no magic number matches this
    with pytest.raises(PermanentError, match="unsupported type application/octet-stream"):
        detect_type(fake, ["application/pdf", "text/plain"])


def test_suffix_breaks_ties_between_text_types(tmp_path: Path) -> None:
    """libmagic says text/plain; .md, .csv and .json decide the extractor."""
    for name, expected in (("a.md", "text/markdown"), ("b.csv", "text/csv"),
                           ("c.json", "application/json"), ("d.txt", "text/plain")):
        path = tmp_path / name
        path.write_text("a,b\n1,2\n" if name.endswith("csv") else '{"k": "v"}'
                        if name.endswith("json") else "# title\n\nsome text\n")
        assert detect_type(path) == expected


def test_docx_is_detected(tmp_path: Path) -> None:
    """A Word file made by python-docx is recognised as DOCX."""
    assert detect_type(make_docx(tmp_path / "w.docx", ["hi"])) == DOCX


def test_empty_file_is_a_permanent_error(tmp_path: Path) -> None:
    """Zero bytes: a clear permanent error at the detect stage."""
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(PermanentError, match="empty") as err:
        detect_type(empty)
    assert err.value.stage == "detect"


# -- extract -----------------------------------------------------------------------------------

def _text(path: Path, mime: str) -> str:
    return "".join(s.text for s in extract(path, mime))


def test_pdf_pages_keep_their_numbers(tmp_path: Path) -> None:
    """Each PDF page is a section with its page number."""
    pdf = make_pdf(tmp_path / "p.pdf", ["First page about owls.", "Second page about bats."])
    sections = list(extract(pdf, "application/pdf"))
    assert [s.page for s in sections] == [1, 2]
    assert "owls" in sections[0].text and "bats" in sections[1].text


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (lambda p: make_pdf(p, ["secret"], password="pw"), "encrypted"),
        (lambda p: p.write_bytes(make_pdf(p, ["x" * 2000]).read_bytes()[:300]) and p, "corrupt"),
        (lambda p: make_pdf(p, ["", ""]), "no text layer"),
    ],
    ids=["encrypted", "truncated", "no-text"],
)
def test_broken_pdfs_fail_clearly(tmp_path: Path, maker: object, message: str) -> None:
    """Encrypted, truncated and image-only PDFs raise a permanent error that says so."""
    path = tmp_path / "broken.pdf"
    maker(path)  # type: ignore[operator]
    with pytest.raises(PermanentError, match=message):
        _text(path, "application/pdf")


def test_html_keeps_visible_text_only(tmp_path: Path) -> None:
    """Scripts, styles and the head are dropped; body text stays, under its heading."""
    page = tmp_path / "p.html"
    page.write_text("<html><head><title>T</title><style>p{color:red}</style></head><body>"
                    "<script>var secret = 1;</script><h1>Harbour</h1><p>Boats moor here.</p>"
                    "</body></html>")
    sections = list(extract(page, "text/html"))
    text = "".join(s.text for s in sections)
    assert "Boats moor here." in text and sections[0].path == ("Harbour",)
    assert "secret" not in text and "color" not in text


def test_docx_paragraphs_and_tables(tmp_path: Path) -> None:
    """Paragraph text and table cells both come out of a DOCX."""
    doc = make_docx(tmp_path / "d.docx", ["Glaciers carve valleys."], [["metric", "value"],
                                                                     ["depth", "300 m"]])
    text = _text(doc, DOCX)
    assert "Glaciers carve valleys." in text and "metric: depth · value: 300 m" in text


def test_docx_zip_bomb_is_refused(tmp_path: Path) -> None:
    """A DOCX whose parts would unpack to something enormous is refused before parsing."""
    import zipfile

    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (50 * 1024 * 1024))
    with pytest.raises(PermanentError, match="zip bomb"):
        _text(bomb, DOCX)


def test_corrupt_docx(tmp_path: Path) -> None:
    """Random bytes named .docx: 'not a valid zip archive'."""
    bad = tmp_path / "bad.docx"
    bad.write_bytes(os.urandom(2000))
    with pytest.raises(PermanentError, match="corrupt"):
        _text(bad, DOCX)


def test_csv_and_json(tmp_path: Path) -> None:
    """CSV rows become lines naming their columns ('city: Oslo · population: 700000'), or
    'a | b' lines when the first row is figures, not names; JSON becomes 'key.path: value'
    lines."""
    table = tmp_path / "t.csv"
    table.write_text("city,population\nOslo,700000\nBergen,285000\n")
    assert "city: Oslo · population: 700000" in _text(table, "text/csv")
    headless = tmp_path / "h.csv"
    headless.write_text("1,700000\n2,285000\n")
    assert "1 | 700000\n2 | 285000" in _text(headless, "text/csv")
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"station": {"name": "Alert", "temps": [-30, -28]}}))
    text = _text(data, "application/json")
    assert "station.name: Alert" in text and "station.temps[1]: -28" in text


def test_deeply_nested_json_fails_clearly(tmp_path: Path) -> None:
    """JSON nested 100,000 levels deep is refused, not a crash."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PermanentError, match="nested too deeply|deeper than"):
        _text(deep, "application/json")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Grüße aus Köln".encode("utf-16"), "Grüße aus Köln"),
        (("Grüße aus Köln, café crème. " * 20).encode("latin-1"), "café crème"),
        (b"valid \xff\xfe broken \xc3\x28 bytes", "valid"),
        (b"nul\x00 bytes\x00 inside", "nul bytes inside"),
    ],
    ids=["utf16-bom", "latin1", "invalid-utf8", "nul-bytes"],
)
def test_text_encodings_are_detected(tmp_path: Path, raw: bytes, expected: str) -> None:
    """UTF-16 with BOM, Latin-1, invalid UTF-8 and NULs all decode without crashing."""
    path = tmp_path / "t.txt"
    path.write_bytes(raw)
    assert expected in _text(path, "text/plain")


def test_huge_text_is_streamed(tmp_path: Path) -> None:
    """A 50 MB text is read block by block: no section is more than a few blocks long."""
    big = tmp_path / "big.txt"
    line = "All work and no play makes a dull log line. " * 4 + "\n"
    with open(big, "w") as fh:
        for _ in range(50 * 1024 * 1024 // len(line)):
            fh.write(line)
    tracemalloc.start()
    total = 0
    largest = 0
    for section in extract(big, "text/plain"):
        total += len(section.text)
        largest = max(largest, len(section.text))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == big.stat().st_size
    assert largest <= 2 * BLOCK_BYTES
    assert peak < 16 * 1024 * 1024, f"extraction peaked at {peak / 2**20:.1f} MiB"


def test_one_line_huge_text_is_still_cut(tmp_path: Path) -> None:
    """A file with no newline at all is cut into bounded sections too."""
    one = tmp_path / "one.txt"
    one.write_text("word " * (3 * 1024 * 1024 // 5))
    sections = list(extract(one, "text/plain"))
    assert len(sections) > 1 and max(len(s.text) for s in sections) <= 5 * BLOCK_BYTES


# -- chunk -------------------------------------------------------------------------------------

def test_chunks_fit_the_model_and_keep_offsets() -> None:
    """No chunk exceeds chunk_tokens by the model's tokenizer; offsets point at the text."""
    chunker = Chunker(bundled_tokenizer(), chunk_tokens=64, overlap_tokens=8)
    text = "\n\n".join(f"Section {i}. " + "The river bends past the old mill. " * 9
                       for i in range(12))
    chunks = list(chunker.chunk([Section(text, page=3)]))
    assert len(chunks) > 10
    for chunk in chunks:
        assert chunker.count_tokens(chunk.text) <= 64
        assert text[chunk.char_start:chunk.char_end] == chunk.text
        assert chunk.page == 3
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    ends_on_sentence = sum(c.text.rstrip().endswith(".") for c in chunks)
    assert ends_on_sentence >= len(chunks) - 1, "chunks should end at sentence boundaries"
    assert chunks[1].char_start < chunks[0].char_end, "neighbouring chunks overlap"


def test_chunk_size_is_capped_to_what_the_model_reads() -> None:
    """chunk_tokens above the model's 256 (minus [CLS]/[SEP]) is lowered to 254."""
    assert Chunker(bundled_tokenizer(), 512, 32).chunk_tokens == 254


def test_whitespace_only_text_makes_no_chunks() -> None:
    """Whitespace is not content."""
    chunker = Chunker(bundled_tokenizer(), 64, 8)
    assert list(chunker.chunk([Section("   \n\n\t  ")])) == []


def test_chunking_is_linear_and_exact_on_a_huge_one_line_text() -> None:
    """A one-line text of several megabytes is cut into chunks whose stored token counts are
    the tokenizer's own, in time linear in its size (a quadratic cut would take minutes)."""
    import time

    chunker = Chunker(bundled_tokenizer(), 200, 32)
    words = "quay lantern tide chart buoy keeper harbour signal northern cape".split()
    text = " ".join(words[i % len(words)] + str(i % 97) for i in range(600_000))
    started = time.monotonic()
    chunks = list(chunker.chunk([Section(text)]))
    assert time.monotonic() - started < 30
    assert len(chunks) > 1000
    for chunk in chunks[:: len(chunks) // 50]:
        assert chunker.count_tokens(chunk.text) == chunk.tokens <= 200
        assert text[chunk.char_start:chunk.char_end] == chunk.text




def test_chunk_token_counts_are_exact_on_real_python_docs() -> None:
    """On real pages nobody here wrote (Debian's python3-doc, installed by `make test`), every
    chunk's stored token count is the tokenizer's own count of its text, and none exceeds the
    budget: the hashed word table never miscounts a word."""
    pages = sorted(PYTHON_DOCS.glob("library/*.html"))
    assert len(pages) > 100, "python3-doc is not installed (scripts/install-system-deps.sh)"
    chunker = Chunker(bundled_tokenizer(), 200, 32)
    checked = 0
    for page in pages[::40]:  # a spread of pages; the table is shared, as in a worker
        sections = list(extract(page, "text/html"))
        for chunk in chunker.chunk(sections):
            assert chunker.count_tokens(chunk.text) == chunk.tokens <= 200
            checked += 1
    assert checked > 100


def test_word_table_finds_what_it_stored_and_starts_over_when_full(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Words are keyed by a hash of their code points and length: equal words share a key,
    different ones do not, lookups return what was inserted, and a full table starts over."""
    import numpy as np

    from agent.pipeline import wordpiece

    text = "tide Tide tide tides edit \u00e9t\u00e9 \U0001f600 tide"
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    starts = np.array([0, 5, 10, 15, 21, 26, 30, 32])
    ends = np.array([4, 9, 14, 20, 25, 29, 31, 36])
    table = wordpiece.WordTable()
    keys = table.keys(points, starts, ends)
    assert keys[0] == keys[2] == keys[7]
    assert len(set(keys.tolist())) == 6
    assert (table.lookup(keys) == -1).all()
    distinct = np.unique(keys)
    table.insert(distinct, np.arange(len(distinct)) + 1)
    found = table.lookup(keys)
    stored = {k: i + 1 for i, k in enumerate(distinct.tolist())}
    assert found.tolist() == [stored[k] for k in keys.tolist()]
    monkeypatch.setattr(wordpiece, "CACHE_WORDS", len(distinct) + 1)
    other = table.keys(points, np.array([0, 5]), np.array([3, 8]))  # "tid", "Tid"
    table.insert(other, np.array([7, 8]))
    assert table.lookup(other).tolist() == [7, 8]
    assert (table.lookup(keys) == -1).all(), "a full table starts over"


def test_a_word_longer_than_a_chunk_is_cut_at_tokens() -> None:
    """Chinese text has no spaces: a paragraph is one 'word' of hundreds of tokens, and is
    split at token boundaries so that no chunk exceeds the budget."""
    chunker = Chunker(bundled_tokenizer(), 64, 8)
    text = "intro words. " + "東京の港で灯台守が船を数える。" * 60 + " and a tail."
    chunks = list(chunker.chunk([Section(text)]))
    assert len(chunks) > 5
    assert all(chunker.count_tokens(c.text) <= 64 for c in chunks)
    assert chunks[-1].text.endswith("a tail.")


# -- the whole pipeline -------------------------------------------------------------------------

def test_progress_moves_within_each_stage_and_the_chunk_cap_fails_at_once(
        settings: Settings, tmp_path: Path) -> None:
    """Reading and extracting a large file report progress inside each stage, extraction with
    the chunks counted so far; a file over max_chunks_per_file fails as soon as the count
    passes the cap, before any embedding and without reading the rest, naming the cap."""
    capped = settings.model_copy(deep=True)
    capped.processing.max_chunks_per_file = 100
    pipeline = IngestPipeline(capped)
    big = tmp_path / "big.txt"
    big.write_text("\n".join(f"Line {i} of a long harbour log." for i in range(300_000)))
    seen: list[tuple[int, str]] = []
    try:
        with pytest.raises(PermanentError) as failure:
            pipeline.run(JobRequest("job-big", str(big), "docs", "big.txt", []),
                         lambda pct, msg, *_: seen.append((pct, msg)))
    finally:
        pipeline.index.close()
    message = str(failure.value)
    assert "would make more than 100 chunks (processing.max_chunks_per_file)" in message
    assert failure.value.stage == "chunk"
    percents = {pct for pct, msg in seen if msg.startswith("reading")}
    assert len(percents) >= 3, sorted(percents)
    counted = [int(msg.rsplit(", ", 1)[1].split()[0].replace(",", "")) for _, msg in seen
               if msg.startswith("extracting")]
    assert counted and counted == sorted(counted) and counted[-1] > 100, counted
    # Reading stopped once the cap was passed, long before the end of the 9 MB file.
    assert int(message.rsplit("by ", 1)[1].split()[0].replace(",", "")) < big.stat().st_size / 4
    assert not any(msg.startswith("embedding") for _, msg in seen)


def test_pipeline_indexes_a_pdf_with_pages(pipeline: IngestPipeline, tmp_path: Path) -> None:
    """A two-page PDF is stored as one document with chunks that remember their page."""
    pdf = make_pdf(tmp_path / "atlas.pdf", ["Volcanoes of Iceland erupt along rift zones.",
                                            "Penguins of Antarctica huddle in winter."])
    result = ingest(pipeline, pdf)
    assert result.mime == "application/pdf" and result.pages == 2
    vector = pipeline.embedder.embed(["birds that live in the cold south"])[0]
    top = pipeline.index.search(vector, k=1)[0]
    assert top.doc_id == result.document_id and top.page == 2


def test_same_content_twice_is_stored_once(pipeline: IngestPipeline, tmp_path: Path) -> None:
    """A duplicate under another name is not indexed again; a retry of the same job resumes."""
    first = tmp_path / "one.txt"
    first.write_text("Lighthouses guide ships along rocky coasts at night.")
    second = tmp_path / "two.txt"
    second.write_text(first.read_text())
    stored = ingest(pipeline, first, job_id="job-A")
    before = pipeline.index.counts()
    duplicate = ingest(pipeline, second, job_id="job-B")
    assert duplicate.duplicate_of == stored.document_id
    resumed = ingest(pipeline, first, job_id="job-A")
    assert resumed.resumed is True and resumed.document_id == stored.document_id
    assert pipeline.index.counts() == before
    assert pipeline.index.integrity_problems() == []


def test_whitespace_file_fails_permanently(pipeline: IngestPipeline, tmp_path: Path) -> None:
    """A file of spaces and newlines: 'no text found'."""
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n   \n")
    with pytest.raises(PermanentError, match="no text found"):
        ingest(pipeline, blank)


def test_embeddings_are_meaningful(pipeline: IngestPipeline) -> None:
    """The offline model puts a cat near a kitten and far from revenue (cosine)."""
    cat, kitten, revenue = pipeline.embedder.embed(
        ["a cat sits on the mat", "a kitten rests on a rug", "quarterly revenue grew by 8 percent"])
    assert float(cat @ kitten) > 0.5
    assert float(cat @ revenue) < 0.2


CORPUS = {
    "volcano.txt": ("Volcanoes form where magma rises through the crust. Iceland sits on the "
                    "Mid-Atlantic Ridge, so eruptions there are frequent.", "Why does Iceland have so many eruptions?"),
    "bread.md": ("To bake sourdough, feed the starter, mix flour and water, let the dough rise "
                 "overnight and bake it in a hot Dutch oven.", "How do I make sourdough bread?"),
    "tides.txt": ("Ocean tides are caused mainly by the Moon's gravity pulling on the Earth's "
                  "oceans, with a smaller effect from the Sun.", "What causes the tides in the sea?"),
    "bees.html": ("<p>Honey bees communicate the location of flowers to their hive mates with a "
                  "waggle dance.</p>", "How do bees tell each other where the flowers are?"),
    "chess.txt": ("In chess, castling moves the king two squares towards a rook and places the "
                  "rook on the other side of the king.", "What is castling in chess?"),
    "vaccine.txt": ("Vaccines train the immune system by exposing it to a harmless piece of a "
                    "pathogen, so antibodies are ready for a real infection.", "How do vaccines protect people?"),
    "rust.txt": ("Iron rusts when it reacts with oxygen and water, forming iron oxide; salt "
                 "water speeds the corrosion up.", "Why does iron corrode?"),
    "photosynthesis.txt": ("Plants use sunlight, water and carbon dioxide to make glucose and "
                           "release oxygen in a process called photosynthesis.", "How do plants make their food?"),
    "bitcoin.txt": ("Bitcoin transactions are grouped into blocks that miners secure with "
                    "proof of work, forming a public ledger called the blockchain.", "How are cryptocurrency payments recorded?"),
    "marathon.txt": ("A marathon is 42.195 kilometres long; the distance was fixed at the 1908 "
                     "London Olympics.", "How long is a marathon race?"),
    "coffee.csv": ("drink,origin,note\nespresso,Italy,coffee forced through fine grounds under "
                   "pressure\n", "Where does espresso come from?"),
    "whales.json": (json.dumps({"animal": "blue whale", "fact": "the blue whale is the largest "
                                "animal that has ever lived, longer than 30 metres"}),
                    "What is the biggest animal ever?"),
    "jazz.txt": ("Jazz began in New Orleans in the early twentieth century, mixing blues, "
                 "ragtime and brass band music.", "Where did jazz music originate?"),
    "glacier.txt": ("Glaciers move slowly downhill under their own weight and carve U-shaped "
                    "valleys into the landscape.", "How do glaciers shape valleys?"),
    "password.txt": ("A strong password is long, unique for every site and stored in a "
                     "password manager rather than reused.", "How should I choose a secure password?"),
    "sleep.txt": ("Adults need seven to nine hours of sleep; too little sleep impairs memory and "
                  "concentration.", "How many hours should an adult sleep?"),
    "tax.txt": ("Value added tax is charged at each stage of production, and businesses reclaim "
                "the VAT they paid on their inputs.", "How does VAT work for businesses?"),
    "moon.txt": ("Apollo 11 landed on the Moon in July 1969; Neil Armstrong was the first person "
                 "to walk on its surface.", "Who first walked on the moon?"),
    "printer.txt": ("If the printer shows a paper jam, open the rear tray, remove the stuck sheet "
                    "gently and restart the printer.", "My printer has a paper jam, what do I do?"),
    "python.txt": ("In Python, a list comprehension builds a new list from an iterable in a "
                   "single expression, like [x * 2 for x in items].", "How do I create a list in one line in Python?"),
}


def test_retrieval_hit_rate_on_a_small_corpus(pipeline: IngestPipeline, tmp_path: Path) -> None:
    """For each of 20 questions, the file that answers it is in the top 3 (hit rate reported)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, (text, _) in CORPUS.items():
        (folder / name).write_text(text)
        ingest(pipeline, folder / name, job_id=f"corpus-{name}")
    hits = 0
    misses = []
    for name, (_, question) in CORPUS.items():
        vector = pipeline.embedder.embed([question])[0]
        top = [h.source_name for h in pipeline.index.search(vector, k=3)]
        if name in top:
            hits += 1
        else:
            misses.append((question, top))
    rate = hits / len(CORPUS)
    print(f"retrieval hit rate (top 3): {hits}/{len(CORPUS)} = {rate:.0%}")
    assert rate >= 0.9, misses


def test_chunks_embedded_shortest_first_are_stored_with_their_own_vectors(
        pipeline: IngestPipeline, tmp_path: Path) -> None:
    """Embedding runs in length order (less padding), yet every stored vector is the one of
    its own chunk's text: the order is restored before storing."""
    import numpy as np

    doc = tmp_path / "mixed.md"
    doc.write_text("# Mixed\n\n" + "\n\n".join(
        f"Short note {i}." if i % 3 else (f"A much longer paragraph {i} about harbour "
                                               "cranes, tides and freight schedules. " * 6)
        for i in range(24)))
    result = ingest(pipeline, doc)
    conn = pipeline.index._conn()  # type: ignore[attr-defined]
    rows = conn.execute(
        "SELECT c.text, c.heading, v.vector FROM chunks c JOIN chunk_vectors v ON v.chunk_id = "
        "c.id JOIN documents d ON d.id = c.document_id WHERE d.doc_id = ? ORDER BY c.ordinal",
        (result.document_id,)).fetchall()
    assert len({len(t) for t, _, _ in rows}) > 2, "chunks of different lengths"
    from agent.pipeline.chunk import Chunk

    for text, heading, blob in rows:
        expected = pipeline.embedder.embed([Chunk(0, text, 0, 0, None, 0, heading).embed_text])[0]
        assert float(np.frombuffer(blob, dtype=np.float32) @ expected) > 0.999
