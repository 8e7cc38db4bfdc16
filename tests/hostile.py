"""A seeded generator of hostile instance files, and a driver that runs the CLI on them.

Six classes of case, in turn (case ``k`` of a run belongs to class ``k % 6``):

- ``encoding``: file and encoding (empty, BOMs, UTF-16/32, Latin-1, invalid UTF-8, NUL bytes,
  truncation, binary noise, deep nesting, NaN/Infinity, 1e999, huge integers, duplicate keys,
  lone surrogates, a top level that is not an object);
- ``shape``: a value anywhere in may2016.json replaced by a value of another type, a key
  removed, an unknown key added;
- ``semantic``: well-typed but wrong (dangling and non-mutual partners, duplicate IDs, closed
  cohorts, impossible set sizes, dates out of range, one organisation for all, ...);
- ``strings``: hostile strings (rich markup, terminal escapes, CR, NUL, bidi overrides,
  spreadsheet formulas, lone surrogates, 100,000 characters) as IDs (renamed consistently, so
  the file stays valid and the plan prints them) and as free text;
- ``large``: large values (capacities, thousands of records all with the same mistake, long
  lists, 10 MB strings, many cohorts);
- ``mutation``: random byte-level and JSON-level mutations of may2016.json.

Free-text fields (names, descriptions, interests, enumerations, dates, numbers) carry the
canary :data:`CANARY`; IDs never do, because an error may name an ID. The driver asserts that
the canary never reaches stderr.

Run ``python -m tests.hostile --seed 0 --count 40`` to print one JSON line per case and a last
line with the process's peak RSS; :mod:`tests.test_hostile` runs it and checks every line.
``python -m tests.hostile --count 1200 --summary 100`` runs the full corpus in child processes
of 100 cases and prints the figures recorded in ``benchmarks/results/hostile.md``.
"""

from __future__ import annotations

import argparse
import codecs
import copy
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MAY2016 = REPO / "instances" / "may2016.json"

#: Personal data that must never be echoed in an error message.
CANARY = "Jane Doe 943 476 5919"

#: Strings that attack a terminal, a table renderer or a spreadsheet.
HOSTILE = [
    "[/]",
    "[bold red]x[/bold red]",
    "[link=http://evil]x",
    "\x1b]0;pwned\x07\x1b[2J",
    "a\rb",
    "nul\x00byte",
    "bell\x07",
    "\u202eevil",
    "\u2066iso\u2069",
    "c1\x9b31m",
    "line\u2028sep",
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tx",
    "\ud800",
    "é" * 150,
    "\U0001f4a5" * 40,
    " ",
    "x" * 100_000,
]

CATEGORIES = ("encoding", "shape", "semantic", "strings", "large", "mutation")

#: Keys whose values are IDs (an error may name them, so they never carry the canary).
ID_KEYS = frozenset(
    {"id", "partner", "patient_leader", "cohort", "avoid", "available_cohorts"}
    | {"preferred_cohorts", "preferences", "forbidden_pairs", "locks"}
)


@dataclass(frozen=True)
class Case:
    """One hostile file and the command run on it (``{file}`` stands for its path)."""

    name: str
    category: str
    content: bytes
    args: tuple[str, ...]


def _base() -> dict[str, Any]:
    return json.loads(MAY2016.read_text(encoding="utf-8"))


def _dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (keys and list indices)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    node = data
    for part in path[:-1]:
        node = node[part]
    return node


def _is_id(path: tuple[Any, ...]) -> bool:
    return any(isinstance(p, str) and p in ID_KEYS for p in path)


def _other_values(rng: random.Random, id_position: bool) -> Any:
    values: list[Any] = [
        True,
        False,
        None,
        0,
        -1,
        1.5,
        10**17,
        "",
        [],
        {},
        [[[]]],
        "NaN",
        "2016-02-30",
        1463011200,
        "0001-01-01",
    ]
    if not id_position:
        values += [CANARY, [CANARY], {"x": CANARY}, f"{CANARY}\x1b[2J"]
    return rng.choice(values)


# --- the six classes ----------------------------------------------------------------------------


def _encoding(rng: random.Random) -> bytes:
    base = _base()
    base["description"] = CANARY + " é"
    text = json.dumps(base, ensure_ascii=False)
    choice = rng.randrange(24)
    if choice == 0:
        return b""
    if choice == 1:
        return b" \n\t" * rng.randrange(1, 1000)
    if choice == 2:
        return codecs.BOM_UTF8 + text.encode("utf-8")
    if choice == 3:
        return text.encode(rng.choice(["utf-16", "utf-32"]))
    if choice == 4:
        return text.encode(rng.choice(["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]))
    if choice == 5:
        return text.encode("latin-1")
    if choice == 6:
        raw = bytearray(text.encode("utf-8"))
        raw[rng.randrange(len(raw))] = rng.choice([0xFF, 0xC3, 0x80, 0xED])
        return bytes(raw)
    if choice == 7:
        raw = text.encode("utf-8")
        k = rng.randrange(len(raw))
        return raw[:k] + b"\x00" + raw[k:]
    if choice == 8:
        return text.encode("utf-8")[: rng.randrange(len(text))]
    if choice == 9:
        return rng.randbytes(rng.randrange(1, 5000))
    if choice == 10:
        n = rng.choice([100, 987, 5000, 100_000])
        return b"[" * n + b"]" * n
    if choice == 11:
        n = rng.choice([100, 2000, 50_000])
        return b'{"a":' * n + b"1" + b"}" * n
    if choice == 12:
        return text.replace('"capacity_pairs": 12', '"capacity_pairs": NaN').encode()
    if choice == 13:
        lit = rng.choice(["Infinity", "-Infinity", "1e999", "-1e999"])
        return text.replace('"capacity_pairs": 12', f'"capacity_pairs": {lit}').encode()
    if choice == 14:
        return text.replace('"capacity_pairs": 12', '"capacity_pairs": ' + "9" * 5000).encode()
    if choice == 15:
        return (text[:-1] + ', "participants": []}').encode()
    if choice == 16:
        return text.replace('"id": "pl01"', '"id": "pl01", "id": "pl99"').encode()
    if choice == 17:
        return text.replace('"name": "may2016"', '"name": "\\ud800x"').encode()
    if choice == 18:
        return rng.choice([b"[]", b'"x"', b"42", b"null", b"true", b"[" + text.encode() + b"]"])
    if choice == 19:
        return b"\x1f\x8b\x08\x00" + rng.randbytes(100)  # a gzip header
    if choice == 20:
        return b" " * 1_000_000 + text.encode()
    if choice == 21:
        return text.replace('"name": "may2016"', '"name": "may2016", "Jane Doe": 1').encode()
    if choice == 22:
        return text.encode("utf-8").replace(b"\n", b"\r\n") + b"\x00\x00"
    return codecs.BOM_UTF16_LE + text.encode("utf-8")  # a BOM that lies


def _shape(rng: random.Random) -> bytes:
    data = _base()
    for _ in range(rng.randrange(1, 4)):
        paths = _paths(data)
        path = rng.choice(paths)
        parent = _parent(data, path)
        action = rng.randrange(4)
        if action == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == 1 and isinstance(parent, dict):
            parent[rng.choice(["extra", "Name", "partner_id", CANARY])] = CANARY
        else:
            parent[path[-1]] = _other_values(rng, _is_id(path))
    return _dump(data)


def _semantic(rng: random.Random) -> bytes:
    data = _base()
    people = data["participants"]
    cohorts = data["cohorts"]
    choice = rng.randrange(18)
    if choice == 0:
        for c in cohorts:
            c["capacity_pairs"] = 0
    elif choice == 1:
        rng.choice(people)["partner"] = "ghost"
    elif choice == 2:
        p = rng.choice(people)
        p["partner"] = p["id"]
    elif choice == 3:
        people[1]["id"] = people[0]["id"]
    elif choice == 4:
        for p in people:
            p["organisation"] = "one-trust"
    elif choice == 5:
        cohorts[0]["set_size"] = {"min_pairs": 5, "max_pairs": 2}
    elif choice == 6:
        cohorts[0]["set_size"] = {"min_pairs": 1000, "max_pairs": 1000}
    elif choice == 7:
        for p in people:
            if rng.random() < 0.5:
                p["status"] = "withdrawn"
    elif choice == 8:
        data["locks"] = [{"patient_leader": "pl01", "partner": "ghost", "cohort": "c9"}]
    elif choice == 9:
        data["forbidden_pairs"] = [["pl01", "pr01"], ["ghost", "pl02"]]
    elif choice == 10:
        rng.choice(people)["avoid"] = [rng.choice(people)["id"] for _ in range(3)]
    elif choice == 11:
        for p in people:
            p["available_cohorts"] = ["typo"]
    elif choice == 12:
        data["participants"] = []
    elif choice == 13:
        cohorts[0]["sessions"] = ["1999-12-31", "2101-01-01"]
    elif choice == 14:
        cohorts[0]["sessions"] = cohorts[0]["sessions"] * 2
    elif choice == 15:
        for p in people:
            p["attendance"] = ["online"]
            p["preferences"] = [q["id"] for q in rng.sample(people, 3)]
    elif choice == 16:
        data["rules"] = {"local_system": "require", "same_organisation": "forbid", "min_score": 1}
    else:
        data["weights"] = {k: 0 for k in ("interests", "project", "organisation", "system")} | {
            "availability": 0
        }
    return _dump(data)


def _rename(data: dict[str, Any], old: str, new: str) -> None:
    """Rename an ID everywhere it is used (so that the file stays valid)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return new if node == old else node

    fresh = walk(data)
    data.clear()
    data.update(fresh)


def _strings(rng: random.Random) -> bytes:
    data = _base()
    for _ in range(rng.randrange(1, 4)):
        hostile = rng.choice(HOSTILE)
        where = rng.randrange(4)
        if where == 0:
            old = rng.choice(data["participants"])["id"]
            _rename(data, old, hostile + rng.choice(["", old]))
        elif where == 1:
            _rename(data, rng.choice(data["cohorts"])["id"], hostile)
        elif where == 2:
            data["name"] = hostile + rng.choice(["", CANARY])
        else:
            p = rng.choice(data["participants"])
            key = rng.choice(["interests", "project_topics"])
            p[key] = [*p.get(key, []), hostile, CANARY]
            p["name"] = CANARY
            p["email"] = "jane.doe@example.org"
            p[rng.choice(["organisation", "system", "organisation_type"])] = hostile
    return _dump(data)


def _large(rng: random.Random) -> bytes:
    data = _base()
    choice = rng.randrange(8)
    if choice == 0:
        data["cohorts"][0]["capacity_pairs"] = rng.choice([100_000, 100_001, 2**40])
    elif choice == 1:
        proto = data["participants"][0]
        data["participants"] = [
            dict(proto, id=f"x{i}", partner=None, available_cohorts=["typo"], name=CANARY)
            for i in range(2000)
        ]
    elif choice == 2:
        data["cohorts"][0]["id"] = "c" * 10_000_000
    elif choice == 3:
        data["name"] = CANARY * 500_000
    elif choice == 4:
        data["participants"][0]["interests"] = [f"{CANARY} {i}" for i in range(10_000)]
    elif choice == 5:
        extra = [
            dict(data["cohorts"][0], id=f"k{i}", name=CANARY, capacity_pairs=1) for i in range(500)
        ]
        data["cohorts"] += extra
    elif choice == 6:
        data["participants"][0]["avoid"] = [f"ghost{i}" for i in range(5000)]
    else:
        data["weights"] = {"interests": 1000, "project": 1e-300, "system": 999.999}
    return _dump(data)


def _mutation(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        raw = bytearray(_dump(_base()))
        for _ in range(rng.randrange(1, 8)):
            k = rng.randrange(len(raw))
            op = rng.randrange(4)
            if op == 0:
                raw[k] = rng.randrange(256)
            elif op == 1:
                del raw[k : k + rng.randrange(1, 50)]
            elif op == 2:
                raw[k:k] = rng.randbytes(rng.randrange(1, 20))
            else:
                j = rng.randrange(len(raw))
                raw[k:k] = raw[j : j + rng.randrange(1, 200)]
        return bytes(raw)
    data = _base()
    for _ in range(rng.randrange(1, 5)):
        paths = _paths(data)
        a, b = rng.choice(paths), rng.choice(paths)
        pa, pb = _parent(data, a), _parent(data, b)
        try:
            va, vb = pa[a[-1]], pb[b[-1]]
            pa[a[-1]], pb[b[-1]] = vb, va  # swap two values (may nest one in the other)
        except (KeyError, IndexError, TypeError):
            continue
        if rng.random() < 0.3:
            data["participants"].append(copy.deepcopy(rng.choice(data["participants"])))
    try:
        return _dump(data)
    except (ValueError, RecursionError):  # a swap made a cycle
        return _dump(_base())


MAKERS: dict[str, Callable[[random.Random], bytes]] = {
    "encoding": _encoding,
    "shape": _shape,
    "semantic": _semantic,
    "strings": _strings,
    "large": _large,
    "mutation": _mutation,
}


def _args(rng: random.Random) -> tuple[str, ...]:
    command = rng.choices(["solve", "validate", "scores"], weights=[8, 1, 1])[0]
    if command == "solve":
        fmt = rng.choice(["table", "json", "csv"])
        objective = rng.choice(["total", "total", "fair", "stable"])
        return ("solve", "{file}", "--format", fmt, "--objective", objective, "--time-limit", "10")
    if command == "scores":
        return ("scores", "{file}", "--format", rng.choice(["csv", "json"]))
    return ("validate", "{file}")


def make_cases(seed: int, count: int, start: int = 0) -> list[Case]:
    """Cases ``start .. count-1`` of the corpus for ``seed`` (each seeded by seed and index, so
    any slice is reproducible on its own)."""
    out = []
    for k in range(start, count):
        category = CATEGORIES[k % len(CATEGORIES)]
        rng = random.Random(f"{seed}:{k}")
        content = MAKERS[category](rng)
        out.append(Case(f"{seed}-{k:05d}-{category}", category, content, _args(rng)))
    return out


# --- running and checking -----------------------------------------------------------------------

#: Most stderr bytes a case may print.
MAX_STDERR = 64 * 1024


def run_case(case: Case, workdir: Path) -> dict[str, Any]:
    """Run the CLI in this process on ``case`` (click's runner), recording what a user sees."""
    from click.testing import CliRunner

    from matcher.cli import main

    path = workdir / f"{case.name}.json"
    path.write_bytes(case.content)
    args = [str(path) if a == "{file}" else a for a in case.args]
    t0 = time.perf_counter()
    result = CliRunner().invoke(main, args)
    elapsed = time.perf_counter() - t0
    path.unlink()
    exc = result.exception
    crashed = exc is not None and not isinstance(exc, SystemExit)
    return {
        "case": case.name,
        "category": case.category,
        "args": list(case.args),
        "exit": result.exit_code,
        "crash": type(exc).__name__ if crashed else None,
        "stdout": result.stdout_bytes.decode("utf-8", "backslashreplace")[:2000],
        "stdout_bytes": len(result.stdout_bytes),
        "stderr": result.stderr_bytes.decode("utf-8", "backslashreplace"),
        "stderr_utf8": _is_utf8(result.stderr_bytes) and _is_utf8(result.stdout_bytes),
        "raw_controls": _raw_controls(result.stdout_bytes + result.stderr_bytes),
        "seconds": round(elapsed, 3),
    }


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _raw_controls(raw: bytes) -> list[str]:
    """Control characters (other than newline) and bidi controls in the output, as escapes."""
    text = raw.decode("utf-8", "backslashreplace")
    bad = {
        ch
        for ch in text
        if (ord(ch) < 32 and ch != "\n")
        or 0x7F <= ord(ch) <= 0x9F
        or 0x202A <= ord(ch) <= 0x202E
        or 0x2066 <= ord(ch) <= 0x2069
    }
    return sorted(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}" for ch in bad)


def problems_of(result: dict[str, Any]) -> list[str]:
    """What is wrong with one case's result (empty: the CLI behaved)."""
    out = []
    if result["exit"] not in (0, 2, 3, 4, 5):
        out.append(f"exit {result['exit']}")
    if result["crash"]:
        out.append(f"uncaught {result['crash']}")
    if "Traceback" in result["stderr"] or "Traceback" in result["stdout"]:
        out.append("traceback")
    if "internal error" in result["stderr"]:
        out.append("internal error")
    if CANARY in result["stderr"]:
        out.append("free text echoed on stderr")
    if result["raw_controls"]:
        out.append(f"raw control characters {result['raw_controls']}")
    size = result.get("stderr_bytes", len(result["stderr"].encode()))
    if size > MAX_STDERR:
        out.append(f"stderr of {size:,} bytes")
    if not result["stderr_utf8"]:
        out.append("output is not UTF-8")
    return out


def run_corpus(seed: int, count: int, chunk: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Run cases 0..count-1 in child processes of ``chunk`` cases each (this module's
    ``main``); the results, and the peak RSS (KB) of each child."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    results: list[dict[str, Any]] = []
    peaks: list[int] = []
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        args = ["--seed", str(seed), "--start", str(start), "--count", str(stop)]
        done = subprocess.run(
            [sys.executable, "-m", "tests.hostile", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60 + 60 * (stop - start),
        )
        if done.returncode != 0:
            raise RuntimeError(f"corpus child failed: {done.stderr[-2000:]}")
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        results += lines[:-1]
        peaks.append(lines[-1]["maxrss_kb"])
    return results, peaks


def summary(results: list[dict[str, Any]], peaks: list[int], wall_s: float) -> dict[str, Any]:
    """The figures recorded in benchmarks/results/hostile.md."""
    categories = sorted({r["category"] for r in results})
    return {
        "cases": len(results),
        "wall_s": round(wall_s, 1),
        "exit_codes": dict(sorted(Counter(r["exit"] for r in results).items())),
        "exit_codes_by_class": {
            c: dict(sorted(Counter(r["exit"] for r in results if r["category"] == c).items()))
            for c in categories
        },
        "failing_cases": {r["case"]: problems_of(r) for r in results if problems_of(r)},
        "max_stderr_bytes": max(r["stderr_bytes"] for r in results),
        "max_rss_mb_per_child": round(max(peaks) / 1024),
        "slowest_case_s": max(r["seconds"] for r in results),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=40, help="run cases start..count-1")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument(
        "--summary",
        type=int,
        metavar="CHUNK",
        default=None,
        help="run 0..count-1 in child processes of CHUNK cases and print the figures",
    )
    ns = parser.parse_args(argv)
    if ns.summary:
        t0 = time.perf_counter()
        results, peaks = run_corpus(ns.seed, ns.count, ns.summary)
        print(json.dumps(summary(results, peaks, time.perf_counter() - t0), indent=1))
        return
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        for case in make_cases(ns.seed, ns.count, ns.start):
            result = run_case(case, Path(tmp))
            result["stderr_bytes"] = len(result["stderr"].encode())
            result["stderr"] = result["stderr"][: MAX_STDERR + 1]
            print(json.dumps(result), flush=True)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"maxrss_kb": rss_kb}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
