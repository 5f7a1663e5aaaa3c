"""What the ``kubectl jobwarden`` tests share: the commands, the list columns, a fake API.

The unit tests drive the plugin's commands against :class:`FakeClient`
instead of an API server; the cluster tests run the real plugin through
kubectl. Both check the same command set and ``list`` columns, stated here
once as the tests expect them (not read from the plugin).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from jobwarden.cli.client import Gone
from jobwarden.cli.errors import CliError, Forbidden
from tests.support.schedules import PRINTER_COLUMNS

COMMANDS = (
    "list",
    "describe",
    "preview",
    "run",
    "suspend",
    "resume",
    "terminate",
    "health",
    "can-i",
    "dashboard",
)

# ``kubectl jobwarden list``: kubectl's printer columns, with the phase after the schedule.
LIST_COLUMNS = (*PRINTER_COLUMNS[:2], "PHASE", *PRINTER_COLUMNS[2:])

Event = tuple[str, dict[str, Any]]


class FakeClient:
    """Stands in for the plugin's API client: holds objects, records calls, plays watches.

    Each watch call plays the next entry of ``watches``: a list of events
    (filtered by name, as a field selector would), or :class:`Gone` to raise
    it. A list's resourceVersion is ``"10"`` the first time, ``"20"`` the
    second, so a test can tell which list a watch resumed from; ``clock``
    advances a second per watch call, for a follow's deadline.
    """

    def __init__(
        self,
        *,
        namespace: str = "team",
        objects: list[dict[str, Any]] | None = None,
        watches: Sequence[list[Event] | type[Gone]] = (),
        denied: frozenset[tuple[str, str]] = frozenset(),
        refuse_patches: bool = False,
        refuse_gets: bool = False,
    ) -> None:
        self.namespace = namespace
        self.server = "https://fake"
        self.objects = objects or []
        self.watches = list(watches)
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.listed: list[str | None] = []
        self.watch_calls: list[tuple[str, int, str | None]] = []
        self.clock = 0.0
        # (verb, resource[/subresource]) the user may not do; the API server
        # refuses every patch (or get) when told to, as RBAC or admission would.
        self.denied = denied
        self.refuse_patches = refuse_patches
        self.refuse_gets = refuse_gets
        self.reviews: list[dict[str, str]] = []
        self.applied: list[dict[str, Any]] = []

    def _find(self, namespace: str, name: str) -> dict[str, Any]:
        for obj in self.objects:
            if obj["metadata"]["name"] == name and obj["metadata"]["namespace"] == namespace:
                return obj
        raise CliError(f'jobschedule "{name}" not found in namespace "{namespace}"')

    def list_schedules(self, *, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        self.listed.append(namespace)
        items = [
            o for o in self.objects if namespace is None or o["metadata"]["namespace"] == namespace
        ]
        return items, f"{len(self.listed)}0"

    def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any]:
        if self.refuse_gets:
            raise Forbidden(f'forbidden: cannot get jobschedules.jobwarden.io "{name}"')
        return self._find(namespace, name)

    def patch_schedule(self, *, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        obj = self._find(namespace, name)
        if self.refuse_patches:
            raise Forbidden(f'forbidden: cannot patch jobschedules.jobwarden.io "{name}" (server)')
        self.patches.append((namespace, name, patch))
        return obj

    def may(self, attributes: dict[str, str]) -> bool:
        self.reviews.append(dict(attributes))
        sub = attributes.get("subresource")
        resource = attributes["resource"] + (f"/{sub}" if sub else "")
        return (attributes["verb"], resource) not in self.denied

    def list_events(self, *, namespace: str, name: str, uid: str) -> list[dict[str, Any]]:
        return []

    def apply_schedule(self, *, manifest: dict[str, Any]) -> dict[str, Any]:
        if self.refuse_patches:
            name = manifest["metadata"]["name"]
            raise Forbidden(f'forbidden: cannot patch jobschedules.jobwarden.io "{name}" (server)')
        self.applied.append(manifest)
        return manifest

    def watch_schedules(
        self,
        *,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int,
        name: str | None = None,
    ) -> Iterator[Event]:
        self.watch_calls.append((resource_version, timeout_seconds, name))
        self.clock += 1  # each watch request takes a second of the follow's time
        script = self.watches.pop(0) if self.watches else []
        if script is Gone:
            raise Gone()
        assert isinstance(script, list)
        for kind, obj in script:
            if name is None or obj["metadata"]["name"] == name:
                yield kind, obj
