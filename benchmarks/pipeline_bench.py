"""End-to-end ingestion vs bare fastembed, processor overhead, and search latency — one run.

    python benchmarks/pipeline_bench.py                 # ~200 documents, 5,000 jobs, 100k chunks
    python benchmarks/pipeline_bench.py --docs 40 --jobs 500 --chunks 20000   # quick

(a) The real agent (`ingest-agent run --drain`, default settings) ingests a generated corpus of
    mixed documents; bare fastembed embeds the very same chunk texts with the same model,
    batch size and threads, in the agent's order and sorted by length; the sides alternate for
    ``--rounds`` samples. Ratio = agent chunks/s ÷ the faster floor (goal ≥ 0.9, median). Peak
    RSS of the agent and its worker (goal ≤ 1 GB). The real-corpus figures are ingest_bench's.
(b) Processor overhead: claim, moves, state updates and IPC with a read-only pipeline
    (goal ≤ 5 ms per job, median).
(c) Search over N stored chunks vs an exact numpy search over the same vectors in memory,
    interleaved rounds (goal p50 ≤ 2.5×, median of rounds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import Series, interleave, ratio, report, verdict  # noqa: E402

WORDS = ('river mountain harbour engine ledger protocol orchard glacier lantern invoice '
         'customer satellite volcano migration algorithm carbon copper theatre vaccine '
         'archive bridge market signal weather ferry battery canyon dialect furnace '
         'meadow orbit pension quarry rhythm saddle tariff umbrella vessel walnut yield '
         'zenith ').split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def make_corpus(folder: Path, n: int, seed: int = 7) -> dict[str, int]:
    """About n documents: 60% text/markdown, 15% HTML, 10% PDF, 10% DOCX, 5% CSV/JSON."""
    import docx
    from fpdf import FPDF

    rng = random.Random(seed)
    kinds: dict[str, int] = {}
    for i in range(n):
        roll = i % 20
        paras = [paragraph(rng, rng.randint(3, 8)) for _ in range(rng.randint(2, 8))]
        if roll < 12:
            name = f"doc{i}.{'md' if roll % 2 else 'txt'}"
            (folder / name).write_text("\n\n".join(paras))
        elif roll < 15:
            name = f"page{i}.html"
            body = "".join(f"<p>{p}</p>" for p in paras)
            (folder / name).write_text(f"<html><head><style>p{{}}</style></head><body>{body}"
                                       "<script>var x=1;</script></body></html>")
        elif roll < 17:
            name = f"report{i}.pdf"
            pdf = FPDF()
            pdf.set_font("helvetica", size=10)
            for p in paras[:4]:
                pdf.add_page()
                pdf.multi_cell(0, 5, p)
            pdf.output(str(folder / name))
        elif roll < 19:
            name = f"memo{i}.docx"
            document = docx.Document()
            for p in paras:
                document.add_paragraph(p)
            document.save(str(folder / name))
        else:
            name = f"data{i}.json"
            (folder / name).write_text(json.dumps({"items": [{"note": p} for p in paras]}))
        kind = name.rsplit(".", 1)[1]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def write_config(base: Path, **extra: str) -> Path:
    config = base / "agent.toml"
    lines = ['[agent]', 'data_dir = "data"', 'log_level = "warning"', '[[inbox]]',
             'name = "bench"', 'path = "inbox"', 'settle_seconds = 0.2', '[metrics]',
             'port = 0']
    for section, body in extra.items():
        lines += [f"[{section}]", body]
    config.write_text("\n".join(lines) + "\n")
    return config


def bench_end_to_end(n_docs: int, rounds: int) -> None:
    """The real agent against bare fastembed on the chunks it made, interleaved (the agent
    side and the floors are ``ingest_bench``'s, here on the generated mixed-format corpus)."""
    from fastembed import TextEmbedding

    from agent.config.settings import Settings
    from agent.pipeline.embed import Embedder
    from benchmarks.ingest_bench import Agent, bare

    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        base = Path(tmp)
        (base / "corpus").mkdir()
        kinds = make_corpus(base / "corpus", n_docs)
        files = sorted((base / "corpus").iterdir())
        settings = Settings.model_validate({"agent": {"data_dir": str(base / "model")}})
        embedder = Embedder(settings.embedding, settings.agent.data_dir)
        batch, threads = settings.embedding.batch_size, settings.embedding.threads
        plain = TextEmbedding(settings.embedding.model, threads=threads,
                              specific_model_path=str(Path(embedder.tokenizer_file).parent))
        agent = Agent(files)
        agent()  # warm the caches and learn the chunk texts
        series = interleave({"agent": agent,
                             "bare fastembed, agent's order": lambda: bare(plain, agent, False,
                                                                           batch),
                             "bare fastembed, sorted by length": lambda: bare(plain, agent, True,
                                                                              batch)},
                            rounds, "chunks/s")
    print(f"(a) end to end: {len(files)} generated docs {kinds}, {len(agent.texts)} chunks, "
          f"all completed")
    report("    chunks/s", list(series.values()))
    files_s = Series("agent files/s", "files/s")
    for value, load in zip(series["agent"].values, series["agent"].loads, strict=True):
        files_s.values.append(value * len(files) / len(agent.texts))
        files_s.loads.append(load)
    report("    the agent", [files_s, agent.rss])
    floors = [series["bare fastembed, agent's order"], series["bare fastembed, sorted by length"]]
    strongest = max(floors, key=lambda s: s.median)
    for floor in floors:
        r = ratio(series["agent"], floor)
        print(f"    agent ÷ {floor.name}: {r.spread('.2f')}"
              + (f"; strongest floor, {verdict(r, 0.9)}" if floor is strongest else ""))
    rss = agent.rss.median
    print(f"    peak RSS goal ≤ 1024 MB: {'met' if rss <= 1024 else 'MISS'} (median {rss:.0f} MB)",
          flush=True)


def bench_overhead(n_jobs: int) -> dict[str, float]:
    from agent.config.settings import load_config
    from agent.files.folders import build_inboxes, identify
    from agent.processing.processor import Processor
    from agent.queue import open_queue

    with tempfile.TemporaryDirectory(prefix="overhead-bench-") as tmp:
        base = Path(tmp)
        settings = load_config(write_config(base), environ={})
        boxes = {b.name: b for b in build_inboxes(settings)}
        box = boxes["bench"]
        box.ensure()
        queue = open_queue(settings)
        for i in range(n_jobs):
            path = box.inbox / f"f{i}.txt"
            path.write_text(f"small file {i}\n")
            queue.enqueue_job(str(path), path.name, {"size": path.stat().st_size},
                              inbox="bench", content_key=identify("bench", path.name,
                                                                  path.stat()).key)
        processor = Processor(settings, queue, boxes, factory="benchmarks.trivial_pipeline:build")
        processor.start()
        times = []
        try:
            while True:
                t0 = time.perf_counter()
                if not processor.run_once():
                    break
                times.append(time.perf_counter() - t0)
        finally:
            processor.stop()
            queue.close()
        done = len(list(box.done.iterdir()))
    times.sort()
    return {"jobs": len(times), "in_done": done,
            "median_ms": statistics.median(times) * 1000,
            "p99_ms": times[int(len(times) * 0.99) - 1] * 1000,
            "jobs_per_s": len(times) / sum(times)}


def bench_search(n_chunks: int, rounds: int, queries: int = 50) -> dict[str, Any]:
    import numpy as np

    from agent.pipeline.chunk import Chunk
    from agent.pipeline.store.sqlite import SQLiteIndex

    rng = np.random.default_rng(3)
    dim = 384
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        index = SQLiteIndex(Path(tmp) / "index.db")
        per_doc = 100
        all_vectors = []
        for d in range(n_chunks // per_doc):
            vectors = rng.standard_normal((per_doc, dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            all_vectors.append(vectors)
            chunks = [Chunk(i, f"chunk {d}-{i} " + "text " * 40, 0, 200, None, 50)
                      for i in range(per_doc)]
            index.add_document(sha256=hashlib.sha256(str(d).encode()).hexdigest(),
                               job_id=f"j{d}", inbox="bench",
                               source_name=f"d{d}.txt", mime="text/plain", size=1, pages=None,
                               model="bench", chunks=chunks, vectors=vectors)
        matrix = np.vstack(all_vectors)
        qs = rng.standard_normal((queries, dim)).astype(np.float32)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        t0 = time.perf_counter()
        index.search(qs[0], k=5)
        cold = time.perf_counter() - t0
        def agent_p50() -> float:
            times = []
            for q in qs:
                t0 = time.perf_counter()
                index.search(q, k=5)
                times.append(time.perf_counter() - t0)
            return statistics.median(times) * 1000

        def numpy_p50() -> float:
            times = []
            for q in qs:
                t0 = time.perf_counter()
                scores = matrix @ q
                top = np.argpartition(-scores, 4)[:5]
                top[np.argsort(-scores[top])]
                times.append(time.perf_counter() - t0)
            return statistics.median(times) * 1000

        series = interleave({"agent search p50": agent_p50, "exact numpy p50": numpy_p50},
                            rounds, "ms")
        result: dict[str, Any] = {"chunks": len(matrix), "cold_ms": cold * 1000,
                                  "series": series}
        result.update(_sqlite_vec_p50(matrix, qs))
        index.close()
    return result


def _sqlite_vec_p50(matrix: Any, qs: Any) -> dict[str, float]:
    """sqlite-vec's vec0 KNN over the same vectors, where the extension loads (for comparison)."""
    try:
        import pysqlite3.dbapi2 as sqlite  # type: ignore[import-not-found]
        import sqlite_vec  # type: ignore[import-not-found]
    except ImportError:
        return {}
    conn = sqlite.connect(":memory:")
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{matrix.shape[1]}])")
    conn.executemany("INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                     ((i, row.tobytes()) for i, row in enumerate(matrix)))
    times = []
    for q in qs[:20]:
        t0 = time.perf_counter()
        conn.execute("SELECT rowid, distance FROM v WHERE embedding MATCH ? ORDER BY distance "
                     "LIMIT 5", (q.tobytes(),)).fetchall()
        times.append(time.perf_counter() - t0)
    return {"sqlite_vec_p50_ms": statistics.median(times) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved samples per side")
    args = parser.parse_args()
    from agent.logs import configure_logging

    configure_logging("warning", "console")
    s = bench_search(args.chunks, args.rounds)
    series = s["series"]
    report(f"(c) search over {s['chunks']:,} chunks, {args.rounds} interleaved rounds of 50 "
           "queries:", list(series.values()))
    r = ratio(series["agent search p50"], series["exact numpy p50"], higher_is_better=False)
    slower = Series("agent ÷ numpy", "×", [1 / v for v in r.values], r.loads)
    print(f"    agent ÷ numpy: {slower.spread('.2f')}; goal ≤ 2.5×: "
          f"{'met' if slower.median <= 2.5 else 'MISS'}; first search (loads vectors) "
          f"{s['cold_ms']:.0f} ms"
          + (f"; sqlite-vec vec0 p50 {s['sqlite_vec_p50_ms']:.1f} ms"
             if "sqlite_vec_p50_ms" in s else ""), flush=True)
    o = bench_overhead(args.jobs)
    print(f"(b) processor overhead, {o['jobs']} jobs ({o['in_done']} in done/): median "
          f"{o['median_ms']:.2f} ms, p99 {o['p99_ms']:.2f} ms per job, {o['jobs_per_s']:.0f} "
          f"jobs/s (goal median <= 5 ms)", flush=True)
    bench_end_to_end(args.docs, args.rounds)


if __name__ == "__main__":
    main()
