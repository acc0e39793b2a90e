"""Photos read by OCR: telling a camera's picture from a scan, and the sparse-text read that
finds the words a photo's layout hides from Tesseract's page segmentation."""

from __future__ import annotations

import time
from typing import Any

PHOTO_FORMATS = ("JPEG", "MPO", "HEIF", "HEIC", "WEBP")
CAMERA_MAKE = 0x010F  # the EXIF tag naming a camera's maker
SPARSE_CONFIDENT = 80  # a sparse read's word is added from this confidence (a sign's: 88–92)


def is_photo(image: Any) -> bool:
    """A camera's picture (JPEG, HEIF, WebP, or one that names its camera), not a scan."""
    if image.info.get("photo") or getattr(image, "format", None) in PHOTO_FORMATS:
        return True
    try:
        return CAMERA_MAKE in image.getexif()
    except Exception:  # noqa: BLE001 - a broken EXIF block says nothing either way
        return False


def sparse_words(api: Any, page: Any, deadline: float, known: str) -> str:
    """The confidently read words of a sparse-text read (text anywhere, in any order: signs,
    labels, a board in a photo) that ``known`` does not hold yet. A photo's layout defeats
    Tesseract's page segmentation, which then reads few of its words; the sparse read finds
    them, with more noise, so only its surest words are added (a textless photo's sparse read
    still yields a stray `mt` at 71)."""
    import tesserocr

    mode = api.GetPageSegMode()
    api.SetPageSegMode(tesserocr.PSM.SPARSE_TEXT)
    try:
        api.SetImage(page)
        api.Recognize(timeout=max(1, int((deadline - time.monotonic()) * 1000)))
        words = api.MapWordConfidences()
    finally:
        api.SetPageSegMode(mode)
    seen = set(known.split())
    found: list[str] = []
    for word, confidence in words:
        if confidence >= SPARSE_CONFIDENT and sum(c.isalnum() for c in word) >= 3 \
                and word not in seen:
            seen.add(word)
            found.append(word)
    return " ".join(found)
