"""What the agent needs from the operating system, checked before it is needed."""

from __future__ import annotations

import ctypes
import ctypes.util

from agent.config.settings import OcrSettings

INSTALL_LIBMAGIC = ("libmagic is not installed: on Debian or Ubuntu run "
                    "`sudo apt-get install libmagic1` (Fedora: file-libs, Alpine: libmagic)")


def libmagic_problem() -> str | None:
    """None when libmagic (type detection) can be loaded, else one line saying what to install."""
    for name in ("libmagic.so.1", ctypes.util.find_library("magic")):
        if not name:
            continue
        try:
            ctypes.CDLL(name)
            return None
        except OSError:
            continue
    return INSTALL_LIBMAGIC


def ocr_problem(ocr: OcrSettings) -> str | None:
    """None when OCR is off or its language data is installed, else what to install."""
    if not ocr.enabled:
        return None
    from agent.pipeline.readers.ocr import OcrOptions, missing_languages

    missing = missing_languages(OcrOptions.of(ocr))
    if not missing:
        return None
    return ("OCR language data is missing for " + ", ".join(missing) + ": on Debian run "
            "`sudo apt-get install tesseract-ocr " + " ".join(f"tesseract-ocr-{m}" for m in missing)
            + "` (or set ocr.tessdata_dir, or ocr.enabled = false); images and scans will fail")


def ocr_note(ocr: OcrSettings) -> str | None:
    """What OCR reads, and what it leaves out (a page in another script, named with the
    package that would read it)."""
    if not ocr.enabled:
        return None
    from agent.pipeline.readers.ocr import scripts_read

    scripts = scripts_read(ocr.languages)
    return (f"OCR reads {', '.join(ocr.languages)} ({', '.join(scripts)} script"
            f"{'s' if len(scripts) > 1 else ''}); a page in another script is left out with a "
            "warning naming its package (Han: tesseract-ocr-chi-sim, then add chi_sim to "
            "ocr.languages)")


def legacy_office_note() -> str:
    """Which Office 97-2003 formats can be read here, and what to install for the others."""
    from agent.formats import FORMATS
    from agent.pipeline.readers.legacy import available

    found = available()
    legacy = [f".{f.name}" for f in FORMATS if f.family == "legacy office"]
    needs = {f".{f.name}": f.needs for f in FORMATS}
    readable = ", ".join(suffix for suffix in legacy if found.get(suffix)) or "none"
    missing = [f"reading {suffix} needs {needs[suffix]} (or save it in today's format)"
               for suffix in legacy if not found.get(suffix)]
    return f"Office 97-2003: reads {readable}" + (f"; {'; '.join(missing)}" if missing else "")
