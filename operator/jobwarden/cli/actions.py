"""The actions a user takes on a JobSchedule: run now, suspend, resume, terminate.

Each is an annotation or spec patch the user could make with ``kubectl
annotate``/``kubectl patch``; this module spares them the token and the
spelling, and is the one place both the plugin's commands and the dashboard
take them from. Everything goes through the API as the user: a refusal is
the API server's, reported with the permission the user lacks (asked with
SelfSubjectAccessReviews) and the server's own words.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from jobwarden import labels
from jobwarden.cli.access import Ability, ability, forbidden_line
from jobwarden.cli.errors import CliError, Forbidden

__all__ = ["ACTIONS", "ActionResult", "Refused", "Schedules", "new_token", "take_action"]

KIND_REF: Final = f"{labels.SINGULAR}.{labels.GROUP}"
# The actions by name, as the command line and the dashboard call them.
ACTIONS: Final = ("run", "suspend", "resume", "terminate", "terminate-force")


class Schedules(Protocol):
    """The client calls an action needs (the plugin's :class:`~jobwarden.cli.client.Client`)."""

    def get_schedule(self, *, namespace: str, name: str) -> dict[str, Any]: ...

    def patch_schedule(
        self, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def may(self, attributes: Mapping[str, str]) -> bool: ...


class Refused(Forbidden):
    """The API server refused an action; ``server`` keeps its own reason.

    ``message`` names what to ask the cluster admin for, when RBAC is why;
    ``server`` is the refusal as the API server worded it.
    """

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server


@dataclass(frozen=True, kw_only=True)
class ActionResult:
    """What an action did: the line to show and the schedule as the patch left it."""

    message: str
    schedule: dict[str, Any]


def new_token(now: datetime) -> str:
    """A fresh action token: readable time first, random suffix so two in a second differ."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def _patch(
    client: Schedules, *, namespace: str, name: str, patch: Mapping[str, Any], doing: Ability
) -> dict[str, Any]:
    """Patch the schedule; a refusal names the permission ``doing`` lacks."""
    try:
        return client.patch_schedule(namespace=namespace, name=name, patch=patch)
    except Forbidden as exc:
        try:
            missing = [
                p
                for p in doing.needs
                if not client.may(p.attributes(namespace=namespace, name=name))
            ]
        except CliError:
            missing = []  # cannot even ask: the server's refusal is the best answer
        line = (
            forbidden_line(doing, missing=missing, namespace=namespace)
            if missing
            else exc.message  # allowed by RBAC, refused by something else: its own words say why
        )
        raise Refused(line, server=exc.message) from exc


def take_action(
    client: Schedules, action: str, *, namespace: str, name: str, now: datetime
) -> ActionResult:
    """Carry out ``action`` (one of :data:`ACTIONS`) on one schedule, as the user."""
    ref = f"{KIND_REF}/{name}"
    token = new_token(now)
    if action == "run":
        patch: dict[str, Any] = {"metadata": {"annotations": {labels.RUN_NOW_ANNOTATION: token}}}
        obj = _patch(client, namespace=namespace, name=name, patch=patch, doing=ability("run"))
        return ActionResult(
            message=f"{ref} run requested ({labels.RUN_NOW_ANNOTATION}={token})", schedule=obj
        )
    if action == "suspend":
        patch = {"spec": {"suspend": True}}
        obj = _patch(client, namespace=namespace, name=name, patch=patch, doing=ability("suspend"))
        return ActionResult(message=f"{ref} suspended", schedule=obj)
    if action == "resume":
        current = client.get_schedule(namespace=namespace, name=name)
        status = current.get("status") or {}
        held = (status.get("suspendedByOperator") or {}).get("suspended") is True
        patch = {"spec": {"suspend": False}}
        if held:
            patch["metadata"] = {"annotations": {labels.RESUME_ANNOTATION: token}}
        doing = ability("lift-suspension" if held else "resume")
        obj = _patch(client, namespace=namespace, name=name, patch=patch, doing=doing)
        detail = (
            f" (lifting the operator's suspension: {labels.RESUME_ANNOTATION}={token})"
            if held
            else ""
        )
        return ActionResult(message=f"{ref} resumed{detail}", schedule=obj)
    if action in ("terminate", "terminate-force"):
        force = action == "terminate-force"
        # Without force the grace annotation is removed, so that an earlier
        # forced terminate does not make this one forced too.
        annotations = {
            labels.TERMINATE_ANNOTATION: token,
            labels.TERMINATE_GRACE_ANNOTATION: "0" if force else None,
        }
        patch = {"metadata": {"annotations": annotations}}
        obj = _patch(client, namespace=namespace, name=name, patch=patch, doing=ability(action))
        active = (obj.get("status") or {}).get("active") or []
        forced = ", pods force-deleted" if force else ""
        return ActionResult(
            message=f"{ref} terminate requested for {len(active)} active "
            f"run(s){forced} ({labels.TERMINATE_ANNOTATION}={token})",
            schedule=obj,
        )
    raise CliError(f"unknown action {action!r} (one of: {', '.join(ACTIONS)})")
