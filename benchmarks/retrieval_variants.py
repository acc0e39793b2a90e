"""Every ranking variant over every question set, and a paired test of the default against
today's vector search, on the indexes a ``retrieval_bench.py`` run left in its work folder.

    python benchmarks/retrieval_variants.py /tmp/retrieval-bench-XXXX

All sets are searched, ``FRESH_2`` and ``IDENTIFIERS_2`` included: run it only once they have
had their ``--final`` run (they were, on 2026-12-03), as it shows what they would say of each
choice. Prints top-1 / recall@5 per set, natural top-1 over all sets, and a two-sided sign
test over the natural questions where exactly one of the two searches is right at top 1.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import agent.search.engine as search  # noqa: E402
from agent.config.settings import Settings  # noqa: E402
from agent.search.engine import Searcher  # noqa: E402
from benchmarks.retrieval_bench import agent_runner, scores  # noqa: E402
from benchmarks.retrieval_questions import (  # noqa: E402
    FRESH,
    FRESH_2,
    IDENTIFIERS,
    IDENTIFIERS_2,
    NATURAL,
    halves,
)

VARIANTS = [  # index, mode, one result per document, whole-document weight, opening weight
    ("plain", "vector", False, 0.0, 0.0),
    ("plain", "vector", True, 0.0, 0.0),
    ("plain", "vector", True, 0.5, 0.25),
    ("plain", "hybrid", True, 0.0, 0.0),
    ("plain", "hybrid", True, 0.5, 0.25),
    ("clean", "hybrid", True, 0.0, 0.0),
    ("structure", "hybrid", True, 0.0, 0.0),
    ("full", "hybrid", True, 0.0, 0.0),
    ("full", "hybrid", True, 0.5, 0.0),
    ("full", "hybrid", True, 0.0, 0.25),
    ("full", "hybrid", True, 0.5, 0.25),
    ("full", "vector", True, 0.0, 0.0),
]
TODAY, DEFAULT = VARIANTS[0], VARIANTS[10]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="retrieval_bench's work folder")
    args = parser.parse_args()
    searchers: dict[str, Searcher] = {}
    for name in ("plain", "clean", "structure", "full"):
        settings = Settings.model_validate({"agent": {"data_dir": str(args.work / "data")}})
        settings.index.path = args.work / f"{name}.db"
        searchers[name] = Searcher(settings)
        searchers[name]._embedder = searchers["plain"].embedder  # one model
    dev, held_out = halves(NATURAL).values()
    sets = [("dev", dev, False), ("held-out", held_out, False), ("FRESH", FRESH, False),
            ("FRESH_2", FRESH_2, False), ("identifiers", IDENTIFIERS + IDENTIFIERS_2, True)]
    natural = NATURAL + FRESH + FRESH_2
    rights: dict[tuple[Any, ...], list[bool]] = {}
    print("| index, mode, results, whole / opening weights | "
          + " | ".join(f"{label} {len(items)}" for label, items, _ in sets)
          + f" | natural top-1, all {len(natural)} |")
    print("|" + "---|" * (len(sets) + 2))
    for variant in VARIANTS:
        name, mode, per_document, whole, opening = variant
        search.WHOLE_DOCUMENT_WEIGHT, search.OPENING_WEIGHT = whole, opening
        run = agent_runner(searchers[name], mode, per_document)
        cells, right = [], []
        for _, items, identifiers in sets:
            results = []
            for query, pages in items:
                hits = run(query)
                results.append(hits)
                if not identifiers:
                    right.append(bool(hits) and hits[0].page in pages)
            s = scores(results, items, identifiers=identifiers)
            cells.append(f"{s['top1']:.2f} / {s['recall@5']:.2f}")
        rights[variant] = right
        label = f"{name}, {mode}, {'per document' if per_document else 'every chunk'}, " \
                f"{whole:g} / {opening:g}"
        print(f"| {label} | " + " | ".join(cells) + f" | {sum(right) / len(right):.3f} |",
              flush=True)
    today, default = rights[TODAY], rights[DEFAULT]
    wins = sum(d and not t for t, d in zip(today, default, strict=True))
    losses = sum(t and not d for t, d in zip(today, default, strict=True))
    n = wins + losses
    p = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n)
    print(f"natural top-1: today {sum(today)}/{len(today)}, default {sum(default)}/"
          f"{len(default)}; the default alone right {wins}, today alone right {losses}; "
          f"two-sided sign test p = {p:.2f}")


if __name__ == "__main__":
    main()
