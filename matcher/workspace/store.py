"""The workspace store: intakes, uploads, validated instances, plan versions, decisions and
change lists in SQLite (standard library ``sqlite3``, WAL journal, one transaction per write).

Rules kept here, whoever calls:

* **Nothing is overwritten.** An upload is a new revision (its bytes and SHA-256 kept, valid or
  not); a re-plan is a new version; a decision is a row that a version later marks applied.
* **Two writers never lose a decision.** Every write runs in ``BEGIN IMMEDIATE``; a decision is
  checked against the instance *with every earlier decision applied* inside the same
  transaction, so a second tab's decision is checked against the first's.
* **A re-plan against an old version is refused** (:class:`StaleVersion` names the newer one).
* **A killed process loses nothing committed**: SQLite's WAL journal makes each transaction
  all-or-nothing; ``PRAGMA user_version`` holds the schema version, upgraded by
  :data:`MIGRATIONS` in order.

Logs carry intake, revision and version numbers only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matcher.contract import edits
from matcher.contract.instance import CHECKED, Instance
from matcher.contract.solution import Changes, Solution
from matcher.errors import InvalidInstance, MatcherError, Problem
from matcher.intake.spelling import near_duplicates
from matcher.intake.spreadsheet import load_any
from matcher.intake.summary import intake_warnings, summary_line

log = logging.getLogger("matcher")

#: File name of the database inside the workspace folder.
DB_NAME = "workspace.sqlite"
#: Largest upload kept (bytes); the CLI's instance reader has the same limit.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
#: Suffixes an upload may have, and what they are read as.
UPLOAD_KINDS = {".xlsx": "workbook", ".xlsm": "workbook", ".csv": "csv", ".json": "json"}

#: Each migration takes the schema from version i to i + 1 (``PRAGMA user_version``).
MIGRATIONS: list[str] = [
    """
    CREATE TABLE intakes (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        author TEXT NOT NULL
    );
    CREATE TABLE uploads (
        id INTEGER PRIMARY KEY,
        intake_id INTEGER NOT NULL REFERENCES intakes(id),
        revision INTEGER NOT NULL,
        kind TEXT NOT NULL,
        created_at TEXT NOT NULL,
        author TEXT NOT NULL,
        valid INTEGER NOT NULL,
        problems TEXT NOT NULL,
        warnings TEXT NOT NULL,
        instance_id INTEGER REFERENCES instances(id),
        UNIQUE (intake_id, revision)
    );
    CREATE TABLE upload_files (
        upload_id INTEGER NOT NULL REFERENCES uploads(id),
        part TEXT NOT NULL,
        filename TEXT NOT NULL,
        bytes BLOB NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (upload_id, part)
    );
    CREATE TABLE instances (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        json TEXT NOT NULL
    );
    CREATE TABLE versions (
        id INTEGER PRIMARY KEY,
        intake_id INTEGER NOT NULL REFERENCES intakes(id),
        number INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        instance_id INTEGER NOT NULL REFERENCES instances(id),
        solution TEXT NOT NULL,
        status TEXT NOT NULL,
        objective TEXT NOT NULL,
        seed INTEGER NOT NULL,
        time_limit REAL,
        created_at TEXT NOT NULL,
        author TEXT NOT NULL,
        UNIQUE (intake_id, number)
    );
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        intake_id INTEGER NOT NULL REFERENCES intakes(id),
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        author TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'cancelled')),
        version INTEGER
    );
    CREATE TABLE change_lists (
        version_id INTEGER PRIMARY KEY REFERENCES versions(id),
        from_number INTEGER NOT NULL,
        json TEXT NOT NULL
    );
    CREATE INDEX decisions_by_intake ON decisions (intake_id, state);
    """,
    # 2: each version's counts in columns, so that the history never parses every plan
    """
    ALTER TABLE versions ADD COLUMN pairs INTEGER;
    ALTER TABLE versions ADD COLUMN placed INTEGER;
    ALTER TABLE versions ADD COLUMN waitlisted INTEGER;
    ALTER TABLE versions ADD COLUMN unmatched INTEGER;
    UPDATE versions SET
        pairs = json_array_length(solution, '$.pairs'),
        placed = (SELECT COUNT(*) FROM json_each(versions.solution, '$.pairs')
                  WHERE json_extract(value, '$.cohort') IS NOT NULL),
        waitlisted = json_array_length(solution, '$.waitlist'),
        unmatched = json_array_length(solution, '$.unmatched');
    """,
    # 3: what validation acknowledged for a valid upload (people, withdrawals, locks, cohorts)
    """
    ALTER TABLE uploads ADD COLUMN summary TEXT NOT NULL DEFAULT '';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class WorkspaceError(MatcherError):
    """A workspace operation that cannot be done; the message says why (IDs only)."""

    exit_code = 3


class UnknownRecord(WorkspaceError):
    """No intake, revision or version with that number."""


class StaleVersion(WorkspaceError):
    """A re-plan was asked against a version that is no longer the latest."""

    def __init__(self, intake: int, based_on: int | None, latest: int) -> None:
        self.intake, self.based_on, self.latest = intake, based_on, latest
        seen = f"version {based_on}" if based_on else "no version"
        super().__init__(
            f"intake {intake}: this re-plan was asked from {seen}, but version {latest} has "
            f"been made since; open version {latest} and re-plan from it"
        )


class DecisionRefused(WorkspaceError):
    """A decision breaks a hard rule; ``problems`` name the rule and the IDs."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: Decision kinds: the edit each applies and the payload keys it takes.
EDITS: dict[str, tuple[Callable[..., Instance], tuple[str, ...]]] = {
    "withdraw": (edits.withdraw, ("participant",)),
    "reinstate": (edits.reinstate, ("participant",)),
    "lock": (edits.lock, ("a", "b", "cohort")),
    "pair_by_hand": (edits.pair_by_hand, ("a", "b", "cohort")),
    "unlock": (edits.unlock, ("a", "b")),
    "forbid": (edits.forbid, ("a", "b")),
    "allow": (edits.allow, ("a", "b")),
    "set_capacity": (edits.set_capacity, ("cohort", "pairs")),
    "close_cohort": (edits.close_cohort, ("cohort",)),
}


def apply_decision(instance: Instance, kind: str, payload: dict[str, Any]) -> Instance:
    """``instance`` with one decision applied (raises :class:`InvalidInstance` with the rule)."""
    if kind not in EDITS:
        raise WorkspaceError(f"unknown decision {kind!r}; valid: {', '.join(EDITS)}")
    fn, keys = EDITS[kind]
    unknown = set(payload) - set(keys)
    if unknown:
        raise WorkspaceError(f"decision {kind}: unknown fields {sorted(unknown)}")
    if kind in ("lock", "pair_by_hand"):
        return fn(instance, payload["a"], payload["b"], cohort=payload.get("cohort") or None)
    return fn(instance, *(payload[k] for k in keys))


def describe(kind: str, payload: dict[str, Any]) -> str:
    """A decision in words, IDs only (``withdraw pl03``, ``lock pl20+pr20 in c1``)."""
    if kind in ("withdraw", "reinstate"):
        return f"{kind} {payload['participant']}"
    if kind in ("lock", "pair_by_hand"):
        where = f" in {payload['cohort']}" if payload.get("cohort") else ""
        verb = "pair by hand" if kind == "pair_by_hand" else "lock"
        return f"{verb} {payload['a']}+{payload['b']}{where}"
    if kind in ("unlock", "forbid", "allow"):
        return f"{kind} {payload['a']}+{payload['b']}"
    if kind == "set_capacity":
        return f"capacity of {payload['cohort']} to {payload['pairs']} pairs"
    return f"close cohort {payload['cohort']}"


@dataclass(frozen=True)
class IntakeSummary:
    """One line of the intakes list."""

    id: int
    name: str
    created_at: str
    author: str
    revisions: int
    versions: int
    pending: int


@dataclass(frozen=True)
class Revision:
    """One upload: its files' names and hashes, and what validation found."""

    intake: int
    number: int
    kind: str
    created_at: str
    author: str
    valid: bool
    problems: list[Problem]
    warnings: list[str]
    files: list[tuple[str, str, str]]  # (part, filename, sha256)
    #: what a valid upload holds, in words (``52 participants, 21 applied alone, 3 cohorts``)
    summary: str = ""


@dataclass(frozen=True)
class Decision:
    """A decision taken by someone; ``version`` is the version that applied it."""

    id: int
    kind: str
    payload: dict[str, Any]
    author: str
    created_at: str
    state: str
    version: int | None

    @property
    def words(self) -> str:
        return describe(self.kind, self.payload)


@dataclass(frozen=True)
class Version:
    """One plan version (the solution is parsed on demand: :meth:`Workspace.solution`)."""

    intake: int
    number: int
    revision: int
    status: str
    objective: str
    seed: int
    time_limit: float | None
    created_at: str
    author: str
    pairs: int
    placed: int
    waitlisted: int
    unmatched: int
    decisions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlanInput:
    """Everything a solve needs, read in one go: the working instance (latest valid revision
    with every decision replayed), the latest version to re-plan from, and the pending
    decisions the new version will apply."""

    intake: int
    revision: int
    instance: Instance
    latest: int | None
    previous: Solution | None
    #: pending decisions the new version applies
    pending: list[int]
    #: decisions that no longer apply to a newer upload (with the rule); pending ones among
    #: them are cancelled when the new version is stored
    dropped: list[tuple[Decision, str]]


class Workspace:
    """A workspace folder (created when missing, private to the user).

    Each call opens its own connection, so one ``Workspace`` may be shared by threads and by
    processes; every write is one ``BEGIN IMMEDIATE`` transaction.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix in (".sqlite", ".db"):
            self.db = self.path
            self.path = self.path.parent
        else:
            self.db = self.path / DB_NAME
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            self._migrate(con)
        os.chmod(self.db, 0o600)

    # ------------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA synchronous=NORMAL")
        con.row_factory = sqlite3.Row
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            con.execute("BEGIN")  # one consistent snapshot for the whole read
            yield con
            con.execute("COMMIT")
        finally:
            con.close()

    def _migrate(self, con: sqlite3.Connection) -> None:
        con.execute("BEGIN IMMEDIATE")
        try:
            current = con.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise WorkspaceError(
                    f"{self.db}: made by a newer matcher (schema {current}, this one reads up "
                    f"to {SCHEMA_VERSION}); upgrade matcher"
                )
            for i in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[i].split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute(f"PRAGMA user_version = {i + 1}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def integrity(self) -> str:
        """``PRAGMA integrity_check``'s answer (``ok`` when the file is sound)."""
        with self._read() as con:
            return str(con.execute("PRAGMA integrity_check").fetchone()[0])

    def schema_version(self) -> int:
        with self._read() as con:
            return int(con.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ intakes

    def create_intake(self, name: str, *, author: str) -> int:
        """A new, empty intake; its number."""
        name = name.strip()[:200] or "intake"
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO intakes (name, created_at, author) VALUES (?, ?, ?)",
                (name, _now(), author),
            )
            intake = int(cur.lastrowid or 0)
        log.info("intake %d created", intake)
        return intake

    def intakes(self) -> list[IntakeSummary]:
        with self._read() as con:
            rows = con.execute(
                """SELECT i.*,
                   (SELECT COUNT(*) FROM uploads u WHERE u.intake_id = i.id) AS revisions,
                   (SELECT COUNT(*) FROM versions v WHERE v.intake_id = i.id) AS versions,
                   (SELECT COUNT(*) FROM decisions d
                     WHERE d.intake_id = i.id AND d.state = 'pending') AS pending
                   FROM intakes i ORDER BY i.id DESC"""
            ).fetchall()
        return [
            IntakeSummary(
                r["id"],
                r["name"],
                r["created_at"],
                r["author"],
                r["revisions"],
                r["versions"],
                r["pending"],
            )
            for r in rows
        ]

    def intake(self, intake: int) -> IntakeSummary:
        for item in self.intakes():
            if item.id == intake:
                return item
        raise UnknownRecord(f"no intake {intake}")

    # ------------------------------------------------------------------ uploads

    def add_upload(
        self,
        intake: int,
        files: list[tuple[str, bytes]],
        *,
        author: str,
    ) -> Revision:
        """Keep an upload as the intake's next revision and validate it.

        ``files``: ``[(filename, bytes)]``: one workbook, one JSON instance, or two CSV files
        (participants first, then cohorts). The bytes are kept whatever validation finds;
        :attr:`Revision.valid` and :attr:`Revision.problems` say what it found.
        """
        self.intake(intake)
        kind, problems, warnings, instance = self._validate(files)
        summary = ""
        if instance is not None:
            summary = summary_line(instance)
            warnings = [*warnings, *intake_warnings(instance)]
        stored = instance.model_dump_json(exclude_unset=True) if instance else None
        with self._write() as con:
            row = con.execute(
                "SELECT COALESCE(MAX(revision), 0) + 1 FROM uploads WHERE intake_id = ?",
                (intake,),
            ).fetchone()
            number = int(row[0])
            instance_id = self._put_instance(con, stored) if stored else None
            cur = con.execute(
                """INSERT INTO uploads (intake_id, revision, kind, created_at, author, valid,
                   problems, warnings, instance_id, summary)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    intake,
                    number,
                    kind,
                    _now(),
                    author,
                    int(instance is not None),
                    json.dumps([[p.path, p.message, list(p.ids)] for p in problems]),
                    json.dumps(warnings),
                    instance_id,
                    summary,
                ),
            )
            upload_id = cur.lastrowid
            for part, (filename, data) in zip(("main", "cohorts"), files, strict=False):
                con.execute(
                    "INSERT INTO upload_files VALUES (?, ?, ?, ?, ?)",
                    (upload_id, part, Path(filename).name[:200], data, _sha(data)),
                )
        log.info("intake %d revision %d stored (valid=%s)", intake, number, instance is not None)
        return self.revision(intake, number)

    @staticmethod
    def _validate(
        files: list[tuple[str, bytes]],
    ) -> tuple[str, list[Problem], list[str], Instance | None]:
        """Read an upload with the CLI's readers and limits (from a private temporary folder,
        removed afterwards)."""
        if not files or len(files) > 2:
            return (
                "unknown",
                [Problem("$", "upload one workbook, one JSON file or two CSV files")],
                [],
                None,
            )
        suffixes = [Path(name).suffix.lower() for name, _ in files]
        kinds = [UPLOAD_KINDS.get(s) for s in suffixes]
        kind = kinds[0] or "unknown"
        if None in kinds:
            return kind, [Problem("$", "a file must be .xlsx, .csv or .json")], [], None
        if len(files) == 2 and kinds != ["csv", "csv"]:
            return (
                kind,
                [Problem("$", "two files are read as a CSV pair (participants, cohorts)")],
                [],
                None,
            )
        if kind == "csv" and len(files) != 2:
            return (
                kind,
                [Problem("$", "a CSV upload needs two files: participants and cohorts")],
                [],
                None,
            )
        for _name, data in files:
            if len(data) > MAX_UPLOAD_BYTES:
                return (
                    kind,
                    [Problem("$", f"a file is larger than {MAX_UPLOAD_BYTES // 2**20} MB")],
                    [],
                    None,
                )
        warnings: list[str] = []
        with tempfile.TemporaryDirectory(prefix="matcher-upload-") as folder:
            paths = []
            for i, ((_, data), suffix) in enumerate(zip(files, suffixes, strict=True)):
                path = Path(folder) / f"upload{i}{suffix}"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                paths.append(path)
            try:
                instance = load_any(
                    paths[0], cohorts=paths[1] if len(paths) > 1 else None, warn=warnings.append
                )
            except InvalidInstance as exc:
                # the temporary names mean nothing to the person who uploaded
                problems = [
                    Problem(
                        p.path.replace(str(paths[0]), "upload"),
                        p.message.replace(folder, "upload"),
                        p.ids,
                    )
                    for p in exc.problems
                ]
                return kind, problems, warnings, None  # fmt: skip
        warnings.extend(str(n) for n in near_duplicates(instance))
        return kind, [], warnings, instance  # fmt: skip

    @staticmethod
    def _put_instance(con: sqlite3.Connection, text: str) -> int:
        sha = _sha(text.encode())
        row = con.execute("SELECT id FROM instances WHERE sha256 = ?", (sha,)).fetchone()
        if row:
            return int(row[0])
        cur = con.execute("INSERT INTO instances (sha256, json) VALUES (?, ?)", (sha, text))
        return int(cur.lastrowid or 0)

    def revisions(self, intake: int) -> list[Revision]:
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM uploads WHERE intake_id = ? ORDER BY revision", (intake,)
            ).fetchall()
            files = con.execute(
                """SELECT u.revision, f.part, f.filename, f.sha256 FROM upload_files f
                   JOIN uploads u ON u.id = f.upload_id WHERE u.intake_id = ?
                   ORDER BY f.part DESC""",
                (intake,),
            ).fetchall()
        by_rev: dict[int, list[tuple[str, str, str]]] = {}
        for f in files:
            by_rev.setdefault(f[0], []).append((f[1], f[2], f[3]))
        return [
            Revision(
                intake,
                r["revision"],
                r["kind"],
                r["created_at"],
                r["author"],
                bool(r["valid"]),
                [Problem(p, m, tuple(ids)) for p, m, ids in json.loads(r["problems"])],
                json.loads(r["warnings"]),
                by_rev.get(r["revision"], []),
                r["summary"],
            )
            for r in rows
        ]

    def revision(self, intake: int, number: int) -> Revision:
        for r in self.revisions(intake):
            if r.number == number:
                return r
        raise UnknownRecord(f"intake {intake} has no revision {number}")

    def upload_bytes(self, intake: int, number: int, part: str = "main") -> tuple[str, bytes]:
        """An upload's file name and bytes, exactly as received."""
        with self._read() as con:
            row = con.execute(
                """SELECT f.filename, f.bytes FROM upload_files f JOIN uploads u
                   ON u.id = f.upload_id WHERE u.intake_id = ? AND u.revision = ? AND f.part = ?""",
                (intake, number, part),
            ).fetchone()
        if row is None:
            raise UnknownRecord(f"intake {intake} has no revision {number}")
        return str(row[0]), bytes(row[1])

    # ------------------------------------------------------------------ decisions

    def decisions(self, intake: int, *, state: str | None = None) -> list[Decision]:
        with self._read() as con:
            return self._decisions(con, intake, state)

    @staticmethod
    def _decisions(con: sqlite3.Connection, intake: int, state: str | None) -> list[Decision]:
        query = "SELECT * FROM decisions WHERE intake_id = ?"
        args: tuple[Any, ...] = (intake,)
        if state:
            query += " AND state = ?"
            args += (state,)
        rows = con.execute(query + " ORDER BY id", args).fetchall()
        return [
            Decision(
                r["id"],
                r["kind"],
                json.loads(r["payload"]),
                r["author"],
                r["created_at"],
                r["state"],
                r["version"],
            )
            for r in rows
        ]

    def decide(self, intake: int, kind: str, payload: dict[str, Any], *, author: str) -> Decision:
        """Record a decision as pending, after checking it against the working instance with
        every earlier decision applied (in the same transaction, so that two tabs deciding at
        once are each checked against the other). Raises :class:`DecisionRefused` naming the
        rule broken."""
        payload = {k: v for k, v in payload.items() if v not in (None, "")}
        with self._write() as con:
            working = self._working(con, intake)
            if working is None:
                raise WorkspaceError(f"intake {intake} has no valid upload yet")
            try:
                apply_decision(working[1], kind, payload)
            except InvalidInstance as exc:
                raise DecisionRefused(exc.problems) from None
            except (KeyError, TypeError) as exc:
                raise WorkspaceError(f"decision {kind}: missing or wrong field ({exc})") from None
            cur = con.execute(
                """INSERT INTO decisions (intake_id, kind, payload, author, created_at, state)
                   VALUES (?, ?, ?, ?, ?, 'pending')""",
                (intake, kind, json.dumps(payload, sort_keys=True), author, _now()),
            )
            number = int(cur.lastrowid or 0)
        log.info("intake %d decision %d (%s) pending", intake, number, kind)
        return next(d for d in self.decisions(intake) if d.id == number)

    def cancel_decision(self, intake: int, decision: int) -> None:
        """Cancel a pending decision (kept, marked cancelled)."""
        with self._write() as con:
            cur = con.execute(
                """UPDATE decisions SET state = 'cancelled'
                   WHERE intake_id = ? AND id = ? AND state = 'pending'""",
                (intake, decision),
            )
            if cur.rowcount != 1:
                raise UnknownRecord(f"intake {intake} has no pending decision {decision}")

    def _working(
        self, con: sqlite3.Connection, intake: int
    ) -> tuple[int, Instance, list[tuple[Decision, str]]] | None:
        """(revision, instance with every applied and pending decision replayed, decisions that
        no longer apply with the rule), from the latest valid revision."""
        row = con.execute(
            """SELECT u.revision, i.json FROM uploads u JOIN instances i ON i.id = u.instance_id
               WHERE u.intake_id = ? AND u.valid = 1 ORDER BY u.revision DESC LIMIT 1""",
            (intake,),
        ).fetchone()
        if row is None:
            return None
        # stored only after validation: the cross-references need not be checked again
        instance = Instance.model_validate_json(row[1], context=CHECKED)
        dropped: list[tuple[Decision, str]] = []
        for d in self._decisions(con, intake, None):
            if d.state == "cancelled":
                continue
            try:
                instance = apply_decision(instance, d.kind, d.payload)
            except InvalidInstance as exc:
                dropped.append((d, "; ".join(p.message for p in exc.problems)))
        return int(row[0]), instance, dropped

    # ------------------------------------------------------------------ versions

    def plan_input(self, intake: int) -> PlanInput:
        """What the next solve or re-plan starts from (one consistent read)."""
        with self._read() as con:
            working = self._working(con, intake)
            if working is None:
                raise WorkspaceError(f"intake {intake} has no valid upload yet")
            latest = con.execute(
                """SELECT number, solution FROM versions WHERE intake_id = ?
                   ORDER BY number DESC LIMIT 1""",
                (intake,),
            ).fetchone()
            dropped = {d.id for d, _ in working[2]}
            pending = [d.id for d in self._decisions(con, intake, "pending") if d.id not in dropped]
        return PlanInput(
            intake,
            working[0],
            working[1],
            int(latest[0]) if latest else None,
            Solution.model_validate_json(latest[1]) if latest else None,
            pending,
            working[2],
        )

    def add_version(
        self,
        plan: PlanInput,
        solution: Solution,
        *,
        author: str,
        objective: str,
        seed: int,
        time_limit: float | None,
    ) -> int:
        """Store ``solution`` (solved from ``plan``) as the next version, marking ``plan``'s
        pending decisions applied, and its change list from the previous version. Refused with
        :class:`StaleVersion` when another version was made since ``plan`` was read."""
        intake = plan.intake
        text = plan.instance.model_dump_json(exclude_unset=True)
        changes = solution.changes
        with self._write() as con:
            row = con.execute(
                "SELECT MAX(number) FROM versions WHERE intake_id = ?", (intake,)
            ).fetchone()
            latest = row[0]
            if latest != plan.latest:
                raise StaleVersion(intake, plan.latest, int(latest))
            number = (latest or 0) + 1
            instance_id = self._put_instance(con, text)
            cur = con.execute(
                """INSERT INTO versions (intake_id, number, revision, instance_id, solution,
                   status, objective, seed, time_limit, created_at, author, pairs, placed,
                   waitlisted, unmatched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    intake,
                    number,
                    plan.revision,
                    instance_id,
                    solution.model_dump_json(),
                    solution.status,
                    objective,
                    seed,
                    time_limit,
                    _now(),
                    author,
                    len(solution.pairs),
                    sum(1 for p in solution.pairs if p.cohort),
                    len(solution.waitlist),
                    len(solution.unmatched),
                ),
            )
            if changes is not None and latest:
                con.execute(
                    "INSERT INTO change_lists VALUES (?, ?, ?)",
                    (cur.lastrowid, latest, changes.model_dump_json()),
                )
            for d in plan.pending:
                con.execute(
                    """UPDATE decisions SET state = 'applied', version = ?
                       WHERE id = ? AND state = 'pending'""",
                    (number, d),
                )
            for decision, _ in plan.dropped:  # pending ones that no longer apply: not applied
                con.execute(
                    "UPDATE decisions SET state = 'cancelled' WHERE id = ? AND state = 'pending'",
                    (decision.id,),
                )
        log.info("intake %d version %d stored", intake, number)
        return number

    def versions(self, intake: int) -> list[Version]:
        with self._read() as con:
            rows = con.execute(
                """SELECT number, revision, status, objective, seed, time_limit, created_at,
                   author, pairs, placed, waitlisted, unmatched FROM versions
                   WHERE intake_id = ? ORDER BY number""",
                (intake,),
            ).fetchall()
            decided = self._decisions(con, intake, "applied")
        return [
            Version(
                intake,
                r["number"],
                r["revision"],
                r["status"],
                r["objective"],
                r["seed"],
                r["time_limit"],
                r["created_at"],
                r["author"],
                r["pairs"],
                r["placed"],
                r["waitlisted"],
                r["unmatched"],
                [d.words for d in decided if d.version == r["number"]],
            )
            for r in rows
        ]

    def version(self, intake: int, number: int) -> Version:
        for v in self.versions(intake):
            if v.number == number:
                return v
        raise UnknownRecord(f"intake {intake} has no version {number}")

    def latest_version(self, intake: int) -> int | None:
        with self._read() as con:
            row = con.execute(
                "SELECT MAX(number) FROM versions WHERE intake_id = ?", (intake,)
            ).fetchone()
        return int(row[0]) if row[0] is not None else None

    def solution(self, intake: int, number: int) -> tuple[Instance, Solution]:
        """A version's instance (decisions applied) and plan."""
        with self._read() as con:
            row = con.execute(
                """SELECT v.solution, i.json FROM versions v JOIN instances i
                   ON i.id = v.instance_id WHERE v.intake_id = ? AND v.number = ?""",
                (intake, number),
            ).fetchone()
        if row is None:
            raise UnknownRecord(f"intake {intake} has no version {number}")
        instance = Instance.model_validate_json(row[1], context=CHECKED)  # validated when stored
        return instance, Solution.model_validate_json(row[0])

    def changes(self, intake: int, number: int) -> Changes | None:
        """The change list stored with version ``number`` (from the version before it)."""
        with self._read() as con:
            row = con.execute(
                """SELECT c.json FROM change_lists c JOIN versions v ON v.id = c.version_id
                   WHERE v.intake_id = ? AND v.number = ?""",
                (intake, number),
            ).fetchone()
        return Changes.model_validate_json(row[0]) if row else None
