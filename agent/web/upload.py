"""One multipart upload, parsed as it streams in: the file part goes to disk, small fields are
kept, and the result is filed into an inbox under a sanitised name that never overwrites.

Everything here blocks (file writes, fsync); the HTTP layer calls it from its threadpool. The
file is written under an agent temp name in the inbox's processing folder (outside the watched
set), so a crash mid-upload leaves nothing the watcher would pick up, and recovery removes it.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from agent.errors import UploadRejected
from agent.files.folders import InboxFolders
from agent.files.moves import temp_name
from agent.files.names import safe_filename, strip_invisible

BOX_FIELD = "inbox"  # the page's form names the inbox in this field, before the file
UPLOAD_FIELD = "file"
MAX_FIELDS = 16
MAX_FIELD_CHARS = 1024
_MAX_FIELD_BYTES = 4 * MAX_FIELD_CHARS  # UTF-8 takes at most 4 bytes a character
FIELD_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_FIELD_NAME = re.compile(FIELD_NAME_PATTERN)


@dataclass(slots=True)
class ReceivedUpload:
    path: Path  # where the file now is, in the inbox
    stat: os.stat_result  # taken before the move: the watcher may pick the file up at once
    fields: dict[str, str] = field(default_factory=dict)


class UploadReceiver:
    """Feed it the body's bytes as they arrive, then ``finish()``; ``discard()`` always."""

    def __init__(self, box: InboxFolders, content_type: str, limit: int, *,
                 choose_box: Callable[[str], InboxFolders] | None = None) -> None:
        """``choose_box``: a form's ``inbox`` field, sent before the file, names the inbox
        (the page's form without JavaScript); without it the field is kept like any other."""
        from python_multipart.multipart import MultipartParser, parse_options_header

        self._parse_options = parse_options_header
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise UploadRejected(415, "send multipart/form-data with the file in field 'file'")
        self.box = box
        self._choose_box = choose_box
        self.limit = limit
        self.fields: dict[str, str] = {}
        self.size = 0
        self.filename = ""
        self._temp: Path | None = None
        self._file: BinaryIO | None = None
        self._file_done = False
        self._part: str | None = None  # "file", "field" or None (ignored) for the current part
        self._field_name = ""
        self._field_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._error: UploadRejected | None = None
        self._parser: Any = MultipartParser(boundary, {
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        })

    # -- parser callbacks --------------------------------------------------------------------

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, disposition = self._parse_options(self._headers.get(b"content-disposition", b""))
        self._headers = {}
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if name == UPLOAD_FIELD:
            if self._file_done or self._file is not None:
                self._reject(f"one file per upload: a second '{UPLOAD_FIELD}' part was sent; "
                             "send each file in a request of its own")
                return
            self.filename = disposition.get(b"filename", b"").decode("utf-8", "replace")
            skip = self._filtered_out(safe_filename(self.filename, fallback="upload"))
            if skip is not None:
                self._error = self._error or UploadRejected(400, skip)
                self._part = None
                return
            self.box.processing.mkdir(parents=True, exist_ok=True)
            self._temp = self.box.processing / temp_name("upload")
            self._file = open(self._temp, "xb")  # noqa: SIM115 - closed in _on_part_end/discard
            self._part = "file"
        elif b"filename" in disposition:
            self._reject(f"only the field '{UPLOAD_FIELD}' may carry a file, not {name[:64]!r}")
        elif not _FIELD_NAME.match(name):
            self._reject(f"field name {name[:64]!r} is not allowed: use 1-64 letters, digits, "
                         "'_', '.' or '-'")
        elif len(self.fields) >= MAX_FIELDS or name in self.fields:
            self._reject(f"at most {MAX_FIELDS} form fields, each once")
        else:
            self._part, self._field_name = "field", name
            self._field_value.clear()

    def _filtered_out(self, name: str) -> str | None:
        """Why the inbox's include/exclude patterns would skip a file of this name, as the
        watcher would (an upload is a file dropped in the inbox)."""
        from agent.intake.filters import NameFilter

        settings = self.box.settings
        reason = NameFilter(settings.include, settings.exclude).reason_to_skip(name)
        return None if reason is None else (
            f"inbox {self.box.name!r} does not take {name!r}: {reason} "
            f"(inbox include/exclude)")

    def _reject(self, detail: str) -> None:
        """Refuse the whole upload (400), naming the limit: nothing is silently dropped."""
        if self._error is None:
            self._error = UploadRejected(400, detail)
        self._part = None

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file" and self._file is not None and self._error is None:
            self.size += end - start
            if self.size > self.limit:
                self._error = UploadRejected(
                    413, f"upload larger than api.max_upload_bytes ({self.limit})")
                return
            self._file.write(data[start:end])
        elif self._part == "field":
            self._field_value.extend(data[start:end])
            if len(self._field_value) > _MAX_FIELD_BYTES:
                self._reject(self._too_long())

    def _on_part_end(self) -> None:
        if self._part == "file" and self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            self._file_done = True
        elif self._part == "field":
            value = bytes(self._field_value).decode("utf-8", "replace")
            if len(value) > MAX_FIELD_CHARS:
                self._reject(self._too_long())
                return
            if self._field_name == BOX_FIELD and self._choose_box is not None:
                self._take_box(value)
            else:
                self.fields[self._field_name] = strip_invisible(value)
        self._part = None

    def _take_box(self, name: str) -> None:
        assert self._choose_box is not None
        if self._temp is not None:
            self._reject(f"the field '{BOX_FIELD}' must come before the file")
            return
        try:
            self.box = self._choose_box(name)
        except UploadRejected as exc:
            self._error = self._error or exc

    def _too_long(self) -> str:
        return f"field {self._field_name!r} is longer than {MAX_FIELD_CHARS:,} characters"

    # -- driving ----------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except UploadRejected:
            raise
        except OSError as exc:
            raise self._disk_error(exc) from None
        except Exception as exc:  # noqa: BLE001 - malformed multipart from the client
            raise UploadRejected(400, f"malformed multipart body: {exc}") from None
        if self._error is not None:
            raise self._error

    def finish(self) -> ReceivedUpload:
        """Check the body was complete and move the file into the inbox."""
        try:
            self._parser.finalize()
        except OSError as exc:
            raise self._disk_error(exc) from None
        except Exception as exc:  # noqa: BLE001
            raise UploadRejected(400, f"malformed multipart body: {exc}") from None
        if self._error is not None:
            raise self._error
        if not self._file_done or self._temp is None:
            raise UploadRejected(400, "no complete multipart field named 'file' in the body")
        if self.size == 0:
            raise UploadRejected(400, "the uploaded file is empty (0 bytes)")
        problem = self.box.problem()
        if problem is not None:
            raise UploadRejected(503, f"{problem}; the upload was not filed")
        st = self._temp.stat()
        final = self.box.move_into(self._temp, self.box.inbox,
                                   safe_filename(self.filename, fallback="upload"))
        return ReceivedUpload(final, st, dict(self.fields))

    def _disk_error(self, exc: OSError) -> UploadRejected:
        """The disk, not the client, failed the upload: a full one is 507, anything else 503,
        both worth a retry later (the API adds Retry-After)."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return UploadRejected(507, f"no space left for the upload on the disk of "
                                       f"{self.box.processing}; try again later")
        return UploadRejected(503, f"the upload could not be written ({exc.strerror}); try "
                                   "again later")

    def discard(self) -> None:
        """Close and remove the temp file if it is still there (rejected or interrupted)."""
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
