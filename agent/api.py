"""The HTTP API (FastAPI): upload a file into an inbox, follow its job, search the index.

Uploads are streamed to disk as they arrive (never held in memory), under a temporary name in
the inbox's processing folder, then fsynced and moved into the inbox under a sanitised name
that never overwrites. The job is queued at once so the response carries its id; the watcher
sees the same file identity and does not queue it again.
"""

from __future__ import annotations

import hmac
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agent import __version__
from agent.config import Settings
from agent.errors import AgentError, JobNotFoundError
from agent.folders import InboxFolders, identify, move_no_clobber, safe_filename
from agent.queue.base import Job, JobQueue, JobStatus

UPLOAD_FIELD = "file"


class JobOut(BaseModel):
    job_id: str
    status: str
    inbox: str | None
    file: str | None
    progress: int = Field(ge=0, le=100)
    message: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    retries: int
    attempts: int
    document_id: str | None = None
    chunks: int | None = None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            job_id=job.job_id, status=str(job.status), inbox=job.inbox,
            file=job.original_filename, progress=job.progress, message=job.message,
            created_at=job.created_at, updated_at=job.updated_at, started_at=job.started_at,
            finished_at=job.finished_at, retries=job.retries, attempts=job.attempts,
            document_id=job.metadata.get("document_id"), chunks=job.metadata.get("chunks"),
        )


class UploadOut(BaseModel):
    job_id: str
    status: str
    inbox: str
    file: str


class HitOut(BaseModel):
    score: float
    text: str
    document_id: str
    file: str
    location: str | None
    inbox: str | None
    page: int | None
    char_start: int
    char_end: int


class ErrorOut(BaseModel):
    detail: str


class UploadRejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
}


def create_app(settings: Settings, queue: JobQueue, boxes: dict[str, InboxFolders],
               searcher_factory: Callable[[], Any] | None = None) -> FastAPI:
    """The API over an existing queue and inboxes (the agent's own)."""
    app = FastAPI(title="ingest-agent", version=__version__,
                  description="Upload files for ingestion, follow their jobs, search the index.")
    token = settings.api.token.get_secret_value() if settings.api.token else None
    limit = settings.api.max_upload_bytes
    searcher_lock = threading.Lock()
    searcher: list[Any] = []

    def require_token(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(require_token)]

    @app.post(
        "/api/v1/upload", response_model=UploadOut, status_code=201, dependencies=auth,
        responses={**ERRORS, 400: {"model": ErrorOut}, 404: {"model": ErrorOut},
                   411: {"model": ErrorOut}, 413: {"model": ErrorOut},
                   415: {"model": ErrorOut}},
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": [UPLOAD_FIELD], "properties": {
                UPLOAD_FIELD: {"type": "string", "format": "binary", "minLength": 1,
                               "maxLength": settings.api.max_upload_bytes}}}}}}},
    )
    async def upload(request: Request,
                     inbox: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        """Stream one file (multipart field `file`) into an inbox and queue it."""
        box = boxes.get(inbox) if inbox else next(iter(boxes.values()))
        if box is None:
            raise HTTPException(404, f"no inbox named {inbox!r}")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise HTTPException(413, f"upload larger than api.max_upload_bytes ({limit})")
        try:
            final, st = await _receive(request, box, limit)
        except UploadRejected as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)
        rel = final.name
        job = queue.enqueue_job(str(final), rel, {"size": st.st_size, "source": "api",
                                                   "relpath": rel},
                                inbox=box.name, content_key=identify(box.name, rel, st).key)
        return UploadOut(job_id=job.job_id, status=str(job.status), inbox=box.name, file=rel)

    @app.get("/api/v1/jobs/{job_id}", response_model=JobOut, dependencies=auth,
             responses={**ERRORS, 404: {"model": ErrorOut}})
    def get_job(job_id: str) -> JobOut:
        """One job: status, progress, message, times, retries and its result."""
        try:
            return JobOut.of(queue.get_job_status(job_id))
        except JobNotFoundError:
            raise HTTPException(404, f"no job with id {job_id!r}") from None

    @app.get("/api/v1/jobs", response_model=list[JobOut], dependencies=auth, responses=ERRORS)
    def list_jobs(status: JobStatus | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  inbox: Annotated[str | None, Query(max_length=64)] = None) -> list[JobOut]:
        """Jobs, newest first."""
        return [JobOut.of(j) for j in queue.list_jobs(status=status, limit=limit, inbox=inbox)]

    @app.get("/api/v1/search", response_model=list[HitOut], dependencies=auth, responses=ERRORS)
    def search(q: Annotated[str, Query(min_length=1, max_length=2000)],
               k: Annotated[int, Query(ge=1, le=100)] = 5,
               inbox: Annotated[str | None, Query(max_length=64)] = None) -> list[HitOut]:
        """The indexed chunks closest in meaning to `q`."""
        with searcher_lock:
            if not searcher:
                if searcher_factory is None:
                    from agent.search import Searcher

                    searcher.append(Searcher(settings))
                else:
                    searcher.append(searcher_factory())
            hits = searcher[0].search(q, k=k, inbox=inbox)
        return [HitOut(**h.to_dict()) for h in hits]

    return app


async def _receive(request: Request, box: InboxFolders, limit: int
                   ) -> tuple[Path, os.stat_result]:
    """Parse the multipart body as it streams in; return the file's path in the inbox and its
    stat (taken before the move: the watcher may pick the file up at once)."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRejected(415, "send multipart/form-data with the file in field 'file'")
    box.processing.mkdir(parents=True, exist_ok=True)
    temp = box.processing / f".upload-{uuid.uuid4().hex}.part"
    state: dict[str, Any] = {"headers": {}, "field": b"", "name": None, "size": 0, "fh": None,
                             "done": False, "error": None}
    header_field = bytearray()
    header_value = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        state["headers"][bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        field = disp.get(b"name", b"")
        if field == UPLOAD_FIELD.encode() and state["fh"] is None and not state["done"]:
            state["name"] = disp.get(b"filename", b"").decode("utf-8", "replace")
            state["fh"] = open(temp, "xb")  # noqa: SIM115 - closed in on_part_end / finally

    def on_part_data(data: bytes, start: int, end: int) -> None:
        fh = state["fh"]
        if fh is None or state["error"]:
            return
        state["size"] += end - start
        if state["size"] > limit:
            state["error"] = (413, f"upload larger than api.max_upload_bytes ({limit})")
            return
        fh.write(data[start:end])

    def on_part_end() -> None:
        fh = state["fh"]
        if fh is not None and not state["done"]:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            state["done"] = True
        state["headers"] = {}

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        stream: AsyncIterator[bytes] = request.stream()
        async for chunk in stream:
            parser.write(chunk)
            if state["error"]:
                raise UploadRejected(*state["error"])
        parser.finalize()
        if state["error"]:
            raise UploadRejected(*state["error"])
        if not state["done"]:
            raise UploadRejected(400, "no complete multipart field named 'file' in the body")
        if state["size"] == 0:
            raise UploadRejected(400, "the uploaded file is empty (0 bytes)")
        name = safe_filename(state["name"] or "", fallback="upload")
        st = temp.stat()
        final = move_no_clobber(temp, box.inbox, name)
        return final, st
    except UploadRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed multipart from the client
        raise UploadRejected(400, f"malformed multipart body: {exc}") from None
    finally:
        fh = state["fh"]
        if fh is not None and not fh.closed:
            fh.close()
        temp.unlink(missing_ok=True)


class ApiServer:
    """uvicorn in a background thread, stopped with the agent."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api-http", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout * 20)):
            if self.server.started:
                return
            deadline.wait(0.05)
        self.server.should_exit = True
        raise AgentError(f"api: cannot listen on {self.server.config.host}:"
                         f"{self.server.config.port} (in use, or not allowed)")

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the API server is not listening")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
