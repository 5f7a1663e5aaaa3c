"""Events are best effort: a flood of them holds at most a quarter of the API threads."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client

from jobwarden.kube import Kube, ObjectRef


def test_a_flood_of_events_holds_at_most_a_quarter_of_the_api_threads() -> None:
    kube = Kube(client.ApiClient(), workers=8)
    inside = peak = posted = 0

    async def call(method: str, path: str, **_: Any) -> None:
        nonlocal inside, peak, posted
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(0.005)
        inside -= 1
        posted += 1

    kube._call = call  # type: ignore[method-assign]
    ref = ObjectRef("jobwarden.io/v1alpha1", "JobSchedule", "ns", "s", "uid")

    async def flood() -> None:
        await asyncio.gather(
            *(
                kube.post_event(regarding=ref, type_="Warning", reason="ForeignJob", message="m")
                for _ in range(40)
            )
        )

    try:
        asyncio.run(flood())
    finally:
        kube.close()
    assert posted == 40
    assert peak == 2
