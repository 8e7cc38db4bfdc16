"""The solvers' compiled kernels and numba: compiling a kernel with the helpers it calls (numba
imported only then), and whether numba's on-disk cache already holds a compiled function, so
that a solver can choose between loading it (under a second) and a slower uncompiled path (no
multi-second compile)."""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def compile_kernel(
    entry: Callable[..., Any],
    helpers: Sequence[Callable[..., Any]],
    names: dict[str, Any],
    *,
    signature: str | None = None,
    cache_helpers: bool = False,
) -> Callable[..., Any] | None:
    """``entry`` compiled by numba (``nogil``, cached on disk, in one specialisation when
    ``signature`` is given), together with compiled copies of the ``helpers`` it calls; None
    when numba is not installed. The copies share one namespace (``names``: the module-level
    names they read, e.g. ``np`` and constants), so each sees the others compiled while the
    module's own functions stay plain Python, and importing the module never imports numba."""
    try:
        from numba import njit  # lazy: numba's import is 0.3-0.4 s; only a kernel pays it
    except ImportError:
        return None
    scope: dict[str, Any] = {"__name__": entry.__module__, **names}
    helper_jit = njit(cache=True, nogil=True) if cache_helpers else njit(nogil=True)
    for f in helpers:
        scope[f.__name__] = helper_jit(types.FunctionType(f.__code__, scope, f.__name__))
    outer = types.FunctionType(entry.__code__, scope, entry.__name__)
    if signature is None:
        return njit(cache=True, nogil=True)(outer)
    return njit(signature, cache=True, nogil=True)(outer)


def compiled_on_disk(source: str, function: str) -> bool:
    """Whether numba's cache holds ``function`` of the module file ``source`` compiled (an index
    file ``<module>.<function>-*.nbi``). Looks where numba writes it: only ``NUMBA_CACHE_DIR``
    when set, else beside the source (``__pycache__``) or the user's cache when the package is
    read-only. A stale entry only costs a compile, as without one."""
    pattern = f"{Path(source).stem}.{function}-*.nbi"
    if os.environ.get("NUMBA_CACHE_DIR"):
        places = [Path(os.environ["NUMBA_CACHE_DIR"])]
    else:
        home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        places = [Path(source).parent / "__pycache__", Path(home) / "numba"]
    try:
        return any(
            next(iter(place.rglob(pattern)), None) is not None for place in places if place.is_dir()
        )
    except OSError:
        return False
