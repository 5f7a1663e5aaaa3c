"""What ``-w`` prints as JobSchedules change, like ``kubectl get -w``/``describe`` re-run.

:func:`jobwarden.cli.follow.follow` yields the changes; this module decides
what each one shows. ``list -w`` prints its table once and then one row per
change, in the first table's columns, skipping rows that did not change;
``describe -w`` prints the description again when the object's
resourceVersion moves, and says so when the schedule goes away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from jobwarden import labels
from jobwarden.cli.client import Client
from jobwarden.cli.follow import follow
from jobwarden.cli.output import Console, stripped
from jobwarden.cli.tables import Table, by_namespace_and_name, list_headers, schedule_row

__all__ = ["watch_describe", "watch_list"]


def _uid(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def watch_list(
    client: Client,
    console: Console,
    *,
    namespace: str | None,
    wide: bool,
    output: str | None,
    timeout: float | None,
    clock: Callable[[], datetime],
) -> None:
    """The table once, then one row per change, aligned to the first table's columns.

    With ``output`` (json|yaml) each changed object is printed whole instead,
    yaml documents separated by ``---`` as kubectl does.
    """
    headers = list_headers(with_namespace=wide)
    widths: list[int] | None = None
    header_printed = False
    shown: dict[str, str] = {}
    for change in follow(client, namespace=namespace, timeout=timeout):
        if output:
            for obj in change.objects:
                if output == "yaml":
                    console.out.write("---\n")
                console.dump(stripped(obj), output=output)
            console.out.flush()
            continue
        now = clock()
        objs = by_namespace_and_name(change.objects)
        table = Table(
            headers=headers, rows=[schedule_row(o, now=now, with_namespace=wide) for o in objs]
        )
        if widths is None:
            widths = table.widths()
            if not objs:
                console.no_resources(namespace)
        for obj, line in zip(objs, table.lines(widths=widths, header=False), strict=True):
            if change.type != "DELETED" and shown.get(_uid(obj)) == line:
                continue
            if not header_printed:
                console.print(Table(headers=headers, rows=[]).lines(widths=widths)[0])
                header_printed = True
            console.print(line)
            shown[_uid(obj)] = line


def watch_describe(
    client: Client,
    console: Console,
    *,
    namespace: str,
    name: str,
    first: Mapping[str, Any],
    timeout: float | None,
    describe: Callable[[Mapping[str, Any]], str],
) -> None:
    """After the description of ``first``, a new one (after ``---``) whenever it changes."""
    version = _version(first)
    for change in follow(client, namespace=namespace, name=name, timeout=timeout):
        if change.type == "DELETED" or not change.objects:
            gone = "deleted" if change.type == "DELETED" else "is gone"
            console.print(f'---\n{labels.SINGULAR} "{name}" {gone}')
            version = ""
            continue
        obj = change.objects[0]
        if _version(obj) == version:
            continue
        version = _version(obj)
        console.print("---\n" + describe(obj))
