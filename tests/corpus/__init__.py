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

from tests.test_pipeline import make_docx, make_pdf

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
    Kind("one-line-100mb.txt", "failed", "killed after", _one_line(100_000_000)),
    Kind("invalid-utf8.txt", "done", "", _write(b"caf\xe9 \xff\xfe broken \xc3\x28 " * 40)),
    Kind("utf16-bom.txt", "done", "", _write(("Grüße aus Köln. " * 40).encode("utf-16"))),
    Kind("nul-bytes.txt", "failed", "unsupported type",
         _write(b"text with\x00 NUL bytes\x00 inside\n" * 40)),
    Kind("over-limit.txt", "failed", "over max_file_bytes", _sparse(LIMIT + 1024)),
    Kind("name with spaces.txt", "done", "", _write(GOOD_TEXT)),
    Kind("new\nline.txt", "done", "", _write(GOOD_TEXT + "newline name\n"), "new_line.txt"),
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
    Kind("image.png", "failed", "unsupported type image/png",
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
