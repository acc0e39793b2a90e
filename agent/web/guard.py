"""Who may use the web page, and proof that a form came from it.

With ``api.token`` set, the login form exchanges the token for a session: a random id in an
HttpOnly, SameSite=Strict cookie, kept in memory (a restart logs everyone out, which is the
safe side). Without a token the agent serves the page on loopback only (as the API), and
everyone who reaches it is in.

Every form that changes something carries a CSRF token: the value of a second random cookie,
compared in constant time (double submit). A browser sends neither cookie on a request from
another site (SameSite=Strict), and its ``Origin`` header names that site, which is refused too.

Wrong tokens are counted per client address, for the login form and the API alike: after
``WRONG_TOKENS_ALLOWED`` in ``WRONG_TOKEN_WINDOW`` seconds that address is refused (429, with
Retry-After) until the oldest of them is older than the window, the right token included, so
guessing gains nothing from going on.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import structlog
from starlette.requests import Request
from starlette.responses import Response

from agent.errors import TooManyWrongTokens

SESSION_COOKIE = "ingest_session"
CSRF_COOKIE = "ingest_csrf"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 1000
WRONG_TOKENS_ALLOWED = 10
WRONG_TOKEN_WINDOW = 60.0
MAX_CLIENTS_TRACKED = 10_000

log = structlog.get_logger("agent.web")


class WrongTokens:
    """Wrong tokens per client address in a sliding window; a client with too many waits."""

    def __init__(self, allowed: int = WRONG_TOKENS_ALLOWED, window: float = WRONG_TOKEN_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed = allowed
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, client: str) -> float:
        """How long ``client`` must wait before a token it sends is looked at (0: now)."""
        with self._lock:
            times = self._recent(client)
            if times is None or len(times) < self.allowed:
                return 0.0
            return max(0.0, times[0] + self.window - self.clock())

    def failed(self, client: str) -> None:
        with self._lock:
            if client not in self._seen and len(self._seen) >= MAX_CLIENTS_TRACKED:
                self._forget_old()
            times = self._recent(client) or self._seen.setdefault(client, deque())
            times.append(self.clock())
            while len(times) > self.allowed:
                times.popleft()
            if len(times) == self.allowed:
                log.warning("wrong token sent too often; this address must wait",
                            client=client, seconds=round(self.window))

    def _recent(self, client: str) -> deque[float] | None:
        times = self._seen.get(client)
        if times is None:
            return None
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._seen[client]
            return None
        return times

    def _forget_old(self) -> None:
        for client in list(self._seen):
            self._recent(client)
        while len(self._seen) >= MAX_CLIENTS_TRACKED:  # the longest quiet goes first
            del self._seen[min(self._seen, key=lambda c: self._seen[c][-1])]


class Guard:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.wrong_tokens = WrongTokens()
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

    def token_matches(self, request: Request, given: str) -> bool:
        """Whether ``given`` is the token; a wrong one counts against the client's address.
        Raises :class:`TooManyWrongTokens` while that address must wait."""
        client = request.client.host if request.client else "unknown"
        wait = self.wrong_tokens.wait_seconds(client)
        if wait > 0:
            raise TooManyWrongTokens(wait)
        if self.token is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        self.wrong_tokens.failed(client)
        return False

    def login(self, request: Request, given: str, response: Response) -> bool:
        """Start a session if ``given`` is the token (see :meth:`token_matches`)."""
        if self.token is None or not self.token_matches(request, given):
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
