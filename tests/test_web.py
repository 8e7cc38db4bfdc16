"""`matcher serve` in a real browser: Debian's Chromium driven by Playwright for Python against a
real server started as a subprocess on a free port, as a programme administrator uses it.

Screenshots go to a temporary folder, or to docs/img/ when MATCHER_DOCS_SCREENSHOTS=1 (how the
pictures in docs/web.md are made).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import pytest
from openpyxl import load_workbook

from matcher.intake.template import build_workbook
from tests.conftest import MAY2016, REPO, pythonpath

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: HTML that would run script or fetch from the server if a page did not escape it.
INJECTION = '<script>alert("x")</script><img src="/injected.png" onerror="alert(1)">'


class Server:
    """`python -m matcher serve WORKSPACE --no-browser` in a subprocess; ``url`` holds the
    one-time token link it printed."""

    def __init__(self, workspace: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.workspace, self.log, self.env = workspace, log, env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._log_file: TextIO | None = None

    def start(self) -> Server:
        self._log_file = self.log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "matcher", "serve", str(self.workspace), "--no-browser"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            env={**os.environ, "PYTHONPATH": pythonpath(), **self.env},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
            if found:
                self.url = found.group(1)
                return self
        raise AssertionError("the server did not print its link:\n" + self.log.read_text())

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "workspace", tmp_path / "server.log").start()
    yield s
    s.stop()


def shots(tmp_path: Path) -> Path:
    if os.environ.get("MATCHER_DOCS_SCREENSHOTS"):
        out = REPO / "docs" / "img"
    else:
        out = tmp_path / "shots"
    out.mkdir(parents=True, exist_ok=True)
    return out


def may_data(**changes: Any) -> dict[str, Any]:
    data = json.loads(MAY2016.read_text(encoding="utf-8"))
    for p in data["participants"]:
        p["name"] = "Person " + p["id"].upper()
    return data


def workbook(path: Path, data: dict[str, Any]) -> Path:
    buf = io.BytesIO()
    build_workbook(data).save(buf)
    path.write_bytes(buf.getvalue())
    return path


def signed_in(browser: Browser, server: Server) -> Page:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server.url)
    expect(page.get_by_role("heading", name="Intakes")).to_be_visible()
    return page


def test_upload_fix_solve_withdraw_replan_explain_download_restart(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    out = shots(tmp_path)
    page = signed_in(browser, server)
    page.screenshot(path=str(out / "web-intakes.png"))

    # the blank template downloads and opens
    with page.expect_download() as got:
        page.get_by_role("link", name="Download the blank intake workbook").click()
    template = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()))
    assert {"Participants", "Cohorts"} <= set(template.sheetnames)

    # a workbook with mistakes: every problem is listed with sheet, row and column
    bad = may_data()
    bad["participants"][3]["role"] = "surgeon"
    bad["participants"][7]["attendance"] = ["by pigeon"]
    bad["cohorts"][1]["capacity_pairs"] = "twelve"
    page.get_by_label("Name of the intake").fill("May 2016")
    page.get_by_label("Workbook, JSON or participants CSV").set_input_files(
        str(workbook(tmp_path / "may2016.xlsx", bad))
    )
    page.get_by_role("button", name="Upload and check").click()
    problems = page.get_by_role("table", name="Problems in revision 1")
    expect(problems).to_contain_text("Participants")
    expect(problems).to_contain_text("Role")
    expect(problems).to_contain_text("Cohorts")
    assert problems.locator("tbody tr").count() >= 3
    page.screenshot(path=str(out / "web-problems.png"), full_page=True)

    # the fixed workbook is revision 2
    page.get_by_label("Upload a new revision").set_input_files(
        str(workbook(tmp_path / "may2016-fixed.xlsx", may_data()))
    )
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_text("Revision 2 (may2016-fixed.xlsx")).to_be_visible()
    expect(page.get_by_text("passed every check")).to_be_visible()

    # solve: progress page, then the plan
    page.get_by_role("button", name="Solve").click()
    expect(page.get_by_role("heading", name=re.compile("plan version 1"))).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_role("heading", name="Summary")).to_be_visible()
    expect(page.get_by_text("Person PL01").first).to_be_visible()
    page.screenshot(path=str(out / "web-plan.png"))

    # find a person by name
    page.get_by_label("Find a person by name or ID").fill("Person PL20")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("table.pairs tbody tr, #unm-h ~ table tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Show everyone").click()

    # a decision refused with the rule: pl24 and pr20 share no cohort
    page.get_by_label("Patient leader").first.fill("pl24")
    page.get_by_label("Clinician or manager").first.fill("pr20")
    page.get_by_role("button", name="Pair by hand").click()
    expect(page.get_by_role("alert")).to_contain_text("no cohort both can attend")

    # withdraw pl01 by clicking, then re-plan: the change list comes first
    page.get_by_role("button", name="Withdraw pl01").first.click()
    expect(page.get_by_text("Pending: withdraw pl01")).to_be_visible()
    expect(page.get_by_role("heading", name="Pending decisions (1)")).to_be_visible()
    # a second tab on the same plan: its decision is kept beside the first
    other = page.context.new_page()
    other.goto(page.url)
    other.locator("table.pairs button", has_text="Forbid").first.click()
    expect(other.get_by_role("heading", name="Pending decisions (2)")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Pending decisions (2)")).to_be_visible()
    page.get_by_role("button", name="Re-plan").click()
    expect(page.get_by_role("heading", name="Changes from version 1 to version 2")).to_be_visible(
        timeout=60_000
    )
    # the second tab's Re-plan, from version 1, is refused naming version 2
    other.get_by_role("button", name="Re-plan").click()
    expect(other.get_by_role("alert")).to_contain_text("version 2 has been made since")
    other.close()
    expect(
        page.get_by_text(
            re.compile(r"Decisions applied in version 2: withdraw pl01, forbid pl\d+\+pr\d+")
        )
    ).to_be_visible()
    changes = page.get_by_role("table", name="Every change, with its reason")
    expect(changes).to_contain_text("pl01")
    expect(changes).to_contain_text("dissolved")
    page.screenshot(path=str(out / "web-changes.png"), full_page=True)

    # why not: two people picked from the type-ahead list
    page.get_by_role("link", name="Open plan version 2").click()
    page.get_by_role("link", name="Why / why not").click()
    page.get_by_label("Person", exact=True).fill("pl20 — Person PL20")
    page.get_by_label("Second person (for why not)").fill("pr20 — Person PR20")
    page.get_by_role("button", name="Explain").click()
    answer = page.get_by_role("region", name="Answer")
    expect(answer).to_contain_text("pl20 and pr20", timeout=60_000)
    page.screenshot(path=str(out / "web-why-not.png"))

    # the workbook of version 2: pl01 is in no pair
    page.get_by_role("link", name="Back to plan version 2").click()
    with page.expect_download() as got:
        page.get_by_role("link", name="Download workbook").click()
    assert got.value.suggested_filename == "May-2016-v2.xlsx"
    book = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()), read_only=True)
    cells = [
        str(c) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for c in row
    ]
    assert "Person PL02" in cells and "pl02" in cells
    pairs_sheet = next(ws for ws in book.worksheets if ws.title.lower().startswith("pairs"))
    in_pairs = {str(c) for row in pairs_sheet.iter_rows(values_only=True) for c in row}
    assert "pl01" not in in_pairs and "pl02" in in_pairs  # pl02 applied with pr02
    # the workbook says what changed since version 1, with the reason
    changed = [[str(c) for c in row] for row in book["Changes"].iter_rows(values_only=True)]
    assert any("pair-01" in row and "pl01 withdrew" in row for row in changed), changed
    # so does the report page
    with page.expect_download() as got:
        page.get_by_role("link", name="Download report page").click()
    report = Path(got.value.path()).read_text(encoding="utf-8")
    assert "pl01 withdrew" in report and "Person PL02" in report

    # history lists both versions with the decision
    page.get_by_role("link", name="Versions").click()
    history = page.get_by_role("table", name="Plan versions")
    expect(history).to_contain_text("withdraw pl01")
    expect(history.locator("tbody tr")).to_have_count(2)

    # a restarted server still knows the session and every version
    server.stop()
    server.start()
    page.goto(server.base + "/intakes/1/versions/2")
    expect(page.get_by_role("heading", name=re.compile("plan version 2"))).to_be_visible()
    page.goto(server.base + "/intakes/1/versions/1")
    expect(page.get_by_text("This is not the latest plan")).to_be_visible()
    page.context.close()


def test_injected_html_in_every_text_column_never_runs(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    data = may_data()
    for i, p in enumerate(data["participants"]):
        p["name"] = INJECTION + str(i)
        p["organisation"] = INJECTION + "org" + p["id"]  # distinct, so sets stay possible
        p["organisation_type"] = INJECTION + "type"
        p["system"] = INJECTION + "system" + str(i % 3)
        p["interests"] = [INJECTION + "interest"]
        p["project_topics"] = [INJECTION + "topic"]
        p["project_description"] = INJECTION + " a project in the applicant's words"
    for c in data["cohorts"]:
        c["name"] = INJECTION + "cohort"
        c["venue"] = INJECTION + "venue"
    data["name"] = "inject"
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []
    requests: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server.url)
    page.get_by_label("Name of the intake").fill(INJECTION)
    hostile_file = tmp_path / "<img src=x onerror=alert(3)>.xlsx"
    page.get_by_label("Workbook, JSON or participants CSV").set_input_files(
        str(workbook(hostile_file, data))
    )
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_text("passed every check")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(INJECTION)
    page.get_by_role("button", name="Solve").click()
    expect(page.get_by_role("heading", name=re.compile("plan version 1"))).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_text(INJECTION + "0", exact=True).first).to_be_visible()
    page.goto(server.base + "/intakes/1/explain?version=1&a=pl01")
    page.goto(server.base + "/intakes/1/history")
    page.goto(server.base + "/intakes/1/versions/1/report.html?inline=true")
    page.goto(server.base + "/")
    assert dialogs == []
    assert not [u for u in requests if "injected" in u or "/x" in urlsplit(u).path]
    assert all(u.startswith(server.base) for u in requests), requests
    context.close()


def test_csrf_host_and_session_are_enforced(browser: Browser, server: Server) -> None:
    page = signed_in(browser, server)
    # a POST without the CSRF token, with the session cookie, is refused
    response = page.request.post(server.base + "/intakes/1/decisions", form={"kind": "withdraw"})
    assert response.status == 403
    assert "CSRF" in response.text()
    # a foreign Host header (DNS rebinding) is refused before anything else
    parts = urlsplit(server.base)
    con = http.client.HTTPConnection(parts.hostname or "", parts.port)
    try:
        con.request("GET", "/", headers={"Host": "attacker.example:80"})
        assert con.getresponse().status == 400
    finally:
        con.close()
    # no session: the sign-in page, and the spent token does not sign in again
    con = http.client.HTTPConnection(parts.hostname or "", parts.port)
    try:
        con.request("GET", urlsplit(server.url).path + "?" + urlsplit(server.url).query)
        reply = con.getresponse()
        assert reply.status == 401 and b"matcher serve" in reply.read()
    finally:
        con.close()
    # headers on every page
    headers = page.request.get(server.base + "/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    page.context.close()


def test_keyboard_progress_stop_and_a_server_killed_mid_replan(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    from matcher.tools.generate import generate_instance

    page = signed_in(browser, server)
    # Large enough that the solve is still running when Stop is pressed (300 participants
    # took 26 s before the mid-size cliff was removed and now take about 3).
    big = tmp_path / "n5000.json"
    big.write_text(json.dumps(generate_instance(5000, seed=0)), encoding="utf-8")
    page.get_by_label("Workbook, JSON or participants CSV").set_input_files(str(big))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_text("passed every check")).to_be_visible()

    # Tab through the intake page: every link, field and button gets the focus
    controls = page.eval_on_selector_all(
        "a[href], button, input:not([type=hidden]), select",
        "els => els.map((e, i) => { e.dataset.k = String(i); return String(i); })",
    )
    reached: set[str] = set()
    for _ in range(len(controls) * 2 + 5):
        page.keyboard.press("Tab")
        k = page.evaluate("document.activeElement && document.activeElement.dataset.k")
        if k is not None:
            reached.add(k)
    assert reached == set(controls)

    # start the solve with the keyboard alone, watch progress, then Stop
    page.get_by_role("button", name="Solve").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Solving"))).to_be_visible()
    bar = page.get_by_role("progressbar", name="Progress")
    expect(page.locator("#job-stage")).to_contain_text("Placing pairs in cohorts", timeout=60_000)
    assert float(bar.get_attribute("value") or 0) > 0.3  # two of six stages done
    # Stop at once: from placement on, the 5,000-participant solve has about 1.5 s left on a
    # fast machine (a 1.5 s pause here let it finish first once the solve got faster)
    page.screenshot(path=str(shots(tmp_path) / "web-progress.png"))
    stop = page.get_by_role("button", name="Stop and keep the best plan so far")
    stop.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("plan version 1"))).to_be_visible(
        timeout=30_000
    )
    expect(page.get_by_text("it is not proven best")).to_be_visible()

    # a server killed (SIGKILL) during a re-plan loses nothing: version 1, the decision (still
    # pending) and a sound database file
    page.locator("table.pairs button", has_text="Withdraw").first.click()
    expect(page.get_by_role("heading", name="Pending decisions (1)")).to_be_visible()
    page.get_by_role("button", name="Re-plan").click()
    expect(page.locator("#job-stage")).to_contain_text("Placing pairs in cohorts", timeout=60_000)
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait(timeout=20)
    server.stop()  # the process is gone: closes its pipe and log file
    from matcher.workspace import Workspace

    ws = Workspace(server.workspace)
    assert ws.integrity() == "ok"
    assert [v.number for v in ws.versions(1)] == [1]
    assert [d.state for d in ws.decisions(1)] == ["pending"]
    server.start()
    page.goto(server.base + "/intakes/1/versions/1")
    expect(page.get_by_role("heading", name="Pending decisions (1)")).to_be_visible()
    page.goto(server.base + "/intakes/1/job")
    expect(page.get_by_text("No solve has run since the server started")).to_be_visible()
    page.context.close()


def test_team_password_sign_in(browser: Browser, tmp_path: Path) -> None:
    """With a team password, colleagues sign in with their name (kept with their decisions);
    a wrong password is refused."""
    env = {"MATCHER_PASSWORD": "a long team password"}
    server = Server(tmp_path / "ws", tmp_path / "server.log", env).start()
    try:
        page = browser.new_page()
        page.goto(server.base + "/")
        expect(page.get_by_role("heading", name="Sign in to matcher")).to_be_visible()
        page.get_by_label("Your name").fill("Ana")
        page.get_by_label("Team password").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("That password is not right")
        page.get_by_label("Your name").fill("Ana")
        page.get_by_label("Team password").fill("a long team password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Signed in as Ana")).to_be_visible()
        page.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("env", "words"),
    [({}, "set a team password"), ({"MATCHER_PASSWORD": "short"}, "at least 12 characters")],
)
def test_other_addresses_need_a_team_password(env: dict[str, str], words: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "matcher", "serve", "--host", "0.0.0.0", "--no-browser"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**{k: v for k, v in os.environ.items() if k != "MATCHER_PASSWORD"}, **env},
    )
    assert run.returncode == 2
    assert words in run.stderr
    assert "Traceback" not in run.stderr


def test_a_damaged_workspace_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "workspace.sqlite").write_bytes(b"not a database, " * 100)
    run = subprocess.run(
        [sys.executable, "-m", "matcher", "serve", str(folder), "--no-browser"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3
    assert "not a matcher workspace, or its database is damaged" in run.stderr
    assert "Traceback" not in run.stderr
