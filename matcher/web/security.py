"""Sessions, CSRF tokens, the Host check and the security headers of the web app.

* **Sessions.** ``matcher serve`` prints a URL holding a one-time token (as Jupyter does); the
  first request with it sets a signed session cookie (HttpOnly, SameSite=Strict) and the token
  is spent. With a team password (``--password`` / ``MATCHER_PASSWORD``), a sign-in form gives
  the same cookie. The signing key lives in the workspace folder (mode 0600), so a restarted
  server still knows its sessions; a session lasts :data:`SESSION_HOURS`.
* **CSRF.** Every form carries a token derived from the session (HMAC), checked on every POST.
* **Host.** Only the names the server was started for are answered (DNS rebinding).
* **Headers.** A strict Content-Security-Policy (scripts, styles and images from the app itself,
  no inline script), no framing, no sniffing, no referrer, no caching of pages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

COOKIE = "matcher_session"
SESSION_HOURS = 12
KEY_FILE = "session.key"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The report page is self-contained (inline styles and SVG charts) and has no script at all.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def load_key(folder: Path) -> bytes:
    """The session signing key of a workspace (made on first use, readable by its owner only)."""
    path = folder / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


@dataclass(frozen=True)
class Session:
    sid: str
    name: str
    expires: float


class Sessions:
    """Signs and checks session cookies and CSRF tokens; holds the one-time start token."""

    def __init__(
        self, key: bytes, *, token: str | None = None, password: str | None = None
    ) -> None:
        self._key = key
        self._token = token
        self.password = password

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def spend_token(self, given: str) -> bool:
        """True once for the start token (compared in constant time), then never again."""
        token = self._token
        if token is None or not hmac.compare_digest(given.encode(), token.encode()):
            return False
        self._token = None
        return True

    def check_password(self, given: str) -> bool:
        return self.password is not None and hmac.compare_digest(
            given.encode(), self.password.encode()
        )

    def new_cookie(self, name: str) -> str:
        body = json.dumps(
            {
                "sid": secrets.token_urlsafe(16),
                "name": name[:80],
                "exp": time.time() + SESSION_HOURS * 3600,
            }
        )
        payload = base64.urlsafe_b64encode(body.encode()).decode()
        return f"{payload}.{self._mac(payload)}"

    def read_cookie(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload.encode()))
            session = Session(str(data["sid"]), str(data["name"]), float(data["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def csrf(self, session: Session) -> str:
        return self._mac("csrf:" + session.sid)

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            given.encode(), self.csrf(session).encode()
        )


def host_allowed(host: str | None, allowed: frozenset[str]) -> bool:
    """Whether the Host header names this server (with or without its port)."""
    if not host:
        return False
    host = host.strip().lower()
    return host in allowed
