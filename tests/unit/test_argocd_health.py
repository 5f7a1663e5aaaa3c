"""The Argo CD health check (gitops/argocd/health.lua) on sample JobSchedules.

Argo CD runs health scripts in gopher-lua, a Lua 5.1; the script runs here in
a real Lua 5.1 (lupa) with the object converted the way Argo CD converts it
(JSON objects become tables, arrays 1-based tables, numbers Lua numbers).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import lupa.lua51 as lupa
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "gitops" / "argocd" / "health.lua"
README = ROOT / "gitops" / "argocd" / "README.md"
HEALTH_KEY = "resource.customizations.health.jobwarden.io_JobSchedule"
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def run_health(obj: dict[str, Any], script: str | None = None) -> dict[str, str]:
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = to_lua(runtime, obj)
    source = script if script is not None else SCRIPT.read_text()
    result = runtime.execute(source)
    out = {k: v for k, v in result.items()}
    assert set(out) <= {"status", "message"}, out
    assert out["status"] in ARGO_STATUSES, out
    assert isinstance(out.get("message"), str) and out["message"], out
    return out


def schedule(
    status: dict[str, Any] | None = None, *, generation: int = 3, suspend: bool | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "jobwarden.io/v1alpha1",
        "kind": "JobSchedule",
        "metadata": {"name": "nightly", "namespace": "team-a", "generation": generation},
        "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {}}},
    }
    if suspend is not None:
        obj["spec"]["suspend"] = suspend
    if status is not None:
        obj["status"] = status
    return obj


def status(
    phase: str = "Active", state: str | None = "Healthy", *, observed: int = 3, **extra: Any
) -> dict[str, Any]:
    st: dict[str, Any] = {
        "observedGeneration": observed,
        "phase": phase,
        "nextRunTime": "2030-01-02T02:00:00Z",
        "activeCount": 0,
        "conditions": [
            {"type": "Valid", "status": "True", "reason": "Valid", "message": "spec is valid"},
            {
                "type": "Ready",
                "status": "True",
                "reason": "Scheduled",
                "message": "next run scheduled",
            },
        ],
    }
    if state is not None:
        st["health"] = {
            "state": state,
            "consecutiveFailures": 0,
            "reason": "RunsSucceeding",
            "message": "recent runs succeeded",
        }
    st.update(extra)
    return st


def test_healthy_active() -> None:
    out = run_health(schedule(status("Active", "Healthy")))
    assert out["status"] == "Healthy"
    assert "2030-01-02T02:00:00Z" in out["message"]


def test_healthy_completed() -> None:
    out = run_health(schedule(status("Completed", "Healthy", nextRunTime=None)))
    assert out == {"status": "Healthy", "message": "Completed"}


def test_missing_status_is_progressing() -> None:
    assert run_health(schedule(None))["status"] == "Progressing"
    assert run_health(schedule({}))["status"] == "Progressing"


def test_generation_behind_is_progressing() -> None:
    out = run_health(schedule(status("Active", "Healthy", observed=2), generation=3))
    assert out["status"] == "Progressing"
    assert "3" in out["message"]


def test_observed_generation_missing_is_progressing() -> None:
    st = status("Active", "Healthy")
    del st["observedGeneration"]
    assert run_health(schedule(st))["status"] == "Progressing"


def test_observed_ahead_of_stale_cache_is_not_progressing() -> None:
    # observedGeneration can only equal or trail generation; equal is judged.
    assert run_health(schedule(status(observed=3), generation=3))["status"] == "Healthy"


def test_invalid_is_degraded_with_valid_condition_message() -> None:
    st = status("Invalid", "Unhealthy")
    st["conditions"][0] = {
        "type": "Valid",
        "status": "False",
        "reason": "BadTimeZone",
        "message": "spec.timeZone: unknown time zone Mars/Olympus",
    }
    st["health"]["message"] = "the spec is invalid"
    out = run_health(schedule(st))
    assert out == {"status": "Degraded", "message": "spec.timeZone: unknown time zone Mars/Olympus"}


def test_invalid_without_conditions_still_degraded() -> None:
    st = status("Invalid", "Unhealthy")
    del st["conditions"]
    st["health"]["message"] = "cannot schedule"
    assert run_health(schedule(st)) == {"status": "Degraded", "message": "cannot schedule"}


def test_unhealthy_is_degraded_with_health_message() -> None:
    st = status("Active", "Unhealthy")
    st["health"].update(
        consecutiveFailures=3, reason="ConsecutiveFailures", message="the last 3 runs failed"
    )
    assert run_health(schedule(st)) == {"status": "Degraded", "message": "the last 3 runs failed"}


def test_unhealthy_message_falls_back_to_reason() -> None:
    st = status("Active", "Unhealthy")
    st["health"] = {"state": "Unhealthy", "reason": "ConsecutiveFailures"}
    assert run_health(schedule(st)) == {"status": "Degraded", "message": "ConsecutiveFailures"}


def test_degraded_health_is_healthy_with_a_visible_message() -> None:
    st = status("Active", "Degraded")
    st["health"].update(reason="LastRunFailed", message="the last run failed")
    out = run_health(schedule(st))
    assert out["status"] == "Healthy"
    assert out["message"].startswith("Degraded: the last run failed")


def test_suspended_by_user() -> None:
    out = run_health(schedule(status("Suspended", "Healthy"), suspend=True))
    assert out["status"] == "Suspended"


def test_user_suspension_wins_over_unhealthy() -> None:
    out = run_health(schedule(status("Suspended", "Unhealthy"), suspend=True))
    assert out["status"] == "Suspended"


def test_suspended_by_operator_after_failures_is_degraded() -> None:
    st = status(
        "Suspended",
        "Unhealthy",
        suspendedByOperator={
            "suspended": True,
            "reason": "SuspendAfterFailures",
            "message": "5 consecutive failed runs",
            "generation": 3,
        },
    )
    out = run_health(schedule(st))
    assert out["status"] == "Degraded"
    assert "5 consecutive failed runs" in out["message"]
    assert "resume" in out["message"]


def test_suspended_other_reason() -> None:
    assert run_health(schedule(status("Suspended", "Healthy")))["status"] == "Suspended"


def test_no_health_verdict_yet_is_progressing() -> None:
    assert run_health(schedule(status("Active", None)))["status"] == "Progressing"


def test_no_phase_yet_is_progressing() -> None:
    st = status("Active", "Healthy")
    del st["phase"]
    assert run_health(schedule(st))["status"] == "Progressing"


def test_unknown_phase_is_unknown() -> None:
    assert run_health(schedule(status("Exploded", "Healthy")))["status"] == "Unknown"


def test_missing_metadata_generation_does_not_crash() -> None:
    obj = schedule(status())
    del obj["metadata"]["generation"]
    assert run_health(obj)["status"] == "Healthy"


@pytest.mark.parametrize("phase", ["Active", "Suspended", "Completed", "Invalid"])
@pytest.mark.parametrize("state", ["Healthy", "Degraded", "Unhealthy", None])
@pytest.mark.parametrize("suspend", [None, False, True])
def test_every_combination_gives_a_verdict(
    phase: str, state: str | None, suspend: bool | None
) -> None:
    run_health(schedule(status(phase, state), suspend=suspend))


def test_does_not_mutate_or_need_python_side_effects() -> None:
    obj = schedule(status("Active", "Healthy"))
    before = copy.deepcopy(obj)
    run_health(obj)
    assert obj == before


def test_statuses_match_the_crd() -> None:
    """The phases and health states the script knows are the CRD's enums."""
    crd = yaml.safe_load((ROOT / "crds" / "jobschedules.jobwarden.io.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    st = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    script = SCRIPT.read_text()
    for phase in st["phase"]["enum"]:
        assert f'"{phase}"' in script, phase
    for state in st["health"]["properties"]["state"]["enum"]:
        assert f'"{state}"' in script, state
    for field in (
        "observedGeneration",
        "phase",
        "health",
        "conditions",
        "nextRunTime",
        "suspendedByOperator",
    ):
        assert field in st, field


def test_readme_embeds_the_script_verbatim() -> None:
    """The argocd-cm snippet in the README is the script, byte for byte."""
    text = README.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    cms = [yaml.safe_load(b) for b in blocks]
    cms = [c for c in cms if isinstance(c, dict) and c.get("kind") == "ConfigMap"]
    assert len(cms) == 1
    cm = cms[0]
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"][HEALTH_KEY] == SCRIPT.read_text()
    # and the embedded copy behaves like the file
    out = run_health(schedule(status("Active", "Unhealthy")), script=cm["data"][HEALTH_KEY])
    assert out["status"] == "Degraded"
