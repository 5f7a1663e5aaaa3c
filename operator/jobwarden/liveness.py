"""Heartbeats of the operator's loops, and the verdict liveness and readiness give.

Every loop that must keep running (the wake loop, the sweep, each watch
stream) records ``time.monotonic()`` each time it passes. A loop whose
last beat is older than its bound has stopped or fallen behind: liveness
fails, and the kubelet restarts the pod. Pure: the caller reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# The wake loop passes at least every 5 s; a minute allows a busy event loop.
SCHEDULER_BOUND_SECONDS = 60.0
# The sweep passes once per interval; twice that plus a minute allows a slow pass.
SWEEP_SLACK_SECONDS = 60.0


def sweep_bound(interval_seconds: float) -> float:
    return 2 * interval_seconds + SWEEP_SLACK_SECONDS


@dataclass(frozen=True, slots=True)
class Component:
    """One loop: its name, its last beat (None: not started, not judged), its bound."""

    name: str
    last_beat: Callable[[], float | None]
    bound: float


@dataclass(frozen=True)
class Verdict:
    ages: dict[str, float] = field(default_factory=dict)
    late: tuple[str, ...] = ()

    @property
    def alive(self) -> bool:
        return not self.late

    def message(self) -> str:
        return "; ".join(f"{name}: no beat for {self.ages[name]:.0f} s" for name in self.late)


def judge(components: Iterable[Component], *, now: float) -> Verdict:
    """Each started component's age, and those older than their bound."""
    ages: dict[str, float] = {}
    late: list[str] = []
    for component in components:
        beat = component.last_beat()
        if beat is None:
            continue
        ages[component.name] = age = max(0.0, now - beat)
        if age > component.bound:
            late.append(component.name)
    return Verdict(ages=ages, late=tuple(late))
