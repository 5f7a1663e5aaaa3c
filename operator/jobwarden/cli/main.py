"""``kubectl jobwarden``: list, describe, preview and drive JobSchedules.

kubectl finds the ``kubectl-jobwarden`` executable on PATH and runs it with
the remaining arguments, so this module is the whole command line: argument
parsing, one function per command, and the rule that every failure is one
``Error: ...`` line on stderr with a non-zero exit status (1 for errors, 2 for
bad usage, 130 after Ctrl-C), never a traceback.

Actions are annotations and spec patches the user could make with
``kubectl annotate``/``kubectl patch``; the plugin only spares them the token
and the spelling. It writes metadata and spec as the user, never status.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, NoReturn

import yaml

from jobwarden import labels
from jobwarden.api.spec import parse_duration
from jobwarden.cli.client import Client, CliError, ConnectOptions, connect, resolve_namespace
from jobwarden.cli.describe import describe_text
from jobwarden.cli.follow import follow
from jobwarden.cli.preview import (
    PreviewError,
    load_documents,
    parse_from,
    preview_documents,
    preview_json,
    preview_table,
)
from jobwarden.cli.summary import summarize, summary_text
from jobwarden.cli.tables import Table, list_headers, list_table, schedule_row, utc_now

__all__ = ["App", "build_parser", "main", "run"]

PROG = "kubectl jobwarden"
KIND_REF = f"{labels.SINGULAR}.{labels.GROUP}"


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
    try:
        return parse_duration(stripped).total_seconds()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


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
    return parser


def _options(args: argparse.Namespace) -> ConnectOptions:
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


def _token(now: datetime) -> str:
    """A fresh action token: readable time first, random suffix so two in a second differ."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def _strip(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as kubectl prints it: managedFields hidden."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def _dump(value: Any, *, output: str, out: IO[str]) -> None:
    if output == "json":
        out.write(json.dumps(value, indent=4) + "\n")
    else:
        out.write(yaml.safe_dump(value, sort_keys=False, default_flow_style=False))


class App:
    """The commands, with their output streams and client factory injectable for tests."""

    def __init__(
        self,
        *,
        out: IO[str],
        err: IO[str],
        connector: Callable[[ConnectOptions], Client] = connect,
        clock: Callable[[], datetime] = utc_now,
        stdin: IO[str] | None = None,
    ) -> None:
        self.out, self.err = out, err
        self.stdin = stdin
        self.connector = connector
        self.clock = clock

    def print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def run(self, args: argparse.Namespace) -> int:
        handlers: dict[str, Callable[[argparse.Namespace], int]] = {
            "list": self.cmd_list,
            "describe": self.cmd_describe,
            "preview": self.cmd_preview,
            "run": self.cmd_run,
            "suspend": self.cmd_suspend,
            "resume": self.cmd_resume,
            "terminate": self.cmd_terminate,
            "health": self.cmd_health,
        }
        return handlers[args.command](args)

    def client(self, args: argparse.Namespace) -> Client:
        return self.connector(_options(args))

    # -- list -------------------------------------------------------------------------------

    def cmd_list(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        namespace = None if args.all_namespaces else client.namespace
        wide = args.all_namespaces
        if args.watch:
            return self._watch_list(args, client, namespace=namespace)
        items, _ = client.list_schedules(namespace=namespace)
        if args.output:
            _dump(
                {
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": [_strip(i) for i in items],
                    "metadata": {"resourceVersion": ""},
                },
                output=args.output,
                out=self.out,
            )
            return 0
        if not items:
            self._no_resources(namespace)
            return 0
        self.print("\n".join(list_table(items, now=self.clock(), with_namespace=wide).lines()))
        return 0

    def _no_resources(self, namespace: str | None) -> None:
        where = f" in {namespace} namespace" if namespace else ""
        self.err.write(f"No resources found{where}.\n")
        self.err.flush()

    def _watch_list(
        self, args: argparse.Namespace, client: Client, *, namespace: str | None
    ) -> int:
        """The table once, then one row per change, aligned to the first table's columns."""
        wide = args.all_namespaces
        headers = list_headers(with_namespace=wide)
        widths: list[int] | None = None
        header_printed = False
        shown: dict[str, str] = {}
        for change in follow(client, namespace=namespace, timeout=args.watch_timeout):
            if args.output:
                for obj in change.objects:
                    if args.output == "yaml":
                        self.out.write("---\n")
                    _dump(_strip(obj), output=args.output, out=self.out)
                self.out.flush()
                continue
            now = self.clock()
            objs = _sorted(change.objects)
            table = Table(
                headers=headers, rows=[schedule_row(o, now=now, with_namespace=wide) for o in objs]
            )
            if widths is None:
                widths = table.widths()
                if not objs:
                    self._no_resources(namespace)
            for obj, line in zip(objs, table.lines(widths=widths, header=False), strict=True):
                if change.type != "DELETED" and shown.get(_uid(obj)) == line:
                    continue
                if not header_printed:
                    self.print(Table(headers=headers, rows=[]).lines(widths=widths)[0])
                    header_printed = True
                self.print(line)
                shown[_uid(obj)] = line
        return 0

    # -- describe ---------------------------------------------------------------------------

    def _describe_once(self, client: Client, obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        events: list[dict[str, Any]] | None = None
        note: str | None = None
        try:
            events = client.list_events(
                namespace=str(meta.get("namespace")),
                name=str(meta.get("name")),
                uid=str(meta.get("uid")),
            )
        except CliError as exc:
            # Describing needs only 'get'; a user who may not list events still sees the rest.
            note = f"<unavailable: {exc.message}>"
        return describe_text(obj, now=self.clock(), events=events, events_note=note)

    def cmd_describe(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        namespace = client.namespace
        obj = client.get_schedule(namespace=namespace, name=args.name)
        self.print(self._describe_once(client, obj))
        if not args.watch:
            return 0
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        for change in follow(
            client, namespace=namespace, name=args.name, timeout=args.watch_timeout
        ):
            if change.type == "SYNC":
                if not change.objects:
                    self.print(f'---\n{labels.SINGULAR} "{args.name}" is gone')
                    version = ""
                    continue
                obj = change.objects[0]
            elif change.type == "DELETED":
                self.print(f'---\n{labels.SINGULAR} "{args.name}" deleted')
                version = ""
                continue
            else:
                obj = change.objects[0]
            new_version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if new_version == version:
                continue
            version = new_version
            self.print("---\n" + self._describe_once(client, obj))
        return 0

    # -- preview ----------------------------------------------------------------------------

    def cmd_preview(self, args: argparse.Namespace) -> int:
        source = "stdin" if args.filename == "-" else args.filename
        try:
            if args.filename == "-":
                text = (self.stdin or sys.stdin).read()
            else:
                text = Path(args.filename).read_text()
        except OSError as exc:
            raise CliError(f'cannot read "{args.filename}": {exc.strerror or exc}') from exc
        now = self.clock()
        try:
            start = parse_from(args.start, now=now)
            docs = load_documents(text, source=source)
            namespace = resolve_namespace(_options(args), strict=False)
            previews = preview_documents(
                docs, count=args.count, start=start, default_namespace=namespace
            )
        except PreviewError as exc:
            raise CliError(str(exc)) from exc
        if args.output:
            _dump(preview_json(previews), output=args.output, out=self.out)
            return 0
        self.print("\n".join(preview_table(previews, start=start).lines()))
        return 0

    # -- actions ----------------------------------------------------------------------------

    def _annotate(
        self, client: Client, name: str, values: Mapping[str, str | None]
    ) -> dict[str, Any]:
        return client.patch_schedule(
            namespace=client.namespace, name=name, patch={"metadata": {"annotations": dict(values)}}
        )

    def cmd_run(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        token = _token(self.clock())
        self._annotate(client, args.name, {labels.RUN_NOW_ANNOTATION: token})
        self.print(f"{KIND_REF}/{args.name} run requested ({labels.RUN_NOW_ANNOTATION}={token})")
        return 0

    def cmd_suspend(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        client.patch_schedule(
            namespace=client.namespace, name=args.name, patch={"spec": {"suspend": True}}
        )
        self.print(f"{KIND_REF}/{args.name} suspended")
        return 0

    def cmd_resume(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        obj = client.get_schedule(namespace=client.namespace, name=args.name)
        status = obj.get("status") or {}
        held = (status.get("suspendedByOperator") or {}).get("suspended") is True
        patch: dict[str, Any] = {"spec": {"suspend": False}}
        token = _token(self.clock())
        if held:
            patch["metadata"] = {"annotations": {labels.RESUME_ANNOTATION: token}}
        client.patch_schedule(namespace=client.namespace, name=args.name, patch=patch)
        detail = (
            f" (lifting the operator's suspension: {labels.RESUME_ANNOTATION}={token})"
            if held
            else ""
        )
        self.print(f"{KIND_REF}/{args.name} resumed{detail}")
        return 0

    def cmd_terminate(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        token = _token(self.clock())
        # Without --force the grace annotation is removed, so that an earlier
        # forced terminate does not make this one forced too.
        updated = self._annotate(
            client,
            args.name,
            {
                labels.TERMINATE_ANNOTATION: token,
                labels.TERMINATE_GRACE_ANNOTATION: "0" if args.force else None,
            },
        )
        active = (updated.get("status") or {}).get("active") or []
        forced = ", pods force-deleted" if args.force else ""
        self.print(
            f"{KIND_REF}/{args.name} terminate requested for {len(active)} active "
            f"run(s){forced} ({labels.TERMINATE_ANNOTATION}={token})"
        )
        return 0

    # -- health -----------------------------------------------------------------------------

    def cmd_health(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        namespace = None if args.all_namespaces else client.namespace
        items, _ = client.list_schedules(namespace=namespace)
        now = self.clock()
        summary = summarize(items, now=now, since=args.since)
        if args.output:
            _dump(summary.to_api(), output=args.output, out=self.out)
            return 0
        if not items:
            self._no_resources(namespace)
            return 0
        self.print(summary_text(summary, now=now, with_namespace=args.all_namespaces))
        return 0


def _uid(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def _sorted(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        items,
        key=lambda o: (
            (o.get("metadata") or {}).get("namespace") or "",
            (o.get("metadata") or {}).get("name") or "",
        ),
    )


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
    app = App(out=out, err=err, connector=connector, clock=clock, stdin=stdin)
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
