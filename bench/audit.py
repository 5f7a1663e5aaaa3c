"""Reading the API server's audit log: one user's requests in a time window.

The operator runs as a ServiceAccount of its own (``Bench.operator_user``),
so its requests are the audit entries with that user name, whoever else is
using the control plane. Plain file reading; it needs no API client.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# --- the audit log ----------------------------------------------------------------------


_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


def _ts(text: str) -> float:
    m = _TS.match(text)
    if not m:
        return math.nan
    whole = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return whole + float(f"0.{m.group(2)}") if m.group(2) else whole


@dataclass(frozen=True)
class Request:
    received: float
    verb: str
    resource: str
    user_agent: str
    name: str = ""  # the object's name, if the request named one
    code: int = 0  # the response's status code


def audit_requests(
    path: Path, *, offset: int, user: str, since: float, until: float
) -> tuple[list[Request], int]:
    """The requests of ``user`` received in [since, until), read from byte ``offset`` on.

    Each request is counted once (by audit ID), whatever stages were logged;
    returns them and the offset where reading stopped.
    """
    seen: dict[str, Request] = {}
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            if user.encode() not in raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if (entry.get("user") or {}).get("username") != user:
                continue
            received = _ts(entry.get("requestReceivedTimestamp", ""))
            if not since <= received < until:
                continue
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", entry.get("requestURI", "?"))
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            if entry["auditID"] in seen and entry.get("stage") != "ResponseComplete":
                continue  # the last stage logged carries the response code
            seen[entry["auditID"]] = Request(
                received,
                entry.get("verb", "?"),
                resource,
                entry.get("userAgent", ""),
                name=ref.get("name", ""),
                code=int((entry.get("responseStatus") or {}).get("code") or 0),
            )
        end = f.tell()
    return sorted(seen.values(), key=lambda r: r.received), end


def audit_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
