"""Preloaded first by a local cluster's fork server: the server then ends without tearing down its imports."""

from __future__ import annotations

import atexit
import os
import sys


def _exit_now() -> None:
    """End the fork server without tearing down what it imported (0.2-0.3 s of pandas, Dask and the engine).

    The server outlives the command by that long and holds its stderr: a pipe reading the command's output
    (`covcall batch ... --json | jq`) waited for it. The server has nothing to save, and the workers forked from it
    never run this handler (multiprocessing ends each child with os._exit).
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)


def _in_fork_server() -> bool:
    """Whether multiprocessing's fork server is importing this module (its preload), not any other program."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.endswith(os.path.join("multiprocessing", "forkserver.py")):
            return True
        frame = frame.f_back
    return False


# True only in the fork server (and so in the workers forked from it, which never run exit handlers)
QUICK_EXIT = _in_fork_server()
if QUICK_EXIT:
    atexit.register(_exit_now)
