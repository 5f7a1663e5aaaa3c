"""``kubectl jobwarden can-i`` and the line a refused action ends with, against a fake API."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from jobwarden.cli.access import ABILITIES, permissions
from jobwarden.cli.main import run
from tests.support.plugin import FakeClient

NOW = datetime(2027, 1, 1, 12, 0, 0, tzinfo=UTC)
# What each action and spec change needs, written out here rather than read from the plugin.
NEEDS = {
    "describe": {("get", "jobschedules")},
    "suspend": {("patch", "jobschedules")},
    "resume": {("patch", "jobschedules")},
    "run": {("patch", "jobschedules"), ("update", "jobschedules/runnow")},
    "terminate": {("patch", "jobschedules"), ("update", "jobschedules/terminate")},
    "terminate-force": {
        ("patch", "jobschedules"),
        ("update", "jobschedules/terminate"),
        ("update", "jobschedules/forceterminate"),
    },
    "lift-suspension": {("patch", "jobschedules"), ("update", "jobschedules/resume")},
    "edit-spec": {("patch", "jobschedules")},
    "edit-job-template": {("patch", "jobschedules"), ("create", "jobs")},
    "delete": {("delete", "jobschedules")},
}
# An editor of the chart's jobwarden-edit role who may not create Jobs.
EDITOR_WITHOUT_JOBS = frozenset(
    {
        ("update", "jobschedules/terminate"),
        ("update", "jobschedules/forceterminate"),
        ("update", "jobschedules/resume"),
        ("create", "jobs"),
    }
)


def _schedule(*, held: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"suspendedByOperator": {"suspended": True}} if held else {}
    return {
        "apiVersion": "jobwarden.io/v1alpha1",
        "kind": "JobSchedule",
        "metadata": {"name": "nightly", "namespace": "team", "uid": "u1"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {}},
        "status": status,
    }


def _cli(fake: FakeClient, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out=out, err=err, connector=lambda _: fake, clock=lambda: NOW)
    return code, out.getvalue(), err.getvalue()


def test_every_ability_needs_what_the_policy_and_rbac_check() -> None:
    got = {
        a.key: {
            (p.verb, p.resource + (f"/{p.subresource}" if p.subresource else "")) for p in a.needs
        }
        for a in ABILITIES
    }
    assert got == NEEDS
    # one review per distinct permission, however many abilities share it
    assert len(permissions()) == len(set().union(*NEEDS.values()))


def test_can_i_table_names_what_is_missing() -> None:
    fake = FakeClient(objects=[_schedule()], denied=EDITOR_WITHOUT_JOBS)
    code, out, err = _cli(fake, "can-i", "nightly")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["ACTION", "ALLOWED", "MISSING"]
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[1:]}
    assert list(rows) == list(NEEDS)
    for key, needs in NEEDS.items():
        denied = needs & EDITOR_WITHOUT_JOBS
        assert rows[key][0] == ("no" if denied else "yes"), key
        if not denied:
            assert rows[key][1] == "<none>", key
    assert rows["edit-job-template"][1] == '"create" on jobs (group batch)'
    assert rows["terminate-force"][1] == (
        '"update" on jobschedules/terminate, "update" on jobschedules/forceterminate'
    )
    # every review is about this schedule in its namespace (creating Jobs: any name)
    assert {r["namespace"] for r in fake.reviews} == {"team"}
    for review in fake.reviews:
        assert review.get("name") == (None if review["resource"] == "jobs" else "nightly")


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_can_i_json_and_yaml(output: str) -> None:
    fake = FakeClient(objects=[_schedule()], denied=frozenset({("update", "jobschedules/resume")}))
    code, out, _ = _cli(fake, "can-i", "nightly", "-o", output)
    assert code == 0
    doc = json.loads(out) if output == "json" else yaml.safe_load(out)
    assert (doc["namespace"], doc["name"]) == ("team", "nightly")
    allowed = {a["action"]: a["allowed"] for a in doc["actions"]}
    assert allowed == {k: k != "lift-suspension" for k in NEEDS}
    (lift,) = [a for a in doc["actions"] if a["action"] == "lift-suspension"]
    assert {
        (n["verb"], n["resource"], n.get("subresource", ""), n["allowed"]) for n in lift["needs"]
    } == {("patch", "jobschedules", "", True), ("update", "jobschedules", "resume", False)}


def test_can_i_unknown_schedule_is_an_error_but_unreadable_is_a_report() -> None:
    code, _, err = _cli(FakeClient(), "can-i", "ghost")
    assert (code, err) == (1, 'Error: jobschedule "ghost" not found in namespace "team"\n')
    nobody = FakeClient(refuse_gets=True, denied=frozenset(set().union(*NEEDS.values())))
    code, out, _ = _cli(nobody, "can-i", "ghost")
    assert code == 0
    assert all(line.split()[1] == "no" for line in out.splitlines()[1:])


@pytest.mark.parametrize(
    ("argv", "held", "denied", "line"),
    [
        (
            ["run", "nightly"],
            False,
            {("update", "jobschedules/runnow")},
            'starting a run now needs "update" on jobschedules/runnow',
        ),
        (
            ["terminate", "nightly"],
            False,
            {("update", "jobschedules/terminate"), ("update", "jobschedules/forceterminate")},
            'terminating needs "update" on jobschedules/terminate',
        ),
        (
            ["terminate", "nightly", "--force"],
            False,
            {("update", "jobschedules/terminate"), ("update", "jobschedules/forceterminate")},
            'force-terminating needs "update" on jobschedules/terminate and "update" on '
            "jobschedules/forceterminate",
        ),
        (
            ["terminate", "nightly", "--force"],
            False,
            {("update", "jobschedules/forceterminate")},
            'force-terminating needs "update" on jobschedules/forceterminate',
        ),
        (
            ["resume", "nightly"],
            True,
            {("update", "jobschedules/resume")},
            'lifting the operator\'s suspension needs "update" on jobschedules/resume',
        ),
        (
            ["suspend", "nightly"],
            False,
            {("patch", "jobschedules"), ("update", "jobschedules/runnow")},
            'suspending (spec.suspend) needs "patch" on jobschedules',
        ),
        (
            ["run", "nightly"],
            False,
            {("patch", "jobschedules"), ("update", "jobschedules/runnow")},
            'starting a run now needs "patch" on jobschedules and "update" on jobschedules/runnow',
        ),
        (
            ["resume", "nightly"],
            False,
            {("patch", "jobschedules")},
            'resuming (spec.suspend) needs "patch" on jobschedules',
        ),
    ],
)
def test_a_refused_action_names_the_permission_to_ask_for(
    argv: list[str], held: bool, denied: set[tuple[str, str]], line: str
) -> None:
    fake = FakeClient(objects=[_schedule(held=held)], denied=frozenset(denied), refuse_patches=True)
    code, out, err = _cli(fake, *argv, "-n", "team")
    assert (code, out) == (1, "")
    assert err == f'Error: forbidden: {line} in namespace "team"; ask your cluster admin\n'


def test_a_refusal_no_permission_explains_keeps_the_servers_words() -> None:
    """Every permission granted, yet refused (another policy, say): say what the server said."""
    fake = FakeClient(objects=[_schedule()], refuse_patches=True)
    code, _, err = _cli(fake, "run", "nightly")
    assert code == 1
    assert err == 'Error: forbidden: cannot patch jobschedules.jobwarden.io "nightly" (server)\n'
