"""A schedule's run history: entries, their one-time final results, counters, adoption, trim.

Counters are only ever incremented from a transition, so the rules that keep
a final entry final and a Job from being adopted twice are what keep them
right; each is pinned down here on the functions themselves. They are pure:
each case also checks that the history it was given is left as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobwarden import labels
from jobwarden.api.status import MESSAGE_LIMIT, REASON_LIMIT, Executions, HistoryEntry
from jobwarden.runs import history as hist
from jobwarden.runs.jobs import JobObservation

T0 = datetime(2024, 1, 1, 1, tzinfo=UTC)
M = timedelta(minutes=1)


def obs(name: str, *, result: str = "Running", scheduled: datetime | None = T0,
        trigger: str = labels.TRIGGER_SCHEDULE, start: datetime | None = None,
        finish: datetime | None = None, reason: str | None = None,
        stale_deadline: bool = False,
        owner_uid: str | None = "uid-1") -> JobObservation:  # fmt: skip
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
        owner_uid=owner_uid,
    )


def running(name: str, *, scheduled: datetime = T0, **fields: Any) -> HistoryEntry:
    return HistoryEntry(job=name, trigger="Schedule", scheduled_time=scheduled,
                        result="Running", **fields)  # fmt: skip


def frozen(history: list[HistoryEntry]) -> list[dict[str, Any]]:
    """A deep snapshot, to show that a function left its input alone."""
    return [e.model_dump() for e in history]


def test_find_finds_by_job() -> None:
    history = [running("b", scheduled=T0 + M), running("a")]
    found = hist.find(history, "a")
    assert found is not None
    assert found.job == "a"
    assert hist.find(history, "zzz") is None


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
    given = [running("a")]
    before = frozen(given)
    history, done = hist.merge_observations(given, jobs={"a": job}, pending=frozenset())
    assert frozen(given) == before
    entry = history[0]
    assert (entry.result, entry.reason) == (result, reason)
    assert entry.duration_seconds == 120.0
    assert entry.completion_time == T0 + 2 * M
    assert [(t.job, t.result, t.duration_seconds) for t in done] == [("a", result, 120.0)]
    counts = hist.tally(None, (t.result for t in done))
    assert getattr(counts, counter) == 1
    # A final entry never changes again, so a second look counts nothing.
    again, more = hist.merge_observations(history, jobs={"a": job}, pending=frozenset())
    assert more == [] and again == history


def test_a_started_job_gives_its_entry_a_start_time() -> None:
    given = [running("a")]
    history, done = hist.merge_observations(
        given, jobs={"a": obs("a", start=T0 + M)}, pending=frozenset()
    )
    assert done == []
    assert history[0].start_time == T0 + M
    assert history[0].result == "Running"
    assert given[0].start_time is None


def test_a_job_gone_behind_the_operators_back_is_terminated() -> None:
    history, done = hist.merge_observations([running("a")], jobs={}, pending=frozenset())
    entry = history[0]
    assert (entry.result, entry.reason) == ("Terminated", "JobDeleted")
    assert [t.result for t in done] == ["Terminated"]
    assert hist.tally(None, (t.result for t in done)).terminated == 1


def test_a_job_just_created_and_not_yet_watched_stays_running() -> None:
    history, done = hist.merge_observations([running("a")], jobs={}, pending=frozenset({"a"}))
    assert done == []
    assert history[0].result == "Running"


def test_entries_without_a_job_are_left_alone() -> None:
    missed = HistoryEntry(trigger="Schedule", scheduled_time=T0, result="Missed")
    history, done = hist.merge_observations([missed], jobs={}, pending=frozenset())
    assert done == []
    assert history[0].result == "Missed"


@pytest.mark.parametrize(
    ("results", "more", "expected"),
    [
        (["Succeeded", "Succeeded"], {}, {"succeeded": 2}),
        (["Failed", "Stale", "Terminated"], {}, {"failed": 1, "stale": 1, "terminated": 1}),
        (["Running", "Missed", "StaleReported"], {}, {}),  # counted elsewhere, or not at all
        (["Failed"], {"scheduled": 2, "failed": 1}, {"scheduled": 2, "failed": 2}),
    ],
)
def test_tally(results: list[str], more: dict[str, int], expected: dict[str, int]) -> None:
    base = Executions()
    counts = hist.tally(base, results, **more).model_dump()
    assert {k: v for k, v in counts.items() if v} == expected
    assert base == Executions()  # a new value: the one given is left alone


def test_adopt_orphans_records_scheduled_jobs_after_the_cursor_only() -> None:
    given = [running("known", scheduled=T0 + 3 * M)]
    jobs = [
        obs("old", scheduled=T0),  # at the cursor: already counted before
        obs("late", scheduled=T0 + 2 * M, trigger=labels.TRIGGER_CATCH_UP),
        obs("newest", scheduled=T0 + 4 * M, start=T0 + 4 * M),
        obs("known", scheduled=T0 + 3 * M),  # in history already
        obs("manual", scheduled=T0 + 5 * M, trigger=labels.TRIGGER_MANUAL),
        obs("unlabelled", scheduled=None),
    ]
    history, cursor, adopted = hist.adopt_orphans(given, jobs=jobs, cursor=T0)
    assert cursor == T0 + 4 * M
    assert [e.job for e in history] == ["newest", "late", "known"]
    assert [e.job for e in given] == ["known"]
    newest = history[0]
    assert (newest.result, newest.start_time) == ("Running", T0 + 4 * M)
    assert history[1].trigger == "CatchUp"
    assert adopted == 2
    # Adopted once: the same Jobs again add nothing.
    assert hist.adopt_orphans(history, jobs=jobs, cursor=cursor) == (history, cursor, 0)


def test_adopt_orphans_without_a_cursor_takes_every_scheduled_job() -> None:
    history, cursor, _ = hist.adopt_orphans([], jobs=[obs("b", scheduled=T0 + M), obs("a")],
                                            cursor=None)  # fmt: skip
    assert cursor == T0 + M
    assert [e.job for e in history] == ["b", "a"]


def test_adopt_orphans_takes_no_more_than_the_room_left_oldest_first() -> None:
    jobs = [obs(f"j{i}", scheduled=T0 + i * M) for i in range(5)]
    history, cursor, adopted = hist.adopt_orphans([], jobs=jobs, cursor=None, room=2)
    assert [e.job for e in history] == ["j1", "j0"]
    assert (cursor, adopted) == (T0 + M, 2)
    assert hist.adopt_orphans([], jobs=jobs, cursor=None, room=0) == ([], None, 0)


@pytest.mark.parametrize(
    ("current", "room", "adopted"),  # adopted: oldest first
    [
        (None, 10, ["running"]),  # a finished Job of an older token is left alone
        ("finished", 10, ["running", "finished"]),  # the current token's Job is adopted too
        ("finished", 1, ["running"]),  # at most ``room``, the oldest first
    ],
)
def test_adopt_manual(current: str | None, room: int, adopted: list[str]) -> None:
    jobs = [
        obs("running", scheduled=T0, trigger=labels.TRIGGER_MANUAL),
        obs("finished", scheduled=T0 + M, trigger=labels.TRIGGER_MANUAL, result="Succeeded"),
        obs("known", scheduled=T0, trigger=labels.TRIGGER_MANUAL),
        obs("scheduled", scheduled=T0),
    ]
    given = [running("known")]
    history, n = hist.adopt_manual(given, jobs=jobs, current=current, created=T0, room=room)
    assert [e.job for e in history] == [*reversed(adopted), "known"]
    assert n == len(adopted)
    assert all(e.trigger == "Manual" and e.result == "Running" for e in history[:n])
    assert [e.job for e in given] == ["known"]


def test_end_finishes_a_running_entry_at_now_with_its_duration() -> None:
    entry = running("a", start_time=T0)
    done, transition = hist.end(entry, result="Terminated", reason="R" * 500,
                                message="m" * 5000, now=T0 + 2 * M)  # fmt: skip
    assert (done.result, done.completion_time, done.duration_seconds) == (
        "Terminated",
        T0 + 2 * M,
        120.0,
    )
    assert len(done.reason or "") == REASON_LIMIT and len(done.message or "") == MESSAGE_LIMIT
    assert transition == hist.Transition("a", "Terminated", 120.0, done.reason, done.message)
    assert entry.result == "Running"


def test_running_active_runs_and_last_result() -> None:
    history = [
        running("new", scheduled=T0 + 2 * M, start_time=T0 + 2 * M),
        HistoryEntry(trigger="Schedule", scheduled_time=T0 + M, result="Skipped"),
        HistoryEntry(job="old", trigger="Schedule", scheduled_time=T0, result="Failed"),
    ]
    assert [e.job for e in hist.running(history)] == ["new"]
    active = hist.active_runs(history)
    assert [(a.name, a.scheduled_time, a.start_time) for a in active] == [
        ("new", T0 + 2 * M, T0 + 2 * M)
    ]
    assert hist.last_result(history) == "Skipped"  # the newest entry that is not Running
    assert hist.last_result([running("x")]) is None


def test_trim_keeps_the_newest_and_every_running_entry() -> None:
    entries = [
        HistoryEntry(job=f"j{i}", trigger="Schedule", scheduled_time=T0 - i * M, result="Succeeded")
        for i in range(5)
    ]
    entries[4] = running("j4", scheduled=T0 - 4 * M)
    history = hist.trim(entries, limit=2)
    assert [e.job for e in history] == ["j0", "j1", "j4"]
    assert [e.job for e in hist.trim(history, limit=0)] == ["j4"]
    assert len(entries) == 5


def test_trim_under_the_limit_changes_nothing() -> None:
    assert [e.job for e in hist.trim([running("a"), running("b")], limit=2)] == ["a", "b"]


def test_trim_never_keeps_more_than_the_crd_allows() -> None:
    finals = [
        HistoryEntry(job=f"f{i}", trigger="Schedule", scheduled_time=T0, result="Failed")
        for i in range(hist.HISTORY_MAX)
    ]
    runs = [running(f"r{i}") for i in range(hist.ACTIVE_LIMIT)]
    history = hist.trim([*finals, *runs], limit=hist.HISTORY_MAX)
    assert len(history) == hist.HISTORY_MAX
    assert [e.job for e in history[-hist.ACTIVE_LIMIT :]] == [e.job for e in runs]
    assert history[0].job == "f0"  # the newest final entries are the ones kept
