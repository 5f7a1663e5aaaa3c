"""Replace never terminates a run-now that the same plan has just started.

Found by the replay in test_reconcile: a run-now handled in the same plan as
a due run of a Replace schedule was started and, as an "active run",
replaced at once: its Job was created and deleted by one plan, and after a
lost status write it was created again.
"""

from __future__ import annotations

from jobwarden import labels
from tests.unit.test_reconcile import World, at


def test_a_run_now_and_a_due_run_in_one_plan_both_start_under_replace() -> None:
    world = World.of(schedule="*/10 * * * *", concurrencyPolicy="Replace")
    world.annotations[labels.RUN_NOW_ANNOTATION] = "token-1"
    result = world.step(at("00:55:02"))  # the 00:50 run is due (caught up) as well
    started = [s.body["metadata"]["name"] for s in result.starts]
    manual = [n for n in started if n.rsplit("-", 1)[1].startswith("m")]
    assert len(manual) == 1 and len(started) == 2, started
    assert result.deletes == [], "neither new run is replaced by the other"
    assert set(world.jobs) == set(started)
    active = {a["name"] for a in world.status.get("active", [])}
    assert active == set(started)


def test_replace_still_terminates_a_run_from_an_earlier_plan() -> None:
    world = World.of(schedule="*/10 * * * *", concurrencyPolicy="Replace")
    world.step(at("00:50:01"))
    first = set(world.jobs)
    result = world.step(at("01:00:01"))
    assert [d.job for d in result.deletes] == sorted(first)
    assert all(d.reason == "Replaced" for d in result.deletes)
