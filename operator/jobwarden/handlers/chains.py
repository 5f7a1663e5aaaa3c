"""The namespace's chain graph (``spec.after``), as the schedule informer shows it.

A chained schedule's plan needs three things no single object holds: whether
each upstream exists, whether following ``after`` leads back to it (a cycle),
and the upstreams' Jobs. And an upstream's run ending must wake its
downstreams. This index is the one place that knows who runs after whom: it
keeps, per namespace, the upstream names of every schedule (the empty tuple
for most) and the reverse, both fed only by the schedule informer, so a
relist rebuilds it and nothing in it outlives the schedules it describes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jobwarden.api.values import MAX_UPSTREAMS
from jobwarden.handlers.memory import Key
from jobwarden.reconcile import ChainView
from jobwarden.reconcile.chain import GRAPH_LIMIT
from jobwarden.runs.jobs import JobObservation


def after_names(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The upstream names in a schedule body's ``spec.after`` (malformed entries skipped:
    the plan reports them, by the field)."""
    spec = body.get("spec")
    listed = spec.get("after") if isinstance(spec, Mapping) else None
    if not isinstance(listed, list):
        return ()
    names = (u.get("schedule") for u in listed[:MAX_UPSTREAMS] if isinstance(u, Mapping))
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))


class ChainIndex:
    """Upstream names by schedule and downstream names by upstream, per namespace."""

    def __init__(self) -> None:
        self._after: dict[str, dict[str, tuple[str, ...]]] = {}
        self._down: dict[str, dict[str, set[str]]] = {}

    def update(self, key: Key, upstreams: tuple[str, ...] | None) -> list[Key]:
        """``key`` now runs after ``upstreams`` (None: it is gone). Returns the schedules to
        reconcile: its downstreams when it arrived or left (which makes them valid or not)."""
        namespace, name = key
        known = self._after.setdefault(namespace, {})
        moved = (name in known) != (upstreams is not None)
        down = self._down.setdefault(namespace, {})
        for old in known.get(name, ()):
            users = down.get(old)
            if users is not None:
                users.discard(name)
                if not users:
                    del down[old]
        if upstreams is None:
            known.pop(name, None)
        else:
            known[name] = upstreams
            for upstream in upstreams:
                down.setdefault(upstream, set()).add(name)
        if not known:
            self._after.pop(namespace, None)
        if not down:
            self._down.pop(namespace, None)
        return self.downstreams_of(key) if moved else []

    def downstreams_of(self, key: Key) -> list[Key]:
        namespace, name = key
        return [(namespace, d) for d in sorted(self._down.get(namespace, {}).get(name, ()))]

    def graph_from(self, key: Key) -> dict[str, tuple[str, ...]]:
        """The schedules reachable upstream from ``key``, with their upstream names (a name
        not in the namespace is left out: the plan reports it missing)."""
        namespace, name = key
        known = self._after.get(namespace, {})
        graph: dict[str, tuple[str, ...]] = {}
        queue = deque(known.get(name, ()))
        while queue and len(graph) < GRAPH_LIMIT:
            node = queue.popleft()
            if node in graph or node not in known:
                continue
            graph[node] = known[node]
            queue.extend(known[node])
        return graph

    def view(self, key: Key, jobs_of: Callable[[Key], Iterable[JobObservation]]) -> ChainView:
        """What ``key``'s plan sees of its upstreams; ``jobs_of``: the Jobs index."""
        namespace, name = key
        upstreams = self._after.get(namespace, {}).get(name, ())
        if not upstreams:
            return ChainView()
        jobs: dict[str, tuple[JobObservation, ...]] = {
            u: tuple(jobs_of((namespace, u))) for u in upstreams
        }
        return ChainView(graph=self.graph_from(key), jobs=jobs)
