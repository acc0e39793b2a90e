"""The development questions a retrieval_bench index misses at top 1, with what came first.

    python benchmarks/retrieval_misses.py /tmp/retrieval-bench-XXXX [full|plain|…] [hybrid|vector|lexical]

Reads an index that ``retrieval_bench.py`` left in its work folder and searches it as the agent
does (one result per document). Only ``NATURAL`` and ``FRESH`` are searched: ``FRESH_2`` is the
held-out set of the next ranking change and must stay unseen until its ``--final`` run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config import Settings  # noqa: E402
from agent.search import Searcher, SearchRequest  # noqa: E402
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
    top1 = top5 = 0
    for query, pages in questions:
        response = searcher.answer(SearchRequest(query, k=10, mode=args.mode))
        got = [r.chunk.source_name for r in response.results]
        top1 += bool(got) and got[0] in pages
        top5 += any(page in pages for page in got[:5])
        if not got or got[0] not in pages:
            rank = next((i for i, page in enumerate(got, 1) if page in pages), None)
            print(f"{query!r}: wanted {pages[0]} (rank {rank}); first {got[:3]}")
    print(f"top-1 {top1 / len(questions):.3f}, recall@5 {top5 / len(questions):.3f} "
          f"over {len(questions)} development questions")


if __name__ == "__main__":
    main()
