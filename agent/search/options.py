"""The options of ``ingest-agent search``, defined once: the click command is built from this
table, and the quick path (``agent.search.quick``, which must not import click) parses with it.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Mode = Literal["vector", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("vector", "lexical", "hybrid")


class SearchOption(NamedTuple):  # not a dataclass: importing dataclasses costs the quick path 14 ms
    names: tuple[str, ...]  # as typed: "-k", "--mode"
    dest: str  # the search request's key, and the click parameter's name
    kind: Literal["value", "int", "choice", "multiple", "flag"]
    help: str
    metavar: str | None = None


SEARCH_OPTIONS = (
    SearchOption(("-k",), "k", "int", "How many results to return (default 5)."),
    SearchOption(("--mode",), "mode", "choice",
                 "Meaning (vector), words (lexical, needs no model) or both fused "
                 "(default: search.mode, hybrid)."),
    SearchOption(("--chunks",), "chunks", "flag",
                 "Every matching chunk, not only each document's best."),
    SearchOption(("--all-copies",), "all_copies", "flag",
                 "Show near-duplicate documents apart (by default one result names its copies: "
                 "'also in')."),
    SearchOption(("--inbox",), "inbox", "value", "Only documents from this inbox."),
    SearchOption(("--type",), "types", "multiple",
                 "Only this type: pdf, html, md, txt, csv, json, docx or a MIME type "
                 "(repeatable).", metavar="TYPE"),
    SearchOption(("--path",), "path", "value",
                 "Only files whose name or location matches this glob (e.g. '*.pdf').",
                 metavar="GLOB"),
    SearchOption(("--after",), "after", "value",
                 "Only documents indexed at or after this date or time."),
    SearchOption(("--before",), "before", "value",
                 "Only documents indexed before this date or time."),
    SearchOption(("--json",), "json", "flag", "Print machine-readable JSON."),
)
DEFAULT_K = 5
K_RANGE = (1, 1000)
