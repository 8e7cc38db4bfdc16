"""The web app: FastAPI routes over :class:`matcher.workspace.Workspace` and the solve jobs.

Every page is server-rendered (Jinja2, autoescaped) and works without JavaScript; the one
script (``static/progress.js``) only updates the progress bar in place. The routes are thin:
they read a form, call the workspace, the edit rules (through the workspace), the renderers or
``why`` / ``why_not``, and render a template. See :mod:`matcher.web.security` for sessions,
CSRF, the Host check and the headers.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import itertools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from matcher import embedding
from matcher.compare.diff import plan_changes
from matcher.contract.instance import Instance
from matcher.contract.solution import Changes, Pair, Solution
from matcher.engine.objectives import DEFAULT, OBJECTIVES, REGISTRY
from matcher.errors import MatcherError
from matcher.render.view import PlanView
from matcher.web.jobs import STAGE_WORDS, Jobs
from matcher.web.security import (
    COOKIE,
    CSP,
    HEADERS,
    REPORT_CSP,
    SESSION_HOURS,
    Session,
    Sessions,
    host_allowed,
    load_key,
)
from matcher.workspace import DecisionRefused, StaleVersion, UnknownRecord, Workspace
from matcher.workspace.store import MAX_UPLOAD_BYTES, describe

log = logging.getLogger("matcher")

HERE = Path(__file__).parent
#: Pairs shown on one page of a plan (cohorts and sets are headings within the page).
PAGE_SIZE = 200
#: The project descriptions' vectors (matcher.embedding), in the workspace folder.
VECTORS_FILE = "description-vectors.sqlite"
#: Longest time limit a solve may be given from the page (seconds).
MAX_TIME_LIMIT = 3600.0


@dataclass(frozen=True)
class Config:
    """How the server was started."""

    workspace: Path
    allowed_hosts: frozenset[str]
    token: str | None = None
    password: str | None = None
    author: str = "local"
    workers: int = 2
    secure_cookie: bool = False
    max_upload_bytes: int = MAX_UPLOAD_BYTES


class _Views:
    """Parsed versions (instance, plan, view), kept for the last few pages: versions never
    change, so a cached one is never stale."""

    def __init__(self, workspace: Workspace, size: int = 6) -> None:
        self.workspace = workspace
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[int, int, bool], PlanView] = OrderedDict()
        self._rows: dict[int, list[tuple[str, str, Pair]]] = {}

    def put(self, intake: int, version: int, instance: Instance, solution: Solution) -> None:
        """Keep a version just made (its page is opened next)."""
        view = PlanView(instance, solution)
        with self._lock:
            self._items[(intake, version, False)] = view
            while len(self._items) > self.size:
                _, old = self._items.popitem(last=False)
                self._rows.pop(id(old), None)

    def get(self, intake: int, version: int, *, redact: bool = False) -> PlanView:
        key = (intake, version, redact)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        instance, solution = self.workspace.solution(intake, version)
        view = PlanView(instance, solution, redact=redact)
        with self._lock:
            self._items[key] = view
            while len(self._items) > self.size:
                _, old = self._items.popitem(last=False)
                self._rows.pop(id(old), None)
        return view

    def rows(self, view: PlanView) -> list[tuple[str, str, Pair]]:
        """``view``'s placed pairs in page order, worked out once while the view is kept."""
        with self._lock:
            rows = self._rows.get(id(view))
        if rows is None:
            rows = ordered_rows(view)
            with self._lock:
                if any(v is view for v in self._items.values()):
                    self._rows[id(view)] = rows
        return rows


def _route(request: Request) -> str:
    """The request's path with its numbers only (never the query: it may hold names)."""
    return re.sub(r"[^A-Za-z0-9/._-]", "?", request.url.path)[:200]


def _warm_up() -> None:
    """Load the solver, verifier and renderers while the first page is read, so that the first
    Solve does not wait for them."""
    for name in (
        "matcher.engine.assemble",
        "matcher.verification.verify",
        "matcher.compare.diff",
        "matcher.explain",
        "matcher.render.workbook",
    ):
        importlib.import_module(name)


class BodyLimit:
    """Refuses a request body larger than ``limit`` bytes while it streams in (a missing or
    false Content-Length cannot get a larger upload spooled to disk)."""

    def __init__(self, app: Any, *, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            response = Response("Upload too large.", status_code=413, media_type="text/plain")
            await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _person_id(value: Any) -> str:
    """An ID from a type-ahead field ("pl01 — Alex Smith" or "pl01")."""
    return str(value or "").split(" — ", 1)[0].strip()


def create_app(config: Config) -> FastAPI:
    """The app for one workspace."""
    workspace = Workspace(config.workspace)
    # Project descriptions are embedded once per text and kept (as vectors under hashed keys)
    # beside the workspace, so a re-plan or a restart embeds nothing again.
    embedding.set_store(embedding.SQLiteVectorStore(workspace.path / VECTORS_FILE))
    sessions = Sessions(load_key(workspace.path), token=config.token, password=config.password)
    views = _Views(workspace)
    jobs = Jobs(workspace, workers=config.workers, on_stored=views.put)
    flashes: dict[str, list[tuple[str, str]]] = {}
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True
    templates.env.globals["stage_words"] = STAGE_WORDS
    templates.env.filters["when"] = _when

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=_warm_up, name="matcher-warm-up", daemon=True).start()
        yield
        jobs.shutdown()  # running solves are asked to stop; nothing half-made is stored

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.workspace = workspace
    app.state.jobs = jobs
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # ------------------------------------------------------------------ gatekeeping

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            response = await _guarded(request, call_next)
        except Exception as exc:  # a bug: logged by kind only (a message may quote the data)
            log.error(
                "internal error (%s) on %s %s", type(exc).__name__, request.method, _route(request)
            )
            response = Response(
                "Internal error: this is a bug in matcher. Nothing was lost; go back and try "
                "again, and report it if it happens again.",
                status_code=500,
                media_type="text/plain",
            )
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        response.headers.setdefault("Content-Security-Policy", CSP)
        if "cache-control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response

    async def _guarded(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not host_allowed(request.headers.get("host"), config.allowed_hosts):
            log.warning("request refused: Host not allowed")
            return Response("Unknown Host header.", status_code=400, media_type="text/plain")
        size = _int(request.headers.get("content-length"), 0) or 0
        if size > 2 * config.max_upload_bytes + 1024 * 1024:
            return Response("Upload too large.", status_code=413, media_type="text/plain")
        path = request.url.path
        if path.startswith("/static/"):
            return await call_next(request)
        token = request.query_params.get("token")
        if token is not None and request.method == "GET" and sessions.spend_token(token):
            response = RedirectResponse(path, status_code=303)
            _set_cookie(response, sessions.new_cookie(config.author))
            log.info("session started from the start token")
            return response
        session = sessions.read_cookie(request.cookies.get(COOKIE))
        if path == "/login":
            request.state.session = session
            return await call_next(request)
        if session is None:
            return _signin(request, status=401)
        request.state.session = session
        if request.method == "POST":
            form = await request.form(max_files=2, max_fields=50, max_part_size=1024 * 1024)
            request.state.form = form
            if not sessions.csrf_ok(session, _text(form.get("csrf"))):
                log.warning("POST refused: missing or wrong CSRF token")
                return Response(
                    "This form has expired or did not come from this app (CSRF check failed). "
                    "Go back, reload the page and try again.",
                    status_code=403,
                    media_type="text/plain",
                )
        return await call_next(request)

    def _set_cookie(response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=SESSION_HOURS * 3600,
            httponly=True,
            samesite="strict",
            secure=config.secure_cookie,
            path="/",
        )

    def _signin(request: Request, *, status: int = 200, error: str = "") -> Response:
        return templates.TemplateResponse(
            request,
            "signin.html.j2",
            {"password_mode": config.password is not None, "error": error, "session": None},
            status_code=status,
        )

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        return _signin(request)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=5)
        name = (_text(form.get("name")) or "").strip() or "team member"
        if not sessions.check_password(_text(form.get("password")) or ""):
            log.warning("sign-in refused")
            return _signin(request, status=401, error="That password is not right.")
        response = RedirectResponse("/", status_code=303)
        _set_cookie(response, sessions.new_cookie(name))
        return response

    # ------------------------------------------------------------------ helpers

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        session: Session = request.state.session
        context.setdefault("title", "matcher")
        return templates.TemplateResponse(
            request,
            name,
            {
                **context,
                "session": session,
                "csrf": sessions.csrf(session),
                "flashes": flashes.pop(session.sid, []),
            },
            status_code=status,
        )

    def flash(request: Request, kind: str, text: str) -> None:
        sid = request.state.session.sid
        flashes.setdefault(sid, []).append((kind, text))
        if len(flashes) > 1000:  # forgotten sessions
            flashes.pop(next(iter(flashes)))

    def back(url: str) -> Response:
        return RedirectResponse(url, status_code=303)

    def author(request: Request) -> str:
        return str(request.state.session.name)

    def form_of(request: Request) -> FormData:
        form: FormData = request.state.form
        return form

    def not_found(request: Request, what: str) -> Response:
        return page(request, "error.html.j2", status=404, title="Not found", message=what)

    @app.exception_handler(UnknownRecord)
    async def unknown(request: Request, exc: UnknownRecord) -> Response:
        if getattr(request.state, "session", None) is None:
            return Response("Not found.", status_code=404, media_type="text/plain")
        return not_found(request, str(exc))

    # ------------------------------------------------------------------ intakes

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return page(request, "home.html.j2", title="Intakes", intakes=workspace.intakes())

    @app.get("/template.xlsx")
    def template() -> Response:
        from matcher.intake.template import build_workbook  # lazy: openpyxl (~0.4 s)
        from matcher.render.workbook import fixed_zip  # lazy: openpyxl (~0.4 s)

        buf = io.BytesIO()
        build_workbook(None).save(buf)
        return _download(fixed_zip(buf.getvalue()), "intake-template.xlsx", XLSX)

    async def _files(form: FormData) -> list[tuple[str, bytes]] | str:
        out: list[tuple[str, bytes]] = []
        for field in ("file", "cohorts"):
            item = form.get(field)
            if isinstance(item, UploadFile) and item.filename:
                data = await item.read(config.max_upload_bytes + 1)
                if len(data) > config.max_upload_bytes:
                    return f"The file is larger than {config.max_upload_bytes // 2**20} MB."
                out.append((item.filename, data))
        if not out:
            return "Choose a file to upload: a workbook (.xlsx), a JSON instance or two CSV files."
        return out

    @app.post("/intakes")
    async def new_intake(request: Request) -> Response:
        form = form_of(request)
        files = await _files(form)
        if isinstance(files, str):
            flash(request, "error", files)
            return back("/")
        name = (_text(form.get("name")) or "").strip() or Path(files[0][0]).stem
        intake = workspace.create_intake(name, author=author(request))
        rev = workspace.add_upload(intake, files, author=author(request))
        _flash_upload(request, rev.valid, rev.number)
        return back(f"/intakes/{intake}")

    def _flash_upload(request: Request, valid: bool, number: int) -> None:
        if valid:
            flash(request, "ok", f"Revision {number} uploaded and checked: no problems found.")
        else:
            flash(request, "error", f"Revision {number} uploaded: it has problems, listed below.")

    @app.post("/intakes/{intake}/uploads")
    async def reupload(request: Request, intake: int) -> Response:
        workspace.intake(intake)
        files = await _files(form_of(request))
        if isinstance(files, str):
            flash(request, "error", files)
            return back(f"/intakes/{intake}")
        rev = workspace.add_upload(intake, files, author=author(request))
        _flash_upload(request, rev.valid, rev.number)
        return back(f"/intakes/{intake}")

    @app.get("/intakes/{intake}", response_class=HTMLResponse)
    def intake_page(request: Request, intake: int) -> Response:
        summary = workspace.intake(intake)
        revisions = workspace.revisions(intake)
        latest_valid = next((r for r in reversed(revisions) if r.valid), None)
        versions = workspace.versions(intake)
        pending = workspace.decisions(intake, state="pending")
        return page(
            request,
            "intake.html.j2",
            title=summary.name,
            intake=summary,
            revision=revisions[-1] if revisions else None,
            latest_valid=latest_valid,
            revisions=revisions,
            versions=versions,
            pending=pending,
            job=jobs.get(intake),
            objectives=[(o.name, o.summary) for o in REGISTRY.values()],
        )

    @app.get("/intakes/{intake}/revisions/{number}/file")
    def revision_file(intake: int, number: int, part: str = "main") -> Response:
        name, data = workspace.upload_bytes(intake, number, part if part == "cohorts" else "main")
        return _download(data, name, "application/octet-stream")

    # ------------------------------------------------------------------ solving

    def _start(request: Request, intake: int, *, based_on: int | None) -> Response:
        form = form_of(request)
        objective = _text(form.get("objective")) or DEFAULT
        if objective not in OBJECTIVES:
            flash(request, "error", f"Unknown objective; choose one of {', '.join(OBJECTIVES)}.")
            return back(f"/intakes/{intake}")
        limit_text = (_text(form.get("time_limit")) or "").strip()
        time_limit: float | None = None
        if limit_text:
            try:
                time_limit = float(limit_text)
            except ValueError:
                time_limit = -1.0
            if not 0 < time_limit <= MAX_TIME_LIMIT:
                flash(
                    request,
                    "error",
                    f"The time limit is a number of seconds from 1 to {MAX_TIME_LIMIT:.0f}.",
                )
                return back(f"/intakes/{intake}")
        try:
            plan = workspace.plan_input(intake)
            if based_on is not None and plan.latest != based_on:
                raise StaleVersion(intake, based_on, plan.latest or 0)
            for decision, rule in plan.dropped:
                flash(
                    request,
                    "warning",
                    f"Decision “{decision.words}” no longer applies to the latest upload: {rule}",
                )
            jobs.start(plan, objective=objective, time_limit=time_limit, author=author(request))
        except MatcherError as exc:
            flash(request, "error", str(exc))
            return back(f"/intakes/{intake}")
        return back(f"/intakes/{intake}/job")

    @app.post("/intakes/{intake}/solve")
    def solve_intake(request: Request, intake: int) -> Response:
        workspace.intake(intake)
        return _start(request, intake, based_on=workspace.latest_version(intake))

    @app.post("/intakes/{intake}/replan")
    def replan(request: Request, intake: int) -> Response:
        workspace.intake(intake)
        based_on = _int(form_of(request).get("based_on"))
        return _start(request, intake, based_on=based_on)

    @app.get("/intakes/{intake}/job", response_class=HTMLResponse)
    def job_page(request: Request, intake: int) -> Response:
        summary = workspace.intake(intake)
        job = jobs.get(intake)
        if job is not None and job.state == "done" and job.version is not None:
            if job.replan:
                return back(f"/intakes/{intake}/changes?to={job.version}")
            return back(f"/intakes/{intake}/versions/{job.version}")
        return page(
            request, "job.html.j2", title=f"Solving {summary.name}", intake=summary, job=job
        )

    @app.get("/intakes/{intake}/job.json")
    def job_json(intake: int) -> Response:
        job = jobs.get(intake)
        return JSONResponse(job.as_dict() if job else {"state": "none"})

    @app.post("/intakes/{intake}/job/stop")
    def stop_job(request: Request, intake: int) -> Response:
        if jobs.stop(intake):
            flash(request, "ok", "Stopping: the best plan found so far is kept.")
        return back(f"/intakes/{intake}/job")

    # ------------------------------------------------------------------ the plan

    @app.get("/intakes/{intake}/versions/{number}", response_class=HTMLResponse)
    def plan_page(
        request: Request, intake: int, number: int, q: str = "", page_no: int = 1
    ) -> Response:
        summary = workspace.intake(intake)
        view = views.get(intake, number)
        latest = workspace.latest_version(intake)
        groups, pages, shown = _plan_rows(view, views.rows(view), q, page_no)
        people = _datalist(view.instance)
        return page(
            request,
            "plan.html.j2",
            title=f"{summary.name}, version {number}",
            intake=summary,
            number=number,
            latest=latest,
            version=workspace.version(intake, number),
            view=view,
            summary=view.summary_sentences(),
            groups=groups,
            fill={c.id: len(c.pairs) for c in view.solution.cohorts or []},
            q=q,
            page_no=max(1, min(page_no, pages)),
            pages=pages,
            shown=shown,
            unmatched=_filtered_unmatched(view, q),
            waitlist=_filtered_waitlist(view, q),
            people=people,
            cohorts=view.instance.cohorts,
            pending=workspace.decisions(intake, state="pending"),
            job=jobs.get(intake),
        )

    def _decision(form: FormData) -> tuple[str, dict[str, Any]]:
        do = _text(form.get("do"))
        if do:  # a button in the plan table: "kind:id:id:cohort"
            kind, *ids = do.split(":")
            if kind in ("withdraw", "reinstate"):
                return kind, {"participant": ids[0] if ids else ""}
            if kind in ("lock", "forbid", "unlock", "allow") and len(ids) >= 2:
                payload: dict[str, Any] = {"a": ids[0], "b": ids[1]}
                if kind == "lock" and len(ids) > 2 and ids[2]:
                    payload["cohort"] = ids[2]
                return kind, payload
            return kind, {}
        kind = _text(form.get("kind")) or ""
        if kind in ("withdraw", "reinstate"):
            return kind, {"participant": _person_id(form.get("participant"))}
        if kind in ("lock", "pair_by_hand", "forbid", "unlock", "allow"):
            payload = {"a": _person_id(form.get("a")), "b": _person_id(form.get("b"))}
            if kind in ("lock", "pair_by_hand") and _text(form.get("cohort")):
                payload["cohort"] = _text(form.get("cohort"))
            return kind, payload
        if kind == "set_capacity":
            return kind, {
                "cohort": _text(form.get("cohort")) or "",
                "pairs": _int(form.get("pairs"), -1),
            }
        if kind == "close_cohort":
            return kind, {"cohort": _text(form.get("cohort")) or ""}
        return kind, {}

    @app.post("/intakes/{intake}/decisions")
    def decide(request: Request, intake: int) -> Response:
        workspace.intake(intake)
        form = form_of(request)
        target = _text(form.get("back")) or f"/intakes/{intake}"
        if not target.startswith(f"/intakes/{intake}"):
            target = f"/intakes/{intake}"
        kind, payload = _decision(form)
        try:
            d = workspace.decide(intake, kind, payload, author=author(request))
            flash(request, "ok", f"Pending: {d.words}. It takes effect when you re-plan.")
        except DecisionRefused as exc:
            words = describe(kind, payload) if payload else kind
            flash(
                request, "error", f"Refused: {words}. " + " ".join(p.message for p in exc.problems)
            )
        except MatcherError as exc:
            flash(request, "error", f"Refused: {exc}")
        except (KeyError, IndexError):
            flash(request, "error", "That decision is missing a person or a cohort.")
        return back(target)

    @app.post("/intakes/{intake}/decisions/{decision}/cancel")
    def cancel(request: Request, intake: int, decision: int) -> Response:
        workspace.cancel_decision(intake, decision)
        flash(request, "ok", "Decision cancelled.")
        target = _text(form_of(request).get("back")) or f"/intakes/{intake}"
        return back(target if target.startswith(f"/intakes/{intake}") else f"/intakes/{intake}")

    # ------------------------------------------------------------------ changes, why, history

    @app.get("/intakes/{intake}/changes", response_class=HTMLResponse)
    def changes_page(request: Request, intake: int, to: int, from_: int | None = None) -> Response:
        summary = workspace.intake(intake)
        if from_ is None:
            from_ = _int(request.query_params.get("from"))
        if from_ is None:
            from_ = to - 1
        changes: Changes | None = None
        if from_ >= 1:
            stored = workspace.changes(intake, to) if from_ == to - 1 else None
            if stored is not None:
                changes = stored
            else:
                old = views.get(intake, from_)
                new = views.get(intake, to)
                changes = plan_changes(old.solution, new.solution, new.instance)
        view = views.get(intake, to)
        return page(
            request,
            "changes.html.j2",
            title=f"Changes to version {to}",
            intake=summary,
            to=to,
            from_=from_,
            changes=changes,
            view=view,
            version=workspace.version(intake, to),
            versions=workspace.versions(intake),
        )

    @app.get("/intakes/{intake}/explain", response_class=HTMLResponse)
    def explain_page(
        request: Request, intake: int, version: int, a: str = "", b: str = ""
    ) -> Response:
        from matcher.explain import why, why_not  # lazy: the engine, not at start

        summary = workspace.intake(intake)
        view = views.get(intake, version)
        x, y = _person_id(a), _person_id(b)
        answer: str | None = None
        error: str | None = None
        if x:
            try:
                if y:
                    answer = why_not(view.instance, x, y, view.solution).summary()
                else:
                    answer = why(view.instance, x, view.solution).summary()
            except MatcherError as exc:
                error = str(exc)
        return page(
            request,
            "explain.html.j2",
            title="Why and why not",
            intake=summary,
            number=version,
            people=_datalist(view.instance),
            a=a,
            b=b,
            answer=answer,
            error=error,
        )

    @app.get("/intakes/{intake}/history", response_class=HTMLResponse)
    def history(request: Request, intake: int) -> Response:
        summary = workspace.intake(intake)
        return page(
            request,
            "history.html.j2",
            title=f"{summary.name}: versions",
            intake=summary,
            versions=workspace.versions(intake),
            decisions=workspace.decisions(intake),
            revisions=workspace.revisions(intake),
        )

    # ------------------------------------------------------------------ downloads

    def _previous_changes(intake: int, number: int) -> Changes | None:
        return workspace.changes(intake, number)

    @app.get("/intakes/{intake}/versions/{number}/plan.xlsx")
    def download_xlsx(intake: int, number: int, redact: bool = False) -> Response:
        from matcher.render.workbook import plan_workbook  # lazy: openpyxl (~0.4 s)

        view = views.get(intake, number, redact=redact)
        name = _file_name(workspace.intake(intake).name, number, redact, "xlsx")
        return _download(plan_workbook(view), name, XLSX)

    @app.get("/intakes/{intake}/versions/{number}/report.html")
    def download_report(
        intake: int, number: int, redact: bool = False, inline: bool = False
    ) -> Response:
        from matcher.render.report import plan_report  # lazy: jinja2, matplotlib

        view = views.get(intake, number, redact=redact)
        name = _file_name(workspace.intake(intake).name, number, redact, "html")
        response = _download(
            plan_report(view).encode(), name, "text/html; charset=utf-8", inline=inline
        )
        response.headers["Content-Security-Policy"] = REPORT_CSP
        return response

    @app.get("/intakes/{intake}/versions/{number}/plan.json")
    def download_json(intake: int, number: int) -> Response:
        # The JSON plan carries IDs only (DESIGN.md §4): there is nothing to redact.
        _, solution = workspace.solution(intake, number)
        name = _file_name(workspace.intake(intake).name, number, False, "json")
        return _download(solution.model_dump_json(indent=2).encode(), name, "application/json")

    # added last, so outermost: the body is counted before any other part reads it
    app.add_middleware(BodyLimit, limit=2 * config.max_upload_bytes + 1024 * 1024)
    return app


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _when(stamp: str) -> str:
    """An ISO time stamp (UTC) as people read it: 3 Dec 2026 19:03 UTC."""
    try:
        t = dt.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    return f"{t.day} {t:%b %Y %H:%M} UTC"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _file_name(intake: str, number: int, redact: bool, suffix: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in intake)[:60].strip("-") or "plan"
    return f"{stem}-v{number}{'-redacted' if redact else ''}.{suffix}"


def _download(data: bytes, name: str, media: str, *, inline: bool = False) -> Response:
    how = "inline" if inline else "attachment"
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f"{how}; filename*=UTF-8''{quote(name)}"},
    )


#: Most people offered in a type-ahead list; larger intakes type an ID (or find a person).
MAX_DATALIST = 5000


def _datalist(instance: Instance) -> list[tuple[str, str]]:
    """(value, label) for the type-ahead lists: "ID — Name" (ID alone when unnamed)."""
    if len(instance.participants) > MAX_DATALIST:
        return []
    out = []
    for p in instance.participants:
        out.append((f"{p.id} — {p.name}" if p.name else p.id, p.role.replace("_", " ")))
    return out


def _matches(view: PlanView, pid: str, q: str) -> bool:
    person = view.people[pid]
    return q in pid.lower() or bool(person.name and q in person.name.lower())


def ordered_rows(view: PlanView) -> list[tuple[str, str, Pair]]:
    """The placed pairs as (cohort, set, pair), in cohort then set order."""
    rows = []
    for plan in view.solution.cohorts or []:
        for pid in sorted(plan.pairs, key=lambda x: (view.pairs[x].learning_set or "", x)):
            pair = view.pairs[pid]
            rows.append((plan.id, pair.learning_set or "", pair))
    return rows


def _plan_rows(
    view: PlanView, ordered: list[tuple[str, str, Pair]], q: str, page_no: int
) -> tuple[list[Any], int, int]:
    """The pairs placed in cohorts, in cohort then set order, filtered by ``q`` (ID or name)
    and cut to one page: ``[(cohort, [(set, [(pair, pl, pr)])])]``, page count, rows shown."""
    q = q.strip().lower()
    rows: list[tuple[str, str, Pair]] = []
    for cohort_id, set_id, pair in ordered:
        if q and not (
            _matches(view, pair.patient_leader, q)
            or _matches(view, pair.partner, q)
            or q == pair.id.lower()
        ):
            continue
        rows.append((cohort_id, set_id, pair))
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page_no = max(1, min(page_no, pages))
    chunk = rows[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE]
    groups = []
    for cid, in_cohort in itertools.groupby(chunk, key=lambda r: r[0]):
        sets = []
        for set_id, in_set in itertools.groupby(in_cohort, key=lambda r: r[1]):
            sets.append((set_id, [(p, *view.members(p)) for _, _, p in in_set]))
        groups.append((view.cohorts[cid], sets))
    return groups, pages, len(rows)


def _filtered_unmatched(view: PlanView, q: str) -> list[Any]:
    q = q.strip().lower()
    return [
        (u, view.person(u.participant))
        for u in view.solution.unmatched
        if not q or _matches(view, u.participant, q)
    ]


def _filtered_waitlist(view: PlanView, q: str) -> list[Any]:
    q = q.strip().lower()
    out = []
    for w in view.solution.waitlist:
        pair = view.pairs[w.pair]
        if q and not (_matches(view, pair.patient_leader, q) or _matches(view, pair.partner, q)):
            continue
        out.append((w, pair, *view.members(pair)))
    return out
