"""Project fit by meaning (project descriptions) and availability by date (dates people cannot
attend): scoring with and without descriptions, the verifier's re-statement, the packaged model
with the network blocked, UK dates as people type them, cohorts worked out from dates, the
import's warnings, and the CLI on a workbook holding both."""

from __future__ import annotations

import copy
import datetime as dt
import gc
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openpyxl import Workbook, load_workbook

from matcher import embedding, solve
from matcher.contract.instance import Instance
from matcher.contract.rules import can_attend, why_cannot_attend
from matcher.engine import meaning, scoring
from matcher.engine.reasons import pair_reasons
from matcher.engine.scoring import CRITERIA, compatibility, pair_scores
from matcher.intake.dates import DateError, parse_dates, resolve
from matcher.intake.spreadsheet import read_workbook
from matcher.verification.verify import recompute_score, verify
from tests.conftest import MAY2016, REPO, person

DEMENTIA_PL = "My mum has dementia and was stuck on a ward for weeks waiting to come home"
DEMENTIA_PR = "Reducing delayed discharges for patients with dementia on acute wards"
COPD_PR = "Increasing uptake of pulmonary rehabilitation for people with COPD"


def _data(**rules: Any) -> dict[str, Any]:
    """One patient leader and two professionals, alike in everything but their projects."""
    return {
        "schema_version": "1",
        "name": "meaning",
        "cohorts": [
            {
                "id": "c1",
                "sessions": ["2016-05-12", "2016-06-16"],
                "capacity_pairs": 4,
                "mode": "in_person",
                "set_size": {"min_pairs": 1, "max_pairs": 4},
            },
            {
                "id": "c2",
                "sessions": ["2016-05-19", "2016-06-23"],
                "capacity_pairs": 4,
                "mode": "in_person",
                "set_size": {"min_pairs": 1, "max_pairs": 4},
            },
        ],
        "participants": [
            person("pl1", "patient_leader", "hw-a", project_description=DEMENTIA_PL),
            person("pr1", "clinician", "trust-b", project_description=COPD_PR),
            person("pr2", "clinician", "trust-c", project_description=DEMENTIA_PR),
        ],
        "rules": rules,
    }


def _vector_cosine(a: str, b: str) -> float:
    vec = embedding.embed([a, b])
    assert vec is not None
    return float(vec[0].astype(np.float64) @ vec[1].astype(np.float64))


# --------------------------------------------------------------------------- scoring


def test_descriptions_alike_in_meaning_score_higher_project_fit() -> None:
    """Lay and clinical words for one project ("stuck on a ward waiting to come home" and
    "delayed discharges"): the dementia clinician fits the patient leader, the COPD one not."""
    comp = compatibility(Instance.model_validate(_data()))
    project = comp.breakdown["project"][0]
    assert comp.col_ids == ["pr1", "pr2"]
    assert project[1] > project[0]
    assert project[1] > 0.4 and project[0] == 0.0
    # Without topics, project fit is the similarity itself.
    want = meaning.calibrate(np.array(_vector_cosine(DEMENTIA_PL, DEMENTIA_PR)))
    assert project[1] == pytest.approx(float(want), abs=1e-6)


def test_combination_with_tags_follows_project_meaning() -> None:
    """Tags and meaning mix by rules.project_meaning; 0 gives the tags alone, 1 the meaning."""
    sim = float(meaning.calibrate(np.array(_vector_cosine(DEMENTIA_PL, DEMENTIA_PR))))
    sim_other = float(meaning.calibrate(np.array(_vector_cosine(DEMENTIA_PL, COPD_PR))))
    for share in (0.0, 0.5, 1.0):
        data = _data(project_meaning=share)
        for p in data["participants"]:
            p["project_topics"] = ["dementia"] if p["id"] != "pr1" else ["copd"]
        parts = pair_scores(Instance.model_validate(data), [("pl1", "pr2"), ("pl1", "pr1")])[1]
        # pl1+pr2: both topics covered (tag fit 1); pl1+pr1: none covered (tag fit 0)
        assert parts["project"][0] == pytest.approx((1 - share) * 1.0 + share * sim, abs=1e-6)
        assert parts["project"][1] == pytest.approx(share * sim_other, abs=1e-6)


def test_the_instance_coding_scores_as_coding_people_on_the_spot() -> None:
    """Scores come from the instance's one coding (:func:`scoring.coded`, kept while the
    instance lives); people who are not the instance's own records (copies) are coded on the
    spot, in a vocabulary of theirs alone. Both give the same numbers, descriptions included,
    and the coding goes with its instance."""
    data = _data(project_meaning=0.5)
    for p in data["participants"]:
        p["project_topics"] = ["dementia"] if p["id"] != "pr1" else ["copd", "falls"]
        p["interests"] = ["carers", p["id"]]
    inst = Instance.model_validate(data)
    rows = [inst.participants[0]]
    cols = list(inst.participants[1:])
    a, b = scoring.sides(inst, rows, cols)
    fresh = scoring.sides(inst, [p.model_copy() for p in rows], [p.model_copy() for p in cols])
    assert a.interests.shape[1] == fresh[0].interests.shape[1] == 7  # 4 interests, 3 topics
    coded, spot = scoring.block(inst, a, b, 0, 1), scoring.block(inst, *fresh, 0, 1)
    assert coded.scores.tolist() == spot.scores.tolist()
    assert coded.breakdown["project"][0, 1] > 0.4  # the descriptions count
    for k in CRITERIA:
        assert coded.breakdown[k].tolist() == spot.breakdown[k].tolist()
    assert scoring.similarity(inst, rows[0], cols[1]) == meaning.pair_similarity(rows[0], cols[1])
    key = id(inst)
    assert key in scoring._CODED
    del inst, rows, cols, a, b
    gc.collect()
    assert key not in scoring._CODED


def test_scores_without_descriptions_are_exactly_as_before() -> None:
    """A description on one side only (no pair has two), or blank ones, changes nothing: the
    plan is byte-identical to the plan without any."""
    base = json.loads(MAY2016.read_text())
    plain = solve(Instance.model_validate(base))
    one_side = copy.deepcopy(base)
    for p in one_side["participants"]:
        if p["role"] == "patient_leader":
            p["project_description"] = "Helping carers of people with dementia get a break"
        else:
            p["project_description"] = "   "
    other = solve(Instance.model_validate(one_side))
    assert "all from patient leaders: no pair has two" in " ".join(other.run.notes)
    # The same plan, to the byte, but for that note and the instance's hash (the file differs).
    notes = [n for n in other.run.notes if not n.startswith("project fit by meaning")]
    same = other.model_copy(
        update={
            "run": other.run.model_copy(update={"notes": notes}),
            "instance_sha256": plain.instance_sha256,
        }
    )
    assert same.model_dump_json() == plain.model_dump_json()


def test_plan_with_descriptions_verifies_and_leaves_text_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The verifier recomputes the mixed project fit on its own; a wrong score is caught; the
    JSON plan and the logs never hold a description; reasons say 'similar projects (0.xx)'."""
    base = json.loads(MAY2016.read_text())
    texts = [DEMENTIA_PL, DEMENTIA_PR, COPD_PR, "Peer support for young carers in schools"]
    for k, p in enumerate(base["participants"]):
        p["project_description"] = texts[k % len(texts)]
    inst = Instance.model_validate(base)
    with caplog.at_level(logging.DEBUG, logger="matcher"):
        plan = solve(inst)
    report = verify(inst, plan)
    assert report.ok, report
    for objective in ("fair", "stable"):  # stable: the blocking-pair scan re-states the mix too
        other_plan = solve(inst, objective=objective)
        assert verify(inst, other_plan).ok, objective
    out = plan.model_dump_json()
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for text in texts:
        assert text not in out and text[:30] not in logs
    # Every reason, not only the strongest three: the similarity is named with its value.
    people = inst.participants_by_id()
    sims = {
        (p.patient_leader, p.partner): meaning.pair_similarity(
            people[p.patient_leader], people[p.partner]
        )
        for p in plan.pairs
    }
    key, best = max(sims.items(), key=lambda kv: kv[1] or 0.0)
    assert best is not None and best > 0
    pair = next(p for p in plan.pairs if (p.patient_leader, p.partner) == key)
    words = pair_reasons(inst, people[key[0]], people[key[1]], pair.breakdown, k=10)
    assert f"similar projects ({best:.2f})" in words
    # A recomputed pair agrees with the plan, and a tampered score is a violation.
    first = plan.pairs[0]
    parts = recompute_score(inst, people[first.patient_leader], people[first.partner])
    assert parts["project"] == pytest.approx(first.breakdown["project"], abs=1e-6)
    bad = plan.model_copy(
        update={"pairs": [first.model_copy(update={"score": first.score + 0.05}), *plan.pairs[1:]]}
    )
    assert "scores" in verify(inst, bad).rules()
    # The verifier's own statement of the mix: the same plan against another share disagrees.
    other = Instance.model_validate({**base, "rules": {"project_meaning": 0.2}})
    assert "scores" in verify(other, plan).rules()


def test_model_loads_and_embeds_with_the_network_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh load of the packaged model, with every socket refused: it works, opens no
    connection, and the vectors are unit length and deterministic."""
    opened: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        opened.append(args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(embedding, "_state", embedding._State())
    assert embedding.available(), embedding.unavailable_reason()
    vec = embedding.embed([DEMENTIA_PL, DEMENTIA_PR, ""])
    assert vec is not None and vec.shape == (3, 256)
    assert np.allclose(np.linalg.norm(vec[:2], axis=1), 1.0, atol=1e-5)
    assert not vec[2].any()  # no token, no direction
    monkeypatch.setattr(embedding, "_state", embedding._State())
    again = embedding.embed([DEMENTIA_PL])
    assert again is not None and np.array_equal(again[0], vec[0])
    assert opened == []


def test_batches_match_one_by_one_and_the_store_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batched pooling equals one text at a time; a store is asked first and told new
    vectors, keyed by hash (never the text)."""
    monkeypatch.setattr(embedding, "_state", embedding._State())
    monkeypatch.setattr(embedding, "BATCH", 3)
    texts = [f"{DEMENTIA_PL} number {k}" for k in range(7)] + [COPD_PR]
    batch = embedding.embed(texts)
    assert batch is not None
    for k, t in enumerate(texts):
        embedding.clear_cache()
        one = embedding.embed([t])
        assert one is not None and np.allclose(one[0], batch[k], atol=1e-6)

    class Store:
        def __init__(self) -> None:
            self.held: dict[str, Any] = {}
            self.asked: list[str] = []

        def get_vectors(self, keys: Any) -> dict[str, Any]:
            self.asked += list(keys)
            return {k: self.held[k] for k in keys if k in self.held}

        def put_vectors(self, vectors: Any) -> None:
            self.held.update(vectors)

    store = Store()
    embedding.set_store(store)
    embedding.clear_cache()
    first = embedding.embed(texts[:2])
    assert set(store.held) == {embedding.text_key(t) for t in texts[:2]}
    assert all(DEMENTIA_PL not in k for k in store.held)
    embedding.clear_cache()
    second = embedding.embed(texts[:2])
    assert first is not None and second is not None and np.array_equal(first, second)
    embedding.set_store(None)


def test_sqlite_store_keeps_vectors_between_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQLite store (what the web app keeps in its workspace folder): vectors survive a new
    process state, the file is private and never holds the text."""
    db = tmp_path / "vectors.sqlite"
    monkeypatch.setattr(embedding, "_state", embedding._State())
    embedding.set_store(embedding.SQLiteVectorStore(db))
    first = embedding.embed([DEMENTIA_PL, DEMENTIA_PR])
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setattr(embedding, "_state", embedding._State())
    embedding.set_store(embedding.SQLiteVectorStore(db))
    monkeypatch.setattr(embedding, "_pool", lambda *a: pytest.fail("embedded again"))
    second = embedding.embed([DEMENTIA_PR, DEMENTIA_PL])
    assert first is not None and second is not None
    assert np.array_equal(first[::-1], second)
    assert b"dementia" not in db.read_bytes()
    embedding.set_store(None)


def test_model_missing_turns_meaning_off_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the package, project fit is the tag fit and a warning says why."""
    monkeypatch.setattr(embedding, "_state", embedding._State())
    monkeypatch.setattr(embedding, "MODEL_PACKAGE", "no_such_package_for_matcher")
    with caplog.at_level(logging.WARNING, logger="matcher"):
        inst = Instance.model_validate(_data())
        comp = compatibility(inst)
    assert not comp.breakdown["project"].any()
    assert "project fit by meaning is off" in caplog.text
    assert verify(inst, solve(inst)).ok


# --------------------------------------------------------------------------- dates

SESSIONS = [dt.date(2016, 5, 12), dt.date(2016, 6, 9), dt.date(2016, 6, 16)]


@pytest.mark.parametrize(
    ("typed", "want"),
    [
        ("9 June", ["2016-06-09"]),
        ("9th June", ["2016-06-09"]),
        ("9/6/2016", ["2016-06-09"]),
        ("09/06/16", ["2016-06-09"]),
        ("9.6.2016", ["2016-06-09"]),
        ("9/6", ["2016-06-09"]),
        ("2016-06-09", ["2016-06-09"]),
        ("June 9", ["2016-06-09"]),
        ("Thurs 9th June 2016", ["2016-06-09"]),
        ("9-12 June", ["2016-06-09", "2016-06-10", "2016-06-11", "2016-06-12"]),
        ("9 to 11 June", ["2016-06-09", "2016-06-10", "2016-06-11"]),
        ("30 May - 1 June", ["2016-05-30", "2016-05-31", "2016-06-01"]),
        ("9 June and 16 June", ["2016-06-09", "2016-06-16"]),
        ("9 & 16 June", ["2016-06-09", "2016-06-16"]),
        ("9, 16 and 23 June", ["2016-06-09", "2016-06-16", "2016-06-23"]),
        ("12/05/2016; 16/06/2016", ["2016-05-12", "2016-06-16"]),
        ("12 May\n16 June", ["2016-05-12", "2016-06-16"]),
        ("9 Jun, 1 Sept", ["2016-06-09", "2016-09-01"]),
        ("None", []),
        ("n/a", []),
        (dt.datetime(2016, 6, 9), ["2016-06-09"]),
    ],
)
def test_uk_dates_as_people_type_them(typed: Any, want: list[str]) -> None:
    assert [d.isoformat() for d in resolve(parse_dates(typed), SESSIONS)] == want


def test_missing_year_is_taken_from_the_sessions() -> None:
    """A cohort running December to January: "5 Jan" is the January after."""
    sessions = [dt.date(2025, 12, 4), dt.date(2026, 1, 8)]
    assert resolve(parse_dates("5 Jan"), sessions) == [dt.date(2026, 1, 5)]
    assert resolve(parse_dates("11 Dec"), sessions) == [dt.date(2025, 12, 11)]


@pytest.mark.parametrize(
    "typed", ["any Thursday", "31/6/2016", "9 -", "12", "13/13/2016", "1 June - 2 August 2019x"]
)
def test_not_dates_are_refused_without_repeating_the_text(typed: str) -> None:
    with pytest.raises(DateError) as err:
        resolve(parse_dates(typed), SESSIONS)
    if len(typed) > 4:  # ("12" is in the message's own examples)
        assert typed not in str(err.value)


def test_unavailable_dates_rule_cohorts_out_everywhere() -> None:
    """The rule (can_attend), the scoring, the placement and the verifier agree: a cohort with
    a session on a date someone cannot attend is closed to them; the reason names the date."""
    data = _data()
    data["participants"][2]["unavailable_dates"] = ["2016-05-12"]
    inst = Instance.model_validate(data)
    pr2 = inst.participants_by_id()["pr2"]
    c1, c2 = inst.cohorts
    assert not can_attend(pr2, c1) and can_attend(pr2, c2)
    assert why_cannot_attend(pr2, c1) == "pr2 cannot attend c1 (12 May 2016)"
    plan = solve(inst)
    assert verify(inst, plan).ok
    pair = next(p for p in plan.pairs if p.partner == "pr2")
    assert pair.cohort == "c2"


# --------------------------------------------------------------------------- workbook

P_HEAD = ["ID", "Name", "Role", "Organisation", "Organisation type", "Local system",
          "Project description", "Available cohorts", "Dates I cannot attend"]  # fmt: skip
C_HEAD = ["ID", "Name", "Sessions", "Capacity (pairs)", "Mode", "Min pairs per set"]
COHORTS = [
    ["c1", "May", "12/05/2016; 16/06/2016", 4, "In person", 1],
    ["c2", "Later", "19/05/2016; 23/06/2016", 4, "In person", 1],
]
PEOPLE = [
    ["pl1", "Ann One", "Patient leader", "HW A", "healthwatch", "s1", DEMENTIA_PL, None,
     "12 May"],
    ["pl2", "Bea Two", "Patient leader", "HW B", "healthwatch", "s1",
     "Helping people with lung disease like mine get to breathing exercise classes", None,
     "19/5/2016 and 16 June"],
    ["pl3", None, "Patient leader", "HW C", "healthwatch", "s1", "dementia", "c1, c2",
     "16 June"],
    ["pr1", "Cat Three", "Clinician", "Trust A", "acute_ft", "s1", COPD_PR, None, "9-10 June"],
    ["pr2", "Dan Four", "Clinician", "Trust B", "acute_ft", "s1", DEMENTIA_PR, None, None],
    ["pr3", None, "Manager", "CCG C", "ccg", "s1", None, None, "none"],
]  # fmt: skip


def _workbook(tmp_path: Path) -> Path:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Participants"
    for row in [P_HEAD, *PEOPLE]:
        ws.append(row)
    wc = book.create_sheet("Cohorts")
    for row in [C_HEAD, *COHORTS]:
        wc.append(row)
    path = tmp_path / "form.xlsx"
    book.save(path)
    return path


def test_import_works_out_cohorts_from_dates_and_warns(tmp_path: Path) -> None:
    warnings: list[str] = []
    data = read_workbook(_workbook(tmp_path), warnings=warnings)
    people = {p["id"]: p for p in data["participants"]}
    # worked out from the dates where no cohort is listed
    assert people["pl1"]["available_cohorts"] == ["c2"]
    assert people["pl1"]["unavailable_dates"] == ["2016-05-12"]
    assert people["pl2"]["available_cohorts"] == []
    assert people["pr2"].get("available_cohorts") is None  # no dates, no list: all cohorts
    # kept where listed (the rule still closes c1 to pl3: its 16 June session)
    assert people["pl3"]["available_cohorts"] == ["c1", "c2"]
    text = "\n".join(warnings)
    assert (
        "Participants!row 3, column 'Dates I cannot attend' (pl2): can attend no cohort: pl2 "
        "cannot attend c1 (16 June 2016); c2 (19 May 2016)"
    ) in text
    assert "(pl3): c1 is listed in Available cohorts but its session on 16 June 2016" in text
    # a range between sessions is no near miss; nothing of pr1 is warned about
    assert "(pr1)" not in text
    assert (
        "Participants!row 4, column 'Project description' (pl3): the project description is "
        "one word" in text
    )
    assert "no project description for 1 person (pr3)" in text
    for row in PEOPLE:
        if row[6]:
            assert str(row[6]) not in text
    inst = Instance.model_validate(data)
    pl3 = inst.participants_by_id()["pl3"]
    assert [c.id for c in inst.cohorts if can_attend(pl3, c)] == ["c2"]


def test_date_outside_every_session_is_a_warning_naming_the_row(tmp_path: Path) -> None:
    people = [list(r) for r in PEOPLE]
    people[4][8] = "14 June"
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Participants"
    for row in [P_HEAD, *people]:
        ws.append(row)
    wc = book.create_sheet("Cohorts")
    for row in [C_HEAD, *COHORTS]:
        wc.append(row)
    path = tmp_path / "stray.xlsx"
    book.save(path)
    warnings: list[str] = []
    read_workbook(path, warnings=warnings)
    assert (
        "Participants!row 6, column 'Dates I cannot attend' (pr2): 14 June 2016 is not a "
        "session date of any cohort"
    ) in "\n".join(warnings)


def test_unreadable_dates_are_a_cell_problem(tmp_path: Path) -> None:
    from matcher.errors import InvalidInstance

    people = [list(r) for r in PEOPLE]
    people[0][8] = "any Thursday in June"
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Participants"
    for row in [P_HEAD, *people]:
        ws.append(row)
    wc = book.create_sheet("Cohorts")
    for row in [C_HEAD, *COHORTS]:
        wc.append(row)
    path = tmp_path / "bad.xlsx"
    book.save(path)
    with pytest.raises(InvalidInstance) as err:
        read_workbook(path)
    text = str(err.value)
    assert "Participants!row 2, column 'Dates I cannot attend'" in text
    assert "Thursday" not in text


def test_cli_solves_a_form_with_descriptions_and_dates(tmp_path: Path) -> None:
    """`matcher solve` on the workbook: exit 0, warnings on stderr, every pair placed where
    both can come, the JSON plan without descriptions, the XLSX plan with them next to names
    and without them under --redact."""
    book = _workbook(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "matcher", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    plan_path = tmp_path / "plan.json"
    done = run("solve", book, "-o", plan_path)
    assert done.returncode == 0, done.stderr
    assert "can attend no cohort: pl2 cannot attend c1 (16 June 2016)" in done.stderr
    raw = plan_path.read_text()
    for row in PEOPLE:
        if row[6]:
            assert str(row[6]) not in raw and str(row[6]) not in done.stderr
    plan = json.loads(raw)
    dementia = next(p for p in plan["pairs"] if p["patient_leader"] == "pl1")
    assert dementia["partner"] == "pr2" and dementia["cohort"] == "c2"
    assert any(r.startswith("similar projects (") for r in dementia["reasons"])
    assert all(p["cohort"] in (None, "c2") for p in plan["pairs"] if p["patient_leader"] == "pl1")
    alone = {u["participant"]: u["reason"] for u in plan["unmatched"]}
    assert (
        "(pl2 cannot attend c1 (16 June 2016); pl2 cannot attend c2 (19 May 2016))"
        in (alone["pl2"])
    )

    xlsx = tmp_path / "plan.xlsx"
    assert run("solve", book, "-o", xlsx).returncode == 0
    cells = {
        str(c)
        for ws in load_workbook(xlsx).worksheets
        for r in ws.iter_rows(values_only=True)
        for c in r
    }
    assert DEMENTIA_PL in cells and "Ann One" in cells
    red = tmp_path / "red.xlsx"
    assert run("solve", book, "-o", red, "--redact").returncode == 0
    cells = {
        str(c)
        for ws in load_workbook(red).worksheets
        for r in ws.iter_rows(values_only=True)
        for c in r
    }
    assert DEMENTIA_PL not in cells and "Ann One" not in cells

    # The whole command with every socket refused from the first import on: same plan, and
    # no connection was even tried.
    guard = (
        "import socket, sys\n"
        "tried = []\n"
        "def refuse(*a, **k):\n"
        "    tried.append(1)\n"
        "    raise OSError('network blocked')\n"
        "socket.socket.connect = refuse\n"
        "socket.socket.connect_ex = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "import atexit\n"
        "atexit.register(lambda: print('SOCKETS TRIED', len(tried), file=sys.stderr))\n"
        "sys.argv = ['matcher'] + sys.argv[1:]\n"
        "from matcher.__main__ import run\n"
        "run()\n"
    )
    blocked_path = tmp_path / "blocked.json"
    blocked = subprocess.run(
        [sys.executable, "-c", guard, "solve", str(book), "-o", str(blocked_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=300,
    )
    assert blocked.returncode == 0, blocked.stderr
    assert "SOCKETS TRIED 0" in blocked.stderr
    assert blocked_path.read_bytes() == plan_path.read_bytes()

    why = run("explain", book, plan_path, "--why-not", "pl2", "pr1")
    assert "pl2 cannot attend c1 (16 June 2016)" in why.stdout + why.stderr


def test_template_round_trip_keeps_dates_and_descriptions(tmp_path: Path) -> None:
    """An imported intake written back as a workbook (`template --from`) reads back the same."""
    from matcher.intake.template import build_workbook

    data = read_workbook(_workbook(tmp_path))
    again = tmp_path / "again.xlsx"
    build_workbook(data).save(again)
    back = read_workbook(again)
    for one, two in zip(data["participants"], back["participants"], strict=True):
        for key in ("project_description", "unavailable_dates", "available_cohorts"):
            assert one.get(key) == two.get(key), (one["id"], key)
