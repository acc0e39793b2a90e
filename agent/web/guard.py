"""Who may use the web page, and proof that a form came from it.

With ``api.token`` set, the login form exchanges the token for a session: a random id in an
HttpOnly, SameSite=Strict cookie, kept in memory (a restart logs everyone out, which is the
safe side). Without a token the agent serves the page on loopback only (as the API), and
everyone who reaches it is in.

Every form that changes something carries a CSRF token: the value of a second random cookie,
compared in constant time (double submit). A browser sends neither cookie on a request from
another site (SameSite=Strict), and its ``Origin`` header names that site, which is refused too.

Wrong tokens are counted per client address (as a trusted proxy names it, ``agent.web.proxy``;
forwarded headers from anyone else are ignored) and in all, every guess at the agent's one
token from anywhere. Past ``WRONG_TOKENS_ALLOWED`` in ``WRONG_TOKEN_WINDOW`` seconds (per
address; ``WRONG_TOKENS_ALLOWED_IN_ALL`` in all), a token is not refused but checked in turn:
turns are spaced 1, 2, 4 … up to ``MAX_TURN_SPACING`` seconds apart as the wrong ones go on,
and the request waits for its turn without holding a thread, so the right token always gets
in (a delay, not a lock-out) and guessing runs no faster than the turns. Only a flood that
queues more than ``MAX_TURN_WAIT`` seconds of turns ahead is answered 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
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
WRONG_TOKENS_ALLOWED_IN_ALL = 100
WRONG_TOKEN_WINDOW = 60.0
MAX_TURN_SPACING = 30.0
MAX_TURN_WAIT = 60.0
MAX_CLIENTS_TRACKED = 10_000
IN_ALL = "*"  # the key that counts every address's wrong tokens together

log = structlog.get_logger("agent.web")


@dataclass(slots=True)
class _Count:
    wrong: deque[float] = field(default_factory=deque)  # times of the recent wrong tokens
    next_turn: float = 0.0


class WrongTokens:
    """Wrong tokens per client address and in all, in a sliding window; past the allowance,
    token checks take turns (see the module's docstring)."""

    def __init__(self, allowed: int = WRONG_TOKENS_ALLOWED, window: float = WRONG_TOKEN_WINDOW,
                 allowed_in_all: int = WRONG_TOKENS_ALLOWED_IN_ALL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed = allowed
        self.allowed_in_all = allowed_in_all
        self.window = window
        self.clock = clock
        self._seen: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def turn(self, client: str) -> float:
        """Seconds until ``client``'s token may be checked (0: now), its turn taken.
        Raises :class:`TooManyWrongTokens` when more than ``MAX_TURN_WAIT`` is queued ahead."""
        with self._lock:
            now = self.clock()
            waits = {key: self._wait(key, allowed, now)
                     for key, allowed in ((client, self.allowed), (IN_ALL, self.allowed_in_all))}
            wait = max(waits.values())
            if wait > MAX_TURN_WAIT:
                raise TooManyWrongTokens(wait)
            for key, allowed in ((client, self.allowed), (IN_ALL, self.allowed_in_all)):
                self._take_turn(key, allowed, now + wait)
            return wait

    def _excess(self, key: str, allowed: int) -> int:
        count = self._recent(key)
        return 0 if count is None else len(count.wrong) - allowed + 1

    def _wait(self, key: str, allowed: int, now: float) -> float:
        if self._excess(key, allowed) <= 0:
            return 0.0
        return max(0.0, self._seen[key].next_turn - now)

    def _take_turn(self, key: str, allowed: int, at: float) -> None:
        excess = self._excess(key, allowed)
        if excess > 0:
            count = self._seen[key]
            count.next_turn = max(count.next_turn, at) + min(2.0 ** (excess - 1),
                                                                MAX_TURN_SPACING)

    def failed(self, client: str) -> None:
        with self._lock:
            for key, allowed in ((client, self.allowed), (IN_ALL, self.allowed_in_all)):
                if key not in self._seen and len(self._seen) >= MAX_CLIENTS_TRACKED:
                    self._forget_old()
                count = self._recent(key) or self._seen.setdefault(key, _Count())
                count.wrong.append(self.clock())
                if len(count.wrong) == allowed:
                    log.warning("wrong token sent too often; its checks now take turns",
                                client="all addresses" if key == IN_ALL else key)

    def _recent(self, key: str) -> _Count | None:
        count = self._seen.get(key)
        if count is None:
            return None
        cutoff = self.clock() - self.window
        while count.wrong and count.wrong[0] <= cutoff:
            count.wrong.popleft()
        if not count.wrong and count.next_turn <= self.clock():
            del self._seen[key]
            return None
        return count

    def _forget_old(self) -> None:
        for key in list(self._seen):
            self._recent(key)
        while len(self._seen) >= MAX_CLIENTS_TRACKED:  # the longest quiet goes first
            quiet = [k for k in self._seen if k != IN_ALL and self._seen[k].wrong]
            if not quiet:
                break
            del self._seen[min(quiet, key=lambda k: self._seen[k].wrong[-1])]


class Guard:
    def __init__(self, token: str | None, secure_cookies: bool | None = None) -> None:
        self.token = token
        self.secure_cookies = secure_cookies  # None: when the request came over https
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

    async def token_matches(self, request: Request, given: str) -> bool:
        """Whether ``given`` is the token, checked in the client's turn (waited for here, on
        the event loop); a wrong one counts against its address and in all. Raises
        :class:`TooManyWrongTokens` when a flood has queued too many turns ahead."""
        client = request.client.host if request.client else "unknown"
        wait = self.wrong_tokens.turn(client)
        if wait > 0:
            await asyncio.sleep(wait)
        if self.token is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        self.wrong_tokens.failed(client)
        return False

    async def login(self, request: Request, given: str, response: Response) -> bool:
        """Start a session if ``given`` is the token (see :meth:`token_matches`)."""
        if self.token is None or not await self.token_matches(request, given):
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
                            samesite="strict", path="/", secure=self.secure(request))
        return True

    def logout(self, request: Request, response: Response) -> None:
        with self._lock:
            self._sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self.secure(request))

    def secure(self, request: Request) -> bool:
        """Whether cookies carry ``Secure``: as configured, else when the request was https."""
        if self.secure_cookies is not None:
            return self.secure_cookies
        return request.url.scheme == "https"

    def csrf_token(self, request: Request) -> str:
        """The token a page's forms carry: the browser's CSRF cookie, or a new one (which
        :meth:`keep_csrf` then sets on the response)."""
        return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)

    def keep_csrf(self, request: Request, response: Response, token: str) -> None:
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/",
                                secure=self.secure(request))

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
