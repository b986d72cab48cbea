"""Console sign-in: checking a key against the auth store, and server-side sessions.

Theory of operation
-------------------
With auth on, a person signs in once with an access key and its secret (or
a token, which is both).  The server then keeps a *session* in memory: a
random id (32 bytes from ``secrets``, URL-safe) -> the user and the access
key it signed in with.  The browser holds only the id, in a cookie that is
``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
sends it) and ``Path=/``.  Secrets never travel after the sign-in POST: not
in URLs (the access log records paths and queries), not in the page.

A session ends at sign-out, after ``idle`` seconds without a request, after
``lifetime`` seconds in any case, and as soon as the key it signed in with
is revoked or the user stops existing (checked against the current
``AuthSnapshot`` on every request: ``SessionStore.get``).  Sessions are lost
with the process (sign in again after a restart); at most ``max_sessions``
live at once, the least recently used going first.

Pure: the caller passes ``now`` (seconds, monotonic) and the snapshot.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from ..pfs.roles import AuthSnapshot

__all__ = ["Session", "SessionStore", "check_login", "COOKIE", "cookie_header",
           "clear_cookie_header", "session_id_from"]

COOKIE = "s3gw_console"


@dataclass
class Session:
    id: str
    user: str
    access_key: str          # the key signed in with (a token for token keys); never shown
    created: float
    seen: float


def check_login(snapshot: AuthSnapshot, access_key: str, secret: str) -> str | None:
    """The user that ``access_key`` + ``secret`` belong to, or None.

    A token is both: an empty ``secret`` means ``access_key`` is a token.  The
    comparison takes the same time wherever the secrets differ."""
    access_key = access_key.strip()
    secret = secret.strip() or access_key
    if not access_key:
        return None
    expected = snapshot.secret(access_key)
    if expected is None:
        hmac.compare_digest(secret.encode(), secret.encode())   # similar work either way
        return None
    if not hmac.compare_digest(expected.encode("utf-8"), secret.encode("utf-8")):
        return None
    return snapshot.user_of(access_key)


class SessionStore:
    """Sessions in memory, bounded in number and in time."""

    def __init__(self, *, idle: float = 3600.0, lifetime: float = 12 * 3600.0,
                 max_sessions: int = 1000):
        self.idle, self.lifetime, self.max_sessions = idle, lifetime, max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user: str, access_key: str, now: float) -> Session:
        self.expire(now)
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
        sid = secrets.token_urlsafe(32)
        s = self._sessions[sid] = Session(sid, user, access_key, now, now)
        return s

    def get(self, sid: str | None, now: float, snapshot: AuthSnapshot) -> Session | None:
        """The live session of ``sid`` (refreshing its idle time), or None."""
        if not sid:
            return None
        s = self._sessions.get(sid)
        if s is None:
            return None
        if (now - s.seen > self.idle or now - s.created > self.lifetime
                or snapshot.user_of(s.access_key) != s.user):
            del self._sessions[sid]
            return None
        s.seen = now
        self._sessions.move_to_end(sid)
        return s

    def end(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def expire(self, now: float) -> int:
        """Forget sessions past their time; returns how many."""
        dead = [sid for sid, s in self._sessions.items()
                if now - s.seen > self.idle or now - s.created > self.lifetime]
        for sid in dead:
            del self._sessions[sid]
        return len(dead)


def cookie_header(session: Session, max_age: float) -> tuple[str, str]:
    return ("set-cookie", f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Strict; "
                          f"Max-Age={int(max_age)}")


def clear_cookie_header() -> tuple[str, str]:
    return ("set-cookie", f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")


def session_id_from(cookie_headers: list[str]) -> str | None:
    """The session id in ``Cookie`` request headers, if any."""
    for value in cookie_headers:
        for part in value.split(";"):
            name, _, v = part.strip().partition("=")
            if name == COOKIE and v:
                return v
    return None
