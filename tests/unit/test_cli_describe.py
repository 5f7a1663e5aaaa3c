"""``describe`` output and ``health`` summary, from JobSchedule objects alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jobwarden.api.spec import parse_spec
from jobwarden.cli.describe import describe_text, downstreams_of, history_newest_first, next_runs
from jobwarden.cli.group import group_summary
from jobwarden.cli.summary import summarize, summary_text
from jobwarden.schedule.timeline import build_timeline

NOW = datetime(2027, 3, 1, 12, 0, 0, tzinfo=UTC)


def _obj(spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "nightly",
            "namespace": "team",
            "uid": "u1",
            "creationTimestamp": "2027-02-01T00:00:00Z",
        },
        "spec": {"jobTemplate": {}, **(spec or {"schedule": "H 3 * * *"})},
        "status": status,
    }


def _t(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_next_runs_use_the_operators_engine_and_key() -> None:
    obj = _obj(
        {"every": {"period": "Day", "interval": 3, "times": ["06:00"]}, "timeZone": "Europe/Paris"}
    )
    expected = build_timeline(
        parse_spec(obj["spec"]), key="team/nightly", created=datetime(2027, 2, 1, tzinfo=UTC)
    ).upcoming(NOW, count=5)
    got = next_runs(obj, now=NOW)
    assert got.runs == expected and got.note is None
    # Every third day counted from creation (Feb 1): Mar 3 is the first after Mar 1.
    assert got.runs[0] == datetime(2027, 3, 3, 5, 0, tzinfo=UTC)


def test_hashed_minute_depends_on_the_namespace() -> None:
    obj = _obj({"schedule": "H H * * *"})
    other = _obj({"schedule": "H H * * *"})
    other["metadata"]["namespace"] = "another-team-with-a-different-hash"
    spec = parse_spec(obj["spec"])
    created = datetime(2027, 2, 1, tzinfo=UTC)
    assert next_runs(obj, now=NOW).runs == build_timeline(
        spec, key="team/nightly", created=created
    ).upcoming(NOW, count=5)
    assert next_runs(other, now=NOW).runs == build_timeline(
        spec, key="another-team-with-a-different-hash/nightly", created=created
    ).upcoming(NOW, count=5)


def test_max_executions_left_cap_the_next_runs() -> None:
    obj = _obj({"schedule": "0 * * * *", "maxExecutions": 5}, executions={"scheduled": 3})
    assert len(next_runs(obj, now=NOW).runs) == 2
    done = _obj({"schedule": "0 * * * *", "maxExecutions": 3}, executions={"scheduled": 3})
    result = next_runs(done, now=NOW)
    assert result.runs == [] and result.note is not None and "maxExecutions" in result.note


def test_suspended_schedules_list_runs_with_a_note() -> None:
    user = next_runs(_obj({"schedule": "0 * * * *", "suspend": True}), now=NOW)
    assert len(user.runs) == 5 and user.note is not None and "spec.suspend" in user.note
    held = next_runs(
        _obj({"schedule": "0 * * * *"}, suspendedByOperator={"suspended": True}), now=NOW
    )
    assert held.note is not None and "resume" in held.note


def test_invalid_spec_explains_instead_of_listing() -> None:
    result = next_runs(_obj({"every": {"period": "Month"}}), now=NOW)
    assert result.runs == []
    assert result.note is not None and "spec.every.monthDays" in result.note


def test_history_is_shown_newest_first_even_if_stored_out_of_order() -> None:
    history = [
        {"job": "b", "scheduledTime": _t(60), "result": "Succeeded"},
        {"job": "c", "scheduledTime": _t(5), "result": "Failed"},
        {"job": "none", "result": "Missed"},
        {"job": "a", "scheduledTime": _t(120), "result": "Succeeded"},
    ]
    assert [h["job"] for h in history_newest_first(history)] == ["c", "b", "a", "none"]


def test_describe_text_sections() -> None:
    obj = _obj(
        phase="Active",
        health={
            "state": "Degraded",
            "reason": "LastRunFailed",
            "consecutiveFailures": 1,
            "message": "The last run failed.",
        },
        history=[
            {
                "job": "nightly-1",
                "trigger": "Schedule",
                "scheduledTime": _t(90),
                "startTime": _t(90),
                "durationSeconds": 75,
                "result": "Failed",
                "reason": "BackoffLimitExceeded",
            },
            {
                "job": "nightly-2",
                "trigger": "Manual",
                "scheduledTime": _t(3),
                "startTime": _t(3),
                "result": "Running",
            },
        ],
        active=[{"name": "nightly-2", "scheduledTime": _t(3), "startTime": _t(3)}],
        conditions=[
            {
                "type": "Valid",
                "status": "True",
                "reason": "SpecValid",
                "lastTransitionTime": _t(600),
                "message": "ok",
            }
        ],
    )
    text = describe_text(
        obj,
        now=NOW,
        events=[{"type": "Normal", "reason": "ManualRun", "lastTimestamp": _t(3), "message": "m"}],
    )
    lines = text.splitlines()
    assert lines[0] == "Name:                   nightly"
    assert (
        "Health:                 Degraded (LastRunFailed, 1 consecutive failure): "
        "The last run failed." in lines
    )
    history_at = lines.index("History:")
    assert lines[history_at + 1].split() == [
        "JOB",
        "TRIGGER",
        "SCHEDULED",
        "STARTED",
        "DURATION",
        "RESULT",
        "REASON",
    ]
    assert lines[history_at + 2].split()[0] == "nightly-2"
    assert lines[history_at + 3].split()[:2] == ["nightly-1", "Schedule"]
    assert " 75s " in lines[history_at + 3]
    next_at = lines.index("Next Runs:")
    assert (
        len([line for line in lines[next_at + 2 : next_at + 7] if line.startswith("  2027-")]) == 5
    )
    assert any(line.startswith("Active Runs:") for line in lines)
    assert lines[-1].split()[:2] == ["Normal", "ManualRun"]


def test_describe_text_with_events_unavailable() -> None:
    text = describe_text(_obj(), now=NOW, events_note="<unavailable: forbidden>")
    assert text.splitlines()[-1] == "Events:                 <unavailable: forbidden>"


def test_summary_counts_and_attention() -> None:
    items = [
        _obj(health={"state": "Healthy"}),
        _obj(
            health={"state": "Unhealthy", "reason": "ConsecutiveFailures", "consecutiveFailures": 3}
        ),
        _obj(),
    ]
    summary = summarize(items, now=NOW)
    assert summary.counts == {"Healthy": 1, "Degraded": 0, "Unhealthy": 1, "Unknown": 1}
    assert [a.state for a in summary.attention] == ["Unhealthy"]


def test_summary_runs_active_stale_and_recently_failed() -> None:
    obj = _obj(
        active=[{"name": "j-run", "startTime": _t(30)}],
        history=[
            {
                "job": "j-run",
                "trigger": "Manual",
                "result": "Running",
                "reason": "StaleReported",
                "startTime": _t(30),
            },
            {"job": "j-stale", "trigger": "Schedule", "result": "Stale", "completionTime": _t(60)},
            {
                "job": "j-old-stale",
                "trigger": "Schedule",
                "result": "Stale",
                "completionTime": _t(60 * 30),
            },
            {
                "job": "j-failed",
                "trigger": "Schedule",
                "result": "Failed",
                "completionTime": _t(120),
                "reason": "BackoffLimitExceeded",
            },
            {
                "job": "j-old-failed",
                "trigger": "Schedule",
                "result": "Failed",
                "completionTime": _t(60 * 25),
            },
            {"job": "j-ok", "trigger": "Schedule", "result": "Succeeded", "completionTime": _t(10)},
        ],
    )
    summary = summarize([obj], now=NOW, since=timedelta(hours=24))
    assert [(r.job, r.trigger) for r in summary.active] == [("j-run", "Manual")]
    assert [r.job for r in summary.stale] == ["j-run", "j-stale"]
    assert [r.job for r in summary.failed] == ["j-failed"]
    wider = summarize([obj], now=NOW, since=timedelta(hours=48))
    assert [r.job for r in wider.failed] == ["j-failed", "j-old-failed"]

    text = summary_text(summary, now=NOW, with_namespace=True)
    assert "Schedules by health:\nHEALTH      SCHEDULES\n" in text
    assert "Failed runs (last 24h):\nNAMESPACE   SCHEDULE   JOB" in text
    assert "team        nightly    j-failed" in text


def test_summary_text_says_none_for_empty_sections() -> None:
    text = summary_text(
        summarize([_obj(health={"state": "Healthy"})], now=NOW), now=NOW, with_namespace=False
    )
    assert "Active runs: none" in text
    assert "Failed runs (last 24h): none" in text


def test_describe_shows_upstreams_and_downstreams_of_a_chain() -> None:
    after = {"after": [{"schedule": "extract"}, {"schedule": "load", "result": "Any"}]}
    obj = _obj(after)
    siblings = [obj, _obj({"after": [{"schedule": "nightly"}]}), _obj()]
    siblings[1]["metadata"] = {"name": "publish"}
    text = describe_text(obj, now=NOW, downstreams=downstreams_of("nightly", siblings))
    lines = text.splitlines()
    assert "Runs After:             extract (Succeeded), load (Any)" in lines
    assert "Runs Before:            publish" in lines
    assert any(line.startswith("Next Runs (none on a clock: it runs after") for line in lines)
    forbidden = describe_text(_obj(), now=NOW, downstreams="<unavailable: forbidden>")
    assert "Runs Before:            <unavailable: forbidden>" in forbidden.splitlines()
    assert "Runs After:             <none>" in forbidden.splitlines()


def test_next_runs_note_a_run_dst_moves() -> None:
    """02:30 in Berlin does not exist on 2027-03-28: the run there is at 03:00, and says so."""
    obj = _obj({"every": {"period": "Day", "times": ["02:30"]}, "timeZone": "Europe/Berlin"})
    got = next_runs(obj, now=datetime(2027, 3, 26, 12, tzinfo=UTC), count=3)
    assert got.runs[1] == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    assert got.run_notes == (
        None,
        "02:30 does not exist on 2027-03-28 (DST): runs at 03:00",
        None,
    )


def test_describe_shows_the_concurrency_group_its_occupancy_and_queue() -> None:
    """The limit is the smallest a member names; the queue is every member's, oldest first."""

    def member(name: str, limit: int, queue: list[tuple[str, str]], active: int) -> Any:
        obj = _obj(
            {"schedule": "0 2 * * *", "concurrencyGroup": {"name": "etl", "limit": limit}},
            active=[{"name": f"{name}-{i}"} for i in range(active)],
            queue=[{"job": job, "trigger": "Schedule", "scheduledTime": at} for job, at in queue],
        )
        obj["metadata"]["name"] = name
        return obj

    obj = member("nightly", 2, [("nightly-2", "2027-02-02T02:00:00Z")], active=1)
    siblings = [
        obj,
        member("load", 3, [("load-1", "2027-02-02T01:00:00Z")], active=1),
        member("apart", 1, [], active=0),
    ]
    siblings[2]["spec"]["concurrencyGroup"]["name"] = "other"
    text = describe_text(obj, now=NOW, group=group_summary(obj, siblings))
    lines = text.splitlines()
    assert "Concurrency Group:      etl: 2 of limit 2 active, 2 queued (members load, nightly)" in (
        lines
    )
    at = lines.index("Group Queue:")
    assert lines[at + 2].split() == ["load-1", "load", "2027-02-02T01:00:00Z"]
    assert lines[at + 3].split() == ["nightly-2", "nightly", "2027-02-02T02:00:00Z"]
    alone = describe_text(_obj(), now=NOW, group=group_summary(_obj(), siblings))
    assert "Concurrency Group:      <none>" in alone.splitlines()
    assert "Group Queue:" not in alone
