"""Pictures of text: a photo or scan of pages (every page of a TIFF), read by OCR."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from agent.errors import PermanentError
from agent.pipeline.readers.extract import ExtractOptions
from agent.pipeline.readers.ocr import image_pages
from agent.pipeline.readers.outline import Section
from agent.stages import Stage


def extract_image(path: Path, options: ExtractOptions) -> Iterator[Section]:
    """Each page's text, read by OCR; a file that gave none says why."""
    if options.ocr is None:
        raise PermanentError("the file is an image and OCR is off for this inbox",
                             stage=Stage.EXTRACT)
    notes, read_any = [], False
    for number, read in options.ocr.read_pages(image_pages(path, options.ocr.options)):
        read_any = read_any or bool(read.text.strip())
        if read.note:
            notes.append(read.note)
        yield Section(read.text, page=number,
                      note=f"page {number}: {read.note}" if read.note else "", ocr=True)
    if notes and not read_any:  # nothing was read: say why rather than "no text"
        raise PermanentError(f"no text read: {notes[0]}", stage=Stage.OCR)
