"""The web page in a real browser (Debian's chromium, driven by Playwright) against a real agent
with the real pipeline: upload, live rows, search, documents, retry, keyboard use, axe-core,
hostile names and text, CSRF and login. Screenshots go to ``tests/artifacts/screenshots``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import AgentProcess, agent_config, free_port, scaled, wait_until

REAL = Path(__file__).parent / "fixtures" / "real"
SHOTS = Path(__file__).parent / "artifacts" / "screenshots"
HOSTILE_NAME = "<img src=x onerror=alert(1)>.txt"
HOSTILE_TEXT = ("<script>alert(2)</script><b>bold?</b> \x1b[31mred\x1b[0m \u202eevil\u202c "
                "the hostile marmalade paragraph\n")
TOKEN = "page-token-for-tests-0123456789"


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is missing: make system-deps installs it"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(),
                                              args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real agent (real pipeline, real model, OCR on) with two inboxes, page on a free port."""
    base = tmp_path_factory.mktemp("web")
    port = free_port()
    config = agent_config(base, api={"enabled": True, "port": port})
    config.write_text(config.read_text() + '\n[[inbox]]\nname = "scans"\npath = "scans/inbox"\n'
                      "settle_seconds = 0.2\n")
    agent = AgentProcess(config).ready()
    try:
        yield {"url": f"http://127.0.0.1:{port}", "base": base, "agent": agent}
    finally:
        assert agent.stop() == 0


@pytest.fixture()
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context per test; an alert() a page runs, or anything of the page's
    own that its Content-Security-Policy blocks (an inline style or script), fails it."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(scaled(30) * 1000)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", on_dialog)
    blocked: list[str] = []
    opened.on("console", lambda m: blocked.append(m.text)
              if "Content Security Policy" in m.text else None)
    yield opened
    context.close()
    assert not dialogs, f"a page ran script it was given: {dialogs}"
    assert not blocked, f"the page broke its own CSP: {blocked}"


@pytest.fixture()
def no_script_page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context with JavaScript off (the page's forms on their own)."""
    context = browser.new_context(java_script_enabled=False)
    opened = context.new_page()
    opened.set_default_timeout(scaled(30) * 1000)
    yield opened
    context.close()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _upload_row(page: Any, name: str) -> Any:
    return page.locator("#uploads li", has_text=name)


def _statuses_seen(page: Any) -> list[tuple[str, str]]:
    return [(name, status) for name, status in page.evaluate("window.__seen || []")]


def _record_statuses(page: Any) -> None:
    """Record every status text the upload list shows, as the DOM changes (no polling gaps)."""
    page.evaluate("""() => {
        window.__seen = []; window.__loaded = performance.timeOrigin;
        const list = document.getElementById('uploads');
        new MutationObserver(() => {
            for (const li of list.querySelectorAll('li')) {
                const name = li.querySelector('a').textContent;
                const status = li.querySelector('.status').textContent;
                const last = window.__seen.filter(s => s[0] === name).pop();
                if (!last || last[1] !== status) window.__seen.push([name, status]);
            }
        }).observe(list, {subtree: true, childList: true, characterData: true});
    }""")


def _axe(page: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [{"id": v["id"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in results.response["violations"]]


def _wait_job_status(url: str, name: str, wanted: set[str], timeout: float = 180) -> dict:
    """The newest job of file ``name``, once its status is one of ``wanted`` (read by the API)."""
    def found() -> dict | None:
        jobs = httpx.get(f"{url}/api/v1/jobs", params={"name": name}, timeout=30).json()
        return jobs[0] if jobs and jobs[0]["status"] in wanted else None

    return wait_until(found, timeout, f"{name} to reach {wanted}")


def test_uploads_follow_their_jobs_live_then_search_finds_them(site: dict, page: Any) -> None:
    """A real PDF and a real scan, chosen in the file picker for the second inbox, go up with
    a progress bar each; their rows go queued → processing → completed without a reload; a
    phrase from each is found, and its document opens showing what was read (OCR marked)."""
    url = site["url"]
    page.goto(url + "/")
    _record_statuses(page)
    page.select_option("#upload-inbox", "scans")
    page.set_input_files("#upload-file", [str(REAL / "tika" / "testPDF.pdf"),
                                          str(REAL / "scans" / "phototest.tif")])
    page.click("#upload button[type=submit]")
    assert page.locator("#upload-inbox").input_value() == "scans", "the next upload goes there too"
    assert page.locator("#upload-file").input_value() == "", "the chosen files are cleared"
    for name in ("testPDF.pdf", "phototest.tif"):
        row = _upload_row(page, name)
        row.locator(".status", has_text="completed").wait_for(timeout=scaled(240) * 1000)
    assert page.evaluate("performance.timeOrigin") == page.evaluate("window.__loaded"), \
        "the page reloaded"
    seen = _statuses_seen(page)
    for name in ("testPDF.pdf", "phototest.tif"):
        states = [status for file, status in seen if file == name]
        assert states[0] == "uploading" and states[-1] == "completed", states
        assert "queued" in states or "processing" in states, states
    scan_states = [s for f, s in seen if f == "phototest.tif"]
    assert "processing" in scan_states, f"the scan's OCR was never seen running: {scan_states}"
    page.wait_for_function(  # the State section follows too
        "() => Number(document.querySelector('#count-completed').textContent) >= 2")
    _shot(page, "home")

    jobs = httpx.get(f"{url}/api/v1/jobs", params={"inbox": "scans"}, timeout=30).json()
    assert {j["file"] for j in jobs} >= {"testPDF.pdf", "phototest.tif"}
    for query, name, phrase in (
            ("toolkit for detecting and extracting metadata", "testPDF.pdf",
             "toolkit for detecting and extracting metadata"),
            ("quick brown dog jumped over the lazy fox", "phototest.tif", "lazy fox")):
        page.goto(url + "/")
        page.fill("#home-q", query)
        page.press("#home-q", "Enter")
        page.wait_for_url("**/search?q=*")
        first = page.locator("ol.results > li").first
        assert name in first.locator("h2").inner_text()
        assert first.locator("mark").count() > 0, "the snippet marks the matched words"
        if name == "phototest.tif":
            _shot(page, "search")
        first.locator("h2 a").click()
        page.wait_for_url("**/documents/*")
        assert phrase in page.locator("pre.chunk").first.inner_text()
        if name == "phototest.tif":
            assert page.locator(".ocr", has_text="read by OCR").count() >= 1
            _shot(page, "document")
        else:
            assert page.locator(".ocr").count() == 0, "a text layer is not OCR"
            with page.expect_download() as download:
                page.click("text=Download the original")
            saved = download.value
            assert saved.suggested_filename == "testPDF.pdf"
            assert Path(saved.path()).read_bytes() == (REAL / "tika" / "testPDF.pdf").read_bytes()


def test_a_file_dropped_on_the_page_is_uploaded_and_followed(site: dict, page: Any) -> None:
    """Drag and drop: a file dropped on the drop zone goes up and its row follows its job;
    the page's State counts the job completed, without a reload."""
    url = site["url"]
    page.goto(url + "/")
    completed_before = int(page.locator("#count-completed").inner_text())
    loaded = page.evaluate("performance.timeOrigin")
    page.evaluate("""() => {
        const data = new DataTransfer();
        data.items.add(new File(["Pelicans keep their catch in a throat pouch.\\n"],
                                "dropped-pelicans.txt", {type: "text/plain"}));
        document.getElementById('dropzone').dispatchEvent(
            new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
    }""")
    row = _upload_row(page, "dropped-pelicans.txt")
    row.locator(".status", has_text="completed").wait_for(timeout=scaled(120) * 1000)
    job = _wait_job_status(url, "dropped-pelicans.txt", {"completed"})
    assert job["inbox"] == "box" and job["chunks"] == 1
    page.wait_for_function(
        "n => Number(document.querySelector('#count-completed').textContent) > n",
        arg=completed_before)
    assert page.evaluate("performance.timeOrigin") == loaded, "the page reloaded"


def test_upload_search_and_jobs_work_without_javascript(site: dict,
                                                        no_script_page: Any) -> None:
    """With JavaScript off, the upload form posts one file and lands on its job's page; the
    job list and search are plain pages."""
    page = no_script_page
    url = site["url"]
    note = site["base"] / "no-script-walrus.txt"
    note.write_text("Walruses use their tusks to haul themselves onto the ice.\n")
    page.goto(url + "/")
    page.set_input_files("#upload-file", str(note))
    page.click("#upload button[type=submit]")
    page.wait_for_url("**/jobs/*")
    assert "no-script-walrus.txt" in page.locator("h1").inner_text()
    _wait_job_status(url, "no-script-walrus.txt", {"completed"})
    page.goto(url + "/jobs?name=walrus")
    assert page.locator("tbody tr", has_text="no-script-walrus.txt").count() == 1
    page.goto(url + "/search")
    page.fill("#q", "walrus tusks haul onto the ice")
    page.press("#q", "Enter")
    page.wait_for_url("**/search?q=*")
    assert "no-script-walrus.txt" in page.locator("ol.results > li").first.inner_text()


def test_the_form_without_javascript_files_into_the_chosen_inbox(
        site: dict, no_script_page: Any) -> None:
    """The form names its inbox in a field before the file: with JavaScript off, a file
    uploaded with "scans" chosen lands in the scans inbox, not the first one."""
    page = no_script_page
    url = site["url"]
    note = site["base"] / "no-script-narwhal.txt"
    note.write_text("Narwhals keep to the Arctic all year round.\n")
    page.goto(url + "/")
    page.select_option("#upload-inbox", "scans")
    page.set_input_files("#upload-file", str(note))
    page.click("#upload button[type=submit]")
    page.wait_for_url("**/jobs/*")
    job = _wait_job_status(url, "no-script-narwhal.txt", {"completed"})
    assert job["inbox"] == "scans", job
    assert "inbox" not in (job.get("metadata") or {}).get("fields", {}), job
    assert (site["base"] / "scans" / "done" / "no-script-narwhal.txt").is_file()
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "ingest_csrf")
    form = f"{url}/upload?csrf={csrf}"
    note_part = {"name": "late.txt", "mimeType": "text/plain", "buffer": b"late inbox"}
    unknown = page.request.post(form, multipart={"inbox": "nope", "file": note_part})
    assert unknown.status == 404 and "no inbox named &#39;nope&#39;" in unknown.text()
    late = page.request.post(form, multipart={"file": note_part, "inbox": "scans"})
    assert late.status == 400 and "must come before the file" in late.text()


def test_a_failed_file_shows_why_and_retry_runs_it_again(site: dict, page: Any) -> None:
    """A corrupt PDF fails with its reason in the list; Retry (a real form post) queues it
    again, and it runs a second attempt, seen on its own page."""
    url = site["url"]
    (site["base"] / "inbox" / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf\n")
    failed = _wait_job_status(url, "broken.pdf", {"failed"})
    page.goto(url + "/jobs?status=failed")
    row = page.locator(f"#job-{failed['job_id']}")
    assert "PDF" in row.inner_text() and "corrupt" in row.inner_text().lower()
    _shot(page, "jobs")
    row.get_by_role("button", name="Retry broken.pdf").click()
    page.wait_for_url(f"**/jobs/{failed['job_id']}")
    again = wait_until(lambda: (j := httpx.get(f"{url}/api/v1/jobs/{failed['job_id']}",
                                               timeout=30).json())["attempts"] >= 2
                       and j["status"] == "failed" and j, scaled(120), "a second attempt")
    assert again["attempts"] == 2
    page.reload()
    original = page.request.get(f"{url}/jobs/{failed['job_id']}/original")
    assert original.status == 200 and original.body().startswith(b"%PDF-1.4\nthis is not")
    assert "attachment" in original.headers["content-disposition"]
    assert page.request.get(f"{url}/jobs/{failed['job_id']}/original?path=/etc/passwd"
                            ).body() == original.body(), "the path comes from the job, never the client"
    assert page.locator("h2", has_text="Attempts").count() == 1
    assert page.locator("table >> text=corrupt").count() >= 1
    _shot(page, "job")


def test_hostile_names_and_text_render_as_text(site: dict, page: Any) -> None:
    """A file named like an <img> tag, holding script, markup and terminal escapes: every page
    shows them as text; no element is made of them and nothing runs."""
    url = site["url"]
    (site["base"] / "inbox" / HOSTILE_NAME).write_text(HOSTILE_TEXT)
    done = _wait_job_status(url, HOSTILE_NAME, {"completed"})
    for path in ("/jobs", f"/jobs/{done['job_id']}", f"/documents/{done['document_id']}",
                 "/search?q=hostile+marmalade+paragraph"):
        page.goto(url + path)
        assert HOSTILE_NAME in page.locator("main").inner_text(), path
        assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
        assert page.locator("main b").count() == 0, path
    page.goto(url + f"/documents/{done['document_id']}")
    shown = page.locator("pre.chunk").inner_text()
    # the escape character itself never reaches the index (pipeline.hygiene drops controls)
    assert "<script>alert(2)</script>" in shown and "[31mred" in shown and "\x1b" not in shown
    assert "<U+202E>" in shown, "a bidirectional override is shown, not obeyed"


def test_the_page_works_by_keyboard_alone(site: dict, page: Any) -> None:
    """Tab to the search box, search, Tab to a result and open it with Enter; every focused
    control shows a visible focus ring."""
    url = site["url"]
    _wait_job_status(url, "phototest.tif", {"completed"})
    page.goto(url + "/")
    outlines = []
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement;
            return [e.id, e.tagName, getComputedStyle(e).outlineStyle]; }""")
        outlines.append(focused)
        if focused[0] == "home-q":
            break
    assert outlines[-1][0] == "home-q", outlines
    assert all(style != "none" for _, _, style in outlines), outlines
    page.keyboard.type("quick brown dog jumped over the lazy fox")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=*")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('ol.results') !== null"):
            break
    assert page.evaluate("document.activeElement.closest('ol.results') !== null")
    page.keyboard.press("Enter")
    page.wait_for_url("**/documents/*")
    assert "lazy fox" in page.locator("main").inner_text()


def test_no_axe_core_violations_on_any_page(site: dict, page: Any) -> None:
    url = site["url"]
    done = _wait_job_status(url, "phototest.tif", {"completed"})
    pages = ["/", "/jobs", f"/jobs/{done['job_id']}", "/search",
             "/search?q=quick+brown+fox", "/search?q=recipe+for+a+chocolate+cake",
             f"/documents/{done['document_id']}"]
    found = {}
    for path in pages:
        page.goto(url + path)
        found[path] = _axe(page)
    assert found == {path: [] for path in pages}
    page.goto(url + "/search?q=recipe+for+a+chocolate+cake")
    assert page.locator(".no-answer").count() == 1, "a question the index cannot answer"


def test_forms_without_their_csrf_token_are_refused(site: dict, page: Any) -> None:
    """A retry posted without the token, with a wrong one, or from another site is refused;
    the API refuses a browser's upload without its header; the job stays failed."""
    url = site["url"]
    (site["base"] / "inbox" / "csrf.pdf").write_bytes(b"%PDF-1.4\nnot a pdf either\n")
    failed = _wait_job_status(url, "csrf.pdf", {"failed"})
    missing = page.goto(url + "/jobs/no-such-job")
    assert missing is not None and missing.status == 404
    assert page.locator("h1").inner_text() == "Not found", "a page's error is a page"
    garbled = page.goto(url + "/jobs?cursor=not-a-cursor")
    assert garbled is not None and garbled.status == 400
    assert page.locator("h1").inner_text() == "Not understood"
    assert "cursor" in page.locator(".error").inner_text(), "it names the value"
    page.goto(url + "/jobs")  # the browser now holds its CSRF cookie
    retry = f"{url}/jobs/{failed['job_id']}/retry"
    assert page.request.post(retry, form={}).status == 403
    assert page.request.post(retry, form={"csrf": "forged"}).status == 403
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "ingest_csrf")
    other_site = page.request.post(retry, form={"csrf": cookie},
                                   headers={"Origin": "http://evil.example"})
    assert other_site.status == 403
    upload = page.request.post(f"{url}/api/v1/upload",
                               multipart={"file": {"name": "x.txt", "mimeType": "text/plain",
                                                   "buffer": b"x"}})
    assert upload.status == 403
    assert httpx.get(f"{url}/api/v1/jobs/{failed['job_id']}").json()["status"] == "failed"


def test_with_a_token_every_page_asks_for_a_login(tmp_path: Path, page: Any) -> None:
    port = free_port()
    agent = AgentProcess(agent_config(tmp_path, api={"enabled": True, "port": port,
                                                     "token": TOKEN})).ready()
    url = f"http://127.0.0.1:{port}"
    try:
        for path in ("/", "/jobs", "/jobs/0123456789abcdef", "/search?q=x",
                     "/documents/doc_0000", "/jobs/0123456789abcdef/original"):
            page.goto(url + path)
            assert page.url.startswith(url + "/login"), path
            assert page.locator("#token").count() == 1
        assert httpx.get(f"{url}/api/v1/jobs").status_code == 401
        page.goto(url + "/jobs")
        page.fill("#token", "wrong")
        page.press("#token", "Enter")
        assert "not the agent's token" in page.locator(".error").inner_text()
        _shot(page, "login")
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        page.wait_for_url(url + "/jobs")
        session = next(c for c in page.context.cookies() if c["name"] == "ingest_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        page.context.clear_cookies()  # the session ends (as when the agent restarts)
        (tmp_path / "inbox" / "wake.txt").write_text("An event for the open job list.\n")
        page.wait_for_url("**/login?*")  # the live list noticed, and the page went to the login
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        page.wait_for_url(url + "/jobs")
        page.goto(url + "/")
        page.click("text=Log out")
        page.wait_for_url("**/login")
        page.goto(url + "/jobs")
        assert page.url.startswith(url + "/login")
        assert httpx.get(f"{url}/api/v1/jobs",
                         headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        for _ in range(11):  # guesses through the API; the form's "wrong" above was the first
            assert httpx.get(f"{url}/api/v1/jobs",
                             headers={"Authorization": "Bearer guess"}).status_code == 401
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")  # the address's checks now take turns: a delay, and in
        page.wait_for_url(url + "/jobs")
    finally:
        assert agent.stop() == 0


def _resolving(browser: Any, rule: str) -> Any:
    """Another Chromium of the same Playwright, its resolver told ``rule`` (a name → 127.0.0.1,
    as a rebinding DNS server would answer)."""
    return browser.browser_type.launch(executable_path=_chromium(), args=[
        "--no-sandbox", "--disable-gpu", f"--host-resolver-rules={rule}"])


def test_a_page_under_another_host_name_is_refused(site: dict, browser: Any) -> None:
    """DNS rebinding: a site whose name resolves to 127.0.0.1 (Chromium told so with
    --host-resolver-rules) loads under its own name, so the browser's same-origin rule lets
    it read what it loads; the agent answers no request naming another host (page, API,
    upload), and still answers its own names."""
    url = site["url"]
    port = url.rsplit(":", 1)[1]
    for path in ("/", "/api/v1/search?q=marmalade", "/api/v1/jobs"):
        assert httpx.get(url + path, headers={"Host": f"rebind.test:{port}"}).status_code == 400
        assert httpx.get(url + path, headers={"Host": f"localhost:{port}"}).status_code == 200
    posted = httpx.post(url + "/api/v1/upload", headers={"Host": f"rebind.test:{port}"},
                        files={"file": ("rebound.txt", b"planted")})
    assert posted.status_code == 400
    assert not any(p.name.endswith("rebound.txt") for p in (site["base"] / "inbox").iterdir())
    launched = _resolving(browser, "MAP rebind.test 127.0.0.1")
    try:
        page = launched.new_page()
        shown = page.goto(f"http://rebind.test:{port}/")
        assert shown is not None and shown.status == 400
        assert "Invalid host header" in page.content()
        read = page.evaluate("""async () => {
            const r = await fetch('/api/v1/search?q=marmalade');
            return [r.status, await r.text()];
        }""")
        assert read[0] == 400 and "results" not in read[1], read
        _shot(page, "rebinding-refused")
    finally:
        launched.close()


def test_a_configured_host_name_is_answered(tmp_path: Path, browser: Any) -> None:
    """Behind a proxy or under a DNS name, api.allowed_hosts names the hosts to answer; the
    loopback names are then not answered unless listed."""
    port = free_port()
    config = agent_config(tmp_path, api={"enabled": True, "port": port,
                                         "allowed_hosts": ["ingest.example"]})
    agent = AgentProcess(config).ready()
    launched = _resolving(browser, "MAP ingest.example 127.0.0.1")
    try:
        page = launched.new_page()
        shown = page.goto(f"http://ingest.example:{port}/")
        assert shown is not None and shown.status == 200
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 400
    finally:
        launched.close()
        assert agent.stop() == 0
