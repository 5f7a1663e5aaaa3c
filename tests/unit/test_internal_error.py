"""The report of an internal error on a schedule: Ready=False, reason InternalError, step named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobwarden.reconcile.errors import MESSAGE_LIMIT, describe_error, internal_error_patch

NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
VALID = {"type": "Valid", "status": "True", "reason": "SpecValid", "message": "ok",
         "lastTransitionTime": "2024-01-01T00:00:00Z"}  # fmt: skip


def test_the_message_names_the_step_and_the_error() -> None:
    message = describe_error("plan: fold-jobs", OverflowError("date value out of range"))
    assert message == (
        "reconcile step 'plan: fold-jobs' failed: OverflowError: date value out of range"
    )


def test_a_huge_or_multiline_error_is_one_bounded_line() -> None:
    message = describe_error("write status", ValueError("x\n" * 10_000))
    assert "\n" not in message
    assert len(message) == MESSAGE_LIMIT and message.endswith("...")


def test_ready_is_replaced_in_place_and_the_other_conditions_are_kept() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Scheduling", "message": "Phase Active.",
             "lastTransitionTime": "2024-01-01T00:00:00Z"}  # fmt: skip
    status = {"phase": "Active", "conditions": [VALID, ready]}
    patch = internal_error_patch(status=status, message="m", now=NOW, generation=3)
    assert list(patch) == ["conditions"], "a patch of conditions only"
    assert patch["conditions"][0] == VALID
    assert patch["conditions"][1] == {
        "type": "Ready",
        "status": "False",
        "reason": "InternalError",
        "message": "m",
        "lastTransitionTime": "2024-01-01T12:00:00Z",
        "observedGeneration": 3,
    }


def test_a_ready_already_false_keeps_its_transition_time() -> None:
    ready = {"type": "Ready", "status": "False", "reason": "InternalError", "message": "old",
             "lastTransitionTime": "2024-01-01T08:00:00Z"}  # fmt: skip
    patch = internal_error_patch(
        status={"conditions": [ready]}, message="new", now=NOW, generation=None
    )
    assert patch["conditions"] == [{**ready, "message": "new"}]


@pytest.mark.parametrize(
    "status",
    [None, "garbage", {}, {"conditions": "x"}, {"conditions": [1, {"no": "type"}, None]}],
)
def test_whatever_the_status_holds_the_patch_is_a_valid_ready_condition(status: Any) -> None:
    patch = internal_error_patch(status=status, message="m", now=NOW, generation=1)
    assert [c["type"] for c in patch["conditions"]] == ["Ready"]
    assert patch["conditions"][0]["reason"] == "InternalError"
