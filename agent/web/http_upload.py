"""The HTTP side of an upload, shared by the API and the web page's form: the request body
streamed into :class:`UploadReceiver` (its blocking writes in the threadpool), then queued.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from agent.errors import QueueBusyError, UploadRejected
from agent.files.folders import InboxFolders, identify
from agent.files.names import display_name
from agent.queue.base import Job, JobQueue
from agent.queue.record import record_patch
from agent.web.upload import ReceivedUpload, UploadReceiver


def _queue_upload(queue: JobQueue, box: InboxFolders, received: ReceivedUpload) -> Job:
    """Queue the uploaded file. If the queue cannot take it, the file leaves the inbox again
    (unless the watcher queued it meanwhile), so a client that retries makes no duplicate."""
    rel = received.path.name
    key = identify(box.name, rel, received.stat).key
    metadata = record_patch(size=received.stat.st_size, source="api", relpath=rel,
                            fields=received.fields or None)
    try:
        return queue.enqueue_job(str(received.path), rel, metadata, inbox=box.name,
                                 content_key=key)
    except Exception as exc:
        with contextlib.suppress(Exception):
            existing = queue.find_job_by_key(key)
            if existing is not None:
                return existing
        received.path.unlink(missing_ok=True)
        raise QueueBusyError(f"the queue is busy; try again shortly ({exc})") from None


def upload_box(boxes: Mapping[str, InboxFolders], inbox: str | None) -> InboxFolders:
    """The inbox an upload goes to: the one named, or the first configured (404 if unknown)."""
    box = boxes.get(inbox) if inbox else next(iter(boxes.values()))
    if box is None:
        raise HTTPException(404, f"no inbox named {inbox!r}")
    return box


def box_named(boxes: Mapping[str, InboxFolders]) -> Callable[[str], InboxFolders]:
    """The inbox a form's field names, as the upload receiver asks for it (404 if unknown)."""
    def named(inbox: str) -> InboxFolders:
        box = boxes.get(inbox)
        if box is None:
            raise UploadRejected(404, f"no inbox named {inbox[:64]!r}")
        return box
    return named


async def receive_upload(request: Request, queue: JobQueue, box: InboxFolders,
                         limit: int, choose_box: Callable[[str], InboxFolders] | None = None
                         ) -> tuple[Job, str]:
    """Stream one multipart upload into ``box`` (or the inbox its ``inbox`` field names,
    with ``choose_box``) and queue it: (the job, the name it got). Anything refused raises
    :class:`UploadRejected` with its HTTP status."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise UploadRejected(413, f"upload larger than api.max_upload_bytes ({limit})")
    receiver = UploadReceiver(box, request.headers.get("content-type", ""), limit,
                              choose_box=choose_box)
    try:
        async for chunk in request.stream():  # file writes happen in the threadpool
            await run_in_threadpool(receiver.feed, chunk)
        received = await run_in_threadpool(receiver.finish)
    except ClientDisconnect:
        raise UploadRejected(400, "the client went away mid-upload") from None
    finally:
        await run_in_threadpool(receiver.discard)
    try:
        job = await run_in_threadpool(_queue_upload, queue, receiver.box, received)
    except QueueBusyError as exc:
        raise UploadRejected(503, str(exc)) from None
    return job, display_name(received.path.name)
