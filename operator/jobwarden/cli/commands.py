"""One method per ``kubectl jobwarden`` command, with its output and client injectable.

Actions are annotations and spec patches the user could make with
``kubectl annotate``/``kubectl patch``; the plugin only spares them the token
and the spelling. It writes metadata and spec as the user, never status.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from jobwarden.cli.access import can_i_report, can_i_table
from jobwarden.cli.access import permissions as all_permissions
from jobwarden.cli.actions import take_action
from jobwarden.cli.client import Client, connect
from jobwarden.cli.describe import describe_text, downstreams_of
from jobwarden.cli.errors import CliError, Forbidden
from jobwarden.cli.group import GroupSummary, group_summary
from jobwarden.cli.kubeconfig import ConnectOptions, resolve_namespace
from jobwarden.cli.output import Console, as_list
from jobwarden.cli.parser import connect_options
from jobwarden.cli.preview import (
    PreviewError,
    load_calendars,
    load_documents,
    parse_from,
    preview_documents,
    preview_json,
    preview_notes,
    preview_table,
)
from jobwarden.cli.summary import summarize, summary_text
from jobwarden.cli.tables import list_table, utc_now
from jobwarden.cli.watching import watch_describe, watch_list

__all__ = ["App"]


@dataclass(frozen=True, kw_only=True)
class App:
    """The commands, with their output, client factory, clock and stdin injectable for tests."""

    console: Console
    connector: Callable[[ConnectOptions], Client] = connect
    clock: Callable[[], datetime] = utc_now
    stdin: IO[str] | None = None

    def run(self, args: argparse.Namespace) -> int:
        """Run the parsed command; its exit status."""
        handlers: dict[str, Callable[[argparse.Namespace], int]] = {
            "list": self.cmd_list,
            "describe": self.cmd_describe,
            "preview": self.cmd_preview,
            "run": self.cmd_run,
            "suspend": self.cmd_suspend,
            "resume": self.cmd_resume,
            "terminate": self.cmd_terminate,
            "health": self.cmd_health,
            "can-i": self.cmd_can_i,
            "dashboard": self.cmd_dashboard,
        }
        return handlers[args.command](args)

    def client(self, args: argparse.Namespace) -> Client:
        return self.connector(connect_options(args))

    # -- reading ----------------------------------------------------------------------------

    def cmd_list(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        namespace = None if args.all_namespaces else client.namespace
        wide = args.all_namespaces
        if args.watch:
            watch_list(
                client,
                self.console,
                namespace=namespace,
                wide=wide,
                output=args.output,
                timeout=args.watch_timeout,
                clock=self.clock,
            )
            return 0
        items, _ = client.list_schedules(namespace=namespace)
        if args.output:
            self.console.dump(as_list(items), output=args.output)
        elif not items:
            self.console.no_resources(namespace)
        else:
            table = list_table(items, now=self.clock(), with_namespace=wide)
            self.console.print("\n".join(table.lines()))
        return 0

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
        downstreams: list[str] | str
        group: GroupSummary | str | None
        try:
            siblings, _ = client.list_schedules(namespace=str(meta.get("namespace")))
            downstreams = downstreams_of(str(meta.get("name")), siblings)
            group = group_summary(obj, siblings)
        except CliError as exc:
            downstreams = f"<unavailable: {exc.message}>"
            group = None if group_summary(obj, []) is None else downstreams
        return describe_text(
            obj,
            now=self.clock(),
            events=events,
            events_note=note,
            downstreams=downstreams,
            group=group,
        )

    def cmd_describe(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        obj = client.get_schedule(namespace=client.namespace, name=args.name)
        self.console.print(self._describe_once(client, obj))
        if args.watch:
            watch_describe(
                client,
                self.console,
                namespace=client.namespace,
                name=args.name,
                first=obj,
                timeout=args.watch_timeout,
                describe=lambda changed: self._describe_once(client, changed),
            )
        return 0

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
            calendars = load_calendars(text, source=source)
            for path in args.calendar or ():
                calendars.update(load_calendars(_read(path), source=path))
            namespace = resolve_namespace(connect_options(args), strict=False)
            previews = preview_documents(
                docs,
                count=args.count,
                start=start,
                default_namespace=namespace,
                calendars=calendars,
            )
        except PreviewError as exc:
            raise CliError(str(exc)) from exc
        if args.output:
            self.console.dump(preview_json(previews), output=args.output)
        else:
            lines = preview_table(previews, start=start).lines()
            self.console.print("\n".join([*lines, *preview_notes(previews)]))
        return 0

    def cmd_health(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        namespace = None if args.all_namespaces else client.namespace
        items, _ = client.list_schedules(namespace=namespace)
        now = self.clock()
        summary = summarize(items, now=now, since=args.since)
        if args.output:
            self.console.dump(summary.to_api(), output=args.output)
        elif not items:
            self.console.no_resources(namespace)
        else:
            text = summary_text(summary, now=now, with_namespace=args.all_namespaces)
            self.console.print(text)
        return 0

    def cmd_can_i(self, args: argparse.Namespace) -> int:
        client = self.client(args)
        namespace, name = client.namespace, args.name
        # A schedule that does not exist is an error; one the user may not read
        # is not: the report says so.
        with contextlib.suppress(Forbidden):
            client.get_schedule(namespace=namespace, name=name)
        answers = {
            p: client.may(p.attributes(namespace=namespace, name=name)) for p in all_permissions()
        }
        report = can_i_report(answers, namespace=namespace, name=name)
        if args.output:
            doc = {"namespace": namespace, "name": name, "actions": report}
            self.console.dump(doc, output=args.output)
        else:
            self.console.print("\n".join(can_i_table(report).lines()))
        return 0

    def cmd_dashboard(self, args: argparse.Namespace) -> int:
        from jobwarden.cli.dashboard.server import Serve, serve  # aiohttp for this one only

        client = self.client(args)
        return serve(
            Serve(
                client=client,
                namespace=None if args.all_namespaces else client.namespace,
                port=args.port,
                open_browser=args.open,
                console=self.console,
                clock=self.clock,
            )
        )

    # -- actions ----------------------------------------------------------------------------

    def _take(self, args: argparse.Namespace, action: str) -> int:
        client = self.client(args)
        result = take_action(
            client, action, namespace=client.namespace, name=args.name, now=self.clock()
        )
        self.console.print(result.message)
        return 0

    def cmd_run(self, args: argparse.Namespace) -> int:
        return self._take(args, "run")

    def cmd_suspend(self, args: argparse.Namespace) -> int:
        return self._take(args, "suspend")

    def cmd_resume(self, args: argparse.Namespace) -> int:
        return self._take(args, "resume")

    def cmd_terminate(self, args: argparse.Namespace) -> int:
        return self._take(args, "terminate-force" if args.force else "terminate")


def _read(path: str) -> str:
    """A ``--calendar`` file's text; CliError naming it when it cannot be read."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CliError(f'cannot read "{path}": {exc.strerror or exc}') from exc
