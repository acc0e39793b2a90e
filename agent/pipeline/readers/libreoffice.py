"""LibreOffice, headless, as a converter of last resort: the formats the agent has no reader
for (PowerPoint 97-2003) and the valid files its readers trip on (a .doc catdoc cannot parse,
a Strict Open XML workbook) are converted to their modern form in a scratch folder and read by
the agent's own reader. Optional: without it those files fail saying what to install.

The conversion runs under coreutils ``timeout``, which kills its whole process group when the
time is up, even if the worker that started it was killed meanwhile; each conversion has a
profile of its own, so two agents never share one.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import PermanentError
from agent.pipeline.readers.extract import ExtractOptions
from agent.pipeline.readers.outline import Section
from agent.stages import Stage

CONVERT_SECONDS = 300  # a conversion running longer than this is killed, with its children


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.EXTRACT)


def bounded(command: list[str]) -> list[str]:
    """``command`` under coreutils ``timeout`` (its process group killed after CONVERT_SECONDS)."""
    return ["timeout", "--kill-after=10", str(CONVERT_SECONDS), *command]


def office_program() -> str | None:
    """LibreOffice's command, when it is installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def converted_or_fail(path: Path, kind: str, target: str, reader: Any,
                      options: ExtractOptions, problem: str) -> Iterator[Section]:
    """The file read after LibreOffice converted it, for a file its own reader cannot read
    (``problem`` says why); the problem, with what to install, when LibreOffice is missing."""
    if office_program() is None:
        raise _fail(f"{problem}; LibreOffice reads it: sudo apt-get install "
                    "libreoffice-calc-nogui")
    return converted(path, kind, target, reader, options)


def converted(path: Path, kind: str, target: str, reader: Any,
              options: ExtractOptions) -> Iterator[Section]:
    """The file converted by LibreOffice to ``target`` in a scratch folder, read by
    ``reader``; the scratch folder (and LibreOffice's profile) goes when reading ends."""
    office = office_program()
    assert office is not None
    with tempfile.TemporaryDirectory(prefix=f"ingest-{kind}-") as scratch:
        folder = Path(scratch)
        source = folder / f"file.{kind}"  # the sender's name never reaches a command line
        shutil.copyfile(path, source)
        done = subprocess.run(
            bounded([office, f"-env:UserInstallation=file://{folder / 'profile'}",
                     "--headless", "--norestore", "--convert-to", target,
                     "--outdir", str(folder / "out"), str(source)]),
            capture_output=True, check=False)
        result = folder / "out" / f"file.{target}"
        if done.returncode in (124, 137):
            raise _fail(f"LibreOffice took longer than {CONVERT_SECONDS} s to convert the file")
        if not result.is_file():
            reason = done.stderr.decode(errors="replace").strip().splitlines()
            raise _fail(f"LibreOffice could not convert the .{kind} (corrupt or password "
                        f"protected?{' ' + reason[-1][:120] if reason else ''})")
        yield from reader(result, options)
