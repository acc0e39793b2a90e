"""The index contract on both backends: SQLite (embedded) and Postgres + pgvector (shared)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent.pipeline.chunk import Chunk


def _vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, 16)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(n: int, label: str) -> list[Chunk]:
    return [Chunk(i, f"{label} chunk {i}", i * 10, i * 10 + 9, 1 + i // 2, 5) for i in range(n)]


@pytest.fixture(params=["sqlite", "postgres"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "sqlite":
        from agent.pipeline.index_sqlite import SQLiteIndex

        idx: object = SQLiteIndex(tmp_path / "index.db")
    else:
        from agent.pipeline.index_pg import PostgresIndex

        idx = PostgresIndex(request.getfixturevalue("pg_dsn"))
    yield idx
    idx.close()  # type: ignore[attr-defined]


def add(index: object, sha: str, n: int = 3, seed: int = 1, inbox: str = "docs",
        job: str = "job-1", replace: bool = False) -> object:
    return index.add_document(  # type: ignore[attr-defined]
        sha256=sha, job_id=job, inbox=inbox, source_name=f"{sha[:4]}.txt", mime="text/plain",
        size=100, pages=2, model="test", chunks=_chunks(n, sha[:4]), vectors=_vectors(n, seed),
        replace=replace)


def test_add_and_find(index: object) -> None:
    """A stored document is found by content hash and by job, with its counts."""
    doc = add(index, "a" * 64)
    assert doc.doc_id == "doc_" + "a" * 20 and doc.chunk_count == 3
    assert index.find_by_hash("a" * 64) == doc  # type: ignore[attr-defined]
    assert index.find_by_job("job-1") == doc  # type: ignore[attr-defined]
    assert index.find_by_hash("b" * 64) is None  # type: ignore[attr-defined]
    assert index.counts() == {"documents": 1, "chunks": 3, "vectors": 3}  # type: ignore[attr-defined]


def test_same_content_is_stored_once(index: object) -> None:
    """A second add of the same sha returns the first document and adds nothing."""
    first = add(index, "c" * 64, n=3, job="job-1")
    again = add(index, "c" * 64, n=5, job="job-2")
    assert again.doc_id == first.doc_id and again.job_id == "job-1"
    assert index.counts()["chunks"] == 3  # type: ignore[attr-defined]


def test_replace_reindexes(index: object) -> None:
    """replace=True swaps the chunks of the same content in one transaction."""
    add(index, "d" * 64, n=3)
    doc = add(index, "d" * 64, n=5, seed=9, replace=True)
    assert doc.chunk_count == 5
    assert index.counts() == {"documents": 1, "chunks": 5, "vectors": 5}  # type: ignore[attr-defined]
    assert index.integrity_problems() == []  # type: ignore[attr-defined]


def test_search_ranks_by_cosine_and_filters_by_inbox(index: object) -> None:
    """The chunk whose vector is the query comes first with score ≈ 1; inbox filter works."""
    add(index, "e" * 64, n=4, seed=2, inbox="docs")
    add(index, "f" * 64, n=4, seed=3, inbox="scans", job="job-2")
    target = _vectors(4, 3)[2]
    hits = index.search(target, k=3)  # type: ignore[attr-defined]
    assert hits[0].text == "ffff chunk 2" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].page == 2 and hits[0].inbox == "scans"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only_docs = index.search(target, k=10, inbox="docs")  # type: ignore[attr-defined]
    assert len(only_docs) == 4 and {h.inbox for h in only_docs} == {"docs"}
    index.set_location(hits[0].doc_id, "/srv/done/ffff.txt")  # type: ignore[attr-defined]
    assert index.search(target, k=1)[0].location == "/srv/done/ffff.txt"  # type: ignore[attr-defined]


def _add_in_process(kind: str, where: str, barrier: object) -> None:
    if kind == "sqlite":
        from agent.pipeline.index_sqlite import SQLiteIndex

        idx: object = SQLiteIndex(where)
    else:
        from agent.pipeline.index_pg import PostgresIndex

        idx = PostgresIndex(where)
    barrier.wait()  # type: ignore[attr-defined]
    add(idx, "9" * 64, n=50, job=f"job-{mp.current_process().name}")
    idx.close()  # type: ignore[attr-defined]


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
        from agent.pipeline.index_sqlite import SQLiteIndex

        idx: object = SQLiteIndex(where)
    else:
        from agent.pipeline.index_pg import PostgresIndex

        idx = PostgresIndex(where)
    assert idx.counts() == {"documents": 1, "chunks": 50, "vectors": 50}  # type: ignore[attr-defined]
    assert idx.integrity_problems() == []  # type: ignore[attr-defined]
    idx.close()  # type: ignore[attr-defined]
