"""Chunking speed: megabytes of text per second through the chunker (goal ≥ 20 MB/s).

    python benchmarks/chunk_bench.py              # 60 MB one-line text + Python's docs, 5 samples
    python benchmarks/chunk_bench.py --mb 6 --samples 3    # quick

Inputs, each chunked by a fresh chunker (its word table starts empty):
(a) the text of Python's HTML documentation (Debian ``python3-doc``, library/ and tutorial/
    pages, extracted by the agent's own HTML reader), as it is; and once more by a chunker that
    has already chunked it (a worker's steady state: the words of such text are in its table,
    which keeps up to 500,000 distinct words across documents);
(b) a one-line file of ``--mb`` megabytes made of that same prose with every line break
    removed (the kind of file that used to hold a worker for minutes);
(c) a pessimistic one-line text where one word in twenty is a never-seen identifier, so the
    distinct words keep growing with the size (every one must be counted).
The baseline is what any token-exact chunker that runs the tokenizer over the whole text must
do at least: one ``encode`` of the same text, with offsets.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import interleave, ratio, report, verdict  # noqa: E402

DOCS = Path("/usr/share/doc/python3-doc/html")


def one_line_prose(prose: str, megabytes: float) -> str:
    line = " ".join(prose.split())
    return " ".join([line] * int(megabytes * 1e6 / len(line) + 1))[: int(megabytes * 1e6)]


def one_line_text(megabytes: float) -> str:
    rng = random.Random(12)
    words = ("the harbour keeper logs every ship that passes the northern cape at dawn while "
             "engineers measure pressure, tide and wind; figures 4.10 and 2026-11-28 recur "
             "with names like os.replace, SO_REUSEADDR and ERR_SSL_PROTOCOL").split()
    out, size = [], 0
    while size < megabytes * 1e6:
        word = rng.choice(words) if rng.random() > 0.05 else f"id{rng.randrange(10**6)}"
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def docs_text() -> str | None:
    from agent.pipeline.readers.registry import extract

    pages = sorted(DOCS.glob("library/*.html")) + sorted(DOCS.glob("tutorial/*.html"))
    if not pages:
        return None
    return "\n\n".join(s.text for page in pages for s in extract(page, "text/html"))


def chunker_rate(text: str, warm: bool = False) -> float:
    from agent.pipeline.chunk import Chunker
    from agent.pipeline.embed import bundled_tokenizer
    from agent.pipeline.readers.extract import Section

    chunker = Chunker(bundled_tokenizer(), 200, 32)
    if warm:
        sum(1 for _ in chunker.chunk([Section(text)]))
    started = time.perf_counter()
    n = sum(1 for _ in chunker.chunk([Section(text)]))
    elapsed = time.perf_counter() - started
    assert n > 0
    return len(text.encode()) / 1e6 / elapsed


def tokenizer_rate(text: str) -> float:
    from tokenizers import Tokenizer

    from agent.pipeline.embed import bundled_tokenizer

    tokenizer = Tokenizer.from_file(str(bundled_tokenizer()))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    started = time.perf_counter()
    tokenizer.encode(text, add_special_tokens=False)
    return len(text.encode()) / 1e6 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=60.0)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--baseline-mb", type=float, default=6.0,
                        help="size of the slice both sides chunk for the ratio")
    args = parser.parse_args()
    docs = docs_text()
    inputs = {}
    if docs is None:
        print(f"(Python docs not found under {DOCS}: apt-get install python3-doc)")
    else:
        inputs[f"(a) Python docs text, {len(docs.encode()) / 1e6:.1f} MB"] = docs
        inputs[f"(b) one-line file of that prose, {args.mb:g} MB"] = one_line_prose(docs, args.mb)
    inputs[f"(c) one-line text, 1 word in 20 never seen, {args.mb / 3:g} MB"] = \
        one_line_text(args.mb / 3)
    chunker_rate("warm up: numpy, the whitespace table")
    for label, text in inputs.items():
        sides = {"chunker": functools.partial(chunker_rate, text)}
        if label.startswith("(a)"):
            sides["chunker, steady state"] = functools.partial(chunker_rate, text, warm=True)
        whole = interleave(sides, args.samples, "MB/s")
        report(f"{label}: ingest-agent chunker", list(whole.values()))
        for name, series in whole.items():
            print(f"    {name}: goal ≥ 20 MB/s: {'met' if series.median >= 20 else 'MISS'}")
        part = text[: int(args.baseline_mb * 1e6)]
        pair = interleave({"chunker": functools.partial(chunker_rate, part),
                           "tokenizer encode": functools.partial(tokenizer_rate, part)},
                          args.samples, "MB/s")
        report(f"    same first {len(part.encode()) / 1e6:.1f} MB, chunker vs the tokenizer "
               "over all of it", list(pair.values()))
        r = ratio(pair["chunker"], pair["tokenizer encode"])
        print(f"    ratio {r.spread('.2f')}; {verdict(r, 1.0)}")


if __name__ == "__main__":
    main()
