"""HTML main-content extractors on Python's documentation: speed, boilerplate left, code and
headings kept — the measurement behind the agent's choice of resiliparse.

    pip install -e '.[peer]'     # trafilatura, justext, readability-lxml (resiliparse is a dependency)
    python benchmarks/html_bench.py [--samples 5]

Pages: every third library/ page and every tutorial/ page of python3-doc. "Boilerplate" counts
navigation strings of these pages that survive ("Previous topic", "Table of Contents", …);
"code kept" counts the first long line of each <pre> block found in the output; "h2 kept"
the page's h2 headings. The agent's old reader (all visible text) is the first row.
Speed: every reader reads all pages once per sample, interleaved (benchmarks/measure.py);
the content columns come from the first, warm-up pass (the readers are deterministic).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import interleave, ratio  # noqa: E402

DOCS = Path("/usr/share/doc/python3-doc/html")
BOILERPLATE = ["Table of Contents", "Previous topic", "Next topic", "Keyboard shortcuts",
               "Report a Bug", "Show Source", "Navigation", "This Page", "Quick search",
               "modules |"]


def all_visible_text(markup: str) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    for tag in ("script", "style", "noscript", "template", "head"):
        for node in tree.css(tag):
            node.decompose()
    root = tree.body or tree.root
    return root.text(separator="\n", strip=True) if root is not None else ""


def resiliparse(markup: str) -> str:
    from agent.pipeline.readers.extract import _main_content

    return _main_content(markup)


def trafilatura(markup: str) -> str:
    import trafilatura as t

    return t.extract(markup, include_tables=True, favor_recall=True) or ""


def justext(markup: str) -> str:
    import justext as j

    paragraphs = j.justext(markup.encode(), j.get_stoplist("English"))
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate)


def readability(markup: str) -> str:
    from readability import Document
    from selectolax.lexbor import LexborHTMLParser

    return LexborHTMLParser(Document(markup).summary()).text(separator="\n", strip=True)


def probes(markup: str) -> tuple[list[str], list[str]]:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    code = []
    for node in tree.css("pre"):
        line = next((x.strip() for x in node.text().splitlines() if len(x.strip()) > 25), None)
        if line:
            code.append(line)
    headings = [" ".join(n.text().replace("¶", "").split()) for n in tree.css("h2")]
    return code[:3], headings[:5]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5, help="interleaved timing samples")
    args = parser.parse_args()
    pages = sorted(DOCS.glob("library/*.html"))[::3] + sorted(DOCS.glob("tutorial/*.html"))
    if not pages:
        sys.exit(f"Python docs not found under {DOCS}: apt-get install python3-doc")
    markup = {p: p.read_text(errors="replace") for p in pages}
    expected = {p: probes(m) for p, m in markup.items()}
    readers: dict[str, Callable[[str], str]] = {
        "all visible text (old reader)": all_visible_text, "resiliparse (chosen)": resiliparse,
        "trafilatura": trafilatura, "justext": justext, "readability-lxml": readability}
    outputs: dict[str, dict[Path, str]] = {}
    for name, reader in readers.items():
        try:
            outputs[name] = {p: reader(m) for p, m in markup.items()}
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}): pip install -e '.[peer]'")

    def timed(reader: Callable[[str], str]) -> Callable[[], float]:
        def sample() -> float:
            started = time.perf_counter()
            for m in markup.values():
                reader(m)
            return (time.perf_counter() - started) / len(pages) * 1000
        return sample

    series = interleave({name: timed(readers[name]) for name in outputs}, args.samples,
                        unit="ms/page")
    chosen = series.get("resiliparse (chosen)")
    print(f"{len(pages)} pages of {DOCS}; {args.samples} interleaved samples")
    print("| reader | ms/page (median, min–max) | load | MB of text | boilerplate strings left "
          "| code lines kept | h2 kept |")
    print("|---|---|---|---|---|---|---|")
    for name, out in outputs.items():
        s = series[name]
        flat = {p: " ".join(t.split()) for p, t in out.items()}
        left = sum(sum(b in t for b in BOILERPLATE) for t in out.values())
        code = sum(sum(" ".join(line.split()) in flat[p] for line in c)
                   for p, (c, _) in expected.items())
        heads = sum(sum(h in flat[p] for h in hs) for p, (_, hs) in expected.items())
        n_code = sum(len(c) for c, _ in expected.values())
        n_heads = sum(len(h) for _, h in expected.values())
        size = sum(len(t) for t in out.values()) / 1e6
        print(f"| {name} | {s.median:.1f} ({min(s.values):.1f}–{max(s.values):.1f}) | "
              f"{min(s.loads):.1f}–{max(s.loads):.1f} | {size:.2f} | {left} | {code}/{n_code} | "
              f"{heads}/{n_heads} |")
    if chosen is not None:
        for name, s in series.items():
            if s is not chosen:
                r = ratio(chosen, s, higher_is_better=False)
                print(f"resiliparse is {r.median:.1f}× as fast as {name} "
                      f"({min(r.values):.1f}–{max(r.values):.1f})")


if __name__ == "__main__":
    main()
