"""What each thing a user does to a JobSchedule needs, in RBAC terms.

The chart's admission policy guards every action annotation with ``update``
on a virtual subresource of jobschedules, and a new or changed jobTemplate
with ``create`` on batch Jobs (docs/operations.md, "Permissions"). The plugin
asks the API server about exactly these permissions, with
SelfSubjectAccessReviews: ``can-i`` to list them, and a refused action to name
the one the user lacks. Pure data and functions; the calls are the client's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jobwarden import labels
from jobwarden.cli.tables import Table

__all__ = [
    "ABILITIES",
    "Ability",
    "Permission",
    "ability",
    "can_i_report",
    "can_i_table",
    "forbidden_line",
]


@dataclass(frozen=True, kw_only=True)
class Permission:
    """One RBAC question: may the user ``verb`` this resource (of this group)?"""

    verb: str
    resource: str
    group: str = labels.GROUP
    subresource: str = ""
    named: bool = True  # about the one schedule (False: any object of the kind)

    def spelled(self) -> str:
        """``"update" on jobschedules/terminate``, the way a cluster admin writes a rule."""
        sub = f"/{self.subresource}" if self.subresource else ""
        group = "" if self.group == labels.GROUP else f" (group {self.group or 'core'})"
        return f'"{self.verb}" on {self.resource}{sub}{group}'

    def attributes(self, *, namespace: str, name: str) -> dict[str, str]:
        """The SelfSubjectAccessReview's resourceAttributes for this permission."""
        attrs = {
            "namespace": namespace,
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
        }
        if self.subresource:
            attrs["subresource"] = self.subresource
        if self.named:
            attrs["name"] = name
        return attrs


def _schedules(verb: str, subresource: str = "") -> Permission:
    return Permission(verb=verb, resource=labels.PLURAL, subresource=subresource)


GET: Final = _schedules("get")
PATCH: Final = _schedules("patch")
DELETE: Final = _schedules("delete")
RUN_NOW: Final = _schedules("update", "runnow")
TERMINATE: Final = _schedules("update", "terminate")
FORCE_TERMINATE: Final = _schedules("update", "forceterminate")
RESUME: Final = _schedules("update", "resume")
CREATE_JOBS: Final = Permission(verb="create", resource="jobs", group="batch", named=False)


@dataclass(frozen=True, kw_only=True)
class Ability:
    """Something a user does to a schedule, and every permission it needs."""

    key: str
    doing: str  # "terminating": the start of a forbidden line
    needs: tuple[Permission, ...]


ABILITIES: Final = (
    Ability(key="describe", doing="reading", needs=(GET,)),
    Ability(key="suspend", doing="suspending (spec.suspend)", needs=(PATCH,)),
    Ability(key="resume", doing="resuming (spec.suspend)", needs=(PATCH,)),
    Ability(key="run", doing="starting a run now", needs=(PATCH, RUN_NOW)),
    Ability(key="terminate", doing="terminating", needs=(PATCH, TERMINATE)),
    Ability(
        key="terminate-force",
        doing="force-terminating",
        needs=(PATCH, TERMINATE, FORCE_TERMINATE),
    ),
    Ability(
        key="lift-suspension",
        doing="lifting the operator's suspension",
        needs=(PATCH, RESUME),
    ),
    Ability(key="edit-spec", doing="changing the spec", needs=(PATCH,)),
    Ability(
        key="edit-job-template",
        doing="changing spec.jobTemplate",
        needs=(PATCH, CREATE_JOBS),
    ),
    Ability(key="delete", doing="deleting", needs=(DELETE,)),
)
_BY_KEY: Final = {a.key: a for a in ABILITIES}


def ability(key: str) -> Ability:
    return _BY_KEY[key]


def permissions() -> tuple[Permission, ...]:
    """Every distinct permission the abilities need, in first-use order."""
    seen: dict[Permission, None] = {}
    for a in ABILITIES:
        for p in a.needs:
            seen.setdefault(p, None)
    return tuple(seen)


def forbidden_line(ability: Ability, *, missing: Sequence[Permission], namespace: str) -> str:
    """The one line a refused action ends with: everything to ask the cluster admin for."""
    needs = " and ".join(p.spelled() for p in missing)
    where = f'in namespace "{namespace}"'
    return f"forbidden: {ability.doing} needs {needs} {where}; ask your cluster admin"


def can_i_report(
    answers: Mapping[Permission, bool], *, namespace: str, name: str
) -> list[dict[str, Any]]:
    """One entry per ability: allowed, and the permissions it needs with their answers."""
    out: list[dict[str, Any]] = []
    for a in ABILITIES:
        needs = [
            {
                "permission": p.spelled(),
                **p.attributes(namespace=namespace, name=name),
                "allowed": answers[p],
            }
            for p in a.needs
        ]
        out.append({"action": a.key, "allowed": all(answers[p] for p in a.needs), "needs": needs})
    return out


def can_i_table(report: Sequence[Mapping[str, Any]]) -> Table:
    """ACTION, ALLOWED and MISSING: what to ask for, ``<none>`` when allowed."""
    rows = []
    for entry in report:
        missing = [n["permission"] for n in entry["needs"] if not n["allowed"]]
        rows.append([str(entry["action"]), "yes" if entry["allowed"] else "no", ", ".join(missing)])
    return Table(headers=("ACTION", "ALLOWED", "MISSING"), rows=rows)
