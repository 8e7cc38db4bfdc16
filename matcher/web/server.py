"""Start the web app: a free port on the chosen address, a one-time token in the printed URL,
the browser opened when there is one. Used by ``matcher serve`` and by the browser tests."""

from __future__ import annotations

import getpass
import ipaddress
import logging
import os
import secrets
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path

from matcher.errors import InvalidParameter

log = logging.getLogger("matcher")

#: Shortest team password accepted for a server reachable from other machines.
MIN_PASSWORD = 12


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Host header values answered: the address served and, on loopback, ``localhost``; each
    with and without the port; plus ``extra`` (a reverse proxy's public name)."""
    names = {host}
    if is_loopback(host):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host}]")
    out = set()
    for name in names:
        out |= {name.lower(), f"{name.lower()}:{port}"}
    out |= {e.strip().lower() for e in extra if e.strip()}
    return frozenset(out)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port chosen by the system)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    workspace: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    password: str | None = None,
    open_browser: bool = True,
    extra_hosts: tuple[str, ...] = (),
    workers: int = 2,
    secure_cookie: bool = False,
    max_upload_mb: int = 64,
    say: Callable[[str], None] = print,
) -> None:
    """Serve ``workspace`` until interrupted."""
    import uvicorn  # lazy: after the address checks

    from matcher.web.app import Config, create_app  # lazy: after the address checks

    if not is_loopback(host) and not password:
        raise InvalidParameter(
            f"--host {host} makes the app reachable from other machines; set a team password "
            "first (MATCHER_PASSWORD or --password-file), and put it behind a reverse proxy "
            "with TLS (docs/web.md)"
        )
    if password is not None and not is_loopback(host) and len(password) < MIN_PASSWORD:
        raise InvalidParameter(f"the team password must have at least {MIN_PASSWORD} characters")
    sock = bind(host, port)
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(32)
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "local"
    config = Config(
        workspace=workspace,
        allowed_hosts=allowed_hosts(host, port, extra_hosts),
        token=token,
        password=password,
        author=user,
        workers=workers,
        secure_cookie=secure_cookie,
        max_upload_bytes=max_upload_mb * 2**20,
    )
    app = create_app(config)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/?token={token}"
    say(f"matcher is serving the workspace {workspace}")
    say(f"open this link (it signs you in once): {url}")
    if password:
        say("team members sign in with the team password at /login")
    say("stop with Ctrl+C")
    sys.stdout.flush()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # paths and queries may hold names typed in search fields
            proxy_headers=False,
            timeout_graceful_shutdown=3,
            server_header=False,
        )
    )
    if open_browser and _has_desktop():
        threading.Timer(0.8, _open, args=(url,)).start()
    elif open_browser:
        say("(no desktop here: open the link in a browser on this machine)")
    server.run(sockets=[sock])


def _has_desktop() -> bool:
    """Whether a graphical browser can open: on Linux and the BSDs only with a display (else
    Python's webbrowser would start a text browser in this very terminal)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open(url: str) -> None:
    try:
        webbrowser.open(url)
    except Exception:  # no browser here: the printed link is enough
        log.debug("no browser opened")
