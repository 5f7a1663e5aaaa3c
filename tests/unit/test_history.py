"""A schedule's run history: entries, their one-time final results, counters, adoption, trim.

Counters are only ever incremented from a transition, so the rules that keep
a final entry final and a Job from being adopted twice are what keep them
right; each is pinned down here on the functions themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobwarden import labels
from jobwarden.api.status import HistoryEntry, ScheduleStatus
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation

T0 = datetime(2024, 1, 1, 1, tzinfo=UTC)
M = timedelta(minutes=1)


def obs(name: str, *, result: str = "Running", scheduled: datetime | None = T0,
        trigger: str = labels.TRIGGER_SCHEDULE, start: datetime | None = None,
        finish: datetime | None = None, reason: str | None = None,
        stale_deadline: bool = False) -> JobObservation:  # fmt: skip
    return JobObservation(
        name=name,
        namespace="ns",
        schedule="nightly",
        trigger=trigger,
        scheduled_time=scheduled,
        start_time=start,
        finish_time=finish,
        result=result,  # type: ignore[arg-type]
        reason=reason,
        message="from the Job" if reason else None,
        active=0 if result != "Running" else 1,
        stale_deadline=stale_deadline,
    )


def running(name: str, *, scheduled: datetime = T0, **fields: Any) -> HistoryEntry:
    return HistoryEntry(job=name, trigger="Schedule", scheduled_time=scheduled,
                        result="Running", **fields)  # fmt: skip


def status_of(*entries: HistoryEntry) -> ScheduleStatus:
    return ScheduleStatus(history=list(entries))


def test_record_puts_the_newest_first_and_find_finds_by_job() -> None:
    status = ScheduleStatus()
    hist.record(status, running("a"))
    hist.record(status, running("b", scheduled=T0 + M))
    assert [e.job for e in hist.history(status)] == ["b", "a"]
    found = hist.find(status, "a")
    assert found is not None
    assert found.job == "a"
    assert hist.find(status, "zzz") is None


@pytest.mark.parametrize(
    ("job", "result", "counter", "reason"),
    [
        (obs("a", result="Succeeded", start=T0, finish=T0 + 2 * M), "Succeeded", "succeeded",
         "Completed"),
        (obs("a", result="Failed", start=T0, finish=T0 + 2 * M, reason="BackoffLimitExceeded"),
         "Failed", "failed", "BackoffLimitExceeded"),
        (obs("a", result="Failed", start=T0, finish=T0 + 2 * M, reason="DeadlineExceeded",
             stale_deadline=True), "Stale", "stale", "StaleTerminated"),
        # A deadline from the user's own template is an ordinary failure.
        (obs("a", result="Failed", start=T0, finish=T0 + 2 * M, reason="DeadlineExceeded"),
         "Failed", "failed", "DeadlineExceeded"),
    ],
)  # fmt: skip
def test_a_finished_job_finishes_its_entry_once(
    job: JobObservation, result: str, counter: str, reason: str
) -> None:
    status = status_of(running("a"))
    done = hist.merge_observations(status, jobs={"a": job}, pending=frozenset())
    entry = hist.history(status)[0]
    assert (entry.result, entry.reason) == (result, reason)
    assert entry.duration_seconds == 120.0
    assert entry.completion_time == T0 + 2 * M
    assert [(t.job, t.result, t.duration_seconds) for t in done] == [("a", result, 120.0)]
    assert getattr(hist.counters(status), counter) == 1
    # A final entry never changes again, so a second look counts nothing.
    assert hist.merge_observations(status, jobs={"a": job}, pending=frozenset()) == []
    assert getattr(hist.counters(status), counter) == 1


def test_a_started_job_gives_its_entry_a_start_time() -> None:
    status = status_of(running("a"))
    done = hist.merge_observations(status, jobs={"a": obs("a", start=T0 + M)}, pending=frozenset())
    assert done == []
    assert hist.history(status)[0].start_time == T0 + M
    assert hist.history(status)[0].result == "Running"


def test_a_job_gone_behind_the_operators_back_is_terminated() -> None:
    status = status_of(running("a"))
    done = hist.merge_observations(status, jobs={}, pending=frozenset())
    entry = hist.history(status)[0]
    assert (entry.result, entry.reason) == ("Terminated", "JobDeleted")
    assert [t.result for t in done] == ["Terminated"]
    assert hist.counters(status).terminated == 1


def test_a_job_just_created_and_not_yet_watched_stays_running() -> None:
    status = status_of(running("a"))
    assert hist.merge_observations(status, jobs={}, pending=frozenset({"a"})) == []
    assert hist.history(status)[0].result == "Running"


def test_entries_without_a_job_are_left_alone() -> None:
    missed = HistoryEntry(trigger="Schedule", scheduled_time=T0, result="Missed")
    status = status_of(missed)
    assert hist.merge_observations(status, jobs={}, pending=frozenset()) == []
    assert hist.history(status)[0].result == "Missed"


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (["Succeeded", "Succeeded"], {"succeeded": 2}),
        (["Failed", "Stale", "Terminated"], {"failed": 1, "stale": 1, "terminated": 1}),
        (["Running", "Missed", "StaleReported"], {}),  # counted elsewhere, or not at all
    ],
)
def test_tally(results: list[str], expected: dict[str, int]) -> None:
    status = ScheduleStatus()
    hist.tally(status, results)
    counts = hist.counters(status).model_dump()
    assert {k: v for k, v in counts.items() if v} == expected


def test_adopt_orphans_records_scheduled_jobs_after_the_cursor_only() -> None:
    status = status_of(running("known", scheduled=T0 + 3 * M))
    jobs = [
        obs("old", scheduled=T0),  # at the cursor: already counted before
        obs("late", scheduled=T0 + 2 * M, trigger=labels.TRIGGER_CATCH_UP),
        obs("newest", scheduled=T0 + 4 * M, start=T0 + 4 * M),
        obs("known", scheduled=T0 + 3 * M),  # in history already
        obs("manual", scheduled=T0 + 5 * M, trigger=labels.TRIGGER_MANUAL),
        obs("unlabelled", scheduled=None),
    ]
    cursor = hist.adopt_orphans(status, jobs=jobs, cursor=T0)
    assert cursor == T0 + 4 * M
    assert [e.job for e in hist.history(status)] == ["newest", "late", "known"]
    newest = hist.history(status)[0]
    assert (newest.result, newest.start_time) == ("Running", T0 + 4 * M)
    assert hist.history(status)[1].trigger == "CatchUp"
    assert hist.counters(status).scheduled == 2
    # Adopted once: the same Jobs again add nothing.
    assert hist.adopt_orphans(status, jobs=jobs, cursor=cursor) == cursor
    assert hist.counters(status).scheduled == 2


def test_adopt_orphans_without_a_cursor_takes_every_scheduled_job() -> None:
    status = ScheduleStatus()
    cursor = hist.adopt_orphans(status, jobs=[obs("b", scheduled=T0 + M), obs("a")], cursor=None)
    assert cursor == T0 + M
    assert [e.job for e in hist.history(status)] == ["b", "a"]


def test_running_active_runs_and_last_result() -> None:
    status = status_of(
        running("new", scheduled=T0 + 2 * M, start_time=T0 + 2 * M),
        HistoryEntry(trigger="Schedule", scheduled_time=T0 + M, result="Skipped"),
        HistoryEntry(job="old", trigger="Schedule", scheduled_time=T0, result="Failed"),
    )
    assert [e.job for e in hist.running(status)] == ["new"]
    active = hist.active_runs(status)
    assert [(a.name, a.scheduled_time, a.start_time) for a in active] == [
        ("new", T0 + 2 * M, T0 + 2 * M)
    ]
    assert hist.last_result(status) == "Skipped"  # the newest entry that is not Running
    assert hist.last_result(status_of(running("x"))) is None


def test_trim_keeps_the_newest_and_every_running_entry() -> None:
    entries = [
        HistoryEntry(job=f"j{i}", trigger="Schedule", scheduled_time=T0 - i * M, result="Succeeded")
        for i in range(5)
    ]
    entries[4] = running("j4", scheduled=T0 - 4 * M)
    status = status_of(*entries)
    hist.trim(status, limit=2)
    assert [e.job for e in hist.history(status)] == ["j0", "j1", "j4"]
    hist.trim(status, limit=0)
    assert [e.job for e in hist.history(status)] == ["j4"]


def test_trim_under_the_limit_changes_nothing() -> None:
    status = status_of(running("a"), running("b"))
    hist.trim(status, limit=2)
    assert [e.job for e in hist.history(status)] == ["a", "b"]
