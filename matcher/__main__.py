"""`python -m matcher` (and the `matcher` command) runs the command line."""

from __future__ import annotations

import gc
import os
import signal
import sys
from types import FrameType


def _early_exit(signum: int, frame: FrameType | None) -> None:
    # Until the command's own handlers are in place (while modules load), a signal ends the
    # run the same way: 128 + the signal number, no traceback, nothing written yet. After the
    # command (these handlers are back), a run whose output is renamed into place has
    # succeeded: the signal is ignored and the process ends with its own exit code.
    files = sys.modules.get("matcher.files")
    if files is not None and files.output_committed():
        return
    raise SystemExit(128 + signum)


def run() -> None:
    """Entry point: signal handlers first, then the (slower) imports, then the command."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _early_exit)
    # One BLAS thread unless the user says otherwise (set before numpy loads): the solve's
    # matrix products are small and many (one cohort's pairs at a time), where a second BLAS
    # thread only waits for the first; on a busy 2-core machine it cost 20-80x on a 200 x 20
    # product, and the sets of 20,000 participants took 6.5 s of CPU with it, 3.0 s without.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from matcher.cli import group, main  # lazy: after the signal handlers (quiet Ctrl-C)

    group.ONE_SHOT = True  # the process ends with the command (see group._load_checked)
    try:
        main()
    finally:
        # The process ends here: the collector's last passes would walk every object still
        # alive (0.3 s after a 2,000-participant solve) only for the process to free them.
        gc.freeze()


if __name__ == "__main__":
    run()
