"""Scanned pages made from known text, for OCR tests and benchmarks.

Text is drawn with a DejaVu font (Debian ``fonts-dejavu-core``) on an A4 page at a chosen DPI,
then damaged the ways real scans are: turned by 90/180/270°, skewed by a few degrees, saved as
a low-quality JPEG, sprinkled with salt-and-pepper noise. Nothing here is a fake: the pages are
real images that the real OCR engine has to read.
"""

from __future__ import annotations

import io
import random
import textwrap
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
A4_INCHES = (8.27, 11.69)


@dataclass(frozen=True, slots=True)
class Damage:
    """How a rendered page is spoiled before it is read."""

    rotate: int = 0  # 0, 90, 180 or 270 (counter-clockwise)
    skew: float = 0.0  # degrees
    jpeg_quality: int | None = None
    salt_pepper: float = 0.0  # share of pixels set to black or white

    @property
    def name(self) -> str:
        parts = []
        if self.rotate:
            parts.append(f"rotated {self.rotate}°")
        if self.skew:
            parts.append(f"skewed {self.skew:+g}°")
        if self.jpeg_quality is not None:
            parts.append(f"JPEG q{self.jpeg_quality}")
        if self.salt_pepper:
            parts.append(f"salt-and-pepper {self.salt_pepper:.1%}")
        return ", ".join(parts) or "clean"


CLEAN = Damage()


def render_page(text: str, dpi: int = 300, font: str = "DejaVuSerif.ttf", points: float = 11,
                damage: Damage = CLEAN, seed: int = 0) -> Image.Image:
    """A grayscale PIL image of ``text`` set on an A4 page (1-inch margins), then damaged;
    ValueError when the text does not fit on the page (so the text is the page's truth)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = int(A4_INCHES[0] * dpi), int(A4_INCHES[1] * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(str(FONT_DIR / font), int(points * dpi / 72))
    margin = dpi
    average = face.getlength("abcdefghijklmnopqrstuvwxyz") / 26
    columns = max(20, int((width - 2 * margin) / average))
    line_height = int(points * dpi / 72 * 1.45)
    y = margin
    for paragraph in text.split("\n\n"):
        for line in textwrap.wrap(" ".join(paragraph.split()), columns) or [""]:
            if y + line_height > height - margin:
                raise ValueError("the text does not fit on one page")
            draw.text((margin, y), line, font=face, fill=0)
            y += line_height
        y += line_height // 2
    return damage_page(image, damage, seed)


def damage_page(image: Image.Image, damage: Damage, seed: int = 0) -> Image.Image:
    from PIL import Image

    assert isinstance(image, Image.Image)
    if damage.skew:
        image = image.rotate(damage.skew, resample=Image.Resampling.BICUBIC, expand=True,
                             fillcolor=255)
    if damage.rotate:
        image = image.rotate(damage.rotate, expand=True)
    if damage.salt_pepper:
        rng = random.Random(seed)
        pixels = image.load()
        assert pixels is not None
        w, h = image.size
        for _ in range(int(w * h * damage.salt_pepper)):
            pixels[rng.randrange(w), rng.randrange(h)] = rng.choice((0, 255))
    if damage.jpeg_quality is not None:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=damage.jpeg_quality)
        buffer.seek(0)
        image = Image.open(buffer)
        image.load()
    return image


def save_image_pdf(pages: list[Image.Image], path: Path, dpi: int = 300) -> Path:
    """An image-only PDF (no text layer), one scanned page per image, as a scanner makes."""
    first, *rest = pages
    first.save(path, "PDF", resolution=float(dpi), save_all=True,
               append_images=rest)
    return path


def write_bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit PNG of ``width`` × ``height`` blank pixels that is tiny on disk (a
    decompression bomb), written row by row so that making it costs no memory."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte + white pixels
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
                     + chunk(b"IEND", b""))
    return path
