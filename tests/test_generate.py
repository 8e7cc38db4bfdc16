"""`matcher generate`: valid, seeded, documented shares, bounds checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher import parse_instance, solve, verify
from matcher.cli import main
from matcher.tools.generate import generate_instance


@pytest.mark.parametrize("n", [20, 201, 1000])
def test_valid_and_deterministic(n: int) -> None:
    data = generate_instance(n, seed=5)
    inst = parse_instance(data)
    assert len(inst.participants) == n
    assert generate_instance(n, seed=5) == data
    assert generate_instance(n, seed=6) != data
    pre = sum(p.partner is not None for p in inst.participants)
    assert abs(pre - 0.6 * n) <= 2
    lone = [p for p in inst.participants if p.partner is None]
    pl = sum(p.role == "patient_leader" for p in lone)
    assert abs(pl - 0.6 * len(lone)) <= 1
    assert len(inst.cohorts) == max(1, min(50, n // 50))


def test_options_and_bounds() -> None:
    inst = parse_instance(generate_instance(100, cohorts=7, preformed_share=0.0, seed=1))
    assert len(inst.cohorts) == 7 and all(p.partner is None for p in inst.participants)
    with pytest.raises(ValueError, match="participants must be between"):
        generate_instance(1)
    with pytest.raises(ValueError, match="cohorts must be between"):
        generate_instance(100, cohorts=51)


def test_generated_instance_solves_and_verifies() -> None:
    inst = parse_instance(generate_instance(150, seed=2))
    sol = solve(inst)
    assert verify(inst, sol).ok


def test_cli_generate(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    result = CliRunner().invoke(main, ["generate", "-n", "60", "--seed", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["name"] == "synthetic-n60-s3"
    assert CliRunner().invoke(main, ["validate", str(out)]).exit_code == 0
    assert CliRunner().invoke(main, ["generate", "-n", "30000"]).exit_code == 2
