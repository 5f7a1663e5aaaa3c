"""The chart's notification sinks: the file the operator reads, the Secrets mounted
for tokens (never read through the API), and values the schema refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from jobwarden.api.spec import parse_spec
from jobwarden.notify.sinks import parse_sinks
from jobwarden.notify.subscriptions import check_notify
from tests.unit.test_chart import helm, template, template_error  # noqa: F401 - the fixture

SINKS: dict[str, Any] = {
    "notifications": {
        "sinks": [
            {
                "name": "oncall",
                "url": "https://alerts.example/hook",
                "tokenSecret": {"name": "oncall-token", "key": "bearer"},
                "maxAttempts": 5,
            },
            {"name": "chat", "url": "http://chat.example:8080/ce", "mode": "binary"},
        ]
    }
}


def test_no_sinks_render_nothing_of_notifications(helm: Path) -> None:  # noqa: F811
    r = template(helm)
    assert "JOBWARDEN_NOTIFY_SINKS" not in r.env()
    assert not [c for c in r.all("ConfigMap") if c["metadata"]["name"].endswith("notifications")]


def test_sinks_become_the_file_the_operator_reads_with_tokens_mounted(
    helm: Path,  # noqa: F811
) -> None:
    r = template(helm, SINKS)
    path = r.env()["JOBWARDEN_NOTIFY_SINKS"]
    config = r.one("ConfigMap", "jobwarden-notifications")
    sinks = parse_sinks(config["data"]["sinks.json"])  # the operator's own parser
    assert [(s.name, s.url, s.mode, s.max_attempts) for s in sinks] == [
        ("oncall", "https://alerts.example/hook", "structured", 5),
        ("chat", "http://chat.example:8080/ce", "binary", 8),
    ]
    spec = r.deployment()["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in r.container()["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert path == f"{mounts['notifications']}/sinks.json"
    assert volumes["notifications"]["configMap"]["name"] == "jobwarden-notifications"
    # The token file the operator reads is the key of the Secret mounted there.
    token = sinks[0].token_file
    assert token is not None and str(token.parent) == mounts["notify-token-oncall"]
    secret = volumes["notify-token-oncall"]["secret"]
    assert secret["secretName"] == "oncall-token"
    assert secret["items"] == [{"key": "bearer", "path": token.name}]
    assert sinks[1].token_file is None and "notify-token-chat" not in volumes
    # A change of the sinks rolls the pods (they are read at start).
    annotations = r.deployment()["spec"]["template"]["metadata"]["annotations"]
    other = template(helm, {"notifications": {"sinks": SINKS["notifications"]["sinks"][:1]}})
    other_annotations = other.deployment()["spec"]["template"]["metadata"]["annotations"]
    key = "jobwarden.io/notification-sinks"
    assert annotations[key] != other_annotations[key]


@pytest.mark.parametrize(
    ("sink", "field"),
    [
        ({"name": "Bad_Name", "url": "http://x"}, "name"),
        ({"name": "a", "url": "ftp://x"}, "url"),
        ({"name": "a"}, "url"),
        ({"name": "a", "url": "http://x", "mode": "batch"}, "mode"),
        ({"name": "a", "url": "http://x", "tokenSecret": {"key": "k"}}, "name"),
        ({"name": "a", "url": "http://x", "token": "inline"}, "token"),
    ],
)
def test_schema_refuses_bad_sinks(helm: Path, sink: dict[str, Any], field: str) -> None:  # noqa: F811
    err = template_error(helm, {"notifications": {"sinks": [sink]}})
    assert "don't meet the specifications of the schema" in err, err
    assert field in err.split("schema", 1)[1], err


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notifications"


def test_the_example_schedule_names_the_sinks_its_example_configs_give(
    helm: Path,  # noqa: F811
) -> None:
    """examples/notifications: the schedule is valid against the sinks of its chart values
    and of its sinks file (what `make run`-style local operators read)."""
    schedule = yaml.safe_load((EXAMPLE / "schedule.yaml").read_text())
    spec = parse_spec(schedule["spec"])
    values = yaml.safe_load((EXAMPLE / "values.yaml").read_text())
    rendered = template(helm, values).one("ConfigMap", "jobwarden-notifications")
    for sinks in (
        parse_sinks(rendered["data"]["sinks.json"]),
        parse_sinks((EXAMPLE / "sinks.json").read_text()),
    ):
        check_notify(spec, sinks={s.name for s in sinks})
    assert {s.sink for s in spec.notify or ()} == {"oncall", "chat"}
