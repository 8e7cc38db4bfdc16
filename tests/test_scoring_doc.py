"""docs/scoring.md's worked example and weight table, read from the page, equal what the code
computes: the engine's vectorised score (matcher.engine.scoring) and the verifier's own
restatement (matcher.verification.verify). Editing the doc or the formula alone fails here."""

from __future__ import annotations

import re

import pytest

from matcher import load_instance
from matcher.contract.instance import Weights
from matcher.engine.scoring import CRITERIA, pair_scores
from matcher.verification.verify import recompute_score
from tests.conftest import MAY2016, REPO

DOC = REPO / "docs" / "scoring.md"
#: The bullets of the worked example, in the order of the criteria.
BULLETS = {
    "interests": "Shared interests",
    "project": "Project fit",
    "organisation": "Organisation",
    "system": "Local system",
    "availability": "Availability",
}


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start)
    return text[start : end if end >= 0 else None]


def _example() -> tuple[tuple[str, str], dict[str, float], float]:
    """The pair of the worked example, each criterion's bold figure and the bold score."""
    section = _section("### Worked example")
    head = re.search(r"\| \| (\w+) \(patient leader\) \| (\w+) \(clinician\) \|", section)
    assert head is not None, "the example's table names the two people"
    figures = {}
    for name, label in BULLETS.items():
        found = re.search(rf"- \*\*{label}\*\*:.*?\*\*([0-9.]+)\*\*", section, re.S)
        assert found is not None, f"no figure for {label}"
        figures[name] = float(found.group(1))
    score = re.search(r"Score = .*?= \*\*([0-9.]+)\*\*", section, re.S)
    assert score is not None
    return (head.group(1), head.group(2)), figures, float(score.group(1))


def _decimals(x: float) -> int:
    return len(repr(x).split(".")[1]) if "." in repr(x) else 0


def test_the_worked_example_is_what_the_code_computes() -> None:
    (a, b), figures, score = _example()
    inst = load_instance(MAY2016)
    people = inst.participants_by_id()
    scores, parts = pair_scores(inst, [(a, b)])
    verifier = recompute_score(inst, people[a], people[b])
    assert set(figures) == set(CRITERIA)
    for name, shown in figures.items():
        for computed in (float(parts[name][0]), verifier[name]):
            assert round(computed, _decimals(shown)) == pytest.approx(shown), name
    for computed in (float(scores[0]), verifier["score"]):
        assert round(computed, _decimals(score)) == pytest.approx(score)


def test_the_worked_example_table_is_the_instance() -> None:
    """The table's organisations, systems, interests and topics are may2016's."""
    (a, b), _, _ = _example()
    people = load_instance(MAY2016).participants_by_id()
    section = _section("### Worked example")
    rows = {
        m.group(1): (m.group(2).strip(), m.group(3).strip())
        for m in re.finditer(r"^\| ([a-z ]+) \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    }
    for k, pid in enumerate((a, b)):
        p = people[pid]
        assert rows["organisation"][k] == p.organisation
        assert rows["local system"][k] == p.system
        assert rows["interests"][k].split(", ") == p.interests
        assert sorted(rows["project topics"][k].split(", ")) == sorted(p.project_topics)


def test_the_weight_table_and_formula_are_the_defaults() -> None:
    """The default weight column and the formula's coefficients are `Weights()`'s."""
    section = _section("## The compatibility score")
    defaults = Weights().model_dump()
    labels = {
        "interests": "shared interests",
        "project": "project fit",
        "organisation": "organisation",
        "system": "local system",
        "availability": "availability",
    }
    for name, label in labels.items():
        row = re.search(rf"^\| {label} \| ([0-9.]+) \|", section, re.M)
        assert row is not None, label
        assert float(row.group(1)) == defaults[name], name
    formula = re.search(r"score = \((.*?)\) /", section, re.S)
    assert formula is not None
    terms = re.findall(r"([0-9.]+) × (\w+)", formula.group(1))
    assert {w: float(x) for x, w in terms} == defaults
