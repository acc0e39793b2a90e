"""The bad-input corpus: files made on the spot (no committed binaries), each with its fate.

Every kind says where its file must end: ``done``, ``failed`` (with words its reason must
contain) or ``skipped`` (with the words of the log line), or ``gone`` for a file its producer
deletes. ``make`` writes the file into the inbox; ``after`` runs once the agent has seen it.
"""

from __future__ import annotations

import os
import random
import socket
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.documents import make_docx, make_pdf

_RNG = random.Random(20261128)  # fixed: random bytes must not happen to match a magic number


def _noise(n: int) -> bytes:
    return b"\xfe\xed" + _RNG.randbytes(n)


GOOD_TEXT = "The lighthouse keeper logs every ship that passes the northern cape.\n"


@dataclass(frozen=True)
class Kind:
    name: str  # the file's name in the inbox
    fate: str  # done | failed | skipped | gone
    reason: str = ""  # words expected in the failure reason or the skip log line
    make: Callable[[Path], object] | None = None
    done_name: str | None = None  # name in done/ when it differs (sanitised, numbered)


def _write(data: bytes | str) -> Callable[[Path], object]:
    def make(path: Path) -> object:
        if isinstance(data, str):
            return path.write_text(data)
        return path.write_bytes(data)
    return make


def _zip_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<w>" + b" " * (300 * 1024 * 1024) + b"</w>")


def _one_line(size: int) -> Callable[[Path], object]:
    def make(path: Path) -> None:
        chunk = ("lorem ipsum dolor sit amet " * 40000).encode()
        with open(path, "wb") as fh:
            written = 0
            while written < size:
                fh.write(chunk[: size - written])
                written += len(chunk)
    return make


def _sparse(size: int) -> Callable[[Path], object]:
    def make(path: Path) -> None:
        with open(path, "wb") as fh:
            fh.write(b"header text\n")
            fh.truncate(size)
    return make


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


def _symlink_outside(path: Path) -> None:
    target = path.parent.parent / "outside-secret.txt"
    target.write_text("not for the inbox")
    path.symlink_to(target)


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path)


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inner.txt").write_text(GOOD_TEXT)


def _unreadable(path: Path) -> None:
    path.write_text(GOOD_TEXT + "locked away\n")
    path.chmod(0)


def _name_taken_in_done(path: Path) -> None:
    done = path.parent.parent / "done"
    done.mkdir(exist_ok=True)
    (done / path.name).write_text("an older file with the same name")
    path.write_text(GOOD_TEXT + "a newer file with a taken name\n")


# libmagic calls these application/javascript and text/x-c (checked by the corpus test).
MARKDOWN_WITH_JS = """# Assert

The `node:assert` module provides a set of assertion functions.

```js
const assert = require('node:assert');
function check(value) { assert.ok(value); }
```

Lighthouse keepers assert that every lamp is lit before dusk.
"""
HTML_LOOKING_LIKE_JS = """<!doctype>
<head>
\t<link type="text/css" rel="stylesheet" href="css/chart.css">
\t<script src="/usr/share/javascript/d3/d3.js"></script>
</head>
<body>
<p>The harbour chart shows every buoy along the northern cape.</p>
<script>
\tbuoys.sort(function(a, b) { return a.order - b.order }).forEach( function(d) {
\t\tlegend.appendChild(d);
\t});
</script>
</body>
"""
TEXT_LOOKING_LIKE_C = """#include <stdio.h>

Notes from the ship's engineer: the boiler pressure held steady all night.
int main(void) { return 0; }
"""
# Lines of Debian's /usr/share/distro-info/ubuntu.csv: a sniffer picks '.' as the delimiter.
DOTTED_CSV = """version,codename,series,created,release,eol,eol-server,eol-esm
4.10,Warty Warthog,warty,2004-03-05,2004-10-20,2006-04-30
5.04,Hoary Hedgehog,hoary,2004-10-20,2005-04-08,2006-10-31
5.10,Breezy Badger,breezy,2005-04-08,2005-10-12,2007-04-13
6.06 LTS,Dapper Drake,dapper,2005-10-12,2006-06-01,2009-07-14,2011-06-01
6.10,Edgy Eft,edgy,2006-06-01,2006-10-26,2008-04-25
7.04,Feisty Fawn,feisty,2006-10-26,2007-04-19,2008-10-19
"""

ROOT = os.geteuid() == 0
LIMIT = 120 * 1024 * 1024  # max_file_bytes in the corpus config

KINDS: list[Kind] = [
    Kind("zero-bytes.txt", "failed", "empty", _write(b"")),
    Kind("whitespace.txt", "failed", "no text found", _write(" \n\t\n   \n" * 50)),
    Kind("random.bin", "failed", "unsupported type", _write(_noise(4096))),
    Kind("random-named.pdf", "failed", "unsupported type", _write(_noise(4096))),
    Kind("random-named.docx", "failed", "corrupt", _write(_noise(4096))),
    Kind("truncated.pdf", "failed", "corrupt",
         lambda p: p.write_bytes(make_pdf(p, ["x " * 3000]).read_bytes()[:400])),
    Kind("encrypted.pdf", "failed", "encrypted", lambda p: make_pdf(p, ["secret"], "pw")),
    Kind("scanned.pdf", "failed", "no text layer", lambda p: make_pdf(p, ["", ""])),
    Kind("bomb.docx", "failed", "zip bomb", _zip_bomb),
    Kind("deep.json", "failed", "nested", _write("[" * 100_000 + "]" * 100_000)),
    Kind("one-line-100mb.txt", "failed", "max_chunks_per_file", _one_line(100_000_000)),
    Kind("invalid-utf8.txt", "done", "", _write(b"caf\xe9 \xff\xfe broken \xc3\x28 " * 40)),
    Kind("utf16-bom.txt", "done", "", _write(("Grüße aus Köln. " * 40).encode("utf-16"))),
    Kind("nul-bytes.txt", "failed", "unsupported type",
         _write(b"text with\x00 NUL bytes\x00 inside\n" * 40)),
    Kind("over-limit.txt", "failed", "over max_file_bytes", _sparse(LIMIT + 1024)),
    Kind("name with spaces.txt", "done", "", _write(GOOD_TEXT)),
    Kind("new\nline.txt", "done", "", _write(GOOD_TEXT + "newline name\n"), "newline.txt"),
    # Names that are not UTF-8 (common on shares written by other systems) keep their bytes.
    Kind("latin1-caf\udce9.txt", "done", "", _write(GOOD_TEXT + "undecodable name\n")),
    Kind("bad\udcff\udcfe.md", "done", "", _write("# Odd bytes\n\n" + GOOD_TEXT)),
    # A right-to-left override would make this display as "invoiceexe.txt".
    Kind("invoice\u202etxt.exe", "done", "", _write(GOOD_TEXT + "bidi name\n"),
         "invoicetxt.exe"),
    Kind("zero\u200bwidth\u2066.txt", "done", "", _write(GOOD_TEXT + "zero width\n"),
         "zerowidth.txt"),
    # Text that libmagic names by what it looks like inside; the suffix decides.
    Kind("node-api.md", "done", "", _write(MARKDOWN_WITH_JS)),
    Kind("doctype.html", "done", "", _write(HTML_LOOKING_LIKE_JS)),
    Kind("looks-like-c.txt", "done", "", _write(TEXT_LOOKING_LIKE_C)),
    Kind("utf16-no-bom.txt", "done", "", _write(("Grüße aus Köln, né. " * 40).encode("utf-16-le"))),
    Kind("releases.csv", "done", "", _write(DOTTED_CSV)),
    Kind("ünïcødé-名前.md", "done", "", _write("# Ünïcødé\n\n" + GOOD_TEXT)),
    Kind("-rf.txt", "done", "", _write(GOOD_TEXT + "leading dash\n")),
    Kind("n" * 251 + ".txt", "done", "", _write(GOOD_TEXT + "long name\n"), "n" * 196 + ".txt"),
    Kind("link-outside.txt", "skipped", "pointing outside the inbox", _symlink_outside),
    Kind("link-loop.txt", "skipped", "symbolic link", _symlink_loop),
    Kind("pipe", "skipped", "FIFO", _fifo),
    Kind("sock", "skipped", "socket", _socket),
    Kind("folder", "skipped", "a folder", _directory),
    Kind("deleted-after-detect.txt", "gone", "vanished", _write(GOOD_TEXT + "deleted\n")),
    Kind("unreadable.txt", "done" if ROOT else "failed", "" if ROOT else "permission",
         _unreadable),
    Kind("twin-a.txt", "done", "", _write("Twin content shared by two names.\n" * 3)),
    Kind("twin-b.txt", "done", "duplicate of", _write("Twin content shared by two names.\n" * 3)),
    Kind("taken-name.txt", "done", "", _name_taken_in_done, "taken-name (2).txt"),
    Kind("script-only.html", "failed", "no text found",
         _write("<html><head><script>alert(1)</script><style>p{}</style></head></html>")),
    Kind("image.png", "failed", "the image is corrupt or not an image Pillow can read",
         _write(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + _noise(200))),
    Kind("partial.crdownload", "skipped", "excluded", _write(GOOD_TEXT)),
    Kind(".hidden.txt", "skipped", "excluded", _write(GOOD_TEXT)),
    Kind("good.pdf", "done", "", lambda p: make_pdf(p, ["Ships pass the cape.", "Page two."])),
    Kind("good.docx", "done", "", lambda p: make_docx(p, [GOOD_TEXT], [["a", "b"]])),
    Kind("good.csv", "done", "", _write("ship,date\nAurora,2026-01-02\nBorealis,2026-01-03\n")),
    Kind("good.json", "done", "", _write('{"ship": "Aurora", "note": "passed at dawn"}')),
    Kind("good.html", "done", "", _write("<html><body><p>" + GOOD_TEXT + "</p></body></html>")),
    Kind("latin1.txt", "done", "", _write(("Café crème à la carte. " * 30).encode("latin-1"))),
]
