"""End-to-end ingestion vs bare fastembed, processor overhead, and search latency — one run.

    python benchmarks/pipeline_bench.py                 # ~200 documents, 5,000 jobs, 100k chunks
    python benchmarks/pipeline_bench.py --docs 40 --jobs 500 --chunks 20000   # quick

(a) The real agent (`ingest-agent run --drain`, default settings) ingests a generated corpus of
    mixed documents; then bare fastembed embeds the very same chunk texts with the same model,
    batch size and threads. Ratio = agent chunks/s ÷ bare chunks/s (goal ≥ 0.9). The worker's
    peak RSS is read from the kernel (goal ≤ 1 GB).
(b) Processor overhead: claim, moves, state updates and IPC with a read-only pipeline
    (goal ≤ 5 ms per job, median).
(c) Search over N stored chunks vs an exact numpy search over the same vectors in memory
    (goal p50 ≤ 2.5×).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def bench_end_to_end(n_docs: int) -> dict[str, float]:
    from agent.config import load_config
    from agent.queue import open_queue

    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        base = Path(tmp)
        (base / "inbox").mkdir()
        kinds = make_corpus(base / "inbox", n_docs)
        config = write_config(base)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run([sys.executable, "-m", "agent", "--config", str(config), "run",
                               "--drain"], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        settings = load_config(config, environ={})
        with open_queue(settings) as q:
            jobs = q.list_jobs(limit=100_000)
        done = [j for j in jobs if j.status == "completed"]
        failed = [j for j in jobs if j.status != "completed"]
        first = min(j.started_at or j.created_at for j in jobs)
        last = max(j.finished_at or 0 for j in jobs)
        agent_seconds = last - first
        conn = sqlite3.connect(settings.index_path)
        texts = [t for (t,) in conn.execute("SELECT text FROM chunks ORDER BY id")]
        conn.close()

        from agent.pipeline.embed import Embedder

        embedder = Embedder(settings.embedding, settings.agent.data_dir)
        model = embedder.model
        t0 = time.perf_counter()
        for _ in model.embed(texts, batch_size=settings.embedding.batch_size):
            pass
        bare_seconds = time.perf_counter() - t0
    agent_rate = len(texts) / agent_seconds
    bare_rate = len(texts) / bare_seconds
    return {
        "docs": len(jobs), "completed": len(done), "failed": len(failed), "chunks": len(texts),
        "kinds": kinds, "agent_seconds": agent_seconds, "agent_files_per_s": len(jobs) / agent_seconds,
        "agent_chunks_per_s": agent_rate, "bare_chunks_per_s": bare_rate,
        "ratio": agent_rate / bare_rate, "peak_rss_mb": max(peak_kb, before) / 1024,
    }


def bench_overhead(n_jobs: int) -> dict[str, float]:
    from agent.config import load_config
    from agent.folders import build_inboxes, identify
    from agent.processor import Processor
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


def bench_search(n_chunks: int, queries: int = 50) -> dict[str, float]:
    import numpy as np

    from agent.pipeline.chunk import Chunk
    from agent.pipeline.index_sqlite import SQLiteIndex

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
        ours, bare = [], []
        for q in qs:
            t0 = time.perf_counter()
            index.search(q, k=5)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            scores = matrix @ q
            top = np.argpartition(-scores, 4)[:5]
            top[np.argsort(-scores[top])]
            bare.append(time.perf_counter() - t0)
        result = {"chunks": len(matrix), "cold_ms": cold * 1000,
                  "agent_p50_ms": statistics.median(ours) * 1000,
                  "numpy_p50_ms": statistics.median(bare) * 1000}
        result["ratio"] = result["agent_p50_ms"] / result["numpy_p50_ms"]
        result.update(_sqlite_vec_p50(matrix, qs))
        index.close()
    return result


def _sqlite_vec_p50(matrix: object, qs: object) -> dict[str, float]:
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
    args = parser.parse_args()
    from agent.logs import configure_logging

    configure_logging("warning", "console")
    s = bench_search(args.chunks)
    print(f"(c) search over {s['chunks']:,} chunks: agent p50 {s['agent_p50_ms']:.1f} ms, "
          f"exact numpy p50 {s['numpy_p50_ms']:.1f} ms -> {s['ratio']:.2f}x (goal <= 2.5); "
          f"first search (loads vectors) {s['cold_ms']:.0f} ms"
          + (f"; sqlite-vec vec0 p50 {s['sqlite_vec_p50_ms']:.1f} ms"
             if "sqlite_vec_p50_ms" in s else ""), flush=True)
    o = bench_overhead(args.jobs)
    print(f"(b) processor overhead, {o['jobs']} jobs ({o['in_done']} in done/): median "
          f"{o['median_ms']:.2f} ms, p99 {o['p99_ms']:.2f} ms per job, {o['jobs_per_s']:.0f} "
          f"jobs/s (goal median <= 5 ms)", flush=True)
    e = bench_end_to_end(args.docs)
    print(f"(a) end to end: {e['docs']} docs {e['kinds']} -> {e['completed']} completed, "
          f"{e['failed']} failed, {e['chunks']} chunks in {e['agent_seconds']:.1f} s: "
          f"{e['agent_files_per_s']:.2f} files/s, {e['agent_chunks_per_s']:.1f} chunks/s; "
          f"bare fastembed on the same chunks {e['bare_chunks_per_s']:.1f} chunks/s -> "
          f"{e['ratio']:.2f}x (goal >= 0.9); peak RSS {e['peak_rss_mb']:.0f} MB (goal <= 1024)")


if __name__ == "__main__":
    main()
