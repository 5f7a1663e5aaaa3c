"""Where the commands write: stdout for results, stderr for notes, json|yaml as kubectl prints.

The one-shot commands and the ``-w`` watches print the same things the same
way (a ``List`` document, objects without managedFields, kubectl's "No
resources found" note on stderr), so the writing lives here, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import yaml

__all__ = ["Console", "as_list", "stripped"]


def stripped(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as kubectl prints it: managedFields hidden."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def as_list(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Objects as the ``List`` document ``kubectl get -o json|yaml`` prints."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [stripped(i) for i in items],
        "metadata": {"resourceVersion": ""},
    }


@dataclass(frozen=True, kw_only=True)
class Console:
    """The output streams, injectable so that tests read what a command printed."""

    out: IO[str]
    err: IO[str]

    def print(self, text: str) -> None:
        """A line of results; flushed, so that a watch's lines show as they come."""
        self.out.write(text + "\n")
        self.out.flush()

    def dump(self, value: Any, *, output: str) -> None:
        """``value`` as ``-o json`` or ``-o yaml`` prints it."""
        if output == "json":
            self.out.write(json.dumps(value, indent=4) + "\n")
        else:
            self.out.write(yaml.safe_dump(value, sort_keys=False, default_flow_style=False))

    def no_resources(self, namespace: str | None) -> None:
        """kubectl's note for an empty list: on stderr, so that stdout stays parseable."""
        where = f" in {namespace} namespace" if namespace else ""
        self.err.write(f"No resources found{where}.\n")
        self.err.flush()
