"""Instance files: read JSON strictly and validate it, reporting every problem in one run.

:func:`read_json` refuses what no schema can see (oversized files, deep nesting, duplicate keys,
NaN and Infinity, huge strings); :func:`parse_instance` then reports the shape errors from
pydantic (:mod:`matcher.contract.instance`) together with the cross-reference errors of
:mod:`matcher.contract.checks`. Every problem carries its JSON path and the IDs involved;
messages hold IDs only, never names or other personal data. A path or a binary stream (an
upload) is read alike.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections import Counter
from typing import Any

from pydantic import ValidationError

from matcher.contract.checks import decision_problems, reference_problems, unique_problems
from matcher.contract.instance import CHECKED, SCHEMA_VERSION, Instance
from matcher.errors import InvalidInstance, Problem
from matcher.intake.source import Source, name_of, read_bytes

#: The error raised for an unusable instance (an alias kept for older callers).
InstanceError = InvalidInstance

#: Largest instance file read (bytes). A 20,000-participant intake is about 10 MB.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Deepest nesting of arrays and objects accepted; instance files need 5 levels.
MAX_DEPTH = 64
#: Longest string value accepted anywhere in the file (characters).
MAX_STRING = 10_000
#: Longest ID accepted (characters).
MAX_ID = 200
#: Most digits in an integer literal.
MAX_INT_DIGITS = 18

# Fields whose string values are IDs, and lists whose items are IDs.
_ID_FIELDS = frozenset({"id", "partner", "patient_leader", "cohort"})
_ID_LISTS = frozenset(
    {"avoid", "available_cohorts", "preferred_cohorts", "preferences", "forbidden_pairs"}
)
_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Unrolled ("[^"\\]*" runs between escapes), so a 10 MB string is matched without a
# per-character backtracking record (the plain alternation took 1.3 GB for it).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[^\[\]{}]+")


class _Pairs(dict[str, Any]):
    """A JSON object that remembers the keys it held more than once."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = _Pairs(pairs)
    if len(obj) != len(pairs):
        counts = Counter(k for k, _ in pairs)
        obj.duplicates = tuple(k for k, n in counts.items() if n > 1)
    return obj


class _BadLiteral(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _BadLiteral(f"{name} is not a JSON number; write a number or null")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadLiteral("a number too large for a float; write a smaller number")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadLiteral(f"an integer with more than {MAX_INT_DIGITS} digits")
    return int(text)


def _decode(raw: bytes) -> tuple[str, str]:
    """The text of ``raw`` and its encoding: UTF-8 (with or without BOM), UTF-16 or UTF-32
    (recognised by their BOM or their zero bytes, as RFC 8259's predecessors describe)."""
    encoding = json.detect_encoding(raw)
    if encoding == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    text = raw.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, encoding.replace("-sig", "").upper()


def _nesting_depth(text: str) -> int:
    """Deepest nesting of ``[`` and ``{`` outside strings (up to MAX_DEPTH + 1), without
    recursion."""
    brackets = _BRACKETS.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break  # deep enough to refuse; the exact depth does not matter
        else:
            depth -= 1
    return deepest


def _value_problems(data: Any) -> list[Problem]:
    """Problems no schema rule can see: duplicate keys, oversized strings and IDs, lone
    surrogates. Walks the parsed document without recursion."""
    problems: list[Problem] = []
    stack: list[tuple[str, Any, str]] = [("$", data, "")]
    while stack and len(problems) < 1_000:
        path, node, key = stack.pop()
        if isinstance(node, dict):
            for dup in getattr(node, "duplicates", ()):
                name = repr(dup) if _SAFE_KEY.match(dup) else "a key"
                problems.append(
                    Problem(path, f"duplicate key {name}: JSON keys must be unique in an object")
                )
            for k, v in reversed(list(node.items())):
                shown = k if _SAFE_KEY.match(k) else "<key>"
                sub = f"{path}.{shown}" if path != "$" else shown
                stack.append((sub, v, k))
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((f"{path}[{i}]", node[i], key))
        elif isinstance(node, str):
            limit = MAX_ID if key in _ID_FIELDS or key in _ID_LISTS else MAX_STRING
            if len(node) > limit:
                what = "an ID" if limit == MAX_ID else "a text"
                problems.append(
                    Problem(path, f"{what} of {len(node):,} characters; at most {limit:,}")
                )
            elif _SURROGATE.search(node):
                problems.append(Problem(path, "invalid Unicode (a lone surrogate \\uD8xx escape)"))
    return sorted(problems, key=lambda p: p.path) if len(problems) > 1 else problems


_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:+\-]{1,32}$")


def _echo(value: Any) -> str:
    """``value`` for an error message when it is a short ID-like string or a number; otherwise
    only its type (free text may be personal data)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float) or (isinstance(value, str) and _SAFE_VALUE.match(value)):
        return repr(value)
    return f"(a {type(value).__name__} value, not shown)"


def read_json(path: Source, *, name: str | None = None) -> Any:
    """Read a JSON document strictly from a path or a binary stream (:mod:`.source`): at most
    MAX_FILE_BYTES, UTF-8/16/32 with or without a BOM, no duplicate keys, no NaN or Infinity,
    at most MAX_DEPTH levels, no string longer than MAX_STRING (MAX_ID for IDs). Raises
    :class:`InvalidInstance` naming the problem and the file (``name``, else the path or the
    stream's name)."""
    source = name_of(path, name)
    raw = read_bytes(path, MAX_FILE_BYTES, source)
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInstance(
            source,
            [Problem("$", f"file larger than {MAX_FILE_BYTES // 2**20} MB; is it an instance?")],
        )
    try:
        text, encoding = _decode(raw)
    except UnicodeDecodeError as exc:
        raise InvalidInstance(
            source,
            [
                Problem(
                    "$",
                    f"not valid {exc.encoding.upper()} text (byte {exc.start}); save the file as "
                    "UTF-8 (a spreadsheet export in Windows-1252 can be read by `matcher import`)",
                )
            ],
        ) from None
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        raise InvalidInstance(
            source, [Problem("$", f"nested more than {MAX_DEPTH} levels deep (arrays/objects)")]
        )
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except json.JSONDecodeError as exc:
        hint = f" ({encoding})" if encoding != "UTF-8" else ""
        raise InvalidInstance(
            source,
            [
                Problem(
                    "$",
                    f"not valid JSON{hint}: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                )
            ],
        ) from None
    except _BadLiteral as exc:
        raise InvalidInstance(source, [Problem("$", f"not valid JSON: {exc}")]) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInstance(
            source, [Problem("$", f"not valid JSON ({type(exc).__name__})")]
        ) from None
    problems = _value_problems(data)
    if problems:
        # Nothing else is checked: other messages could echo the oversized values.
        raise InvalidInstance(source, problems)
    return data


def load_instance(path: Source, *, name: str | None = None) -> Instance:
    """Read and validate an instance file, from a path or a binary stream such as an upload
    (strictly, see :func:`read_json`). Raises :class:`matcher.errors.InvalidInstance` listing
    every problem, naming the file as ``name`` (else the path or the stream's name)."""
    data = read_json(path, name=name)
    return parse_instance(data, source=name_of(path, name))


def parse_instance(data: Any, *, source: str = "<instance>") -> Instance:
    """Validate already-parsed JSON data. Raises :class:`InstanceError` listing every problem."""
    problems = check_instance_data(data)
    if problems:
        raise InstanceError(source, problems)
    # checked above: the model's own cross-reference validator need not run again
    return Instance.model_validate(data, context=CHECKED)


def check_instance_data(data: Any) -> list[Problem]:
    """Every problem in ``data`` (shape and cross-references), in file order."""
    if not isinstance(data, dict):
        return [Problem("$", "the top level must be a JSON object")]
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        # Nothing else can be trusted under another schema version.
        return [
            Problem(
                "schema_version",
                f"unsupported schema version {_echo(version)}; this matcher reads "
                f"{SCHEMA_VERSION!r}",
            )
        ]
    problems = _shape_problems(data)
    if not problems:  # rules that need the typed records (attendance, capacity)
        problems.extend(decision_problems(Instance.model_validate(data, context=CHECKED)))
    problems.extend(reference_problems(data))
    return unique_problems(problems)


#: Error types whose offending value is echoed: dates and numbers only, and only when the value
#: looks like one (free text in any field may be personal, e.g. a name typed into `role`).
_ECHO_INPUT = ("date", "greater", "less", "int", "float")
_LOOKS_SAFE = re.compile(r"^[0-9TZ:+.\-]{1,32}$")


def _json_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Render a pydantic location as a JSON path, naming the record's ID where known."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                out += f"(id {node['id']})"
        else:
            # An unknown key may be any text (a name typed as a key): shown only if it looks
            # like a field name.
            key = part if _SAFE_KEY.match(part) else "<key>"
            out += f".{key}" if out else key
            node = node.get(part) if isinstance(node, dict) else None
    return out or "$"


def _shape_problems(data: dict[str, Any]) -> list[Problem]:
    try:
        Instance.model_validate(data, context=CHECKED)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see `matcher schema`)"
            elif err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"].startswith(_ECHO_INPUT) and _LOOKS_SAFE.match(str(err.get("input"))):
                msg = f"{msg} (got {err['input']!r})"
            problems.append(Problem(_json_path(loc, data), msg))
        return problems
    return []
