"""The delivery retry policy and the owner's sinks file: pure, by tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwarden.notify.policy import CAP_SECONDS, retry_policy, verdict
from jobwarden.notify.sinks import Sink, SinkConfigError, load_sinks, parse_sinks, read_token
from jobwarden.retrying import next_wait


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "retry"),  # refused, reset, timed out: no answer at all
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (501, "reject"),  # an answer: not implemented
        (301, "reject"),  # redirects are never followed
        (400, "reject"),
        (401, "reject"),
        (404, "reject"),
        (413, "reject"),
    ],
)
def test_which_answers_are_retried(status: int | None, expected: str) -> None:
    assert verdict(status) == expected


def _waits(sink: Sink, *, draw: float) -> list[float]:
    policy = retry_policy(sink)
    waits: list[float] = []
    while (w := next_wait(retry=len(waits), elapsed=sum(waits), retry_after=None,
                          policy=policy, draw=draw)) is not None:  # fmt: skip
        waits.append(w)
    return waits


def test_waits_double_up_to_the_cap_and_stop_after_the_attempts() -> None:
    sink = Sink(name="s", url="http://x", max_attempts=10)
    assert _waits(sink, draw=0.999) == pytest.approx(
        [0.4995, 0.999, 1.998, 3.996, 7.992, 15.984, 31.968, 59.94, 59.94]
    )


@given(attempts=st.integers(1, 100), draw=st.floats(0, 1, exclude_max=True))
def test_an_event_is_tried_at_most_max_attempts_times_within_the_budget(
    attempts: int, draw: float
) -> None:
    waits = _waits(Sink(name="s", url="http://x", max_attempts=attempts), draw=draw)
    assert len(waits) <= attempts - 1
    assert all(0 <= w <= CAP_SECONDS for w in waits)
    assert sum(waits) < retry_policy(Sink(name="s", url="http://x")).budget


def test_retry_after_is_waited_at_least() -> None:
    policy = retry_policy(Sink(name="s", url="http://x"))
    assert next_wait(retry=0, elapsed=0, retry_after=30, policy=policy, draw=0.0) == 30


def _file(*sinks: dict[str, Any]) -> str:
    return json.dumps({"sinks": list(sinks)})


def test_a_sinks_file_parses_with_defaults() -> None:
    (sink,) = parse_sinks(_file({"name": "oncall", "url": "https://alerts.example/hook"}))
    assert (sink.mode, sink.timeout_seconds, sink.max_attempts, sink.queue_size) == (
        "structured", 10.0, 8, 1000,
    )  # fmt: skip
    assert sink.token_file is None
    assert parse_sinks("{}") == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        (_file({"name": "a", "url": "ftp://x/"}), "sinks[0].url"),
        (_file({"name": "a", "url": "http:///nohost"}), "sinks[0].url"),
        (_file({"name": "A_B", "url": "http://x"}), "sinks[0].name"),
        (_file({"name": "a", "url": "http://x", "timeoutSeconds": 0}), "sinks[0].timeoutSeconds"),
        (_file({"name": "a", "url": "http://x", "queueSize": 10**9}), "sinks[0].queueSize"),
        (_file({"name": "a", "url": "http://x", "mode": "batch"}), "sinks[0].mode"),
        (_file({"name": "a", "url": "http://x", "secret": "x"}), "sinks[0].secret"),
        (_file({"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}),
         "sinks[1].name: 'a' is configured twice"),
    ],
)  # fmt: skip
def test_a_bad_sinks_file_names_the_entry(text: str, says: str) -> None:
    with pytest.raises(SinkConfigError) as caught:
        parse_sinks(text)
    assert says in str(caught.value)


def test_no_file_is_no_sinks_and_an_unreadable_one_is_an_error(tmp_path: Path) -> None:
    assert load_sinks(None) == ()
    with pytest.raises(SinkConfigError, match="cannot read"):
        load_sinks(tmp_path / "missing.json")


def test_the_token_is_read_at_each_delivery(tmp_path: Path) -> None:
    """A rotated Secret reaches the mounted file; the next delivery uses the new token."""
    path = tmp_path / "token"
    path.write_text("first\n")
    sink = Sink(name="s", url="http://x", token_file=path)
    assert read_token(sink) == "first"
    path.write_text("second")
    assert read_token(sink) == "second"
    assert read_token(Sink(name="s", url="http://x")) is None


def test_the_operator_refuses_to_start_on_a_bad_sinks_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobwarden.main import main

    path = tmp_path / "sinks.json"
    path.write_text(_file({"name": "oncall", "url": "gopher://x"}))
    assert main(["--notify-sinks", str(path)]) == 2
    err = capsys.readouterr().err
    assert "--notify-sinks (JOBWARDEN_NOTIFY_SINKS)" in err and "sinks[0].url" in err
