"""Text out of pictures of pages: Tesseract through tesserocr, after straightening the page.

Tesseract was chosen over RapidOCR by ``benchmarks/ocr_bench.py`` (same pages, same run): on
A4 pages at 300 dpi it read English prose at ≈ 1.3 % character errors in ≈ 2.5 s a page, where
RapidOCR's bundled models made ≈ 10 % errors (mostly lost spaces) in ≈ 11 s and held ≈ 700 MB.
Tesseract finds a page's orientation (90/180/270°) itself (``PSM.AUTO_OSD``, Debian's
``tesseract-ocr-osd``) but reads a page skewed by 3° as garbage, so pages are deskewed first by
the angle that makes the ink's row (or column) profile sharpest; a 3×3 median filter takes out
salt-and-pepper noise at no cost to clean pages.

Preprocessing is kept only where it helps (``benchmarks/ocr_real_bench.py``, real scans from
Tesseract's, OCRmyPDF's and pytesseract's test corpora beside the ``tesseract`` CLI): a page
whose prepared read is doubtful (few confident words) is read again as rendered, and the read
with more confidently read characters wins. An illustrated book page deskewed by a wrong angle
read nothing, as rendered it reads 1,112 characters. Pictures that say their resolution
(a PDF page rendered at ``ocr.dpi``, a scan's TIFF) are never enlarged.

A doubtful read is also checked for its script (Tesseract's OSD, run as the ``tesseract`` CLI
in its own process: its script detection can abort the process it runs in, tesseract#4062).
A page in a script no configured language reads (Hebrew, Han, Devanagari …) is not indexed as
Latin garbage: it is left out with a note naming the Debian package that reads it.

The engines are built once per worker process, only when a page needs one, and never more
than ``ocr.threads`` of them.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import PermanentError
from agent.pipeline.pagewatch import watched, watching
from agent.pipeline.readers.pageprep import WORK_PIXELS, as_rendered, prepare
from agent.pipeline.readers.photos import is_photo, sparse_words
from agent.stages import Stage

K = TypeVar("K")
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata")
KNOWN_DPI = 200  # a picture that says it is at least this fine is a scan: never enlarged
CONFIDENT_WORD = 60  # Tesseract's word confidence (0–100) from which a word counts as read
DOUBTFUL_CHARS = 100  # fewer confidently read characters than this: read the page as rendered
DOUBTFUL_MEAN = 75  # or a mean word confidence under this
DOUBTFUL_ANGLE = 2.0  # or a turn this large (an illustration can fool the deskew: c02-22.pdf)
GARBAGE_MEAN = 35  # a mean word confidence under this, and
GARBAGE_SHARE = 0.15  # fewer sure characters than this share of those read: nothing was read
GARBLED_MEAN = 60  # a mean word confidence under this: check the page's script
SCRIPT_CONFIDENCE = 2.0  # OSD's script confidence needed to leave a page out (Latin pages
# misjudged as Cyrillic score ≈ 0.6; real Hebrew and Devanagari pages 30–40)
# Scripts Tesseract's OSD names, and the language data (Debian: tesseract-ocr-<lang>) that reads
# them; a language not listed here reads Latin.
SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "Han": ("chi_sim", "chi_tra", "jpn"), "Japanese": ("jpn",), "Katakana": ("jpn",),
    "Hiragana": ("jpn",), "Hangul": ("kor",), "Arabic": ("ara", "fas", "urd", "pus"),
    "Hebrew": ("heb", "yid"), "Cyrillic": ("rus", "ukr", "bul", "srp", "bel", "mkd", "kaz"),
    "Devanagari": ("hin", "mar", "nep", "san"), "Greek": ("ell", "grc"), "Thai": ("tha",),
    "Bengali": ("ben", "asm"), "Tamil": ("tam",), "Telugu": ("tel",), "Kannada": ("kan",),
    "Malayalam": ("mal",), "Gujarati": ("guj",), "Gurmukhi": ("pan",), "Armenian": ("hye",),
    "Georgian": ("kat",), "Ethiopic": ("amh",), "Khmer": ("khm",), "Lao": ("lao",),
    "Myanmar": ("mya",), "Sinhala": ("sin",), "Tibetan": ("bod",),
}
NON_LATIN = frozenset(lang for langs in SCRIPT_LANGUAGES.values() for lang in langs)


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """What the worker may do with pictures of text (from ``[ocr]`` and the inbox)."""

    enabled: bool = True
    languages: tuple[str, ...] = ("eng",)
    dpi: int = 300
    max_pages: int = 1000
    max_image_pixels: int = 64_000_000
    tessdata_dir: Path | None = None
    deskew: bool = True
    threads: int = 2
    page_seconds: float = 120.0

    @classmethod
    def of(cls, ocr: Any, stall_seconds: float | None = None) -> OcrOptions:
        """The options ``[ocr]`` (an ``OcrSettings``) sets; a page's time stays under 80% of
        the stall timeout, so a long page ends on its own before its worker is killed."""
        page_seconds = ocr.page_timeout_seconds
        if stall_seconds is not None:
            page_seconds = min(page_seconds, 0.8 * stall_seconds)
        return cls(enabled=ocr.enabled, languages=tuple(ocr.languages), dpi=ocr.dpi,
                   max_pages=ocr.max_pages, max_image_pixels=ocr.max_image_pixels,
                   tessdata_dir=ocr.tessdata_dir, deskew=ocr.deskew, threads=ocr.threads,
                   page_seconds=page_seconds)


@dataclass(frozen=True, slots=True)
class PageText:
    """What one page read as, and why its text was left out when it was (``note``)."""

    text: str
    note: str = ""


@dataclass(slots=True)
class OcrStats:
    """Pages read and seconds spent on them, for the ``ocr`` stage and its metrics."""

    pages: int = 0
    seconds: float = 0.0


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage=Stage.OCR)


def tessdata_dir(configured: Path | None = None) -> Path | None:
    """Where Tesseract's language files are: the configured folder, ``TESSDATA_PREFIX``, or
    the Debian package's folder."""
    candidates = [configured] if configured is not None else []
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(Path(os.environ["TESSDATA_PREFIX"]))
    candidates += [Path(d) for d in TESSDATA_DIRS]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.traineddata")):
            return folder
    return None


def reads_script(script: str, languages: Iterable[str]) -> bool:
    """Whether one of ``languages`` reads text in ``script`` (an OSD script name)."""
    langs = set(languages)
    if script == "Latin":
        return bool(langs - NON_LATIN)
    return script not in SCRIPT_LANGUAGES or bool(langs & set(SCRIPT_LANGUAGES[script]))


def script_package(script: str) -> str:
    """The Debian package whose language data reads ``script``."""
    lang = SCRIPT_LANGUAGES.get(script, ("",))[0]
    return f"tesseract-ocr-{lang.replace('_', '-')}"


def page_script(page: Any, folder: Path | None) -> tuple[str, float] | None:
    """The page's script and OSD's confidence in it, by ``tesseract --psm 0`` in a process of
    its own; None when it cannot tell (too few characters, no OSD data, no CLI)."""
    import shutil
    import subprocess
    import tempfile

    if folder is None or not (folder / "osd.traineddata").is_file() \
            or shutil.which("tesseract") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="osd-") as scratch:
        picture = Path(scratch) / "page.png"
        page.save(picture)
        try:
            done = subprocess.run(["tesseract", str(picture), "-", "--psm", "0",
                                   "--tessdata-dir", str(folder)],
                                  capture_output=True, text=True, timeout=60, check=False,
                                  env={**os.environ, "OMP_THREAD_LIMIT": "1"})
        except (OSError, subprocess.TimeoutExpired):
            return None
    found = dict(line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    try:
        return found["Script"].strip(), float(found["Script confidence"])
    except (KeyError, ValueError):
        return None


def scripts_read(languages: Iterable[str]) -> list[str]:
    """The scripts the languages read (Latin first), for ``check``."""
    langs = list(languages)
    found = ["Latin"] if reads_script("Latin", langs) else []
    return found + [s for s, owners in SCRIPT_LANGUAGES.items()
                    if set(owners) & set(langs) and s not in found]


def missing_languages(options: OcrOptions) -> list[str]:
    """Languages asked for whose data file is not installed (``tesseract-ocr-<lang>``)."""
    folder = tessdata_dir(options.tessdata_dir)
    if folder is None:
        return list(options.languages)
    return [lang for lang in options.languages if not (folder / f"{lang}.traineddata").is_file()]


class PageReader:
    """A fixed pool of ``threads`` Tesseract engines and the threads that drive them, both
    kept for the worker's life: an engine holds ≈ 40 MB of language model, so engines made
    per file or per thread would grow the worker with every file read. Each page is read on
    one core (Tesseract does not use two), so two pages are read at once."""

    def __init__(self, options: OcrOptions) -> None:
        self.options = options
        self.stats = OcrStats()
        self.threads = max(1, options.threads)
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._engines: list[Any] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # The current job's pages read so far (picture hash → text), kept with its spool, so
        # a job that resumes does not read a page twice; None when no job keeps one.
        self._memo: dict[str, str] | None = None
        self._carried: frozenset[str] = frozenset()  # read by an earlier attempt of the job

    @property
    def memo(self) -> dict[str, str] | None:
        return self._memo

    @memo.setter
    def memo(self, memo: dict[str, str] | None) -> None:
        """The job's remembered pages (None: none kept); those already in it were read by an
        earlier attempt and are not counted again."""
        self._memo = memo
        self._carried = frozenset(memo or ())

    @contextlib.contextmanager
    def _engine(self) -> Iterator[Any]:
        """An idle engine, made on first need up to ``threads`` of them; else wait for one."""
        try:
            api = self._idle.get_nowait()
        except queue.Empty:
            api = None
            with self._lock:
                if len(self._engines) < self.threads:
                    api = self._make_engine()
                    self._engines.append(api)
            if api is None:
                api = self._idle.get()
        try:
            yield api
        finally:
            api.Clear()
            self._idle.put(api)

    def _make_engine(self) -> Any:
        missing = missing_languages(self.options)
        if missing:
            raise _fail(f"OCR language data not installed: {', '.join(missing)} (Debian: "
                        + " ".join(f"tesseract-ocr-{m}" for m in missing) + ")")
        import tesserocr

        folder = tessdata_dir(self.options.tessdata_dir)
        osd = (folder / "osd.traineddata").is_file() if folder else False
        return tesserocr.PyTessBaseAPI(
            path=str(folder) + "/", lang="+".join(self.options.languages),
            psm=tesserocr.PSM.AUTO_OSD if osd else tesserocr.PSM.AUTO)

    def read(self, image: Any) -> str:
        """The text of one page image (any PIL mode), after deskewing and denoising."""
        started = time.perf_counter()
        page = self._read_one(image)
        self.stats.seconds += time.perf_counter() - started
        return page.text

    def _read_one(self, image: Any) -> PageText:
        memo = self._memo
        key = _picture_key(image) if memo is not None else ""
        if memo is not None and key in memo:
            if key not in self._carried:  # the same picture twice in one file: still a page
                with self._lock:
                    self.stats.pages += 1
            return PageText(memo[key], memo.get(f"{key}:note", ""))
        with self._lock:
            self.stats.pages += 1
        if not key and watching():
            key = _picture_key(image)
        page = self._recognise(image, key)
        if memo is not None:
            memo[key] = page.text
            if page.note:
                memo[f"{key}:note"] = page.note
        return page

    def _recognise(self, image: Any, key: str = "") -> PageText:
        """The page read as prepared; read as rendered too when that read is doubtful, and
        the read with more confident characters kept; left out when it is in a script no
        configured language reads. While Tesseract holds it, the page is watched by its
        ``key`` (``pagewatch``): past its deadline by far, the worker is stopped."""
        rendered = as_rendered(image)
        if rendered.getextrema()[0] > 128:  # not one dark pixel: a blank page has no text
            return PageText("")
        deadline = time.monotonic() + self.options.page_seconds
        page, angle = prepare(rendered, deskew=self.options.deskew,
                              enlarge=not _says_fine(image))
        with self._engine() as api, watched(key, deadline, self.options.page_seconds):
            best = _Read.of(api, page, deadline)
            if best.cut:
                return PageText(best.text, f"OCR stopped after {self.options.page_seconds:g} s "
                                           "(ocr.page_timeout_seconds); the rest of the page "
                                           "was not read")
            if (best.doubtful or abs(angle) >= DOUBTFUL_ANGLE) and time.monotonic() < deadline:
                plain = _Read.of(api, rendered, deadline)
                if plain.confident_chars > best.confident_chars and not plain.cut:
                    best = plain
            extra = ""
            if best.doubtful and is_photo(image) and time.monotonic() < deadline:
                extra = sparse_words(api, rendered, deadline, best.text)
        if best.mean < GARBLED_MEAN and best.text.strip():
            folder = tessdata_dir(self.options.tessdata_dir)
            found = page_script(best.page, folder)
            garbage = best.garbage
            if garbage and (found is None or reads_script(found[0], self.options.languages)):
                found = page_script(rendered, folder)  # OSD misjudges an enlarged small page
            if found is not None and not reads_script(found[0], self.options.languages) \
                    and (found[1] >= SCRIPT_CONFIDENCE or garbage):
                return PageText("", f"a page in {found[0]} script was not read: no language "
                                    f"for it is installed (Debian: {script_package(found[0])},"
                                    " then add it to ocr.languages)")
            if garbage:
                return PageText("", f"OCR read no sure words (mean confidence {best.mean}): "
                                    "the page was left out; it may be in a script no configured "
                                    "language reads (ocr.languages)")
        return PageText(best.text + (f"\n{extra}\n" if extra else ""))

    def read_pages(self, items: Iterable[tuple[K, Any]]) -> Iterator[tuple[K, PageText]]:
        """(key, page image — or text already known, or a PageText) → (key, what it read), in
        order. Images are read
        on the reader's threads while the next pages are rendered (by the caller's generator,
        on the caller's thread: PDF rendering is not thread-safe)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="ocr")
            pool = self._pool
        source = iter(items)
        pending: deque[tuple[K, Future[PageText] | PageText]] = deque()
        try:
            started = time.perf_counter()
            while True:
                while len(pending) <= self.threads:
                    item = next(source, None)
                    if item is None:
                        break
                    key, value = item
                    # In the job's log context (contextvars), so what a library logs on
                    # the reader's threads names the job and file.
                    pending.append((key, PageText(value) if isinstance(value, str)
                                    else value if isinstance(value, PageText)
                                    else pool.submit(contextvars.copy_context().run,
                                                     self._read_one, value)))
                if not pending:
                    break
                key, value = pending.popleft()
                page = value if isinstance(value, PageText) else value.result()
                self.stats.seconds += time.perf_counter() - started
                yield key, page
                started = time.perf_counter()
        finally:  # a caller that stops early (a cap, a pause) leaves no page being read
            for _, value in pending:
                if not isinstance(value, PageText):
                    value.cancel()
                    with contextlib.suppress(Exception):
                        value.result()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            for api in self._engines:
                api.End()
            self._engines.clear()
            self._idle = queue.SimpleQueue()


def _picture_key(image: Any) -> str:
    """The same picture (a page rendered again, the same image read again) gives the same key."""
    import hashlib

    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(f"{image.mode}:{image.size}".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Read:
    """One recognition of a page, with how sure Tesseract was of it."""

    page: Any
    text: str
    confident_chars: int  # characters in words read with confidence ≥ CONFIDENT_WORD
    mean: int  # mean word confidence, 0–100
    cut: bool = False  # stopped at the page's deadline: the text is what was read by then

    @classmethod
    def of(cls, api: Any, page: Any, deadline: float) -> _Read:
        api.SetImage(page)
        # Tesseract's own deadline (it works on any thread); past it, what was recognised
        # so far is still there to read
        left_ms = max(1, int((deadline - time.monotonic()) * 1000))
        finished = bool(api.Recognize(timeout=left_ms))
        text = str(api.GetUTF8Text())
        words = api.MapWordConfidences()
        confident = sum(len(word) for word, conf in words if conf >= CONFIDENT_WORD)
        return cls(page, text, confident, int(api.MeanTextConf()), cut=not finished)

    @property
    def garbage(self) -> bool:
        """Nearly nothing of the read is sure: Latin letters made up for another script, or
        for a picture with no text (a Han page read as Latin: mean 22, 12 sure of 150)."""
        letters = sum(c.isalnum() for c in self.text)
        return self.mean < GARBAGE_MEAN and self.confident_chars < GARBAGE_SHARE * letters

    @property
    def doubtful(self) -> bool:
        return self.confident_chars < DOUBTFUL_CHARS or self.mean < DOUBTFUL_MEAN


def _says_fine(image: Any) -> bool:
    """Whether the picture says it is a scan or render of at least ``KNOWN_DPI``."""
    dpi = image.info.get("dpi")
    try:
        return dpi is not None and min(float(dpi[0]), float(dpi[1])) >= KNOWN_DPI
    except (TypeError, ValueError, IndexError):
        return False


def image_pages(path: Path, options: OcrOptions) -> Iterator[tuple[int, Any]]:
    """(page number, PIL image) for each page of an image file, checked against the caps
    before any pixel is decoded; truncated or corrupt images fail with the reason."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    _register_heif()
    Image.MAX_IMAGE_PIXELS = None  # our own cap below names the setting
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise _fail("the image is corrupt or not an image Pillow can read") from None
    except OSError as exc:
        raise _fail(f"the image cannot be read ({exc})") from None
    with image:
        frames = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
        if frames > options.max_pages:
            raise _fail(f"the image has {frames} pages, over ocr.max_pages "
                        f"({options.max_pages})")
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            if number > frames:
                break
            width, height = frame.size
            if width * height > options.max_image_pixels:
                raise _fail(f"page {number} is {width}×{height} pixels "
                            f"({width * height / 1e6:.0f} MP), over ocr.max_image_pixels "
                            f"({options.max_image_pixels / 1e6:.0f} MP)")
            if frame.format == "JPEG" or image.format == "JPEG":
                frame.draft("L", _draft_size(width, height))
            try:
                frame.load()
                page = frame.convert("L")
            except (OSError, ValueError, SyntaxError) as exc:
                raise _fail(f"page {number} of the image is truncated or corrupt ({exc})"
                            ) from None
            page.info["photo"] = is_photo(image)  # the converted copy has no format of its own
            yield number, page


def _register_heif() -> None:
    """Let Pillow open HEIC/HEIF phone photos (pillow-heif's libheif), once."""
    import contextlib

    with contextlib.suppress(ImportError):
        import pillow_heif

        pillow_heif.register_heif_opener()


def _draft_size(width: int, height: int) -> tuple[int, int]:
    """The size a JPEG may be decoded at (libjpeg scales by 1/2, 1/4, 1/8 while decoding)."""
    pixels = width * height
    if pixels <= WORK_PIXELS:
        return width, height
    scale = (WORK_PIXELS / pixels) ** 0.5
    return max(1, int(width * scale)), max(1, int(height * scale))
