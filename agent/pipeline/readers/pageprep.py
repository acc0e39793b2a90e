"""A page's picture made ready for Tesseract: grayscale and at most ``WORK_PIXELS``, small
pictures enlarged, turned level when scanned askew, speckles filtered out."""

from __future__ import annotations

from typing import Any

WORK_PIXELS = 16_000_000  # pages are read at most this big (A4 at ≈ 400 dpi); larger shrink
SKEW_LIMIT_DEGREES = 6.0
SKEW_THUMBNAIL_SIDES = (600, 1200, 2400)  # the skew search's thumbnail, grown while inkless
MIN_INK_FRACTION = 0.002  # of a thumbnail's pixels dark enough to be ink: text is still legible
LEVEL_MARGIN = 1.1  # a turn is kept only when its profile is this much sharper than level
SMALL_PAGE_EDGE = 2500  # a picture whose longer side is shorter is read at twice its size


def as_rendered(image: Any) -> Any:
    """The picture in grayscale, shrunk to at most ``WORK_PIXELS``: what plain Tesseract reads."""
    from PIL import Image

    page = image.convert("L") if image.mode != "L" else image
    pixels = page.width * page.height
    if pixels > WORK_PIXELS:
        scale = (WORK_PIXELS / pixels) ** 0.5
        page = page.resize((max(1, int(page.width * scale)), max(1, int(page.height * scale))),
                           Image.Resampling.LANCZOS)
    return page


def prepare(rendered: Any, deskew: bool = True, enlarge: bool = True) -> tuple[Any, float]:
    """A page as ``as_rendered`` gives it (grayscale, at most ``WORK_PIXELS``, not blank),
    straightened, with speckles filtered out; and the angle it was turned by.

    A picture smaller than an A4 page at 200 dpi (a screenshot, a photo at screen size) has
    text a few pixels high, which Tesseract misreads and the median filter erases: it is
    doubled first (found on real Outlook attachments, 1920×1080 screenshots), unless it says
    it is already fine (``enlarge`` False: a render at ``ocr.dpi``, a 300 dpi scan)."""
    from PIL import Image, ImageFilter

    page = rendered
    if enlarge and max(page.size) < SMALL_PAGE_EDGE \
            and page.width * page.height * 4 <= WORK_PIXELS:
        page = page.resize((page.width * 2, page.height * 2), Image.Resampling.LANCZOS)
    angle = skew_angle(page) if deskew else 0.0
    if abs(angle) >= 0.2:
        page = page.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    return page.filter(ImageFilter.MedianFilter(3)), angle


def skew_angle(page: Any) -> float:
    """The rotation (degrees, counter-clockwise) that makes text lines level: the angle whose
    ink profile along rows or columns is sharpest, searched coarse then fine on a thumbnail;
    0 unless that angle is clearly sharper than level (noise must not turn a page)."""
    import numpy as np
    from PIL import Image

    ink = _ink_thumbnail(page)
    if ink is None:
        return 0.0

    def sharpness(angle: float) -> float:
        turned = np.asarray(ink.rotate(angle, resample=Image.Resampling.BILINEAR),
                            dtype=np.float32)
        return float(max(np.var(turned.sum(axis=1)), np.var(turned.sum(axis=0))))

    coarse = max(np.arange(-SKEW_LIMIT_DEGREES, SKEW_LIMIT_DEGREES + 0.01, 1.0), key=sharpness)
    fine = max(np.arange(coarse - 0.6, coarse + 0.61, 0.1), key=sharpness)
    if sharpness(fine) <= LEVEL_MARGIN * sharpness(0.0):
        return 0.0
    return round(float(fine), 1)


def _ink_thumbnail(page: Any) -> Any:
    """The page shrunk for the skew search, its ink white on black; None when no size holds
    ink. Small dense text shrunk too far turns to light gray with no ink at all (a 6000 px
    page of 28 px text found a wrong −6.6° that way and held Tesseract's layout analysis for
    minutes), so the thumbnail grows until the text is still dark in it."""
    import numpy as np

    for side in SKEW_THUMBNAIL_SIDES:
        small = page.copy()
        small.thumbnail((side, side))
        dark = np.asarray(small) < 128
        if dark.mean() >= MIN_INK_FRACTION or side >= max(page.size):
            return small.point(lambda v: 255 if v < 128 else 0) if dark.any() else None
    return None
