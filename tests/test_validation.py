"""Every kind of bad instance file: exit 3, a message naming the field path and the IDs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from matcher.cli import main
from matcher.intake.json_file import InstanceError, check_instance_data, load_instance
from tests.conftest import write

Data = dict[str, Any]


def _set(path: list[Any], value: Any) -> Callable[[Data], None]:
    def edit(d: Data) -> None:
        node: Any = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


CASES: list[tuple[str, Callable[[Data], None], list[str]]] = [
    (
        "wrong schema version",
        _set(["schema_version"], "2"),
        ["schema_version", "unsupported schema version '2'"],
    ),
    (
        "duplicate participant id",
        _set(["participants", 3, "id"], "pl1"),
        ["participants[3](id pl1).id", "duplicate ID 'pl1'"],
    ),
    (
        "duplicate cohort id",
        _set(["cohorts", 1, "id"], "c1"),
        ["cohorts[1](id c1).id", "duplicate ID 'c1'"],
    ),
    (
        "partner unknown",
        _set(["participants", 2, "partner"], "zz9"),
        ["participants[2](id pl1).partner", "unknown participant 'zz9'"],
    ),
    (
        "partner not mutual",
        _set(["participants", 2, "partner"], "pr1"),
        ["participants[2](id pl1).partner", "not mutual", "pr1 names nobody"],
    ),
    (
        "partner two patient leaders",
        lambda d: (
            _set(["participants", 2, "partner"], "pl2")(d),
            _set(["participants", 3, "partner"], "pl1")(d),
        ),
        ["participants[2](id pl1).partner", "both patient leaders"],
    ),
    (
        "partner two professionals",
        lambda d: (
            _set(["participants", 5, "partner"], "pr2")(d),
            _set(["participants", 6, "partner"], "pr1")(d),
        ),
        ["participants[5](id pr1).partner", "both professionals"],
    ),
    (
        "unknown available cohort",
        _set(["participants", 2, "available_cohorts"], ["c1", "c9"]),
        ["participants[2](id pl1).available_cohorts[1]", "unknown cohort 'c9'"],
    ),
    (
        "unknown avoid id",
        _set(["participants", 2, "avoid"], ["nobody"]),
        ["participants[2](id pl1).avoid[0]", "unknown participant 'nobody'"],
    ),
    (
        "avoid own partner",
        _set(["participants", 0, "avoid"], ["pr0"]),
        ["participants[0](id pl0).avoid[0]", "contradiction", "pr0"],
    ),
    (
        "bad date",
        _set(["cohorts", 0, "sessions"], ["2016-02-30"]),
        ["cohorts[0](id c1).sessions[0]", "2016-02-30"],
    ),
    (
        "bad mode",
        _set(["cohorts", 0, "mode"], "hybrid"),
        ["cohorts[0](id c1).mode", "'in_person', 'online' or 'blended'"],
    ),
    (
        "bad attendance mode",
        _set(["participants", 2, "attendance"], ["zoom"]),
        ["participants[2](id pl1).attendance[0]", "'in_person' or 'online'"],
    ),
    (
        "bad role",
        _set(["participants", 2, "role"], "doctor"),
        ["participants[2](id pl1).role", "'patient_leader', 'clinician' or 'manager'"],
    ),
    (
        "impossible set size",
        _set(["cohorts", 0, "set_size"], {"min_pairs": 5, "max_pairs": 3}),
        ["cohorts[0](id c1).set_size", "min_pairs 5 is above max_pairs 3"],
    ),
    (
        "zero set size",
        _set(["cohorts", 0, "set_size"], {"min_pairs": 0, "max_pairs": 3}),
        ["cohorts[0](id c1).set_size.min_pairs", "greater than or equal to 1"],
    ),
    (
        "negative capacity",
        _set(["cohorts", 1, "capacity_pairs"], -2),
        ["cohorts[1](id c2).capacity_pairs", "greater than or equal to 0"],
    ),
    (
        "unknown field",
        _set(["participants", 2, "intrests"], ["x"]),
        ["participants[2](id pl1).intrests", "unknown field"],
    ),
    (
        "missing field",
        lambda d: d["participants"][2].pop("role"),
        ["participants[2](id pl1).role", "required field is missing"],
    ),
    (
        "negative weight",
        _set(["weights"], {"interests": -1}),
        ["weights.interests", "greater than or equal to 0"],
    ),
    (
        "all weights zero",
        _set(
            ["weights"],
            {"interests": 0, "project": 0, "organisation": 0, "system": 0, "availability": 0},
        ),
        ["weights", "at least one weight must be positive"],
    ),
    (
        "bad rule value",
        _set(["rules"], {"same_organisation": "sometimes"}),
        ["rules.same_organisation", "'allow', 'avoid' or 'forbid'"],
    ),
]


@pytest.mark.parametrize(("label", "edit", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_exit_3_with_path_and_ids(
    tmp_path: Path, tiny: Data, label: str, edit: Callable[[Data], None], expected: list[str]
) -> None:
    edit(tiny)
    path = write(tmp_path, tiny)
    before = path.read_bytes()
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 3, result.output
    assert str(path) in result.output
    for text in expected:
        assert text in result.output, f"{label}: {text!r} not in\n{result.output}"
    assert "Traceback" not in result.output
    assert path.read_bytes() == before  # nothing lost or overwritten
    # `solve` refuses the same file with the same exit code
    assert CliRunner().invoke(main, ["solve", str(path)]).exit_code == 3


def test_every_problem_reported_in_one_run(tmp_path: Path, tiny: Data) -> None:
    tiny["participants"][2]["role"] = "doctor"
    tiny["participants"][3]["id"] = "pl1"
    tiny["participants"][4]["avoid"] = ["ghost"]
    tiny["cohorts"][0]["capacity_pairs"] = -1
    problems = check_instance_data(tiny)
    paths = {p.path for p in problems}
    assert "participants[2](id pl1).role" in paths
    assert "participants[3](id pl1).id" in paths
    assert "participants[4](id pl3).avoid[0]" in paths
    assert "cohorts[0](id c1).capacity_pairs" in paths
    ghost = next(p for p in problems if p.path.endswith("avoid[0]"))
    assert ghost.ids == ("pl3", "ghost")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "top level must be a JSON object"),
        ("", "not valid JSON"),
    ],
)
def test_malformed_file(tmp_path: Path, content: str, expected: str) -> None:
    path = write(tmp_path, content)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 3
    assert expected in result.output


def test_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.json")])
    assert result.exit_code == 3
    assert "file not found" in result.output


def test_valid_file(tmp_path: Path, tiny: Data) -> None:
    path = write(tmp_path, tiny)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid (7 participants, 5 applied alone, 2 cohorts)" in result.output
    inst = load_instance(path)
    assert inst.rules.same_organisation == "avoid"  # documented default


def test_instance_error_lists_problems(tmp_path: Path, tiny: Data) -> None:
    tiny["participants"][2]["partner"] = "zz9"
    with pytest.raises(InstanceError) as info:
        load_instance(write(tmp_path, tiny))
    assert len(info.value.problems) == 1
    assert "zz9" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (["participants", 2, "role"], "Jane Smith"),
        (["cohorts", 0, "capacity_pairs"], "Jane Smith"),
        (["cohorts", 0, "sessions"], ["Jane Smith"]),
        (["cohorts", 0, "mode"], "Jane Smith"),
    ],
)
def test_free_text_in_any_field_is_never_echoed(
    tmp_path: Path, tiny: Data, field: list[Any], value: Any
) -> None:
    _set(field, value)(tiny)
    result = CliRunner().invoke(main, ["validate", str(write(tmp_path, tiny))])
    assert result.exit_code == 3
    assert "Jane" not in result.output


def test_messages_hold_ids_not_personal_text(tmp_path: Path, tiny: Data) -> None:
    tiny["participants"][2]["interests"] = "Private note about someone"  # wrong type
    result = CliRunner().invoke(main, ["validate", str(write(tmp_path, tiny))])
    assert result.exit_code == 3
    assert "participants[2](id pl1).interests" in result.output
    assert "Private note" not in result.output
