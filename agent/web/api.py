"""The HTTP API (FastAPI): upload a file into an inbox, follow its job, search the index.

Uploads are streamed to disk as they arrive (never held in memory), under a temporary name in
the inbox's processing folder, then fsynced and moved into the inbox under a sanitised name
that never overwrites. The job is queued at once so the response carries its id; the watcher
sees the same file identity and does not queue it again.
"""

from __future__ import annotations

import socket
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints
from starlette.middleware.trustedhost import TrustedHostMiddleware

from agent import __version__
from agent.config.settings import ApiSettings, Settings, answering_hosts
from agent.errors import (
    AgentError,
    AmbiguousJobError,
    InvalidJobUpdateError,
    JobNotFoundError,
    SearchUsageError,
    TooManyWrongTokens,
    UploadRejected,
)
from agent.events import EventBus
from agent.files.folders import InboxFolders
from agent.files.names import display_name
from agent.formats import SHORT_TYPES
from agent.ops.health import HealthChecker
from agent.pipeline.store.index import SearchFilter
from agent.processing.job_view import paused_times, stage_times
from agent.queue.base import Job, JobFilter, JobQueue, JobStatus
from agent.queue.refs import find_job
from agent.search.engine import (
    SearchRequest,
    SharedSearcher,
    mime_types,
)
from agent.web.http_upload import receive_upload, upload_box
from agent.web.proxy import ProxyHeaders, networks
from agent.web.upload import (
    FIELD_NAME_PATTERN,
    MAX_FIELD_CHARS,
    MAX_FIELDS,
    UPLOAD_FIELD,
)


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
    warnings: list[str] = Field(default_factory=list,
                                description="parts of the file skipped, and why")
    paused: int = Field(default=0, ge=0, description="times the job paused to let waiting "
                        "files through (it resumed from its checkpoint each time)")
    stages: dict[str, float] = Field(default_factory=dict, description="seconds spent in each "
                                     "stage, summed over every turn the job ran")

    @classmethod
    def of(cls, job: Job) -> JobOut:
        record = job.record
        return cls(
            job_id=job.job_id, status=str(job.status), inbox=job.inbox,
            file=display_name(job.original_filename) if job.original_filename else None,
            progress=job.progress, message=job.message,
            created_at=job.created_at, updated_at=job.updated_at, started_at=job.started_at,
            finished_at=job.finished_at, retries=job.retries, attempts=job.attempts,
            document_id=record.document_id, chunks=record.chunks, warnings=record.warnings,
            paused=paused_times(job), stages=stage_times(job),
        )


class AmbiguousJobOut(BaseModel):
    detail: str
    matches: list[JobOut] = Field(description="the jobs the reference names (at most 20)")


class UploadOut(BaseModel):
    job_id: str
    status: str
    inbox: str
    file: str


class ResultOut(BaseModel):
    rank: int
    score: float
    similarity: float | None
    matched: list[str]
    document_id: str
    file: str
    location: str | None
    inbox: str | None
    type: str
    heading: str | None
    page: int | None
    chunk: int
    char_start: int
    char_end: int
    indexed_at: float
    snippet: str
    text: str
    also_in: list[str] = Field(default_factory=list,
                               description="near copies of this document, shown as one result")


class EvidenceOut(BaseModel):
    similarity: float | None = Field(description="the best result's cosine with the query")
    coverage: float = Field(description="share of the query's content words its chunk holds")
    known: float = Field(description="share of them that occur anywhere in the index")
    together: bool = Field(description="the query's words stand together in it")
    held: int = Field(default=0, description="how many of the query's content words its "
                      "passage holds (as the lexical side matches words)")
    words: int = Field(default=0, description="how many content words the query has")
    run: int = Field(default=0, description="the most query words its passage holds in "
                     "order, one changed, left out or added")
    length: int = Field(default=0, description="how many words (all of them) the query has")


class SearchOut(BaseModel):
    query: str
    mode: str
    answered: bool = Field(description="false when the index holds no good answer")
    note: str | None
    results: list[ResultOut]
    evidence: EvidenceOut | None = Field(
        default=None, description="what the answer was judged on (absent when none)")


TypeName = Annotated[str, StringConstraints(
    pattern=r"^([A-Za-z0-9][A-Za-z0-9.+-]*/[A-Za-z0-9][A-Za-z0-9.+-]*|"
            + "|".join(sorted(SHORT_TYPES)) + ")$")]


class ErrorOut(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    429: {"model": ErrorOut, "description": "Too many wrong tokens from this address; wait "
                                            "Retry-After seconds"},
}


RETRY_AFTER_SECONDS = 5
# A query needs one character that is not blank by Python's reckoning (str.isspace, which the
# search applies), as JSON Schema's \s alone would let the separators \x1c-\x1f and \x85 pass.
QUERY_PATTERN = r"[^\s\x1c-\x1f\x85]"


def create_app(settings: Settings, queue: JobQueue, boxes: dict[str, InboxFolders],
               searcher: SharedSearcher | None = None, health: HealthChecker | None = None,
               events: EventBus | None = None) -> FastAPI:
    """The API and the web page over an existing queue and inboxes (the agent's own), its
    searcher and its health checks."""
    from agent.web import mount_pages
    from agent.web.guard import Guard

    app = FastAPI(title="ingest-agent", version=__version__,
                  description="Upload files for ingestion, follow their jobs, search the index.")
    # a request naming another host is refused first (DNS rebinding), with Starlette's check
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=answering_hosts(settings.api))
    # Added last, so it runs first: a trusted proxy's Host stands in before the host check
    app.add_middleware(ProxyHeaders, trusted=networks(settings.api.trusted_proxies))
    token = settings.api.token.get_secret_value() if settings.api.token else None
    limit = settings.api.max_upload_bytes
    shared = searcher or SharedSearcher(settings)
    guard = Guard(token, settings.api.secure_cookies)

    async def require_token(request: Request) -> None:
        """A bearer token (API clients), or the web page's session: its cookie, and on a
        request that changes something the CSRF token beside it. A browser's request from
        another site is refused either way."""
        if not guard.same_origin(request):
            raise HTTPException(403, "cross-site request refused")
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if token is not None and scheme.lower() == "bearer":
            try:
                if await guard.token_matches(request, given):
                    return
            except TooManyWrongTokens as exc:
                raise HTTPException(429, str(exc),
                                    headers={"Retry-After": str(exc.retry_after)}) from None
        browser = guard.has_cookies(request)
        if browser and request.method not in ("GET", "HEAD") and not guard.csrf_ok(
                request, request.headers.get("x-csrf-token")):
            raise HTTPException(403, "missing or wrong CSRF token")
        if token is None or (browser and guard.logged_in(request)):
            return
        raise HTTPException(401, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

    @api.post(
        "/upload", response_model=UploadOut, status_code=201,
        responses={**ERRORS, 400: {"model": ErrorOut}, 404: {"model": ErrorOut},
                   411: {"model": ErrorOut}, 413: {"model": ErrorOut},
                   415: {"model": ErrorOut}, 503: {"model": ErrorOut},
                   507: {"model": ErrorOut}},
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": [UPLOAD_FIELD], "properties": {
                UPLOAD_FIELD: {"type": "string", "format": "binary", "minLength": 1,
                               "maxLength": settings.api.max_upload_bytes}},
                "propertyNames": {"pattern": FIELD_NAME_PATTERN},
                "maxProperties": MAX_FIELDS + 1,
                "additionalProperties": {"type": "string", "maxLength": MAX_FIELD_CHARS}}}}}},
    )
    async def upload(request: Request,
                     inbox: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        """Stream one file (multipart field `file`) into an inbox and queue it."""
        box = upload_box(boxes, inbox)
        try:
            job, name = await receive_upload(request, queue, box, limit)
        except UploadRejected as exc:
            headers = ({"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.status in (503, 507)
                       else None)
            return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)
        return UploadOut(job_id=job.job_id, status=str(job.status), inbox=box.name, file=name)

    @api.get("/jobs/{job}", response_model=JobOut,
             responses={**ERRORS, 404: {"model": ErrorOut}, 409: {
                 "model": AmbiguousJobOut, "description": "The reference names several jobs"}})
    def get_job(job: Annotated[str, Path(description="The job's id, a unique prefix of it "
                                         "(4 or more hex digits) or its file name")]) -> Any:
        """One job: status, progress, message, times, retries and its result."""
        try:
            return JobOut.of(find_job(queue, job))
        except AmbiguousJobError as exc:
            matches = [JobOut.of(queue.get_job_status(job_id)) for job_id in exc.job_ids]
            return JSONResponse(AmbiguousJobOut(detail=str(exc), matches=matches).model_dump(),
                                status_code=409)
        except JobNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @api.get("/jobs", response_model=list[JobOut],
             responses={**ERRORS, 400: {"model": ErrorOut}, 200: {"headers": {
                 "Link": {"description": 'The next page, as `<…/api/v1/jobs?…&cursor=C>; '
                          'rel="next"`; absent on the last page.',
                          "schema": {"type": "string"}},
                 "X-Next-Cursor": {"description": "The next page's cursor (absent on the "
                                   "last page).", "schema": {"type": "string"}}}}})
    def list_jobs(request: Request, response: Response,
                  status: JobStatus | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  inbox: Annotated[str | None, Query(max_length=64)] = None,
                  name: Annotated[str | None, Query(max_length=200,
                                                    description="Part of the file name")] = None,
                  cursor: Annotated[str | None, Query(
                      pattern=r"^[0-9]{1,18}$",
                      description="From an earlier page's `Link` header")] = None,
                  ) -> list[JobOut]:
        """Jobs, newest first, a page at a time: follow the `Link: rel="next"` header (or
        `X-Next-Cursor`) until it is absent."""
        try:
            page = queue.page_jobs(JobFilter(status, inbox, name or None), limit=limit,
                                   cursor=cursor)
        except InvalidJobUpdateError as exc:
            raise HTTPException(400, str(exc)) from None
        if page.next_cursor is not None:
            following = request.url.include_query_params(cursor=page.next_cursor)
            response.headers["Link"] = f'<{following}>; rel="next"'
            response.headers["X-Next-Cursor"] = page.next_cursor
        return [JobOut.of(j) for j in page.jobs]

    @api.get("/search", response_model=SearchOut,
             responses={**ERRORS, 400: {"model": ErrorOut}, 404: {"model": ErrorOut}})
    def search(q: Annotated[str, Query(min_length=1, max_length=2000, pattern=QUERY_PATTERN)],
               k: Annotated[int, Query(ge=1, le=100)] = 5,
               mode: Literal["vector", "lexical", "hybrid"] | None = None,
               chunks: bool = False,
               all_copies: bool = False,
               inbox: Annotated[str | None, Query(max_length=64)] = None,
               type: Annotated[list[TypeName] | None, Query(max_length=16)] = None,  # noqa: A002
               path: Annotated[str | None, Query(max_length=1000)] = None,
               after: Annotated[float | None, Query(ge=0, le=1e11)] = None,
               before: Annotated[float | None, Query(ge=0, le=1e11)] = None) -> SearchOut:
        """The best passages for `q`: one per document unless `chunks` (near copies of a
        document named in its `also_in` unless `all_copies`); `answered` is false
        when nothing is relevant enough. `type` takes MIME types or short names (pdf, html);
        `after`/`before` are epoch seconds of indexing; `path` is a glob on the file name."""
        if inbox is not None and inbox not in boxes:
            raise HTTPException(404, f"no inbox named {inbox!r}")
        try:
            request = SearchRequest(q, k, mode, not chunks, SearchFilter(
                inbox=inbox, types=mime_types(type or ()), path_glob=path, after=after,
                before=before), all_copies)
            response = shared.answer(request)
        except SearchUsageError as exc:
            raise HTTPException(400, str(exc)) from None
        return SearchOut.model_validate(response.to_dict())

    app.include_router(api)
    mount_pages(app, settings, queue, boxes, shared, health, guard, events)
    return app


class ApiServer:
    """uvicorn in a background thread on a listening socket (``agent.ops.listeners``), stopped with
    the agent. uvicorn never binds by itself, so a taken port is the agent's one line, not
    uvicorn's log."""

    def __init__(self, app: FastAPI, listener: socket.socket,
                 settings: ApiSettings | None = None) -> None:
        import uvicorn

        from agent.web.connections import (
            BoundedServer,
            LimitedListener,
            Limits,
            bounded_protocol,
            connection_limit,
        )

        api = settings or ApiSettings()
        self.limits = Limits(connection_limit(api.max_connections), api.header_timeout_seconds,
                             api.min_upload_bytes_per_second)
        host, port = listener.getsockname()[:2]
        # proxy_headers off: uvicorn would believe X-Forwarded-For from any loopback peer;
        # agent.web.proxy believes api.trusted_proxies only
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off", proxy_headers=False,
                                http=bounded_protocol(self.limits))
        self.server = BoundedServer(config)
        self.listener = LimitedListener.wrap(listener, self.limits)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.listener]},
                                       name="api-http", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout * 20)):
            if self.server.started:
                return
            deadline.wait(0.05)
        self.server.should_exit = True
        raise AgentError(f"api: the server did not start on {self.server.config.host}:"
                         f"{self.server.config.port} within {timeout:g} s")

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.listener.close()
