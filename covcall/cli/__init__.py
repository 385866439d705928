"""The `covcall` command line: one subcommand module per domain, user errors as one line and exit 2."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from covcall.errors import describe
from covcall.jsonutil import dumps

if TYPE_CHECKING:
    from covcall.config import Settings

# Each module exposes register(subparsers) and sets `func(args, settings) -> int` on its parsers.
_COMMAND_MODULES = ("status", "data", "backtest", "ranges", "walk", "models", "chains")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one `error:` line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


class _VersionAction(argparse.Action):
    """--version, computed only when asked (it runs git)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the code version (package version and git commit) and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from covcall.version import code_version

        parser.exit(0, f"covcall {code_version()}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="covcall", description="Research workbench for crypto covered calls.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"covcall.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"covcall.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def emit(args: argparse.Namespace, payload: Any, human: Callable[[], None] | str | None = None) -> None:
    """Print `payload` as JSON with --json, else the human rendering."""
    if getattr(args, "json", False):
        print(dumps(payload, indent=2, sort_keys=False))
    elif callable(human):
        human()
    elif human is not None:
        print(human)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from covcall.config import load_settings

    try:
        settings: Settings = load_settings()
        code = args.func(args, settings)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the boundary: user-caused errors are one line, bugs keep their traceback
        if _interrupted(err):
            print("error: interrupted", file=sys.stderr)
            return 130
        message = describe(err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    return int(code or 0)


def _interrupted(err: BaseException) -> bool:
    """Ctrl-C that DuckDB turned into its own error while a query ran (it stops the query and raises)."""
    return type(err).__name__ == "InterruptException" or (
        isinstance(err, RuntimeError) and str(err).strip() == "Query interrupted")


def entry() -> None:
    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C while the parser is built (command modules importing), before the boundary
        print("error: interrupted", file=sys.stderr)
        code = 130
    leave(code)


def leave(code: int) -> NoReturn:
    """End the command as Python's own exit does (threads joined, exit handlers run, output flushed), less the
    teardown of every module and object it loaded: 0.2 s a command with the engine imported, up to 0.5 s after a
    sweep on a local cluster (bench/bench_batch_cli.py). Nothing is left to save by then: the store's connections
    are closed and export files written before `main` returns. Anything unusual takes the ordinary exit."""
    import atexit
    import os
    import threading

    try:
        shutdown = getattr(threading, "_shutdown", None)  # what the interpreter's exit runs first: joins threads
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # e.g. a closed pipe on flush: let Python report it as it always has
        sys.exit(code)
    os._exit(code)


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers must be a whole number >= 1; got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--workers must be a whole number >= 1; got {n}")
    return n


def add_compute_args(p: argparse.ArgumentParser) -> None:
    """--workers and --scheduler: where the command's units of work run (docs/scale.md)."""
    p.add_argument("--workers", type=_workers, metavar="N",
                   help="worker processes of a local Dask cluster (1: serial; default: WORKERS or the cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: "
                        "DASK_SCHEDULER_ADDRESS)")


def start_workers_early(args: argparse.Namespace, settings: Settings) -> None:
    """Start a certain local cluster's fork server before this command's heavy imports (covcall.compute)."""
    from covcall.compute import start_early

    workers = getattr(args, "workers", None)
    start_early(settings.compute, workers if workers is not None else settings.workers,
                getattr(args, "scheduler", None) or settings.dask_scheduler_address)


def emit_plan(args: argparse.Namespace, compute: Any, n_units: int, work_s: float | None, what: str) -> int:
    """`--plan`: what the sweep is and where it would run; nothing runs, nothing is stored."""
    from covcall.compute import plan_words, sweep_plan

    out = sweep_plan(compute, n_units, work_s)
    emit(args, out, f"{what}: {plan_words(out)} (saving, model training and imports come on top). Nothing was run "
                    "(drop --plan to run it).")
    return 0


def compute_for(args: argparse.Namespace, settings: Settings, n_units: int, work_s: float | None = None) -> Any:
    from covcall.config import compute_plan

    return compute_plan(settings, n_units, getattr(args, "workers", None), getattr(args, "scheduler", None),
                        work_s)


def progress_printer(stream: Any = None) -> Callable[[int, int, str], None]:
    """A progress bar on a terminal, plain `[done/total] label` lines otherwise (logs, pipes)."""
    out = stream or sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())

    def show(done: int, total: int, label: str) -> None:
        if not tty:
            print(f"[{done}/{total}] {label}", file=out, flush=True)
            return
        width = 30
        filled = int(width * done / total) if total else width
        end = "\n" if total and done >= total else ""
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:60]:<60}", end=end, file=out,
              flush=True)

    return show
