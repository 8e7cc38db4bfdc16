"""Whether numba's on-disk cache already holds a compiled function, so that a solver can choose
between loading it (under a second) and a slower uncompiled path (no multi-second compile)."""

from __future__ import annotations

import os
from pathlib import Path


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
