"""``kubectl jobwarden describe`` says where a schedule's events go."""

from __future__ import annotations

from jobwarden.cli.describe import describe_text
from tests.unit.test_cli_describe import NOW, _obj


def test_describe_shows_the_sinks_and_their_events() -> None:
    notify = {
        "notify": [
            {"sink": "oncall", "events": ["Failed", "Stale"]},
            {"sink": "chat", "events": ["Recovered"]},
        ]
    }
    lines = describe_text(_obj(notify), now=NOW).splitlines()
    assert "Notify:                 oncall (Failed, Stale), chat (Recovered)" in lines
    assert "Notify:                 <none>" in describe_text(_obj(), now=NOW).splitlines()
