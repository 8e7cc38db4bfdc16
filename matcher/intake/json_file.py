"""Instance files: read JSON strictly and validate it, reporting every problem in one run.

:func:`read_json` refuses what no schema can see (oversized files, deep nesting, duplicate keys,
NaN and Infinity, huge strings); :func:`parse_instance` then reports the shape errors from
pydantic (:mod:`matcher.contract.instance`) together with the cross-reference errors of
:mod:`matcher.contract.checks`. Every problem carries its JSON path and the IDs involved;
messages hold IDs only, never names or other personal data. A path or a binary stream (an
upload) is read alike.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from matcher.contract.checks import decision_problems, path_id, reference_problems, unique_problems
from matcher.contract.instance import CHECKED, SCHEMA_VERSION, Instance
from matcher.errors import InvalidInstance, Problem
from matcher.jsonio import SAFE_KEY, echo, parse_json, read_json

#: The error raised for an unusable instance (an alias kept for older callers).
InstanceError = InvalidInstance


def load_instance(path: str | Path) -> Instance:
    """Read and validate an instance file (strictly, see :func:`read_json`). Raises
    :class:`matcher.errors.InvalidInstance` listing every problem."""
    data = read_json(path)
    return parse_instance(data, source=str(path))


def load_instance_bytes(raw: bytes, source: str) -> Instance:
    """:func:`load_instance` on bytes already read (a pipe is read only once)."""
    return parse_instance(parse_json(raw, source), source=source)


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
                f"unsupported schema version {echo(version)}; this matcher reads "
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
                out += f"(id {path_id(node['id'])})"
        else:
            # An unknown key may be any text (a name typed as a key): shown only if it looks
            # like a field name.
            key = part if SAFE_KEY.match(part) else "<key>"
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
