"""``matcher serve``: the local web app over a workspace folder."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from pathlib import Path

import click

from matcher.cli.group import main
from matcher.errors import InvalidParameter


@main.command(short_help="Serve the local web app over a workspace folder (127.0.0.1).")
@click.argument(
    "workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("matcher-workspace"),
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port (default: a free one)."
)
@click.option("--no-browser", is_flag=True, help="Print the link only; do not open a browser.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="File holding the team password (else the MATCHER_PASSWORD variable). Required "
    "with a --host other than loopback.",
)
@click.option(
    "--allowed-host",
    multiple=True,
    help="Another Host header to answer, e.g. the reverse proxy's name (repeatable).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 8),
    default=2,
    show_default=True,
    help="Solves run at once (others wait).",
)
@click.option(
    "--max-upload-mb",
    type=click.IntRange(1, 64),
    default=64,
    show_default=True,
    help="Largest file accepted in an upload (MB).",
)
@click.option(
    "--secure-cookie",
    is_flag=True,
    help="Mark the session cookie Secure (behind a reverse proxy with TLS).",
)
def serve(
    workspace: Path,
    host: str,
    port: int,
    no_browser: bool,
    password_file: Path | None,
    allowed_host: tuple[str, ...],
    workers: int,
    secure_cookie: bool,
    max_upload_mb: int,
) -> None:
    """Serve WORKSPACE (a folder, made when missing; default ./matcher-workspace) as a local
    web app: upload an intake, solve, decide, re-plan and download, in the browser. Prints a
    link with a one-time token and opens the browser."""
    from matcher.web.server import serve as run_server  # lazy: the web stack, for serve only
    from matcher.workspace import WorkspaceError  # lazy: for serve only

    password = os.environ.get("MATCHER_PASSWORD") or None
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").strip() or None
    logger = logging.getLogger("matcher")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        run_server(
            workspace,
            host=host,
            port=port,
            password=password,
            open_browser=not no_browser,
            extra_hosts=allowed_host,
            workers=workers,
            secure_cookie=secure_cookie,
            max_upload_mb=max_upload_mb,
            say=lambda text: click.echo(text),
        )
    except InvalidParameter as exc:
        raise click.UsageError(str(exc)) from None
    except WorkspaceError as exc:
        raise _BadWorkspace(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise _BadWorkspace(
            f"{workspace}: not a matcher workspace, or its database is damaged ({exc}); "
            "restore it from a backup or choose another folder"
        ) from None
    except OSError as exc:
        raise click.UsageError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


class _BadWorkspace(click.ClickException):
    """The workspace cannot be used: invalid input (exit 3)."""

    exit_code = 3
