"""What the streaming readers of zipped XML (DOCX, OpenDocument, PPTX, EPUB) share: a parser
that resolves no entity and touches no DTD or network, and dropping what has been read."""

from __future__ import annotations

from typing import Any

SAFE_PARSING: dict[str, Any] = {"resolve_entities": False, "no_network": True,
                                "load_dtd": False, "remove_comments": True, "remove_pis": True}


def safe_parser() -> Any:
    from lxml import etree

    return etree.XMLParser(**SAFE_PARSING)


def forget(element: Any) -> None:
    """Drop a read element, and what came before it, from the tree iterparse is building, so
    memory holds one paragraph, row or slide, never the document."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
