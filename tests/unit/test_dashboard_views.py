"""What the dashboard's pages show: pure view-models of JobSchedule objects and the form."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from jobwarden.api.status import format_time
from jobwarden.cli.dashboard.compose import ComposeError, build_manifest, compose
from jobwarden.cli.dashboard.hub import Hub, start_watch
from jobwarden.cli.dashboard.views import overview, run_rows, schedule_page, timeline
from jobwarden.cli.describe import next_runs
from jobwarden.cli.errors import CliError
from jobwarden.cli.follow import Change
from jobwarden.cli.preview import preview_documents

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


def _at(minutes_ago: float) -> str:
    return format_time(NOW - timedelta(minutes=minutes_ago))


def _obj(
    name: str, namespace: str = "team", *, spec: dict[str, Any] | None = None, **status: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "jobwarden.io/v1alpha1",
        "kind": "JobSchedule",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "3",
            "creationTimestamp": "2027-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {}, **(spec or {})},
        "status": status,
    }


def test_overview_orders_by_health_and_counts_each_state() -> None:
    items = [
        _obj("a", health={"state": "Healthy"}),
        _obj("b", health={"state": "Unhealthy", "reason": "Failing", "consecutiveFailures": 3}),
        _obj("c"),
        _obj("d", health={"state": "Degraded"}),
    ]
    data = overview(items, now=NOW)
    assert [r["name"] for r in data["schedules"]] == ["b", "d", "c", "a"]
    assert data["counts"] == {"Healthy": 1, "Degraded": 1, "Unhealthy": 1, "Unknown": 1}
    assert [(a["name"], a["consecutiveFailures"]) for a in data["attention"]] == [
        ("b", 3),
        ("d", 0),
    ]


def test_active_runs_are_measured_against_their_own_stale_threshold() -> None:
    items = [
        _obj("fast", spec={"staleAfter": "30m"}, active=[{"name": "j1", "startTime": _at(45)}]),
        _obj("slow", active=[{"name": "j2", "startTime": _at(45)}]),
        _obj("waiting", active=[{"name": "j3"}]),
    ]
    active = {r["schedule"]: r for r in overview(items, now=NOW)["active"]}
    assert active["fast"]["elapsedSeconds"] == 45 * 60
    assert active["fast"]["staleAfterSeconds"] == 30 * 60 and active["fast"]["stale"] is True
    assert active["slow"]["staleAfterSeconds"] == 6 * 3600 and active["slow"]["stale"] is False
    assert active["waiting"]["elapsedSeconds"] is None and active["waiting"]["stale"] is False


def test_stale_and_failed_runs_only_within_the_last_day() -> None:
    history = [
        {"job": "new-fail", "result": "Failed", "completionTime": _at(60)},
        {"job": "old-fail", "result": "Failed", "completionTime": _at(25 * 60)},
        {"job": "new-stale", "result": "Stale", "completionTime": _at(10)},
        {"job": "ok", "result": "Succeeded", "completionTime": _at(5)},
    ]
    data = overview([_obj("x", history=history)], now=NOW)
    assert [r["job"] for r in data["failed"]] == ["new-fail"]
    assert [r["job"] for r in data["stale"]] == ["new-stale"]


def test_namespace_filter_narrows_everything_but_the_namespace_list() -> None:
    items = [_obj("a", "one"), _obj("b", "two", health={"state": "Unhealthy"})]
    data = overview(items, now=NOW, namespace="one")
    assert [r["name"] for r in data["schedules"]] == ["a"]
    assert data["attention"] == [] and data["namespaces"] == ["one", "two"]


def test_last_result_is_the_newest_history_entry() -> None:
    history = [  # newest first, as the operator keeps it
        {"job": "newer", "result": "Succeeded", "startTime": _at(5)},
        {"job": "older", "result": "Failed", "startTime": _at(120)},
    ]
    (row,) = overview([_obj("x", history=history)], now=NOW)["schedules"]
    assert row["lastResult"] == "Succeeded" and row["lastRun"] == _at(5)


def test_timeline_bars_are_as_long_as_runs_and_missed_runs_are_gaps() -> None:
    history = [
        {"job": "r1", "result": "Succeeded", "startTime": _at(100), "completionTime": _at(90)},
        {"job": None, "result": "Missed", "scheduledTime": _at(60)},
        {"job": "r3", "result": "Failed", "startTime": _at(40), "durationSeconds": 1200},
        {"job": "r4", "result": "Running", "startTime": _at(10)},
    ]
    data = timeline(history, now=NOW)
    bars = {b["job"]: b for b in data["bars"]}
    assert data["start"] == _at(100) and data["end"] == format_time(NOW)
    assert bars["r1"]["x"] == 0 and bars["r1"]["width"] == pytest.approx(0.1)
    assert bars["r3"]["width"] == pytest.approx(0.2)  # 20 of 100 minutes
    assert bars["r4"]["width"] == pytest.approx(0.1)  # running: until now
    gap = bars[None]
    assert gap["gap"] is True and gap["width"] == 0 and gap["x"] == pytest.approx(0.4)
    assert [b["x"] for b in data["bars"]] == sorted(b["x"] for b in data["bars"])


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**6),
            st.integers(min_value=0, max_value=10**5),
            st.sampled_from(["Succeeded", "Failed", "Missed", "Skipped", "Running", "Stale"]),
        ),
        max_size=30,
    )
)
def test_timeline_bars_always_stay_on_the_axis(runs: list[tuple[int, int, str]]) -> None:
    history = [
        {
            "job": f"j{i}",
            "result": result,
            "startTime": format_time(NOW - timedelta(seconds=ago)),
            "durationSeconds": min(length, ago),
        }
        for i, (ago, length, result) in enumerate(runs)
    ]
    for bar in timeline(history, now=NOW)["bars"]:
        assert 0 <= bar["x"] <= 1 and 0 <= bar["x"] + bar["width"] <= 1 + 1e-9


def test_schedule_page_next_runs_are_describes_in_utc_and_the_schedules_zone() -> None:
    obj = _obj("x", spec={"schedule": "30 9 * * *", "timeZone": "Europe/Berlin"})
    page = schedule_page(obj, now=NOW, events=[])
    expected = next_runs(obj, now=NOW, count=10).runs
    assert [r["utc"] for r in page["nextRuns"]] == [format_time(r) for r in expected]
    assert page["nextRuns"][0]["local"] == "Thu 2027-03-11 09:30 CET"  # 12:00 UTC is past 09:30 CET
    assert "managedFields" not in page["yaml"] and yaml.safe_load(page["yaml"])["spec"]
    assert ["Time zone", "Europe/Berlin"] in page["words"]


def test_schedule_page_says_why_events_are_missing() -> None:
    page = schedule_page(_obj("x"), now=NOW, events=None, events_note="unavailable: forbidden")
    assert page["events"] is None and page["eventsNote"] == "unavailable: forbidden"


# --- compose -------------------------------------------------------------------------------

FORMS = {
    "once": {"preset": "once", "runAt": "2027-04-01T08:15", "timeZone": "Asia/Tokyo"},
    "daily": {"preset": "daily", "times": "06:00, 18:30", "interval": "2"},
    "weekly": {"preset": "weekly", "weekdays": ["Fri", "Mon"], "times": "09:00"},
    "monthly": {"preset": "monthly", "monthDays": "1, -1", "times": "23:00"},
    "cron": {"preset": "cron", "schedule": "H 4 * * 1-5", "timeZone": "America/New_York"},
}


@pytest.mark.parametrize("preset", sorted(FORMS))
def test_each_preset_previews_exactly_what_preview_prints(preset: str) -> None:
    form = {
        "name": "composed",
        "namespace": "team",
        "startAt": "2027-03-01T00:00",
        "maxExecutions": "7",
        "exclude": "2027-03-15",
        "staleAfter": "90m",
        **FORMS[preset],
    }
    result = compose(form, now=NOW, default_namespace="default")
    assert result.error is None
    (expected,) = preview_documents(
        [yaml.safe_load(result.yaml)], count=10, start=NOW, default_namespace="default"
    )
    assert [r["utc"] for r in result.runs] == [format_time(r) for r in expected.runs]
    assert result.runs and result.description == expected.description
    spec = result.manifest["spec"]
    assert spec["maxExecutions"] == 7 and spec["exclude"] == ["2027-03-15"]
    assert spec["staleAfter"] == "90m" and spec["startAt"] == "2027-03-01T00:00:00"


def test_weekly_days_come_out_in_week_order() -> None:
    spec = build_manifest(FORMS["weekly"])["spec"]
    assert spec["every"] == {"period": "Week", "times": ["09:00"], "weekdays": ["Mon", "Fri"]}


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"preset": "once"}, "runAt"),
        ({"preset": "cron", "schedule": ""}, "schedule"),
        ({"preset": "weekly", "weekdays": []}, "every.weekdays"),
        ({"preset": "monthly", "monthDays": "1, x"}, "every.monthDays"),
        ({"preset": "daily", "maxExecutions": "many"}, "maxExecutions"),
        ({"preset": "daily", "timeZone": "Mars/Olympus"}, "timeZone"),
        ({"preset": "hourly"}, "preset"),
    ],
)
def test_a_bad_field_is_named(form: dict[str, Any], field: str) -> None:
    with pytest.raises(ComposeError, match=f"^{field}:"):
        build_manifest(form)
    assert (compose(form, now=NOW, default_namespace="d").error or "").startswith(f"{field}:")


def test_an_invalid_spec_is_reported_by_the_engine_with_the_field() -> None:
    result = compose({"preset": "daily", "times": "25:00"}, now=NOW, default_namespace="d")
    assert result.runs == [] and "25:00" in (result.error or "")


# --- hub -------------------------------------------------------------------------------------


def test_hub_keeps_one_record_per_schedule_and_wakes_waiters() -> None:
    async def main() -> None:
        hub = Hub()
        hub.apply(Change(type="SYNC", objects=[_obj("a"), _obj("b")]))
        seen = hub.version
        waiter = asyncio.create_task(hub.wait(after=seen, timeout=5))
        hub.apply(Change(type="MODIFIED", objects=[_obj("a", phase="Suspended")]))
        assert await waiter is True
        hub.apply(Change(type="DELETED", objects=[_obj("b")]))
        assert [o["status"].get("phase") for o in hub.items()] == ["Suspended"]
        assert await hub.wait(after=hub.version, timeout=0.01) is False
        hub.fail("forbidden")
        assert hub.error == "forbidden" and hub.synced

    asyncio.run(main())


def test_run_lists_keep_the_most_urgent_and_say_how_many_there_are() -> None:
    history = [
        {"job": f"f{k:03d}", "result": "Failed", "completionTime": _at(k)} for k in range(150)
    ]
    active = [_obj(f"a{k}", active=[{"name": f"j{k}", "startTime": _at(k)}]) for k in range(120)]
    data = overview([_obj("x", history=history), *active], now=NOW)
    assert data["totals"] == {"active": 120, "stale": 0, "failed": 150}
    assert [r["job"] for r in data["failed"]] == [f"f{k:03d}" for k in range(100)]
    assert [r["job"] for r in data["active"]][:2] == ["j119", "j118"]  # nearest to stale first
    assert len(data["active"]) == 100


def test_a_run_after_a_clock_change_says_so() -> None:
    before = datetime(2027, 3, 26, 12, tzinfo=UTC)  # Berlin moves to CEST on 2027-03-28
    runs = [datetime(2027, 3, d, 8, tzinfo=UTC) for d in (27, 28, 29)]
    rows = run_rows(runs, zone="Europe/Berlin", now=before)
    assert [r["local"] for r in rows] == [
        "Sat 2027-03-27 09:00 CET",
        "Sun 2027-03-28 10:00 CEST",
        "Mon 2027-03-29 10:00 CEST",
    ]
    assert [r["note"] for r in rows] == [None, "after a clock change (CET → CEST)", None]


def test_compose_writes_a_dst_policy_only_when_it_is_not_the_default() -> None:
    form = {"preset": "daily", "times": "02:30", "timeZone": "Europe/Berlin"}
    assert "dst" not in build_manifest({**form, "missingTime": "RunAfter"})["spec"]
    spec = build_manifest({**form, "missingTime": "Skip", "repeatedTime": "First"})["spec"]
    assert spec["dst"] == {"missingTime": "Skip"}
    start = datetime(2027, 3, 27, 12, tzinfo=UTC)
    skipped = compose({**form, "missingTime": "Skip"}, now=start, default_namespace="d")
    kept = compose(form, now=start, default_namespace="d")
    assert kept.runs[0]["local"] == "Sun 2027-03-28 03:00 CEST"  # 02:30 does not exist: after
    assert skipped.runs[0]["local"] == "Mon 2027-03-29 02:30 CEST"


@pytest.mark.parametrize(
    ("failure", "shown"),
    [
        (CliError("forbidden: cannot list jobschedules"), "forbidden: cannot list jobschedules"),
        (ValueError("bad JSON"), "the watch failed (ValueError); trying again"),
    ],
)
def test_a_failing_watch_is_shown_and_the_thread_lives_on(failure: Exception, shown: str) -> None:
    calls: list[int] = []

    def changes() -> Iterator[Change]:
        calls.append(1)
        yield Change(type="SYNC", objects=[_obj("a")])
        raise failure

    async def main() -> None:
        hub = Hub()
        stop = threading.Event()
        thread = start_watch(hub, loop=asyncio.get_running_loop(), changes=changes, stop=stop)
        while hub.error is None:
            assert await hub.wait(after=hub.version, timeout=5), "no failure reported"
        assert hub.error == shown and hub.synced and thread.is_alive()
        stop.set()
        await asyncio.to_thread(thread.join, 5)
        assert not thread.is_alive() and calls == [1]

    asyncio.run(main())
