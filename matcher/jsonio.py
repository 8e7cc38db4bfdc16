"""Strict JSON reading, for instance and plan files alike: bytes or a file in (read once, so a
pipe works; never more than a limit), Python data out, or :class:`~matcher.errors.InvalidInstance`
naming the problem (size, encoding, depth, duplicate keys, NaN, oversized strings and IDs).
Domain-free: the layers above say which fields hold IDs."""

from __future__ import annotations

import codecs
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from matcher.errors import InvalidInstance, Problem

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
SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
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


def _value_problems(
    data: Any, id_fields: frozenset[str] = _ID_FIELDS, id_lists: frozenset[str] = _ID_LISTS
) -> list[Problem]:
    """Problems no schema rule can see: duplicate keys, oversized strings and IDs, lone
    surrogates. Walks the parsed document without recursion; a node's path (``where``: its
    parent's, and its key or index) is spelled out only for a problem."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str, _Where]] = [(data, "", None)]
    while stack and len(problems) < 1_000:
        node, key, where = stack.pop()
        if isinstance(node, dict):
            for dup in getattr(node, "duplicates", ()):
                name = repr(dup) if SAFE_KEY.match(dup) else "a key"
                problems.append(
                    Problem(
                        _path(where), f"duplicate key {name}: JSON keys must be unique in an object"
                    )
                )
            for k, v in reversed(list(node.items())):
                stack.append((v, k, (where, k)))
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((node[i], key, (where, i)))
        elif isinstance(node, str):
            limit = MAX_ID if key in id_fields or key in id_lists else MAX_STRING
            if len(node) > limit:
                what = "an ID" if limit == MAX_ID else "a text"
                problems.append(
                    Problem(_path(where), f"{what} of {len(node):,} characters; at most {limit:,}")
                )
            elif not node.isascii() and _SURROGATE.search(node):
                problems.append(
                    Problem(_path(where), "invalid Unicode (a lone surrogate \\uD8xx escape)")
                )
    return sorted(problems, key=lambda p: p.path) if len(problems) > 1 else problems


#: Where a node sits: None for the document, else (its parent's place, its key or index).
_Where = tuple[Any, str | int] | None


def _path(where: _Where) -> str:
    """``where`` as a path: ``$`` for the document, ``cohorts[0].id``, ``$[2]`` (keys that
    are not plain names shown as ``<key>``)."""
    steps: list[str | int] = []
    while where is not None:
        where, step = where
        steps.append(step)
    path = "$"
    for step in reversed(steps):
        if isinstance(step, int):
            path = f"{path}[{step}]"
        else:
            shown = step if SAFE_KEY.match(step) else "<key>"
            path = f"{path}.{shown}" if path != "$" else shown
    return path


_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:+\-]{1,32}$")


def echo(value: Any) -> str:
    """``value`` for an error message when it is a short ID-like string or a number; otherwise
    only its type (free text may be personal data)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float) or (isinstance(value, str) and _SAFE_VALUE.match(value)):
        return repr(value)
    return f"(a {type(value).__name__} value, not shown)"


def read_bytes(
    path: str | Path, *, limit: int = MAX_FILE_BYTES, what: str = "an instance"
) -> bytes:
    """The bytes of ``path``, read once: a regular file, or a pipe or device (`<(...)`,
    /dev/stdin) read as it comes, never more than ``limit`` bytes. Raises
    :class:`InvalidInstance` naming the problem."""
    source = str(path)
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(limit + 1)
    except FileNotFoundError:
        raise InvalidInstance(source, [Problem("$", "file not found")]) from None
    except IsADirectoryError:
        raise InvalidInstance(source, [Problem("$", "a directory, not a file")]) from None
    except OSError as exc:
        raise InvalidInstance(
            source, [Problem("$", f"cannot read file ({exc.strerror or type(exc).__name__})")]
        ) from None
    if len(raw) > limit:
        raise InvalidInstance(
            source, [Problem("$", f"file larger than {limit // 2**20} MB; is it {what}?")]
        )
    return raw


def read_json(
    path: str | Path,
    *,
    id_fields: frozenset[str] = _ID_FIELDS,
    id_lists: frozenset[str] = _ID_LISTS,
    what: str = "an instance",
) -> Any:
    """Read a JSON document strictly: at most MAX_FILE_BYTES, UTF-8/16/32 with or without a
    BOM, no duplicate keys, no NaN or Infinity, at most MAX_DEPTH levels, no string longer than
    MAX_STRING (MAX_ID for the values of ``id_fields`` and the items of ``id_lists``). Raises
    :class:`InvalidInstance` naming the problem."""
    raw = read_bytes(path, what=what)
    return parse_json(raw, str(path), id_fields=id_fields, id_lists=id_lists)


def parse_json(
    raw: bytes,
    source: str,
    *,
    id_fields: frozenset[str] = _ID_FIELDS,
    id_lists: frozenset[str] = _ID_LISTS,
) -> Any:
    """:func:`read_json` on bytes already read (``source`` names them in messages)."""
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
        where = f"line {exc.lineno}, column {exc.colno}"
        # "Unterminated string starting at" already ends in "at": never "at at line"
        said = f"{exc.msg} {where}" if exc.msg.endswith(" at") else f"{exc.msg} at {where}"
        raise InvalidInstance(source, [Problem("$", f"not valid JSON{hint}: {said}")]) from None
    except _BadLiteral as exc:
        raise InvalidInstance(source, [Problem("$", f"not valid JSON: {exc}")]) from None
    except (ValueError, RecursionError):
        raise InvalidInstance(
            source, [Problem("$", "not valid JSON (a number or nesting it cannot read)")]
        ) from None
    problems = _value_problems(data, id_fields, id_lists)
    if problems:
        # Nothing else is checked: other messages could echo the oversized values.
        raise InvalidInstance(source, problems)
    return data
