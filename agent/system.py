"""What the agent needs from the operating system, checked before it is needed."""

from __future__ import annotations

import ctypes
import ctypes.util

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
