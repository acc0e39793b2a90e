"""A config that does not validate, said in one line per problem: the key, what is wrong with
it, and for an unknown key the one it was probably meant to be."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

_MESSAGES = {
    "greater_than_equal": "must be ≥ {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be ≤ {le}",
    "less_than": "must be < {lt}",
    "extra_forbidden": "unknown key (check its spelling and section)",
    "missing": "is required",
    "string_pattern_mismatch": "must match {pattern}",
    "literal_error": "must be one of {expected}",
}


def describe_validation_error(where: str, exc: ValidationError, overrides: Mapping[str, str],
                              root: type[BaseModel]) -> str:
    """One line per problem, naming the key (``inbox[0].settle_seconds``), what is wrong,
    a close key for a misspelt one, and the variable that set it if one did."""
    lines = []
    for err in exc.errors():
        key = key_path(err["loc"])
        template = _MESSAGES.get(err["type"])
        ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in (err.get("ctx") or {}).items()}
        try:
            reason = template.format(**ctx) if template else err["msg"]
        except KeyError:
            reason = err["msg"]
        reason = reason.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason += _suggestion(tuple(err["loc"]), root)
        if key in overrides:
            reason += f" (set by {overrides[key]})"
        lines.append(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")
    return "\n".join(lines)


def _valid_keys(loc: tuple[Any, ...], root: type[BaseModel]) -> list[str]:
    """The keys allowed where ``loc`` (the unknown key's location) points."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        model = inner[0] if inner else annotation
        if not isinstance(model, type) or not issubclass(model, BaseModel):
            return []
    return [name for name, f in model.model_fields.items() if not f.exclude]


def _suggestion(loc: tuple[Any, ...], root: type[BaseModel]) -> str:
    import difflib

    close = difflib.get_close_matches(str(loc[-1]), _valid_keys(loc, root), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
