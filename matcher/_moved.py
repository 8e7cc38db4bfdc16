"""Old module paths (before the layered layout of 0.2), kept importable for one release.

``import matcher.schema`` still works and gives :mod:`matcher.contract.instance` itself, with a
``DeprecationWarning`` naming the new path. A module whose contents went to several places
(``matcher.validation``: JSON reading to :mod:`matcher.intake.json_file`, cross-reference checks
to :mod:`matcher.contract.checks`) gives a module holding the names of all of them. The table
below is the migration note in code; the README's "Migrating from 0.1" section lists the same
moves in words.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

#: Old dotted path -> new dotted path (or paths, when the module was split).
MOVED: dict[str, str | tuple[str, ...]] = {
    "matcher.bench": "matcher.tools.bench",
    "matcher.cli.app": "matcher.cli.group",
    "matcher.diagnose": "matcher.engine.diagnose",
    "matcher.diff": "matcher.compare.diff",
    "matcher.generate": "matcher.tools.generate",
    "matcher.learning_sets": "matcher.engine.sets",
    "matcher.metrics": "matcher.engine.metrics",
    "matcher.normalise": ("matcher.contract.keys", "matcher.intake.spelling"),
    "matcher.objectives": "matcher.engine.objectives",
    "matcher.output": ("matcher.render.output", "matcher.files"),
    "matcher.pairing": "matcher.engine.pairing",
    "matcher.pipeline": ("matcher.engine.solve", "matcher.engine.assemble"),
    "matcher.placement": "matcher.engine.placement.model",
    "matcher.placement_scale": "matcher.engine.placement.ceiling",
    "matcher.plan": ("matcher.engine.assemble", "matcher.engine.reasons"),
    "matcher.plan_view": "matcher.render.view",
    "matcher.prepare": "matcher.engine.prepare",
    "matcher.progress": "matcher.engine.progress",
    "matcher.replan": "matcher.engine.replan",
    "matcher.report": "matcher.render.report",
    "matcher.rules": "matcher.contract.rules",
    "matcher.schema": "matcher.contract.instance",
    "matcher.scoring": "matcher.engine.scoring",
    "matcher.solution": "matcher.contract.solution",
    "matcher.spreadsheet": "matcher.intake.spreadsheet",
    "matcher.strategy": "matcher.engine.placement.strategy",
    "matcher.template": "matcher.intake.template",
    "matcher.validation": ("matcher.intake.json_file", "matcher.contract.checks"),
    "matcher.verify": "matcher.verification.verify",
    "matcher.xlsx_out": "matcher.render.workbook",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old path to the module at its new path (the same module object)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__]
        where = new if isinstance(new, str) else " and ".join(new)
        warnings.warn(
            f"{module.__name__} has moved to {where}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        if isinstance(new, str):
            # The import system returns whatever sys.modules holds once this returns.
            sys.modules[module.__name__] = importlib.import_module(new)
            return
        for path in new:  # a split module: the names of every part (the first part wins)
            for name, value in vars(importlib.import_module(path)).items():
                if not name.startswith("__"):
                    module.__dict__.setdefault(name, value)


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
