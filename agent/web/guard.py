"""Who may use the web page, and proof that a form came from it.

With ``api.token`` set, the login form exchanges the token for a session: a random id in an
HttpOnly, SameSite=Strict cookie, kept in memory (a restart logs everyone out, which is the
safe side). Without a token the agent serves the page on loopback only (as the API), and
everyone who reaches it is in.

Every form that changes something carries a CSRF token: the value of a second random cookie,
compared in constant time (double submit). A browser sends neither cookie on a request from
another site (SameSite=Strict), and its ``Origin`` header names that site, which is refused too.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "ingest_session"
CSRF_COOKIE = "ingest_csrf"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 1000


class Guard:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self._sessions: dict[str, float] = {}  # id → expiry (monotonic seconds)
        self._lock = threading.Lock()

    @property
    def needs_login(self) -> bool:
        return self.token is not None

    def logged_in(self, request: Request) -> bool:
        if self.token is None:
            return True
        session = request.cookies.get(SESSION_COOKIE, "")
        with self._lock:
            expiry = self._sessions.get(session)
            if expiry is not None and expiry < time.monotonic():
                del self._sessions[session]
                expiry = None
        return expiry is not None

    def login(self, given: str, response: Response) -> bool:
        """Start a session if ``given`` is the token."""
        if self.token is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return False
        session = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for old in [s for s, e in self._sessions.items() if e < now]:
                del self._sessions[old]
            while len(self._sessions) >= MAX_SESSIONS:  # the oldest goes first
                del self._sessions[min(self._sessions, key=self._sessions.__getitem__)]
            self._sessions[session] = now + SESSION_SECONDS
        response.set_cookie(SESSION_COOKIE, session, max_age=SESSION_SECONDS, httponly=True,
                            samesite="strict", path="/")
        return True

    def logout(self, request: Request, response: Response) -> None:
        with self._lock:
            self._sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")

    def csrf_token(self, request: Request) -> str:
        """The token a page's forms carry: the browser's CSRF cookie, or a new one (which
        :meth:`keep_csrf` then sets on the response)."""
        return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)

    @staticmethod
    def keep_csrf(request: Request, response: Response, token: str) -> None:
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")

    @staticmethod
    def csrf_ok(request: Request, given: str | None) -> bool:
        expected = request.cookies.get(CSRF_COOKIE)
        return bool(expected and given) and hmac.compare_digest(
            str(given).encode(), str(expected).encode())

    @staticmethod
    def has_cookies(request: Request) -> bool:
        return SESSION_COOKIE in request.cookies or CSRF_COOKIE in request.cookies

    @staticmethod
    def same_origin(request: Request) -> bool:
        """False for a browser's request sent from another site (its Origin names the site)."""
        origin = request.headers.get("origin")
        if origin is None:
            return True
        host = request.headers.get("host", "")
        return origin != "null" and urlsplit(origin).netloc.lower() == host.lower()
