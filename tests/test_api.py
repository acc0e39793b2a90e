"""The HTTP API over real HTTP (uvicorn on loopback), a real queue, inbox and index."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from agent.config.settings import Settings, load_config
from agent.errors import TooManyWrongTokens
from agent.files.folders import InboxFolders, build_inboxes
from agent.ops.listeners import Port, listen
from agent.queue import open_queue
from agent.queue.base import JobQueue, JobStatus
from agent.web.api import ApiServer, create_app
from agent.web.guard import WrongTokens
from tests.conftest import ManualClock

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Api:
    def __init__(self, base: Path) -> None:
        self.settings: Settings = load_config(None, environ={
            "INGEST_AGENT_AGENT__DATA_DIR": str(base / "data"),
            "INGEST_AGENT_INBOX__0__NAME": "docs",
            "INGEST_AGENT_INBOX__0__PATH": str(base / "inbox"),
            "INGEST_AGENT_API__TOKEN": TOKEN,
            "INGEST_AGENT_API__MAX_UPLOAD_BYTES": "1000",
        })
        self.boxes: dict[str, InboxFolders] = {b.name: b for b in build_inboxes(self.settings)}
        for box in self.boxes.values():
            box.ensure()
        self.box = self.boxes["docs"]
        self.queue: JobQueue = open_queue(self.settings)
        self.server = ApiServer(create_app(self.settings, self.queue, self.boxes),
                                listen(Port("api", "127.0.0.1", 0)), self.settings.api)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def upload(self, name: str, content: bytes, headers: dict[str, str] | None = None
               ) -> httpx.Response:
        return self.client.post("/api/v1/upload", files={"file": (name, content)},
                                headers=AUTH if headers is None else headers)

    def close(self) -> None:
        self.client.close()
        self.server.stop()
        self.queue.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    a = Api(tmp_path_factory.mktemp("api"))
    yield a
    a.close()
    assert not a.server.thread.is_alive(), "the API server thread must stop with the fixture"


def test_upload_lands_in_the_inbox_and_is_queued(api: Api) -> None:
    """201 with a job id; the file is in the inbox under its name; the job is queued."""
    response = api.upload("report.txt", b"quarterly figures")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["inbox"] == "docs" and body["file"] == "report.txt"
    assert (api.box.inbox / "report.txt").read_bytes() == b"quarterly figures"
    job = api.client.get(f"/api/v1/jobs/{body['job_id']}", headers=AUTH).json()
    assert job["status"] == "queued" and job["file"] == "report.txt"
    assert [p.name for p in api.box.processing.iterdir()] == [], "no temp file left behind"


def test_same_name_twice_never_overwrites(api: Api) -> None:
    """A second upload with a taken name gets a numbered name; both files are kept."""
    api.upload("twice.txt", b"first")
    second = api.upload("twice.txt", b"second").json()
    assert second["file"] == "twice (2).txt"
    assert (api.box.inbox / "twice.txt").read_bytes() == b"first"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"),
     ("evil\nname\x00.txt", "evil"), ("", "upload"), ("..", "upload"),
     ("a" * 300 + ".txt", "a" * 196 + ".txt")],
)
def test_client_file_names_are_sanitised(api: Api, name: str, expected: str) -> None:
    """No path parts, no control characters, bounded length; the file stays in the inbox."""
    response = api.upload(name, b"payload")
    assert response.status_code == 201, response.text
    stored = response.json()["file"]
    assert stored.startswith(expected.rsplit(".", 1)[0][:20])
    assert (api.box.inbox / stored).is_file()
    assert "/" not in stored and len(stored.encode()) <= 200
    assert not any(ord(ch) < 32 for ch in stored)


def test_empty_upload_is_refused(api: Api) -> None:
    """0 bytes: 400, nothing stored."""
    before = set(api.box.inbox.iterdir())
    response = api.upload("empty.txt", b"")
    assert response.status_code == 400 and "empty" in response.json()["detail"]
    assert set(api.box.inbox.iterdir()) == before


def test_upload_over_the_limit_is_413(api: Api) -> None:
    """Over api.max_upload_bytes: 413, no partial file anywhere."""
    before = set(api.box.inbox.iterdir())
    response = api.upload("big.bin", b"x" * 5000)
    assert response.status_code == 413
    assert set(api.box.inbox.iterdir()) == before
    assert list(api.box.processing.iterdir()) == []


def test_missing_or_wrong_token_is_401(api: Api) -> None:
    """Every endpoint needs the bearer token when api.token is set."""
    assert api.upload("x.txt", b"x", headers={}).status_code == 401
    assert api.upload("x.txt", b"x", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api.client.get("/api/v1/jobs").status_code == 401
    assert api.client.get("/api/v1/search", params={"q": "x"}).status_code == 401


def test_guessing_is_slowed_and_the_right_token_still_gets_in(tmp_path: Path) -> None:
    """Issue 42 item 10: ten wrong bearer tokens from one address, each naming a new address
    in X-Forwarded-For (no proxy is trusted, so they all count on the real peer): the checks
    then take turns, a wrong one waits, and the right token is let in after its turn (before:
    429 for the right token, and the forged addresses were believed)."""
    own = Api(tmp_path)
    try:
        for n in range(11):
            guess = {"Authorization": "Bearer guess", "X-Forwarded-For": f"10.9.{n}.1"}
            assert own.client.get("/api/v1/jobs", headers=guess).status_code == 401
        started = time.monotonic()
        waited = own.client.get("/api/v1/jobs", headers={"Authorization": "Bearer guess"})
        assert waited.status_code == 401 and time.monotonic() - started >= 0.9, "its turn"
        right = own.client.get("/api/v1/jobs", headers=AUTH)
        assert right.status_code == 200, right.text
    finally:
        own.close()


def test_wrong_tokens_take_turns_per_address_and_in_all(clock: ManualClock) -> None:
    """Past the allowance a check waits its turn (1, 2, 4 … s apart), per address and for
    all addresses together; a flood queuing over a minute ahead is refused; the window
    slides."""
    wrong = WrongTokens(allowed=3, window=60, allowed_in_all=100, clock=clock)
    for _ in range(3):
        assert wrong.turn("10.0.0.1") == 0
        wrong.failed("10.0.0.1")
    assert wrong.turn("10.0.0.1") == 0, "the first past the allowance goes at once"
    wrong.failed("10.0.0.1")
    assert wrong.turn("10.0.0.1") == 1
    assert wrong.turn("10.0.0.1") == 3, "turns queue: 1 s, then 2 s later"
    assert wrong.turn("10.0.0.2") == 0, "another address does not wait for this one"
    with pytest.raises(TooManyWrongTokens):
        for _ in range(60):
            wrong.turn("10.0.0.1")
    clock.advance(200)
    assert wrong.turn("10.0.0.1") == 0, "the window slid past every wrong token"
    rotating = WrongTokens(allowed=100, window=60, allowed_in_all=3, clock=clock)
    for n in range(4):
        assert rotating.turn(f"10.1.0.{n}") == 0
        rotating.failed(f"10.1.0.{n}")
    assert rotating.turn("10.1.0.9") == 1, "a new address each time still takes its turn"


def test_wrong_content_type_and_missing_field(api: Api) -> None:
    """A JSON body is 415; a multipart body without 'file' is 400."""
    assert api.client.post("/api/v1/upload", json={"a": 1}, headers=AUTH).status_code == 415
    response = api.client.post("/api/v1/upload", files={"other": ("a.txt", b"x")}, headers=AUTH)
    assert response.status_code == 400


@pytest.mark.parametrize(("parts", "detail"), [
    ([("file", ("a.txt", b"one")), ("file", ("b.txt", b"two"))], "one file per upload"),
    ([("file", ("a.txt", b"one"))] + [(f"f{n}", (None, b"v")) for n in range(17)],
     "at most 16 form fields"),
    ([("file", ("a.txt", b"one")), ("note", (None, b"x" * 1025))],
     "'note' is longer than 1,024 characters"),
    ([("file", ("a.txt", b"one")), ("attachment", ("b.txt", b"two"))],
     "only the field 'file' may carry a file"),
])
def test_what_an_upload_would_drop_is_refused_with_its_limit(
        api: Api, parts: list[tuple[str, tuple[str | None, bytes]]], detail: str) -> None:
    """A second file, a 17th field, a value over 1,024 bytes or a file in another field: 400
    naming the limit, and nothing is filed or left behind (before, they were silently cut)."""
    before = set(api.box.inbox.iterdir())
    response = api.client.post("/api/v1/upload", files=parts, headers=AUTH)
    assert response.status_code == 400 and detail in response.json()["detail"], response.text
    assert set(api.box.inbox.iterdir()) == before
    assert list(api.box.processing.iterdir()) == []


def test_job_listing_pages_by_cursor(api: Api) -> None:
    """/jobs pages with `Link: rel="next"` until the last page, every job once and newest
    first; the name filter pages too, and a forged cursor is refused (422)."""
    for n in range(7):
        assert api.upload(f"paged-{n}.txt", f"page {n}".encode()).status_code == 201
    everything = [j.job_id for j in api.queue.list_jobs(limit=1000)]
    seen: list[str] = []
    url: str | None = "/api/v1/jobs?limit=3"
    pages = 0
    while url is not None:
        response = api.client.get(url, headers=AUTH)
        assert response.status_code == 200
        seen += [j["job_id"] for j in response.json()]
        pages += 1
        link = response.headers.get("link")
        url = link[1:link.index(">")] if link else None
    assert seen == everything and pages == -(-len(everything) // 3) and pages > 2
    named = api.client.get("/api/v1/jobs", params={"name": "PAGED-", "limit": 4}, headers=AUTH)
    cursor = named.headers["x-next-cursor"]
    rest = api.client.get("/api/v1/jobs", params={"name": "paged-", "limit": 4, "cursor": cursor},
                          headers=AUTH)
    names = [j["file"] for j in named.json() + rest.json()]
    assert names == [f"paged-{n}.txt" for n in reversed(range(7))]
    assert "link" not in rest.headers
    forged = api.client.get("/api/v1/jobs", params={"cursor": "abc"}, headers=AUTH)
    assert forged.status_code == 422


def test_unknown_job_is_404_and_listing_filters(api: Api) -> None:
    """GET /jobs/{id} 404s for unknown ids; /jobs filters by status."""
    assert api.client.get("/api/v1/jobs/nope", headers=AUTH).status_code == 404
    queued = api.client.get("/api/v1/jobs", params={"status": "queued", "limit": 500},
                            headers=AUTH).json()
    assert queued and all(j["status"] == "queued" for j in queued)
    assert api.client.get("/api/v1/jobs", params={"status": "completed"},
                          headers=AUTH).json() == []


def test_search_returns_indexed_chunks(api: Api, tmp_path: Path) -> None:
    """/search answers over what was ingested, with the CLI's JSON shape: hybrid by default,
    lexical on request (snippet marked), filters honoured, a blank query refused (422)."""
    from agent.pipeline import IngestPipeline, JobRequest

    doc = tmp_path / "owls.txt"
    doc.write_text("Owls hunt at night and can turn their heads very far.")
    pipeline = IngestPipeline(api.settings)
    pipeline.run(JobRequest("j-owls", str(doc), "docs", "owls.txt"), lambda *_: None)
    pipeline.index.close()
    body = api.client.get("/api/v1/search", params={"q": "nocturnal birds", "k": 3},
                          headers=AUTH).json()
    top = body["results"][0]
    assert body["answered"] is True and body["mode"] == "hybrid"
    assert top["file"] == "owls.txt" and top["similarity"] > 0.3 and top["type"] == "text/plain"
    lexical = api.client.get("/api/v1/search", params={"q": "hunt", "mode": "lexical"},
                             headers=AUTH).json()
    assert lexical["results"][0]["snippet"].startswith("Owls **hunt** at night")
    assert lexical["results"][0]["similarity"] is None, "lexical mode needs no model"
    only_pdf = api.client.get("/api/v1/search", params={"q": "owls", "type": "pdf"},
                              headers=AUTH).json()
    assert only_pdf["answered"] is False and only_pdf["results"] == []
    for blank in ("   ", "\x1c", "\x85\u3000"):  # blank to Python's str.isspace, as to search
        refused = api.client.get("/api/v1/search", params={"q": blank}, headers=AUTH)
        assert refused.status_code == 422, (blank, "a blank query is refused as invalid")
    unknown = api.client.get("/api/v1/search", params={"q": "owls", "type": "spreadsheet"},
                             headers=AUTH)
    assert unknown.status_code == 422


def test_queue_state_matches_uploads(api: Api) -> None:
    """Every accepted upload is exactly one queued job."""
    jobs = api.queue.list_jobs(limit=1000)
    files = {p.name for p in api.box.inbox.iterdir()}
    assert {j.original_filename for j in jobs} == files
    assert all(j.status is JobStatus.QUEUED for j in jobs)


def test_fuzzed_requests_never_5xx_and_match_the_schema(api: Api) -> None:
    """schemathesis generates requests for every operation from the OpenAPI schema: no server
    errors, and every response conforms to the schema."""
    from hypothesis import given

    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == 4
    for operation in operations:
        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=25, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))
        def check(case: object) -> None:
            case.call_and_validate(headers=AUTH)  # type: ignore[attr-defined]

        check()


def test_a_locked_queue_never_stalls_the_api(tmp_path: Path) -> None:
    """Another process holds the queue's write lock: reading a finished job answers at once
    while an upload waits for the lock; an upload that waits past the busy timeout gets 503
    with Retry-After, and neither its temp file nor its inbox file stays behind."""
    import sqlite3
    import threading
    import time

    from tests.helpers import SCRIPTED, AgentProcess, agent_config, free_port, scaled, wait_until

    port = free_port()
    config = agent_config(tmp_path, api={"enabled": True, "port": port, "token": TOKEN},
                          queue={"busy_timeout_seconds": 2})
    agent = AgentProcess(config, pipeline=SCRIPTED).ready()
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, timeout=scaled(60), headers=AUTH)
    try:
        first = client.post("/api/v1/upload", files={"file": ("done.txt", b"ok\n")}).json()
        wait_until(lambda: client.get(f"/api/v1/jobs/{first['job_id']}").json()["status"]
                   == "completed", 60, "the first upload to complete")
        locker = sqlite3.connect(tmp_path / "data" / "queue.db", isolation_level=None,
                                 check_same_thread=False)
        results: dict[str, httpx.Response] = {}

        def upload(name: str) -> None:
            results[name] = client.post("/api/v1/upload", files={"file": (name, b"late\n")})

        locker.execute("BEGIN IMMEDIATE")
        try:
            waiting = threading.Thread(target=upload, args=("patient.txt",))
            waiting.start()
            # In the inbox, not yet queued: the upload now waits for the lock inside the agent.
            wait_until((tmp_path / "inbox" / "patient.txt").exists, 30,
                       "the upload to reach the queue", interval=0.01)
            started = time.monotonic()
            read = client.get(f"/api/v1/jobs/{first['job_id']}")
            assert read.status_code == 200 and time.monotonic() - started < scaled(1.0)
            waiting.join(timeout=scaled(30))
        finally:
            locker.execute("COMMIT")
        busy = results["patient.txt"]
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "5", busy.text
        processing = tmp_path / "processing"
        assert not [p for p in processing.iterdir() if p.name.endswith(".upload")]
        assert not (tmp_path / "inbox" / "patient.txt").exists()
        locker.execute("BEGIN IMMEDIATE")
        released = threading.Timer(1.0, lambda: locker.execute("COMMIT"))
        released.start()
        upload("short-wait.txt")
        released.join()
        assert results["short-wait.txt"].status_code == 201, "it waits out a short lock"
        locker.close()
    finally:
        client.close()
        assert agent.stop() == 0


def test_a_completed_jobs_warnings_are_in_its_api_view(tmp_path: Path) -> None:
    """The parts a reader skipped, kept in the job's metadata by the processor, are the job's
    ``warnings`` in GET /jobs/{id} and in the list; a job without any has an empty list."""
    api = Api(tmp_path)
    try:
        _check_warnings_shown(api)
    finally:
        api.close()


def _check_warnings_shown(api: Api) -> None:
    from agent.queue import JobStatus

    body = api.upload("survey.eml", b"From: a@example.org").json()
    plain = api.upload("plain.txt", b"nothing skipped").json()
    job = api.queue.get_next_job()
    assert job is not None and job.job_id == body["job_id"]
    api.queue.update_job_status(
        job.job_id, JobStatus.PROCESSING, lease_token=job.lease_token)
    api.queue.update_job_status(
        job.job_id, JobStatus.COMPLETED, 100, "indexed 2 chunks", lease_token=job.lease_token,
        metadata={"warnings": ["attachment scan.pdf not read: the PDF is corrupt"]})
    shown = api.client.get(f"/api/v1/jobs/{body['job_id']}", headers=AUTH).json()
    assert shown["warnings"] == ["attachment scan.pdf not read: the PDF is corrupt"]
    listed = api.client.get("/api/v1/jobs", params={"status": "completed"}, headers=AUTH).json()
    assert [j["warnings"] for j in listed if j["job_id"] == body["job_id"]] == [
        ["attachment scan.pdf not read: the PDF is corrupt"]]
    other = api.client.get(f"/api/v1/jobs/{plain['job_id']}", headers=AUTH).json()
    assert other["warnings"] == []
