"""The page's routes: home, jobs, one job, search, one document, login; files and retries.

Each reads what the CLI and the API read (the queue, the searcher, the index), so the page can
show nothing the agent does not know. Forms that change something are POSTs with a CSRF token;
downloads send only what :mod:`agent.web.files` finds filed by the agent.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.config.settings import Settings
from agent.errors import (
    AgentError,
    InvalidJobUpdateError,
    JobNotFoundError,
    SearchUsageError,
    TooManyWrongTokens,
    UploadRejected,
)
from agent.events import EventBus
from agent.files.folders import InboxFolders
from agent.files.names import display_name
from agent.formats import metric_types
from agent.ops.health import HealthChecker
from agent.pipeline.store.index import Index, SearchFilter
from agent.processing.job_view import (
    current_location,
    paused_times,
    shown_progress,
    shown_status,
    stage_times,
)
from agent.queue.base import Job, JobFilter, JobQueue, JobStatus, QueueStats
from agent.search.engine import SearchRequest, SharedSearcher, mime_types
from agent.search.options import MODES
from agent.web.changes import Changes, TooManyWaiting
from agent.web.files import (
    Original,
    can_send,
    content_disposition,
    open_document_original,
    open_job_original,
)
from agent.web.guard import Guard
from agent.web.http_upload import box_named, receive_upload, upload_box
from agent.web.text import marked, size, visible, when

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
JOBS_PER_PAGE = 50
NOT_PAGES = ("/api/", "/docs", "/openapi", "/static/")  # their errors stay FastAPI's JSON
CHUNKS_PER_PAGE = 100


class _Templates:
    def __init__(self) -> None:
        import jinja2

        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)
        self.env.filters.update(visible=visible, when=when, size=size,
                                name=lambda n: visible(display_name(n)) if n else "—")

    def render(self, name: str, code: int = 200, /, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=code)


class _Documents:
    """The index, opened read-only on the first document page and kept."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._index: Index | None = None
        self._lock = threading.Lock()

    def get(self) -> Index:
        with self._lock:
            if self._index is None:
                from agent.pipeline.store.backends import open_index

                self._index = open_index(self.settings, readonly=True)
            return self._index


def _local_path(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _epoch(day: str | None, end: bool = False) -> float | None:
    """A date field (YYYY-MM-DD, UTC) as epoch seconds: its start, or with ``end`` its end."""
    if not day:
        return None
    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise HTTPException(400, f"not a date (YYYY-MM-DD): {day!r}") from None
    return start + 86400 if end else start


class LoginNeeded(Exception):  # noqa: N818 - a redirect, not a failure
    """A page needs a session: answered with the login page, then ``target`` again."""

    def __init__(self, target: str) -> None:
        self.target = target


class FormRefused(Exception):  # noqa: N818 - answered as a page that says why
    def __init__(self, message: str) -> None:
        self.message = message


STALE_FORM = ("This form was not sent from this page (its CSRF token is missing or stale). "
              "Go back, reload, and send it again.")


def mount_pages(app: FastAPI, settings: Settings, queue: JobQueue,
                boxes: dict[str, InboxFolders], searcher: SharedSearcher,
                health: HealthChecker | None, guard: Guard, events: EventBus | None) -> None:
    """Add the page's routes, its static files and the security headers to ``app``."""
    templates = _Templates()
    documents = _Documents(settings)
    changes = Changes()
    if events is not None:
        events.subscribe_all(changes)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def page_errors(request: Request, exc: StarletteHTTPException) -> Response:
        """The API's errors stay JSON; a page's are a page (a 404 a person can read)."""
        if request.url.path.startswith(NOT_PAGES):
            return await http_exception_handler(request, exc)
        titles = {404: "Not found", 403: "Refused", 400: "Not understood"}
        return page(request, "error.html", exc.status_code,
                    title=titles.get(exc.status_code, "Error"), message=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def page_input_errors(request: Request, exc: RequestValidationError) -> Response:
        """An address or form a page cannot use answers a page naming the value, not JSON."""
        if request.url.path.startswith(NOT_PAGES):
            return await request_validation_exception_handler(request, exc)
        problems = "; ".join(f"{err['loc'][-1]}: {err['msg']}" for err in exc.errors())
        return page(request, "error.html", 400, title="Not understood",
                    message=f"This page cannot use a value it was given ({problems}).")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    def page(request: Request, template: str, code: int = 200, /, **context: Any) -> Response:
        """A page with the CSRF token its forms carry (the cookie set if new)."""
        csrf = guard.csrf_token(request)
        response = templates.render(template, code, csrf=csrf, login=guard.needs_login,
                                    path=request.url.path, **context)
        guard.keep_csrf(request, response, csrf)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(LoginNeeded)
    async def to_login(_request: Request, exc: LoginNeeded) -> Response:
        return RedirectResponse(f"/login?{urlencode({'next': exc.target})}", status_code=303)

    @app.exception_handler(FormRefused)
    async def form_refused(request: Request, exc: FormRefused) -> Response:
        return page(request, "error.html", 403, title="Refused", message=exc.message)

    def gate(request: Request) -> None:
        """Every page but the login's: a browser's request from this site, with a session
        when one is needed (else to the login page, and back here after it)."""
        if not guard.same_origin(request):
            raise HTTPException(403, "cross-site request refused")
        if not guard.logged_in(request):
            raise LoginNeeded(request.url.path
                              + (f"?{request.url.query}" if request.url.query else ""))

    def form_token(request: Request, csrf: Annotated[str | None, Form()] = None) -> None:
        """A form's CSRF token, sent as its field."""
        if not guard.same_origin(request) or not guard.csrf_ok(request, csrf):
            raise FormRefused(STALE_FORM)

    def url_token(request: Request, csrf: str | None = None) -> None:
        """The upload form's CSRF token, in its URL: checked before the body is read."""
        if not guard.csrf_ok(request, csrf):
            raise FormRefused(STALE_FORM)

    pages = APIRouter(dependencies=[Depends(gate)], include_in_schema=False)
    own_forms = APIRouter(include_in_schema=False)  # login and logout: no session needed

    async def waited(seen: int, busy: bool) -> int:
        """The events' count once it moves past ``seen`` (a live part's long poll)."""
        try:
            return await changes.after(seen, busy)
        except TooManyWaiting:
            raise HTTPException(503, "too many open pages are waiting for changes; this one "
                                "asks again shortly", headers={"Retry-After": "5"}) from None

    def job_or_404(job_id: str) -> Job:
        try:
            return queue.get_job_status(job_id)
        except (JobNotFoundError, InvalidJobUpdateError, ValueError):
            raise HTTPException(404, f"no job with id {job_id!r}") from None

    def inbox_states(stats: QueueStats) -> list[dict[str, Any]]:
        return [{"name": box.name, "path": str(box.inbox), "problem": box.problem(),
                 "due": stats.backlog_by_inbox.get(box.name, (0, 0))[0],
                 "waiting": stats.backlog_by_inbox.get(box.name, (0, 0))[1]}
                for box in boxes.values()]

    def job_rows(where: JobFilter, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        found = queue.page_jobs(where, limit=JOBS_PER_PAGE, cursor=cursor)
        return [_row(job) for job in found.jobs], found.next_cursor

    def state() -> dict[str, Any]:
        """What the home page's State section shows: counts, backlog, inboxes, health."""
        stats = queue.stats()
        return {"counts": {str(s): stats.counts.get(s, 0) for s in JobStatus},
                "backlog": stats.due + stats.waiting_retry, "inboxes": inbox_states(stats),
                "checks": health.checks() if health is not None else []}

    @pages.get("/", response_class=HTMLResponse)
    async def home(request: Request, part: Literal["state"] | None = None,
                   seen: Annotated[int | None, Query(ge=0)] = None) -> Response:
        """The start page; ``part=state`` gives only its State section, once the agent's
        events have moved past ``seen`` (the section's long poll)."""
        generation = changes.count
        if part is not None and seen is not None:
            generation = await waited(seen, busy=False)
        shown = await run_in_threadpool(state)
        if part is not None:
            response = page(request, "home_state.html", **shown)
        else:
            response = page(request, "home.html", title="ingest-agent", generation=generation,
                            limit=settings.api.max_upload_bytes, **shown)
        return _live(response, generation, busy=False)

    @pages.post("/upload", dependencies=[Depends(url_token)])
    async def upload_form(request: Request,
                          inbox: Annotated[str | None, Query(max_length=64)] = None) -> Response:
        """The upload form without JavaScript: one file, then its job's page. (The CSRF token
        travels in the URL because it must be checked before the body is read; the inbox is
        the form's field before the file, or the URL's.)"""
        box = upload_box(boxes, inbox)
        try:
            job, _ = await receive_upload(request, queue, box, settings.api.max_upload_bytes,
                                          None if inbox else box_named(boxes))
        except UploadRejected as exc:
            return page(request, "error.html", exc.status, title="Upload refused",
                        message=exc.detail)
        return RedirectResponse(f"/jobs/{quote(job.job_id)}", status_code=303)

    @pages.get("/jobs", response_class=HTMLResponse)
    async def jobs(request: Request, status: str | None = None,
                   inbox: Annotated[str | None, Query(max_length=64)] = None,
                   name: Annotated[str | None, Query(max_length=200)] = None,
                   cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
                   rows: bool = False,
                   seen: Annotated[int | None, Query(ge=0)] = None,
                   busy: bool = False) -> Response:
        """The job list, newest first; ``rows=1`` gives only the table's rows, once the
        agent's events have moved past ``seen`` (the live list's long poll)."""
        chosen = JobStatus(status) if status in {str(s) for s in JobStatus} else None
        where = JobFilter(chosen, inbox or None, name or None)
        generation = changes.count
        if rows and seen is not None:
            generation = await waited(seen, busy)
        found, following = await run_in_threadpool(job_rows, where, cursor)
        query = {k: v for k, v in (("status", status), ("inbox", inbox), ("name", name)) if v}
        more = (f"/jobs?{urlencode({**query, 'cursor': following})}"
                if following is not None else None)
        template = "job_rows.html" if rows else "jobs.html"
        running = any(j["raw_status"] in ("queued", "processing") for j in found)
        response = page(request, template, title="Jobs", jobs=found, more=more,
                        generation=generation, busy=running,
                        live=cursor is None, query=urlencode(query), status=status or "",
                        inbox=inbox or "", name=name or "",
                        statuses=[str(s) for s in JobStatus], inboxes=list(boxes))
        return _live(response, generation, busy=running)

    @pages.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str) -> Response:
        job = job_or_404(job_id)
        return page(request, "job.html", title=f"Job {job.job_id[:8]}", job=_row(job),
                    history=[a.model_dump() for a in job.record.history],
                    stages=stage_times(job),
                    came_from=_came_from(job, boxes), now_at=current_location(job, boxes.values()),
                    downloadable=can_send(open_job_original(job, boxes)))

    @pages.post("/jobs/{job_id}/retry", dependencies=[Depends(form_token)])
    def retry(request: Request, job_id: str) -> Response:
        from agent.processing.retry import retry_failed_job

        job_or_404(job_id)
        try:
            retry_failed_job(queue, boxes, job_id)
        except AgentError as exc:
            return page(request, "error.html", 409, title="Cannot retry", message=str(exc))
        return RedirectResponse(f"/jobs/{quote(job_id)}", status_code=303)

    @pages.get("/jobs/{job_id}/original")
    def job_file(job_id: str) -> Response:
        job = job_or_404(job_id)
        found = open_job_original(job, boxes)
        if found is None:
            raise HTTPException(404, "the original is not in done/ or failed/")
        return _download(found, job.original_filename or Path(job.file_path).name)

    @pages.get("/search", response_class=HTMLResponse)
    async def search(request: Request, q: Annotated[str, Query(max_length=2000)] = "",
                     mode: str = "",
                     inbox: Annotated[str, Query(max_length=64)] = "",
                     type: Annotated[str, Query(max_length=32)] = "",  # noqa: A002
                     after: str = "", before: str = "") -> Response:
        form = {"q": q, "mode": mode, "inbox": inbox, "type": type, "after": after,
                "before": before}
        common = {"title": f"Search: {q}" if q.strip() else "Search", "form": form,
                  "inboxes": list(boxes), "types": metric_types(),
                  "modes": MODES}
        if not q.strip():
            return page(request, "search.html", 200, response=None, error=None, **common)
        try:
            where = SearchFilter(inbox=inbox or None,
                                 types=mime_types([type] if type else ()),
                                 after=_epoch(after), before=_epoch(before, end=True))
            wanted = SearchRequest(q, 10, mode or None, True, where)  # type: ignore[arg-type]
            found = (await run_in_threadpool(searcher.answer, wanted)).to_dict()
        except (SearchUsageError, ValueError) as exc:
            return page(request, "search.html", 400, response=None, error=str(exc), **common)
        for result in found["results"]:
            result["pieces"] = marked(result["snippet"])
        return page(request, "search.html", 200, response=found, error=None, **common)

    @pages.get("/documents/{doc_id}", response_class=HTMLResponse)
    def document(request: Request, doc_id: str,
                 start: Annotated[int, Query(ge=0, le=10**9)] = 0) -> Response:
        index = documents.get()
        record = index.find_document(doc_id)
        if record is None:
            raise HTTPException(404, f"no document with id {doc_id!r}")
        chunks = index.document_chunks(doc_id, start, CHUNKS_PER_PAGE + 1)
        following = chunks[CHUNKS_PER_PAGE].ordinal if len(chunks) > CHUNKS_PER_PAGE else None
        job = None
        if record.job_id:
            try:
                job = queue.get_job_status(record.job_id)
            except (JobNotFoundError, InvalidJobUpdateError):
                job = None
        ocr_pages = set(job.record.ocr_page_numbers if job else [])
        return page(request, "document.html", title=display_name(record.source_name),
                    record=record, chunks=chunks[:CHUNKS_PER_PAGE], following=following,
                    ocr_pages=ocr_pages, ocr_count=(job.record.ocr_pages if job
                                                    else None),
                    job_id=record.job_id,
                    downloadable=can_send(open_document_original(record.location,
                                                                 record.inbox, boxes)))

    @pages.get("/documents/{doc_id}/original")
    def document_file(doc_id: str) -> Response:
        record = documents.get().find_document(doc_id)
        found = None if record is None else open_document_original(record.location,
                                                                     record.inbox, boxes)
        if record is None or found is None:
            raise HTTPException(404, "the original is not in done/")
        return _download(found, record.source_name)

    @own_forms.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> Response:  # noqa: A002
        if not guard.needs_login:
            return RedirectResponse("/", status_code=303)
        return page(request, "login.html", title="Log in", target=_local_path(next),
                    error=None)

    @own_forms.post("/login", dependencies=[Depends(form_token)])
    async def login(request: Request, token: Annotated[str, Form(max_length=4096)] = "",
                    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
                    ) -> Response:
        response = RedirectResponse(_local_path(next), status_code=303)
        try:
            if await guard.login(request, token, response):
                return response
        except TooManyWrongTokens as exc:
            refused = page(request, "login.html", 429, title="Log in", target=_local_path(next),
                           error=f"Too many wrong tokens are waiting their turn; try again in "
                                 f"{exc.retry_after} seconds.")
            refused.headers["Retry-After"] = str(exc.retry_after)
            return refused
        return page(request, "login.html", 401, title="Log in", target=_local_path(next),
                    error="That is not the agent's token.")

    @own_forms.post("/logout", dependencies=[Depends(form_token)])
    def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        guard.logout(request, response)
        return response

    app.include_router(pages)
    app.include_router(own_forms)


def _live(response: Response, generation: int, busy: bool) -> Response:
    """What a live part's next long poll sends back: the events seen, and whether a job in
    view runs (then it asks again at once)."""
    response.headers["X-Generation"] = str(generation)
    response.headers["X-Busy"] = "1" if busy else "0"
    return response


def _row(job: Job) -> dict[str, Any]:
    """A job as the page's tables show it."""
    record = job.record
    return {"id": job.job_id, "short": job.job_id[:8], "file": job.original_filename,
            "inbox": job.inbox, "status": shown_status(job), "raw_status": str(job.status),
            "progress": job.progress, "stage": shown_progress(job),
            "message": job.message, "created": job.created_at, "updated": job.updated_at,
            "started": job.started_at, "finished": job.finished_at, "attempts": job.attempts,
            "retries": job.retries, "paused": paused_times(job),
            "document_id": record.document_id,
            "chunks": record.chunks,
            "warnings": record.warnings,
            "retryable": job.status in (JobStatus.FAILED, JobStatus.TIMEOUT)}


def _came_from(job: Job, boxes: dict[str, InboxFolders]) -> str:
    source = job.record.source or "the inbox folder"
    box = boxes.get(job.inbox or "")
    relpath = job.record.relpath or job.original_filename or ""
    where = display_name(str(box.inbox / relpath)) if box is not None else display_name(
        job.file_path)
    via = {"api": "uploaded (web page or API)", "cli": "queued with the CLI"}.get(
        str(source), "dropped into the inbox folder")
    return f"{via}: {where}"


def _download(found: Original, name: str) -> Response:
    """The opened file as an attachment (never rendered by the browser), under its display
    name."""
    shown = display_name(Path(name).name) or "download"
    return StreamingResponse(found.blocks(), media_type="application/octet-stream", headers={
        "Content-Disposition": content_disposition(shown),
        "Content-Length": str(found.size),
        "Content-Security-Policy": "default-src 'none'; sandbox"})
