"""``kubectl jobwarden``: list, describe, preview and drive JobSchedules.

kubectl finds the ``kubectl-jobwarden`` executable on PATH and runs it with
the remaining arguments. This module is the entry point and the rule that
every failure is one ``Error: ...`` line on stderr with a non-zero exit
status (1 for errors, 2 for bad usage, 130 after Ctrl-C), never a traceback.
The command line itself is :mod:`jobwarden.cli.parser`; the commands are
:mod:`jobwarden.cli.commands`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO

from jobwarden.cli.client import Client, connect
from jobwarden.cli.commands import App
from jobwarden.cli.errors import CliError
from jobwarden.cli.kubeconfig import ConnectOptions
from jobwarden.cli.output import Console
from jobwarden.cli.parser import build_parser
from jobwarden.cli.tables import utc_now

__all__ = ["App", "build_parser", "main", "run"]


def run(
    argv: Sequence[str] | None,
    *,
    out: IO[str],
    err: IO[str],
    connector: Callable[[ConnectOptions], Client] = connect,
    clock: Callable[[], datetime] = utc_now,
    stdin: IO[str] | None = None,
) -> int:
    """Parse ``argv`` and run the command; the exit status. Tests inject the rest."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(out)
        return 0
    app = App(console=Console(out=out, err=err), connector=connector, clock=clock, stdin=stdin)
    try:
        return app.run(args)
    except CliError as exc:
        err.write(f"Error: {exc.message}\n")
        err.flush()
        return exc.code
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kubectl-jobwarden`` console script."""
    try:
        return run(argv, out=sys.stdout, err=sys.stderr)
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error worth a traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
