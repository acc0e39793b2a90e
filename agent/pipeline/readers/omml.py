"""Office Math (OMML, inside DOCX) as one line of text a person would type: fractions as
``(a)/(b)``, roots as ``√(x)``, powers as ``x^2`` (``x²`` for a digit), indices as ``x_i``,
delimiters and n-ary operators (``∑``, ``∫``) with their limits. Word draws these from
structure, not from text runs, so a reader that keeps only runs leaves "For ," behind."""

from __future__ import annotations

from typing import Any

M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
SUPERSCRIPT = str.maketrans("0123456789+-=()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿ")


def math_text(element: Any) -> str:
    """The linear text of an ``m:oMath`` (or any OMML) element."""
    return " ".join(_linear(element).split())


def _linear(node: Any) -> str:
    tag = node.tag if isinstance(node.tag, str) else ""  # an XML comment has no str tag
    if not tag.startswith(M):  # Word's own elements inside math: only its run properties
        return "" if not tag or tag.endswith("}rPr") else _children(node)
    name = tag.removeprefix(M)
    if name == "t":
        return str(node.text or "")
    if name.endswith("Pr"):  # properties: no text
        return ""
    part = {child.tag.removeprefix(M): child for child in node
            if isinstance(child.tag, str) and child.tag.startswith(M)}
    text = {key: _linear(child) for key, child in part.items()}
    if name == "f":
        return f"{_grouped(text.get('num', ''))}/{_grouped(text.get('den', ''))}"
    if name == "rad":
        degree = text.get("deg", "")
        return f"{degree}√{_grouped(text.get('e', ''), always=True)}"
    if name in ("sSup", "sSub", "sSubSup", "sPre"):
        base = text.get("e", "")
        sub, sup = text.get("sub", ""), text.get("sup", "")
        return base + (f"_{_grouped(sub)}" if sub else "") + (_power(sup) if sup else "")
    if name == "d":
        props = part.get("dPr")
        begin, end, between = "(", ")", "|"
        if props is not None:
            begin = _val(props, "begChr", begin)
            end = _val(props, "endChr", end)
            between = _val(props, "sepChr", between)
        items = [_linear(child) for child in node if child.tag == f"{M}e"]
        return f"{begin}{between.join(items)}{end}"
    if name == "nary":
        props = part.get("naryPr")
        sign = _val(props, "chr", "∫") if props is not None else "∫"
        sub, sup = text.get("sub", ""), text.get("sup", "")
        limits = (f"_{_grouped(sub)}" if sub else "") + (f"^{_grouped(sup)}" if sup else "")
        return f"{sign}{limits} {text.get('e', '')}"
    if name in ("limLow", "limUpp"):
        return f"{text.get('e', '')}_{_grouped(text.get('lim', ''))}"
    return _children(node)


def _children(node: Any) -> str:
    return "".join(_linear(child) for child in node)


def _grouped(text: str, always: bool = False) -> str:
    """``text`` in parentheses unless it is one symbol or number."""
    text = text.strip()
    simple = len(text) <= 1 or text.replace(".", "").isalnum()
    return text if simple and not always else f"({text})"


def _power(text: str) -> str:
    text = text.strip()
    if text and all(c in "0123456789" for c in text):
        return text.translate(SUPERSCRIPT)
    return f"^{_grouped(text)}"


def _val(props: Any, child: str, default: str) -> str:
    found = props.find(f"{M}{child}")
    if found is None:
        return default
    return str(found.get(f"{M}val", default))
