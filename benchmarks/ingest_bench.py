"""Ingestion speed on a real corpus against the strongest fair floors and LlamaIndex.

    python benchmarks/ingest_bench.py                     # 64 Python doc pages, 5 rounds
    python benchmarks/ingest_bench.py --pages 16 --rounds 3

Corpus: ``--pages`` pages of Python's HTML documentation (python3-doc, library/, evenly spread).
Each round runs every side once, in alternating order, with the load average beside it:
- agent: ``ingest-agent run --drain`` at default settings on a fresh data folder (the real
  watcher, queue, worker subprocess, readers, chunker, model and index), timed from the first
  job's start to the last job's end; peak RSS of the agent and its worker;
- bare fastembed on the very chunk texts the agent embedded (same model files, batch size and
  threads as the agent's settings), once in the agent's order and once sorted by length across
  all documents, and once more sorted through the agent's own onnxruntime session (memory
  pattern off) — the strongest of the three is the floor;
- LlamaIndex (``pip install -e '.[peer]'``): SimpleDirectoryReader with HTMLTagReader,
  SentenceSplitter(200, 32) on the model's tokenizer, FastEmbedEmbedding on the same local model
  folder (batch 16, 2 threads), IngestionPipeline with a docstore; in its own process, so its
  peak RSS is its own.
Chunking differs between the agent and LlamaIndex, so they are compared in tokens/s (tokens the
model saw, by its tokenizer) as well as files/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import Series, interleave, ratio, report, verdict  # noqa: E402

DOCS = Path("/usr/share/doc/python3-doc/html")


def pages(n: int) -> list[Path]:
    files = sorted(DOCS.glob("library/*.html"))
    if not files:
        sys.exit(f"Python docs not found under {DOCS}: apt-get install python3-doc")
    step = max(1, len(files) // n)
    return files[::step][:n]


class Agent:
    """One drained run of the real agent per call; remembers the texts it embedded."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.texts: list[str] = []
        self.rss = Series("agent peak RSS", "MB")

    def __call__(self) -> float:
        from agent.pipeline.chunk import Chunk
        from tests.helpers import agent_config

        with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
            base = Path(tmp)
            inbox = base / "inbox"
            inbox.mkdir()
            for f in self.files:
                shutil.copy(f, inbox / f.name)
            config = agent_config(base, agent={"log_level": "warning"})
            # GNU time reports the largest RSS among the agent and its worker, for this run only.
            proc = subprocess.Popen(["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m",
                                     "agent", "--config", str(config), "run", "--drain"],
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(err[-3000:])
            self.rss.add(int(err.rsplit("maxrss_kb=", 1)[1].split()[0]) / 1024)
            queue = sqlite3.connect(base / "data" / "queue.db")
            first, last, done = queue.execute(
                "SELECT min(started_at), max(finished_at), sum(status = 'completed') "
                "FROM job_queue").fetchone()
            index = sqlite3.connect(base / "data" / "index.db")
            self.texts = [Chunk(0, text, 0, 0, None, 0, heading).embed_text for text, heading
                          in index.execute("SELECT text, heading FROM chunks ORDER BY id")]
            if done != len(self.files):
                raise SystemExit(f"only {done} of {len(self.files)} pages completed")
            return len(self.texts) / (last - first)


def bare(model: object, agent: Agent, sort: bool, batch: int) -> float:
    texts = sorted(agent.texts, key=len) if sort else list(agent.texts)
    started = time.perf_counter()
    for _ in model.embed(texts, batch_size=batch):  # type: ignore[attr-defined]
        pass
    return len(texts) / (time.perf_counter() - started)


LLAMA = r'''
import json, resource, sys, time
from pathlib import Path
from llama_index.core import SimpleDirectoryReader
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.embeddings.fastembed import FastEmbedEmbedding
from llama_index.readers.file import HTMLTagReader
from tokenizers import Tokenizer
files, folder, tokenizer_file = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
tok = Tokenizer.from_file(tokenizer_file); tok.no_padding(); tok.no_truncation()
count = lambda text: tok.encode(text, add_special_tokens=False).ids
embed = FastEmbedEmbedding(model_name="sentence-transformers/all-MiniLM-L6-v2",
                           specific_model_path=folder, threads=2, embed_batch_size=16)
started = time.perf_counter()
docs = SimpleDirectoryReader(input_files=files,
                             file_extractor={".html": HTMLTagReader(tag="section")}).load_data()
pipeline = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=200, chunk_overlap=32,
                             tokenizer=count), embed], docstore=SimpleDocumentStore())
nodes = pipeline.run(documents=docs)
seconds = time.perf_counter() - started
tokens = sum(len(count(n.get_content(metadata_mode="embed"))) + 2 for n in nodes)
print(json.dumps({"seconds": seconds, "chunks": len(nodes), "tokens": tokens,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()

    from fastembed import TextEmbedding

    from agent.config.settings import Settings
    from agent.pipeline.chunk import Chunker
    from agent.pipeline.embed import Embedder

    files = pages(args.pages)
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-model-"))
    settings = Settings.model_validate({"agent": {"data_dir": str(work)}})
    embedder = Embedder(settings.embedding, settings.agent.data_dir)
    batch, threads = settings.embedding.batch_size, settings.embedding.threads
    # fastembed as a user would load it (its own onnxruntime session options), beside the
    # agent's session (the memory pattern off): the faster of them is the floor.
    plain = TextEmbedding(settings.embedding.model, threads=threads,
                          specific_model_path=str(Path(embedder.tokenizer_file).parent))
    counter = Chunker(embedder.tokenizer_file, 200, 32)
    agent = Agent(files)
    agent()  # warm the file cache and learn the chunk texts before the timed rounds
    sides: dict[str, Callable[[], float]] = {"agent": agent,
             "bare fastembed, agent's order": lambda: bare(plain, agent, False, batch),
             "bare fastembed, sorted by length": lambda: bare(plain, agent, True, batch),
             "bare, agent's session, sorted": lambda: bare(embedder.model, agent, True, batch)}
    llama: dict[str, Series] = {k: Series(f"LlamaIndex {k}", u) for k, u in
                                (("files/s", "files/s"), ("tokens/s", "tokens/s"),
                                 ("rss", "MB"))}
    have_llama = not args.no_peer
    if have_llama:
        try:
            import llama_index.core  # noqa: F401
        except ImportError:
            print("(LlamaIndex row skipped: pip install -e '.[peer]')")
            have_llama = False
    if have_llama:
        def run_llama() -> float:
            out = subprocess.run(
                [sys.executable, "-c", LLAMA, json.dumps([str(f) for f in files]),
                 str(Path(embedder.tokenizer_file).parent), str(embedder.tokenizer_file)],
                capture_output=True, text=True, check=True)
            data = json.loads(out.stdout.strip().splitlines()[-1])
            llama["files/s"].add(len(files) / data["seconds"])
            llama["tokens/s"].add(data["tokens"] / data["seconds"])
            llama["rss"].add(data["rss_mb"])
            return float(data["chunks"] / data["seconds"])
        sides["LlamaIndex"] = run_llama
    series = interleave(sides, args.rounds, "chunks/s")
    tokens = sum(counter.count_tokens(t) + 2 for t in agent.texts)
    print(f"{len(files)} Python doc pages, {len(agent.texts):,} agent chunks, "
          f"{tokens:,} tokens the model saw")
    report("chunks/s", list(series.values()))
    agent_files = Series("agent files/s", "files/s")
    agent_tokens = Series("agent tokens/s", "tokens/s")
    for value, load in zip(series["agent"].values, series["agent"].loads, strict=True):
        agent_files.values.append(value * len(files) / len(agent.texts))
        agent_tokens.values.append(value * tokens / len(agent.texts))
        agent_files.loads.append(load)
        agent_tokens.loads.append(load)
    report("the agent, real pages", [agent_files, agent_tokens, agent.rss])
    floors = [series["bare fastembed, agent's order"], series["bare fastembed, sorted by length"],
              series["bare, agent's session, sorted"]]
    strongest = max(floors, key=lambda s: s.median)
    for floor in floors:
        r = ratio(series["agent"], floor)
        print(f"    agent ÷ {floor.name}: {r.spread('.2f')}"
              + (f"; strongest floor, {verdict(r, 0.95)}" if floor is strongest else ""))
    if have_llama:
        report("LlamaIndex, same pages", list(llama.values()))
        print(f"    agent ÷ LlamaIndex files/s: {ratio(agent_files, llama['files/s']).spread('.2f')}")
        print(f"    agent ÷ LlamaIndex tokens/s: {ratio(agent_tokens, llama['tokens/s']).spread('.2f')}")


if __name__ == "__main__":
    main()
