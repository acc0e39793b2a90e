"""Text out of pictures of pages: Tesseract through tesserocr, after straightening the page.

Tesseract was chosen over RapidOCR by ``benchmarks/ocr_bench.py`` (same pages, same run): on
A4 pages at 300 dpi it read English prose at ≈ 1.3 % character errors in ≈ 2.5 s a page, where
RapidOCR's bundled models made ≈ 10 % errors (mostly lost spaces) in ≈ 11 s and held ≈ 700 MB.
Tesseract finds a page's orientation (90/180/270°) itself (``PSM.AUTO_OSD``, Debian's
``tesseract-ocr-osd``) but reads a page skewed by 3° as garbage, so pages are deskewed first by
the angle that makes the ink's row (or column) profile sharpest; a 3×3 median filter takes out
salt-and-pepper noise at no cost to clean pages.

The engines are built once per worker process, only when a page needs one, and never more
than ``ocr.threads`` of them.
"""

from __future__ import annotations

import contextlib
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

K = TypeVar("K")
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata")
WORK_PIXELS = 16_000_000  # pages are read at most this big (A4 at ≈ 400 dpi); larger shrink
SKEW_LIMIT_DEGREES = 6.0
SMALL_PAGE_EDGE = 2500  # a picture whose longer side is shorter is read at twice its size


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

    @classmethod
    def of(cls, ocr: Any) -> OcrOptions:
        """The options ``[ocr]`` (an ``OcrSettings``) sets."""
        return cls(enabled=ocr.enabled, languages=tuple(ocr.languages), dpi=ocr.dpi,
                   max_pages=ocr.max_pages, max_image_pixels=ocr.max_image_pixels,
                   tessdata_dir=ocr.tessdata_dir, deskew=ocr.deskew, threads=ocr.threads)


@dataclass(slots=True)
class OcrStats:
    """Pages read and seconds spent on them, for the ``ocr`` stage and its metrics."""

    pages: int = 0
    seconds: float = 0.0


def _fail(message: str) -> PermanentError:
    return PermanentError(message, stage="ocr")


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
        text = self._read_one(image)
        self.stats.seconds += time.perf_counter() - started
        return text

    def _read_one(self, image: Any) -> str:
        memo = self._memo
        key = _picture_key(image) if memo is not None else ""
        if memo is not None and key in memo:
            if key not in self._carried:  # the same picture twice in one file: still a page
                with self._lock:
                    self.stats.pages += 1
            return memo[key]
        page = prepare(image, deskew=self.options.deskew)
        with self._lock:
            self.stats.pages += 1
        if page.getextrema()[0] > 128:  # not one dark pixel: a blank page has no text to read
            text = ""
        else:
            with self._engine() as api:
                api.SetImage(page)
                text = str(api.GetUTF8Text())
        if memo is not None:
            memo[key] = text
        return text

    def read_pages(self, items: Iterable[tuple[K, Any]]) -> Iterator[tuple[K, str]]:
        """(key, page image — or text already known) → (key, text), in order. Images are read
        on the reader's threads while the next pages are rendered (by the caller's generator,
        on the caller's thread: PDF rendering is not thread-safe)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="ocr")
            pool = self._pool
        source = iter(items)
        pending: deque[tuple[K, Future[str] | str]] = deque()
        try:
            started = time.perf_counter()
            while True:
                while len(pending) <= self.threads:
                    item = next(source, None)
                    if item is None:
                        break
                    key, value = item
                    pending.append((key, value if isinstance(value, str)
                                    else pool.submit(self._read_one, value)))
                if not pending:
                    break
                key, value = pending.popleft()
                text = value if isinstance(value, str) else value.result()
                self.stats.seconds += time.perf_counter() - started
                yield key, text
                started = time.perf_counter()
        finally:  # a caller that stops early (a cap, a pause) leaves no page being read
            for _, value in pending:
                if not isinstance(value, str):
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


def prepare(image: Any, deskew: bool = True) -> Any:
    """Grayscale, at most ``WORK_PIXELS``, straightened, with speckles filtered out.

    A picture smaller than an A4 page at 200 dpi (a screenshot, a photo at screen size) has
    text a few pixels high, which Tesseract misreads and the median filter erases: it is
    doubled first (found on real Outlook attachments, 1920×1080 screenshots)."""
    from PIL import Image, ImageFilter

    page = image.convert("L") if image.mode != "L" else image
    if page.getextrema()[0] > 128:
        return page  # blank: nothing to straighten or clean
    if max(page.size) < SMALL_PAGE_EDGE:
        page = page.resize((page.width * 2, page.height * 2), Image.Resampling.LANCZOS)
    pixels = page.width * page.height
    if pixels > WORK_PIXELS:
        scale = (WORK_PIXELS / pixels) ** 0.5
        page = page.resize((max(1, int(page.width * scale)), max(1, int(page.height * scale))),
                           Image.Resampling.LANCZOS)
    if deskew:
        angle = skew_angle(page)
        if abs(angle) >= 0.2:
            page = page.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True,
                               fillcolor=255)
    return page.filter(ImageFilter.MedianFilter(3))


def skew_angle(page: Any) -> float:
    """The rotation (degrees, counter-clockwise) that makes text lines level: the angle whose
    ink profile along rows or columns is sharpest, searched coarse then fine on a thumbnail."""
    import numpy as np
    from PIL import Image

    small = page.copy()
    small.thumbnail((600, 600))
    ink = small.point(lambda v: 255 if v < 128 else 0)

    def sharpness(angle: float) -> float:
        turned = np.asarray(ink.rotate(angle, resample=Image.Resampling.BILINEAR),
                            dtype=np.float32)
        return float(max(np.var(turned.sum(axis=1)), np.var(turned.sum(axis=0))))

    coarse = max(np.arange(-SKEW_LIMIT_DEGREES, SKEW_LIMIT_DEGREES + 0.01, 1.0), key=sharpness)
    fine = max(np.arange(coarse - 0.6, coarse + 0.61, 0.1), key=sharpness)
    return round(float(fine), 1)


def image_pages(path: Path, options: OcrOptions) -> Iterator[tuple[int, Any]]:
    """(page number, PIL image) for each page of an image file, checked against the caps
    before any pixel is decoded; truncated or corrupt images fail with the reason."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

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
            yield number, page


def _draft_size(width: int, height: int) -> tuple[int, int]:
    """The size a JPEG may be decoded at (libjpeg scales by 1/2, 1/4, 1/8 while decoding)."""
    pixels = width * height
    if pixels <= WORK_PIXELS:
        return width, height
    scale = (WORK_PIXELS / pixels) ** 0.5
    return max(1, int(width * scale)), max(1, int(height * scale))
