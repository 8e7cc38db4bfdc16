"""What importing matcher loads, and that `matcher.verification.verify` stays the checker
function."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import pythonpath


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": pythonpath()}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_import_matcher_loads_no_models_or_solvers() -> None:
    """`import matcher` binds names on first use: pydantic, numpy and OR-Tools stay unloaded
    (an embedding tool pays for what it calls)."""
    out = _run(
        "import sys, matcher\n"
        "print([m for m in ('pydantic', 'numpy', 'ortools', 'matcher.verification.verify') "
        "if m in sys.modules])"
    )
    assert out == "[]"


def test_verify_is_the_function_whichever_import_comes_first() -> None:
    """Regression: `matcher.verify` was also a submodule (the old path still imports, as an
    alias); importing a verifier module first must not make `from matcher import verify` the
    module."""
    out = _run(
        "from matcher.verification.verify import recompute_score\n"
        "import matcher\n"
        "from matcher import Report, verify\n"
        "print(callable(verify), type(verify).__name__, matcher.verify is verify, "
        "Report.__name__)"
    )
    assert out == "True function True Report"
    out = _run("from matcher import verify\nprint(type(verify).__name__)")
    assert out == "function"
    out = _run(
        "import warnings\nwarnings.simplefilter('ignore')\nimport matcher.verify\n"
        "from matcher import verify\nprint(type(verify).__name__)"
    )
    assert out == "function"


def test_old_module_paths_are_the_new_modules_with_a_warning() -> None:
    """The 0.1 paths keep working for one release: same module object, DeprecationWarning."""
    out = _run(
        "import warnings\nwarnings.simplefilter('error')\n"
        "try:\n    import matcher.schema\nexcept DeprecationWarning as w:\n    print('warned', w)\n"
        "warnings.simplefilter('ignore')\n"
        "import matcher.schema, matcher.contract.instance\n"
        "print(matcher.schema is matcher.contract.instance)"
    )
    assert out.splitlines() == [
        "warned matcher.schema has moved to matcher.contract.instance; the old path goes in the "
        "next release",
        "True",
    ]


def test_solvers_maximin_grouping_still_imports_with_a_warning() -> None:
    """``solvers.maximin_grouping`` became part of the ``solvers.grouping`` package; the old path
    re-exports ``maximin_groups`` for one release, with a DeprecationWarning."""
    out = _run(
        "import warnings\nwarnings.simplefilter('error')\n"
        "try:\n    import solvers.maximin_grouping\nexcept DeprecationWarning as w:\n"
        "    print('warned', w)\n"
        "warnings.simplefilter('ignore')\n"
        "import sys\nsys.modules.pop('solvers.maximin_grouping', None)\n"
        "import solvers.maximin_grouping, solvers.grouping\n"
        "print(solvers.maximin_grouping.maximin_groups is solvers.grouping.maximin_groups)"
    )
    assert out.splitlines() == [
        "warned solvers.maximin_grouping moved to solvers.grouping (import maximin_groups from "
        "there)",
        "True",
    ]


def test_the_installed_package_is_under_test_when_ci_says_so() -> None:
    """CI runs the suite a second time from a copy of the project without ``matcher/`` and
    ``solvers/`` against the installed wheel (``MATCHER_TEST_INSTALLED=1`` in ``.ci/run``): then
    both packages, here and in a subprocess, must come from site-packages, never from a source
    tree, or that run would test the checkout twice."""
    import matcher
    import solvers

    installed = os.environ.get("MATCHER_TEST_INSTALLED") == "1"
    paths = [matcher.__file__, solvers.__file__]
    paths += _run(
        "import matcher, solvers\nprint(matcher.__file__)\nprint(solvers.__file__)"
    ).split("\n")
    for path in paths:
        assert ("site-packages" in path) == installed, path
