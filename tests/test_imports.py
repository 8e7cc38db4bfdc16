"""What importing matcher loads, and that `matcher.verification.verify` stays the checker
function."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_the_cli_loads_no_models_or_solvers_before_a_command_runs() -> None:
    """`matcher --help` stays fast: the command modules import their heavy parts lazily."""
    out = _run(
        "import sys, matcher.cli\n"
        "print([m for m in ('pydantic', 'numpy', 'ortools', 'openpyxl', 'jinja2', "
        "'matplotlib', 'fastapi') if m in sys.modules])"
    )
    assert out == "[]"


def test_the_engine_loads_cp_sat_only_to_build_a_model() -> None:
    """CP-SAT's Python module imports pandas (0.3-0.4 s of a fresh process), and large intakes
    and short time limits build no CP-SAT model: the engine's modules import it where a model
    is built, not at the top."""
    out = _run(
        "import sys\n"
        "import matcher.engine.solve, matcher.engine.assemble, matcher.engine.replan\n"
        "import matcher.engine.placement.strategy, matcher.explain, matcher.verification.verify\n"
        "print([m for m in ('ortools.sat.python.cp_model', 'pandas') if m in sys.modules])"
    )
    assert out == "[]"


#: The comment an import inside a function carries on its (first) line: why it is lazy.
LAZY = re.compile(r"#\s*lazy:\s*\S.{3,}")


def unexplained_imports(source: str) -> list[int]:
    """Lines of ``source`` holding an indented import (inside a function, or in a block at
    module level other than ``if TYPE_CHECKING:``) without a ``# lazy: <why>`` comment on its
    first line."""
    lines = source.splitlines()
    found: list[int] = []

    def visit(node: ast.AST, for_types: bool) -> None:
        for child in ast.iter_child_nodes(node):
            types = for_types or (
                isinstance(child, ast.If)
                and isinstance(node, ast.Module)
                and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if (
                isinstance(child, ast.Import | ast.ImportFrom)
                and child.col_offset > 0
                and not types
                and not LAZY.search(lines[child.lineno - 1])
            ):
                found.append(child.lineno)
            visit(child, types and not isinstance(child, ast.FunctionDef))

    visit(ast.parse(source), False)
    return found


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("def f():\n    import json\n", [2]),
        ("def f():\n    import json  # imported on use\n", [2]),
        ("def f():\n    import json  # lazy: only for f\n", []),
        ("class A:\n    def f(self):\n        from x import (\n            y,\n        )\n", [3]),
        ("def f():\n    from x import (  # lazy: x is slow\n        y,\n    )\n", []),
        ("try:\n    import resource\nexcept ImportError:\n    pass\n", [2]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import numpy\n", []),
        ("import json\n", []),
    ],
)
def test_the_lazy_import_check_finds_what_it_should(source: str, lines: list[int]) -> None:
    assert unexplained_imports(source) == lines


def test_every_import_inside_a_function_says_why_it_is_lazy() -> None:
    """An import inside a function is for start-up time (or an optional or platform-only
    dependency) and says so on its line (`# lazy: ...`); one with no such reason belongs at
    the top of its module (a cycle is never a reason: lint-imports forbids cycles)."""
    import matcher

    package = Path(matcher.__file__).parent  # the checkout's, or the installed wheel's
    found = []
    files = sorted(package.rglob("*.py"))
    assert len(files) > 50
    for path in files:
        source = path.read_text(encoding="utf-8")
        rel = path.relative_to(package.parent).as_posix()
        found += [f"{rel}:{n}" for n in unexplained_imports(source)]
    assert found == []


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


def test_every_source_file_the_docs_name_exists() -> None:
    """The README and docs point readers at source files by path (`matcher/engine/sets.py`
    documents the set distance); a file moved without its mention leaves the reader nowhere
    (the README named `matcher/learning_sets.py` for a release after it moved).

    The package paths are looked up where the packages were imported from: in CI's run against
    the installed wheel the copy of the project has no ``matcher/`` or ``solvers/``, and the
    files must then be in the wheel."""
    import matcher
    import solvers

    root = Path(__file__).resolve().parents[1]
    homes = {
        "matcher": Path(matcher.__file__).resolve().parents[1],
        "solvers": Path(solvers.__file__).resolve().parents[1],
    }
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    named = {
        (page.name, path)
        for page in pages
        for path in re.findall(
            r"\b((?:matcher|solvers|benchmarks|tests)/[\w/]+\.py)\b", page.read_text()
        )
    }
    assert named, "the docs name no source file: the pattern is wrong"
    missing = sorted(
        (page, path)
        for page, path in named
        if not (homes.get(path.split("/")[0], root) / path).is_file()
    )
    assert not missing
