"""The development questions a retrieval_bench index misses at top 1, with what came first.

    python benchmarks/retrieval_misses.py /tmp/retrieval-bench-XXXX [full|plain|…] [hybrid|vector|lexical]

Reads an index that ``retrieval_bench.py`` left in its work folder and searches it as the agent
does (one result per document). Only ``NATURAL`` and ``FRESH`` are searched, the sets that were
development questions when it was written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config.settings import Settings  # noqa: E402
from agent.search.engine import Searcher, SearchRequest  # noqa: E402
from benchmarks.retrieval_bench import Hit, scores  # noqa: E402
from benchmarks.retrieval_questions import FRESH, NATURAL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="retrieval_bench's work folder")
    parser.add_argument("index", nargs="?", default="full")
    parser.add_argument("mode", nargs="?", default="hybrid")
    args = parser.parse_args()
    settings = Settings.model_validate({"agent": {"data_dir": str(args.work / "data")}})
    settings.index.path = args.work / f"{args.index}.db"
    searcher = Searcher(settings)
    questions = NATURAL + FRESH
    results = []
    for query, pages in questions:
        response = searcher.answer(SearchRequest(query, k=10, mode=args.mode))
        hits = [Hit(r.chunk.source_name, r.chunk.text) for r in response.results]
        results.append(hits)
        got = [hit.page for hit in hits]
        if not got or got[0] not in pages:
            rank = next((i for i, page in enumerate(got, 1) if page in pages), None)
            print(f"{query!r}: wanted {pages[0]} (rank {rank}); first {got[:3]}")
    s = scores(results, questions)
    print(f"top-1 {s['top1']:.3f}, recall@5 {s['recall@5']:.3f} "
          f"over {len(questions)} development questions")


if __name__ == "__main__":
    main()
