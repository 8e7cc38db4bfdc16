"""The layered layout: one home for shared constants, and old paths of split modules."""

from __future__ import annotations

import os
import subprocess
import sys

from matcher.contract.instance import CRITERIA, Weights
from tests.conftest import REPO


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_the_criteria_are_the_weights() -> None:
    """Scores, breakdowns, the report and the workbook list CRITERIA; each has a weight."""
    assert tuple(Weights.model_fields) == CRITERIA


def test_the_instance_model_validates_itself_without_the_layers_above() -> None:
    """Building an Instance runs the cross-reference checks with the contract layer alone."""
    out = _run(
        "import sys\n"
        "from matcher.contract.instance import Instance\n"
        "from matcher.errors import InvalidInstance\n"
        "from tests.conftest import tiny_data\n"
        "data = tiny_data()\n"
        "data['participants'][0]['partner'] = 'nobody'\n"
        "try:\n"
        "    Instance.model_validate(data)\n"
        "except InvalidInstance as exc:\n"
        "    print(exc.problems[0].message)\n"
        "print(sorted(m for m in sys.modules if m.startswith('matcher.') and\n"
        "             not m.startswith(('matcher.contract', 'matcher.errors', 'matcher._moved'))))"
    )
    first, loaded = out.splitlines()
    assert "nobody" in first
    assert loaded == "[]"


def test_a_split_module_s_old_path_holds_the_names_of_every_part() -> None:
    out = _run(
        "import warnings\nwarnings.simplefilter('ignore')\n"
        "from matcher.validation import load_instance, decision_problems, MAX_FILE_BYTES\n"
        "from matcher.normalise import category_key, near_duplicates\n"
        "import matcher.intake.json_file as j, matcher.intake.spelling as s\n"
        "print(load_instance is j.load_instance, near_duplicates is s.near_duplicates)\n"
        "warnings.simplefilter('error')\n"
        "import importlib, sys\n"
        "del sys.modules['matcher.validation']\n"
        "try:\n    importlib.import_module('matcher.validation')\n"
        "except DeprecationWarning as w:\n    print(w)\n"
    )
    assert out.splitlines() == [
        "True True",
        "matcher.validation has moved to matcher.intake.json_file and matcher.contract.checks; "
        "the old path goes in the next release",
    ]
