"""The plugin's command line: every command, flag and value check, before any work is done.

Parsing stays apart from the commands so that tests (and the docs check)
can build the parser offline. Usage errors are one ``Error: ...`` line on
stderr with exit status 2, like every other failure of the plugin.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any, NoReturn

from jobwarden.api.spec import parse_duration
from jobwarden.cli.kubeconfig import ConnectOptions

__all__ = ["PROG", "build_parser", "connect_options"]

PROG = "kubectl jobwarden"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr like every other error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"Error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def _seconds(text: str) -> float:
    """``--request-timeout``/``--watch-timeout``: ``30``, ``30s``, ``1m``; ``0`` means none."""
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    return _duration(stripped).total_seconds()


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from exc
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535 (0: a free one)")
    return value


def _connection_flags(*, suppress: bool) -> _Parser:
    """kubectl's connection flags, accepted before and after the command.

    On the sub-commands the defaults are suppressed, so that a flag given
    before the command is not overwritten by the sub-command's default.
    """
    default: Any = argparse.SUPPRESS if suppress else None
    p = _Parser(add_help=False)
    p.add_argument(
        "-n",
        "--namespace",
        default=default,
        help="namespace (default: the kubeconfig context's, else 'default')",
    )
    p.add_argument("--context", default=default, help="kubeconfig context to use")
    p.add_argument(
        "--kubeconfig",
        default=default,
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    p.add_argument(
        "--as",
        dest="as_user",
        default=default,
        metavar="USER",
        help="impersonate USER (needs the 'impersonate' permission)",
    )
    p.add_argument(
        "--as-group",
        dest="as_group",
        default=default,
        metavar="GROUP",
        help="impersonate GROUP as well (with --as)",
    )
    p.add_argument(
        "--request-timeout",
        type=_seconds,
        default=default,
        metavar="DURATION",
        help="how long to wait for one API response, e.g. 30s (default 30s)",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; exposed so tests can check argument handling offline."""
    parser = _Parser(
        prog=PROG,
        description="Inspect and drive jobwarden JobSchedules.",
        parents=[_connection_flags(suppress=False)],
    )
    common = _connection_flags(suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    def watch_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-w", "--watch", action="store_true", help="after printing, follow changes until Ctrl-C"
        )
        # For tests and scripts: end a watch after this long (exit 0).
        p.add_argument("--watch-timeout", type=_seconds, default=None, help=argparse.SUPPRESS)

    p = command("list", "List JobSchedules with their schedule, last and next run, health.")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list in every namespace")
    p.add_argument("-o", "--output", choices=("json", "yaml"), help="print objects as json|yaml")
    watch_flags(p)

    p = command("describe", "Show one JobSchedule: state, conditions, history, next 5 runs.")
    p.add_argument("name", metavar="NAME")
    watch_flags(p)

    p = command(
        "preview",
        "Print the next run times of the JobSchedules in a manifest (offline: no cluster needed).",
    )
    p.add_argument(
        "-f",
        "--filename",
        required=True,
        metavar="FILE",
        help="manifest file, multi-document YAML; '-' reads stdin",
    )
    p.add_argument(
        "--count", type=_count, default=5, metavar="N", help="runs per schedule (default 5)"
    )
    p.add_argument(
        "--calendar",
        action="append",
        metavar="FILE",
        help="a file of JobCalendars the schedules name (repeatable; those in -f count too)",
    )
    p.add_argument(
        "--from",
        dest="start",
        metavar="TIME",
        help="start after TIME, RFC 3339 (no offset: UTC; default now)",
    )
    p.add_argument(
        "-o",
        "--output",
        choices=("json", "yaml"),
        help="json|yaml: a list of RFC 3339 UTC instants for one schedule, "
        "an object of 'namespace/name' to such lists for several",
    )

    p = command("run", "Start one manual run now (sets jobwarden.io/run-now).")
    p.add_argument("name", metavar="NAME")

    p = command("suspend", "Suspend a schedule (patches spec.suspend=true).")
    p.add_argument("name", metavar="NAME")

    p = command(
        "resume",
        "Resume a schedule: spec.suspend=false, and lift a suspension "
        "the operator imposed after failures (jobwarden.io/resume).",
    )
    p.add_argument("name", metavar="NAME")

    p = command("terminate", "Terminate a schedule's active runs (jobwarden.io/terminate).")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--force", action="store_true", help="force-delete the pods at once (grace period 0)"
    )

    p = command(
        "can-i",
        "List what you may do to a JobSchedule: each action and spec change, "
        "and the permission to ask for where you may not.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("-o", "--output", choices=("json", "yaml"), help="print as json|yaml")

    p = command(
        "health", "Summarize health: schedules by state, active, stale and recently failed runs."
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="summarize every namespace")
    p.add_argument(
        "--since",
        type=_duration,
        default=timedelta(hours=24),
        metavar="DURATION",
        help="how far back 'recent' reaches (default 24h)",
    )
    p.add_argument("-o", "--output", choices=("json", "yaml"), help="print as json|yaml")

    p = command(
        "dashboard",
        "Serve a local web UI on 127.0.0.1 (overview, runs, actions, compose), "
        "acting as you; the URL carries a one-session token.",
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="show every namespace")
    p.add_argument(
        "--port",
        type=_port,
        default=0,
        metavar="PORT",
        help="port on 127.0.0.1 to listen on (default: a free one)",
    )
    p.add_argument("--open", action="store_true", help="open the URL in a web browser")
    return parser


def connect_options(args: argparse.Namespace) -> ConnectOptions:
    """The connection flags of parsed ``args``; ``--request-timeout 0`` means an hour."""
    timeout = getattr(args, "request_timeout", None)
    group = getattr(args, "as_group", None)
    return ConnectOptions(
        kubeconfig=getattr(args, "kubeconfig", None),
        context=getattr(args, "context", None),
        namespace=getattr(args, "namespace", None),
        as_user=getattr(args, "as_user", None),
        as_groups=(group,) if group else (),
        request_timeout=30.0 if timeout is None else (timeout or 3600.0),
    )
