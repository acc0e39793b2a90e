"""Readers for the legacy Office formats (.doc, .xls, .ppt), side by side on real files.

Files: Apache Tika's own test documents (``fetch github:apache/tika``; every ``.doc``, ``.xls``
and ``.ppt`` under ``test-documents/``), or a folder given with ``--corpus``. Readers, each in
a fresh process, on the same files:

- **libreoffice**: ``soffice --headless --convert-to`` docx/xlsx/pptx (Debian
  ``libreoffice-{writer,calc,impress}-nogui``), then the agent's own streaming reader;
- **antiword** (.doc) and **catdoc** (.doc), **catppt** (.ppt), **xls2csv** (.xls): Debian's
  ``antiword`` and ``catdoc`` packages, text on stdout;
- **xlrd** (.xls): the Python library, in process.

Reported per reader and format: files read (exit 0 and text), seconds per file (median),
peak RSS of the reader's process (max), and what text survives: the share of the words
LibreOffice's conversion found that the reader found too (LibreOffice reads the most of the
format; it is the reference).

    python benchmarks/legacy_bench.py               # Tika's test documents (≈ 5 min)
    python benchmarks/legacy_bench.py --quick       # the fixtures in tests/fixtures/real/legacy
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIKA = Path("/work/.mirror/apache+tika/repo")
FIXTURES = ROOT / "tests" / "fixtures" / "real" / "legacy"
WORD = re.compile(r"\w{3,}")


def export_tika(folder: Path) -> list[Path]:
    names = subprocess.run(["git", f"--git-dir={TIKA}", "ls-tree", "-r", "--name-only", "HEAD"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    out = []
    for name in names:
        if "test-documents/" in name and name.rsplit(".", 1)[-1] in ("doc", "xls", "ppt"):
            target = folder / Path(name).name
            data = subprocess.run(["git", f"--git-dir={TIKA}", "show", f"HEAD:{name}"],
                                  capture_output=True, check=False).stdout
            if data:
                target.write_bytes(data)
                out.append(target)
    return sorted(out)


def run(command: list[str], timeout: float = 120) -> tuple[bool, str, float, float]:
    """(ok, stdout, seconds, peak RSS MB) of one command in its own process (``wait4`` gives
    that child's own peak)."""
    import os
    import signal

    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(child.pid, signal.SIGKILL)
                os.wait4(child.pid, 0)
                return False, "", timeout, 0.0
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    child.returncode = os.waitstatus_to_exitcode(status)
    return (child.returncode == 0 and bool(text.strip()), text, seconds,
            usage.ru_maxrss / 1024)


READ_WITH_AGENT = (
    "import sys; from pathlib import Path; from agent.pipeline.readers.registry import extract; "
    "print('\\n'.join(s.text for s in extract(Path(sys.argv[1]), sys.argv[2])))")
XLRD = (
    "import sys, xlrd; book = xlrd.open_workbook(sys.argv[1], on_demand=True)\n"
    "for sheet in book.sheets():\n"
    "    for r in range(sheet.nrows): print(' | '.join(str(v) for v in sheet.row_values(r)))")
CONVERTED = {"doc": ("docx", "application/vnd.openxmlformats-officedocument."
                             "wordprocessingml.document"),
             "xls": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
             "ppt": ("pptx", "application/vnd.openxmlformats-officedocument."
                             "presentationml.presentation")}


def libreoffice(path: Path, scratch: Path) -> tuple[bool, str, float, float]:
    kind, mime = CONVERTED[path.suffix[1:].lower()]
    out = scratch / "lo"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    profile = scratch / "profile"
    ok, _, seconds, peak = run(["soffice", f"-env:UserInstallation=file://{profile}",
                                "--headless", "--convert-to", kind, "--outdir", str(out),
                                str(path)], timeout=180)
    converted = out / f"{path.stem}.{kind}"
    if not converted.is_file():
        return False, "", seconds, peak
    ok, text, more, peak2 = run([sys.executable, "-c", READ_WITH_AGENT, str(converted), mime])
    return ok, text, seconds + more, max(peak, peak2)


def readers_for(suffix: str) -> dict[str, list[str]]:
    return {
        "doc": {"antiword": ["antiword", "-w", "0"], "catdoc": ["catdoc", "-w", "-d", "utf-8"]},
        "xls": {"xls2csv": ["xls2csv", "-d", "utf-8"], "xlrd": [sys.executable, "-c", XLRD]},
        "ppt": {"catppt": ["catppt", "-d", "utf-8"]},
    }[suffix]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--corpus", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        if args.corpus or args.quick:
            source = args.corpus or FIXTURES
            files = sorted(p for p in source.iterdir()
                           if p.suffix.lower() in (".doc", ".xls", ".ppt"))
        else:
            (scratch / "files").mkdir()
            files = export_tika(scratch / "files")
        stats: dict[tuple[str, str], dict[str, list[float]]] = {}
        for path in files:
            suffix = path.suffix[1:].lower()
            ok, reference, seconds, peak = libreoffice(path, scratch)
            ref_words = set(WORD.findall(reference.lower()))
            row = stats.setdefault((suffix, "libreoffice"), {"ok": [], "s": [], "mb": [],
                                                             "kept": []})
            row["ok"].append(float(ok))
            row["s"].append(seconds)
            row["mb"].append(peak)
            row["kept"].append(1.0 if ok else 0.0)
            for name, command in readers_for(suffix).items():
                ok2, text, seconds2, peak2 = run([*command, str(path)])
                words = set(WORD.findall(text.lower()))
                kept = len(ref_words & words) / len(ref_words) if ref_words else float(ok2)
                row2 = stats.setdefault((suffix, name), {"ok": [], "s": [], "mb": [], "kept": []})
                row2["ok"].append(float(ok2))
                row2["s"].append(seconds2)
                row2["mb"].append(peak2)
                row2["kept"].append(kept if ok2 else 0.0)
            print(f"  {path.name}", file=sys.stderr, flush=True)
    print("| format | reader | files read | s/file (median) | peak RSS MB (max) "
          "| words of LibreOffice's kept (mean) |")
    print("|---|---|--:|--:|--:|--:|")
    for (suffix, name), row in sorted(stats.items()):
        print(f"| .{suffix} | {name} | {int(sum(row['ok']))}/{len(row['ok'])} "
              f"| {statistics.median(row['s']):.2f} | {max(row['mb']):.0f} "
              f"| {statistics.mean(row['kept']) * 100:.0f} % |")


if __name__ == "__main__":
    main()
