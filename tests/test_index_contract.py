"""The index contract on both backends: SQLite (embedded) and Postgres + pgvector (shared); and
the SQLite index's migrations from older versions."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent.errors import TransientError
from agent.pipeline.chunk import Chunk
from agent.pipeline.store.index import DocumentRecord, Index


def _vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, 16)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(n: int, label: str) -> list[Chunk]:
    return [Chunk(i, f"{label} chunk {i}", i * 10, i * 10 + 9, 1 + i // 2, 5) for i in range(n)]


@pytest.fixture(params=["sqlite", "postgres"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    if request.param == "sqlite":
        from agent.pipeline.store.sqlite import SQLiteIndex

        idx: Index = SQLiteIndex(tmp_path / "index.db")
    else:
        from agent.pipeline.store.postgres import PostgresIndex

        idx = PostgresIndex(request.getfixturevalue("pg_dsn"))
    yield idx
    idx.close()


def add(index: Index, sha: str, n: int = 3, seed: int = 1, inbox: str = "docs",
        job: str = "job-1", replace: bool = False) -> DocumentRecord:
    return index.add_document(
        sha256=sha, job_id=job, inbox=inbox, source_name=f"{sha[:4]}.txt", mime="text/plain",
        size=100, pages=2, model="test", chunks=_chunks(n, sha[:4]), vectors=_vectors(n, seed),
        replace=replace)


def test_add_and_find(index: Index) -> None:
    """A stored document is found by content hash and by job, with its counts."""
    doc = add(index, "a" * 64)
    assert doc.doc_id == "doc_" + "a" * 20 and doc.chunk_count == 3
    assert index.find_by_hash("a" * 64) == doc
    assert index.find_by_job("job-1") == doc
    assert index.find_by_hash("b" * 64) is None
    assert index.counts() == {"documents": 1, "chunks": 3, "vectors": 3}


def test_same_content_is_stored_once(index: Index) -> None:
    """A second add of the same sha returns the first document and adds nothing."""
    first = add(index, "c" * 64, n=3, job="job-1")
    again = add(index, "c" * 64, n=5, job="job-2")
    assert again.doc_id == first.doc_id and again.job_id == "job-1"
    assert index.counts()["chunks"] == 3


def test_replace_reindexes(index: Index) -> None:
    """replace=True swaps the chunks of the same content in one transaction."""
    add(index, "d" * 64, n=3)
    doc = add(index, "d" * 64, n=5, seed=9, replace=True)
    assert doc.chunk_count == 5
    assert index.counts() == {"documents": 1, "chunks": 5, "vectors": 5}
    assert index.integrity_problems() == []


def test_search_ranks_by_cosine_and_filters_by_inbox(index: Index) -> None:
    """The chunk whose vector is the query comes first with score ≈ 1; inbox filter works."""
    add(index, "e" * 64, n=4, seed=2, inbox="docs")
    add(index, "f" * 64, n=4, seed=3, inbox="scans", job="job-2")
    target = _vectors(4, 3)[2]
    hits = index.search(target, k=3)
    assert hits[0].text == "ffff chunk 2" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].page == 2 and hits[0].inbox == "scans"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only_docs = index.search(target, k=10, inbox="docs")
    assert len(only_docs) == 4 and {h.inbox for h in only_docs} == {"docs"}
    index.set_location(hits[0].doc_id, "/srv/done/ffff.txt")
    assert index.search(target, k=1)[0].location == "/srv/done/ffff.txt"


def _add_in_process(kind: str, where: str, barrier: object) -> None:
    if kind == "sqlite":
        from agent.pipeline.store.sqlite import SQLiteIndex

        idx: Index = SQLiteIndex(where)
    else:
        from agent.pipeline.store.postgres import PostgresIndex

        idx = PostgresIndex(where)
    barrier.wait()  # type: ignore[attr-defined]
    add(idx, "9" * 64, n=50, job=f"job-{mp.current_process().name}")
    idx.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_processes_indexing_the_same_content_store_one_document(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two agents racing on one content: the unique constraint keeps exactly one document."""
    where = str(tmp_path / "index.db") if kind == "sqlite" else request.getfixturevalue("pg_dsn")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_add_in_process, args=(kind, where, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    if kind == "sqlite":
        from agent.pipeline.store.sqlite import SQLiteIndex

        idx: Index = SQLiteIndex(where)
    else:
        from agent.pipeline.store.postgres import PostgresIndex

        idx = PostgresIndex(where)
    assert idx.counts() == {"documents": 1, "chunks": 50, "vectors": 50}
    assert idx.integrity_problems() == []
    idx.close()


def _texts_doc(index: Index, sha: str, texts: list[str], inbox: str = "docs",
               name: str = "doc.txt", mime: str = "text/plain") -> object:
    chunks = [Chunk(i, t, i * 100, i * 100 + len(t), None, 10, heading=f"Guide › Part {i}")
              for i, t in enumerate(texts)]
    return index.add_document(
        sha256=sha, job_id=f"job-{sha[:4]}", inbox=inbox, source_name=name, mime=mime,
        size=100, pages=None, model="test", chunks=chunks,
        vectors=_vectors(len(texts), seed=len(texts)))


def test_lexical_search_finds_identifiers_and_honours_filters(index: Index) -> None:
    """Full-text search (FTS5 or Postgres) finds an identifier as pasted, ranks the chunk that
    holds every word first with require_all, and applies the same filters as vector search."""
    from agent.pipeline.store.index import SearchFilter

    _texts_doc(index, "a" * 64, ["the TLS handshake failed with ERR_SSL_PROTOCOL on connect",
                                 "call os.replace(src, dst) to move a file atomically",
                                 "tides and harbour charts"])
    _texts_doc(index, "b" * 64, ["harbour master logs every ship"], inbox="mail",
               name="log.md", mime="text/markdown")
    by_id = index.chunks_by_id
    lexical = index.lexical_candidates
    [(top, score)] = lexical("ERR_SSL_PROTOCOL", 5)
    assert "ERR_SSL_PROTOCOL" in by_id([top])[top].text and score > 0
    replace_id = lexical("os.replace", 5)[0][0]
    assert "os.replace" in by_id([replace_id])[replace_id].text
    both = lexical("harbour charts", 5)
    assert len(both) == 2
    strict = lexical("harbour charts", 5, require_all=True)
    assert [by_id([i])[i].text for i, _ in strict] == ["tides and harbour charts"]
    mail_only = lexical("harbour", 5, SearchFilter(inbox="mail"))
    assert [by_id([i])[i].source_name for i, _ in mail_only] == ["log.md"]
    assert lexical("harbour", 5, SearchFilter(types=("application/pdf",))) == []
    assert lexical("harbour", 5, SearchFilter(path_glob="*.md"))[0][0] == mail_only[0][0]
    chunk = by_id([top])[top]
    assert chunk.heading == "Guide › Part 0" and chunk.inbox == "docs"


def test_a_query_of_symbols_is_found_character_for_character(index: Index) -> None:
    """A form's blank line or an arrow has no word for full-text search; the literal scan
    finds the chunks holding it as typed, honouring the filters."""
    from agent.pipeline.store.index import SearchFilter

    _texts_doc(index, "a" * 64, ["Name: __________ Date: ______", "no blanks here", "a → b"])
    _texts_doc(index, "b" * 64, ["Signed: ________"], inbox="mail", name="form.md",
               mime="text/markdown")
    texts = [index.chunks_by_id([i])[i].text for i in index.literal_candidates("________", 5)]
    assert texts == ["Name: __________ Date: ______", "Signed: ________"]
    mail = index.literal_candidates("________", 5, SearchFilter(inbox="mail"))
    assert [index.chunks_by_id([i])[i].source_name for i in mail] == ["form.md"]
    assert len(index.literal_candidates("→", 5)) == 1
    assert index.literal_candidates("§§", 5) == []


ROWS = ("Stanley Cups\nTeam: Blues · Location: STL · Stanley Cups: 1\n"
        "Team: Maple Leafs · Location: TOR · Stanley Cups: 13")


def test_a_rows_values_match_the_row_as_a_phrase(index: Index) -> None:
    """A table's rows carry their column names in the text; their values, in order, are a
    phrase the index holds too (issue 40), so the phrase search finds the row by its values
    (the prose holding the same words apart does not match)."""
    _texts_doc(index, "a" * 64, [ROWS, "the Maple Leafs won in TOR, 13 times"],
               name="cups.csv", mime="text/csv")
    found = index.phrase_candidates(["Maple", "Leafs", "TOR", "13"], 5)
    assert [index.chunks_by_id([i])[i].ordinal for i, _ in found] == [0]


def test_an_index_before_row_values_is_backfilled(tmp_path: Path) -> None:
    """A version 5 index's table chunks get their rows' values on open (the v6 migration), so
    rows indexed before are found by their values too."""
    import sqlite3

    from agent.pipeline.store.sqlite import MIGRATIONS, SQLiteIndex

    path = tmp_path / "index.db"
    conn = sqlite3.connect(path)
    for statements in MIGRATIONS[:5]:
        for sql in statements:
            assert isinstance(sql, str)
            conn.execute(sql)
    conn.execute("INSERT INTO documents (doc_id, content_sha256, job_id, inbox, source_name, mime, "
                 "bytes, chunk_count, model, created_at) VALUES ('doc_x', 'x', 'j', 'docs', "
                 "'cups.csv', 'text/csv', 10, 1, 'm', 0)")
    conn.execute("INSERT INTO chunks (document_id, ordinal, text, char_start, char_end, tokens) "
                 "VALUES (1, 0, ?, 0, 25, 5)", (ROWS,))
    conn.execute("INSERT INTO chunk_vectors VALUES (1, ?)", (_vectors(1, 1)[0].tobytes(),))
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    index = SQLiteIndex(path)
    assert [i for i, _ in index.phrase_candidates(["Maple", "Leafs", "TOR", "13"], 5)] == [1]
    assert index.integrity_problems() == []
    index.close()


def test_a_postgres_index_before_row_values_is_backfilled(pg_dsn: str) -> None:
    """The same on Postgres: an index whose chunks table has no row_values column gets it, its
    tsvector rebuilt over it, and the rows already there filled in."""
    import psycopg

    from agent.pipeline.store.postgres import PostgresIndex

    index = PostgresIndex(pg_dsn)
    _texts_doc(index, "a" * 64, [ROWS], name="cups.csv", mime="text/csv")
    index.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # as an index from before
        conn.execute("ALTER TABLE chunks DROP COLUMN tsv")
        conn.execute("ALTER TABLE chunks DROP COLUMN row_values")
        conn.execute("""ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english', heading), 'A') ||
            setweight(to_tsvector('english', text), 'B')) STORED""")
    old = PostgresIndex.__new__(PostgresIndex)  # searching it as it was: no phrase of values
    old.dsn, old._local = pg_dsn, __import__("threading").local()
    assert old.phrase_candidates(["Maple", "Leafs", "TOR", "13"], 5) == []
    old.close()
    index = PostgresIndex(pg_dsn)
    assert len(index.phrase_candidates(["Maple", "Leafs", "TOR", "13"], 5)) == 1
    index.close()


def test_vector_candidates_and_similarities_agree(index: Index) -> None:
    """The cosine of a candidate is the same whether it comes from the search or is asked for
    by id; a filter keeps other documents out."""
    from agent.pipeline.store.index import SearchFilter

    _texts_doc(index, "c" * 64, ["one", "two", "three"])
    _texts_doc(index, "d" * 64, ["four"], inbox="mail")
    query = _vectors(3, seed=3)[1]
    found = index.vector_candidates(query, 4)
    assert found[0][1] > 0.99
    again = index.similarities(query, [i for i, _ in found])
    assert all(abs(again[i] - s) < 1e-4 for i, s in found)
    mail = index.vector_candidates(query, 4, SearchFilter(inbox="mail"))
    assert len(mail) == 1


def test_document_similarity_is_the_cosine_of_the_documents_mean_vector(index: Index) -> None:
    """Every chunk is given its whole document's cosine (the normalised mean of the document's
    vectors), and a document added after the first question is seen at once."""
    def mean_cosine(seed: int, n: int, query: np.ndarray) -> float:
        mean = _vectors(n, seed).mean(axis=0)
        return float(mean @ query / np.linalg.norm(mean))

    query = _vectors(1, seed=9)[0]
    add(index, "e" * 64, n=4, seed=5)
    first = [i for i, _ in index.vector_candidates(query, 10)]
    whole = index.document_similarities(query, first)
    assert sorted(whole) == sorted(first) and len(first) == 4
    assert all(abs(whole[i] - mean_cosine(5, 4, query)) < 1e-4 for i in first)
    add(index, "f" * 64, n=2, seed=6, job="job-2")
    both = [i for i, _ in index.vector_candidates(query, 10)]
    whole = index.document_similarities(query, both)
    added = set(both) - set(first)
    assert len(added) == 2 and len(whole) == 6
    assert all(abs(whole[i] - mean_cosine(6, 2, query)) < 1e-4 for i in added)
    assert all(abs(whole[i] - mean_cosine(5, 4, query)) < 1e-4 for i in first)
    assert index.document_similarities(query, []) == {}


def test_each_chunk_is_given_its_documents_opening_chunk(index: Index) -> None:
    """Every chunk maps to the first chunk (ordinal 0) of its own document, on both backends."""
    query = _vectors(1, seed=9)[0]
    add(index, "g" * 64, n=3, seed=7)
    add(index, "h" * 64, n=2, seed=8, job="job-2")
    found = [i for i, _ in index.vector_candidates(query, 10)]
    chunks = index.chunks_by_id(found)
    opening = index.opening_chunks(found)
    assert sorted(opening) == sorted(found) and len(found) == 5
    for chunk_id, first in opening.items():
        assert chunks[first].ordinal == 0 and chunks[first].doc_id == chunks[chunk_id].doc_id
    assert len(set(opening.values())) == 2
    assert index.opening_chunks([]) == {}


def test_a_version_1_index_is_upgraded_and_its_chunks_become_searchable(tmp_path: Path) -> None:
    """An index written before full-text search existed (schema v1) is migrated in place on
    open: its existing chunks are found by words, with an empty heading."""
    import sqlite3

    from agent.pipeline.store.sqlite import SCHEMA, SQLiteIndex

    path = tmp_path / "index.db"
    conn = sqlite3.connect(path)
    for sql in SCHEMA:
        conn.execute(sql)
    conn.execute("INSERT INTO documents (doc_id, content_sha256, job_id, inbox, source_name, mime, "
                 "bytes, chunk_count, model, created_at) VALUES ('doc_x', 'x', 'j', 'docs', "
                 "'old.txt', 'text/plain', 10, 1, 'm', 0)")
    conn.execute("INSERT INTO chunks (document_id, ordinal, text, char_start, char_end, tokens) "
                 "VALUES (1, 0, 'lighthouse keepers of old', 0, 25, 5)")
    conn.execute("INSERT INTO chunk_vectors VALUES (1, ?)", (_vectors(1, 1)[0].tobytes(),))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    index = SQLiteIndex(path)
    [(chunk_id, _)] = index.lexical_candidates("lighthouse", 5)
    assert index.chunks_by_id([chunk_id])[chunk_id].heading == ""
    assert index.integrity_problems() == []
    index.close()


def test_staged_chunks_are_kept_reused_and_committed_with_the_document(index: Index) -> None:
    """Chunks of a document being embedded are staged with their vectors and read back by
    (content, model), are never search results, become the document's chunks when it
    commits (in pages, so more than one page of them), and stale ones are dropped."""
    from agent.pipeline.store.index import STAGED_PAGE

    sha, other = "e" * 63 + "1", "e" * 63 + "2"
    n = STAGED_PAGE + 3
    chunks = [Chunk(c.ordinal, c.text, c.char_start, c.char_end, c.page, c.tokens,
                    f"Staged › part {c.ordinal}") for c in _chunks(n, "stag")]
    vectors = _vectors(n, 4)
    rows = [(chunks[i], bytes([i % 256]) * 16, vectors[i].tobytes()) for i in range(n)]
    index.save_checkpoint(sha, "test", "job-ck", rows[:2])
    index.save_checkpoint(sha, "test", "job-ck", rows[1:])
    saved = index.checkpointed_digests(sha, "test")
    assert sorted(saved) == list(range(n)) and saved[2] == rows[2][1]
    assert index.checkpointed_digests(sha, "another-model") == {}
    hits = index.vector_candidates(vectors[0], 10)
    found = index.chunks_by_id(i for i, _ in hits)
    assert all(c.doc_id != "doc_" + sha[:20] for c in found.values())  # not searchable yet
    with pytest.raises(TransientError, match="no longer staged"):  # one more than staged
        index.add_document(
            sha256=sha, job_id="job-ck", inbox="docs", source_name="s.txt", mime="text/plain",
            size=100, pages=None, model="test", staged=n + 1)
    assert index.find_by_hash(sha) is None
    doc = index.add_document(
        sha256=sha, job_id="job-ck", inbox="docs", source_name="s.txt", mime="text/plain",
        size=100, pages=None, model="test", staged=n)
    assert doc.chunk_count == n
    assert index.checkpointed_digests(sha, "test") == {}
    [(best, score)] = index.vector_candidates(vectors[n - 1], 1)
    stored = index.chunks_by_id([best])[best]
    assert (stored.doc_id, stored.ordinal, stored.text) == (doc.doc_id, n - 1, chunks[-1].text)
    assert stored.heading == chunks[-1].heading and score == pytest.approx(1.0, abs=1e-5)
    assert index.integrity_problems() == []
    index.save_checkpoint(other, "test", "job-ck", rows[:3])
    assert index.drop_stale_checkpoints("job-ck", sha) == 3
    index.save_checkpoint(other, "test", "job-ck", rows[:3])
    import time

    assert index.purge_checkpoints(time.time() - 3600) == 0
    assert index.purge_checkpoints(time.time() + 1) == 3


def test_a_version_3_index_drops_vector_only_checkpoints_and_stages_whole_chunks(
        tmp_path: Path) -> None:
    """Checkpoints written before chunks were staged (schema v3: vectors alone) cannot make a
    document, so the upgrade drops them (they cost only re-embedding); the upgraded index then
    stages and commits whole chunks."""
    import sqlite3

    from agent.pipeline.store.sqlite import SCHEMA, SCHEMA_V2, SCHEMA_V3, SQLiteIndex

    path = tmp_path / "index.db"
    conn = sqlite3.connect(path)
    for sql in SCHEMA + SCHEMA_V2 + SCHEMA_V3:
        conn.execute(sql)
    sha = "f" * 64
    conn.execute("INSERT INTO embedding_checkpoints VALUES (?, 'test', 0, 'job-old', ?, ?, 0)",
                 (sha, b"d" * 16, _vectors(1, 1)[0].tobytes()))
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    index = SQLiteIndex(path)
    assert index.checkpointed_digests(sha, "test") == {}
    chunk = _chunks(1, "upgr")[0]
    index.save_checkpoint(sha, "test", "job-new", [(chunk, b"d" * 16,
                                                    _vectors(1, 1)[0].tobytes())])
    doc = index.add_document(sha256=sha, job_id="job-new", inbox="docs", source_name="u.txt",
                             mime="text/plain", size=10, pages=None, model="test", staged=1)
    [(best, _)] = index.vector_candidates(_vectors(1, 1)[0], 1)
    assert index.chunks_by_id([best])[best].text == chunk.text and doc.chunk_count == 1
    assert index.integrity_problems() == []
    index.close()
