"""Why the watcher leaves an entry of an inbox alone: a kind (the metric's label) and the words
of the log line, made together so neither is read back from the other."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SkipKind(StrEnum):
    EXCLUDED = "excluded"
    NOT_INCLUDED = "not_included"
    SYMLINK_OUTSIDE = "symlink_outside"
    SYMLINK = "symlink"
    FOLDER = "folder"
    NOT_REGULAR = "not_regular"
    UNREADABLE = "unreadable"
    UNQUEUEABLE = "unqueueable"


@dataclass(frozen=True, slots=True)
class SkipReason:
    kind: SkipKind
    text: str  # what the log line says

    def __str__(self) -> str:
        return self.text
