"""Which names in an inbox are files to ingest: include/exclude globs, compiled once."""

from __future__ import annotations

import fnmatch
import re

from agent.intake.skips import SkipKind, SkipReason


class NameFilter:
    """include/exclude globs applied to every part of a file's path inside the inbox."""

    def __init__(self, include: list[str], exclude: list[str]) -> None:
        self.include = include
        self.exclude = exclude
        self._exclude = re.compile("|".join(fnmatch.translate(p) for p in exclude) or "(?!)")
        self._include = re.compile("|".join(fnmatch.translate(p) for p in include) or "(?!)")

    def reason_to_skip(self, rel: str) -> SkipReason | None:
        parts = rel.split("/")
        for part in parts:
            if self._exclude.match(part):
                pattern = next(p for p in self.exclude if fnmatch.fnmatchcase(part, p))
                return SkipReason(SkipKind.EXCLUDED, f"excluded by pattern {pattern!r}")
        if not (self._include.match(parts[-1]) or self._include.match(rel)):
            return SkipReason(SkipKind.NOT_INCLUDED, "matches no include pattern")
        return None

    def skips_dir(self, name: str) -> bool:
        return bool(self._exclude.match(name))
