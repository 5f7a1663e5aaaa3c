"""``kubectl jobwarden preview``: offline next runs of a manifest."""

from __future__ import annotations

import io
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobwarden.api.spec import parse_spec
from jobwarden.cli.kubeconfig import ConnectOptions
from jobwarden.cli.main import run
from jobwarden.cli.preview import (
    PreviewError,
    load_documents,
    parse_from,
    preview_documents,
    preview_json,
)
from jobwarden.schedule.timeline import build_timeline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC)


def _no_cluster(options: ConnectOptions) -> Any:
    raise AssertionError("preview must not connect to a cluster")


def _cli(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(
        list(argv),
        out=out,
        err=err,
        connector=_no_cluster,
        clock=lambda: NOW,
        stdin=io.StringIO(stdin) if stdin is not None else None,
    )
    return code, out.getvalue(), err.getvalue()


def _preview_json(path: Path, *extra: str) -> Any:
    code, out, err = _cli("preview", "-f", str(path), "-o", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def _doc(spec: dict[str, Any], *, name: str = "s", namespace: str | None = "ns") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": "jobwarden.io/v1alpha1",
        "kind": "JobSchedule",
        "metadata": meta,
        "spec": {"jobTemplate": {}, **spec},
    }


def _write(tmp_path: Path, *docs: dict[str, Any]) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_previews_offline(path: Path) -> None:
    docs = load_documents(path.read_text(), source=str(path))
    code, out, err = _cli("preview", "-f", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAMESPACE", "NAME", "SCHEDULE"]
    for doc in docs:
        assert any(doc["metadata"]["name"] in line for line in lines[1:])


def test_cron_example_gives_consecutive_minutes() -> None:
    runs = _preview_json(EXAMPLES / "cron.yaml", "--count", "3")["default/cron-every-minute"]
    assert runs == ["2027-01-01T00:01:00Z", "2027-01-01T00:02:00Z", "2027-01-01T00:03:00Z"]


def test_hashed_cron_is_keyed_by_namespace_and_name_like_the_operator() -> None:
    path = EXAMPLES / "cron.yaml"
    runs = _preview_json(path)["default/cron-hashed-hourly"]
    doc = next(
        d
        for d in load_documents(path.read_text(), source="x")
        if d["metadata"]["name"] == "cron-hashed-hourly"
    )
    timeline = build_timeline(
        parse_spec(doc["spec"]), key="default/cron-hashed-hourly", created=NOW
    )
    assert runs == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in timeline.upcoming(NOW, count=5)]
    instants = [datetime.fromisoformat(r) for r in runs]
    assert len({t.minute for t in instants}) == 1
    assert all((b - a).total_seconds() == 3600 for a, b in itertools.pairwise(instants))


def test_calendar_example_skips_excluded_dates() -> None:
    runs = _preview_json(
        EXAMPLES / "every-day.yaml", "--count", "4", "--from", "2026-12-22T00:00:00Z"
    )
    # Every other day from Dec 1 (Paris, UTC+1): the 23rd, then the 25th is excluded.
    assert runs == [
        "2026-12-23T08:00:00Z",
        "2026-12-23T16:30:00Z",
        "2026-12-27T08:00:00Z",
        "2026-12-27T16:30:00Z",
    ]


def test_weekly_example_in_tokyo() -> None:
    runs = _preview_json(EXAMPLES / "every-week.yaml", "--from", "2027-01-04T00:00:00Z")
    assert runs == [
        "2027-01-04T23:15:00Z",
        "2027-01-05T23:15:00Z",
        "2027-01-06T23:15:00Z",
        "2027-01-07T23:15:00Z",
        "2027-01-10T23:15:00Z",
    ]


def test_interval_without_start_at_is_anchored_at_from() -> None:
    runs = _preview_json(EXAMPLES / "every-month.yaml", "--from", "2027-01-10T00:00:00Z")
    assert runs == [
        "2027-01-15T23:00:00Z",
        "2027-01-31T23:00:00Z",
        "2027-04-01T23:00:00Z",
        "2027-04-15T23:00:00Z",
        "2027-04-30T23:00:00Z",
    ]


def test_one_time_run_gives_one_instant() -> None:
    assert _preview_json(EXAMPLES / "run-at.yaml", "--from", "2026-06-01T00:00:00Z") == [
        "2027-01-01T14:00:00Z"
    ]
    assert _preview_json(EXAMPLES / "run-at.yaml", "--from", "2027-02-01T00:00:00Z") == []


def test_text_output_of_a_schedule_without_runs_left(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc({"runAt": "2020-01-01T00:00:00Z"}))
    code, out, _ = _cli("preview", "-f", str(path))
    assert code == 0
    assert out.splitlines()[1].split()[-4:] == ["<none>"] * 4


def test_dst_spring_forward_runs_when_the_gap_ends(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _doc({"every": {"period": "Day", "times": ["02:30"]}, "timeZone": "Europe/Berlin"}),
    )
    runs = _preview_json(path, "--count", "3", "--from", "2027-03-27T00:00:00Z")
    assert runs == ["2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"]


def test_max_executions_caps_the_count(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc({"schedule": "0 * * * *", "maxExecutions": 2}))
    assert len(_preview_json(path, "--count", "10")) == 2


def test_several_documents_give_an_object_in_file_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _doc({"schedule": "0 0 * * *"}, name="b"),
        _doc({"schedule": "0 1 * * *"}, name="a"),
    )
    value = _preview_json(path, "--count", "1")
    assert list(value) == ["ns/b", "ns/a"]
    assert value == {"ns/b": ["2027-01-02T00:00:00Z"], "ns/a": ["2027-01-01T01:00:00Z"]}


def test_json_shape_for_one_and_several() -> None:
    one = preview_documents(
        [_doc({"schedule": "0 0 * * *"})], count=2, start=NOW, default_namespace="x"
    )
    assert preview_json(one) == ["2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z"]
    two = preview_documents(
        [_doc({"schedule": "0 0 * * *"}, name="a"), _doc({"schedule": "0 0 * * *"}, name="b")],
        count=1,
        start=NOW,
        default_namespace="x",
    )
    assert isinstance(preview_json(two), dict)


def test_namespace_flag_fills_in_documents_without_one(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _doc({"schedule": "0 0 * * *"}, name="a", namespace=None),
        _doc({"schedule": "0 0 * * *"}, name="b", namespace="own"),
    )
    assert set(_preview_json(path, "-n", "team")) == {"team/a", "own/b"}


def test_other_kinds_are_passed_over_and_lists_are_flattened(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        yaml.safe_dump_all(
            [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
                {"apiVersion": "v1", "kind": "List", "items": [_doc({"schedule": "0 0 * * *"})]},
            ]
        )
    )
    assert _preview_json(path, "--count", "1") == ["2027-01-02T00:00:00Z"]


def test_stdin_is_read_with_dash() -> None:
    code, out, _ = _cli(
        "preview",
        "-f",
        "-",
        "-o",
        "json",
        "--count",
        "1",
        stdin=yaml.safe_dump(_doc({"schedule": "0 0 * * *"})),
    )
    assert code == 0
    assert json.loads(out) == ["2027-01-02T00:00:00Z"]


def test_invalid_spec_names_the_field_and_exits_1(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _doc({"schedule": "0 0 * * *"}, name="ok"),
        _doc({"every": {"period": "Week"}}, name="bad"),
    )
    code, out, err = _cli("preview", "-f", str(path))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        'Error: jobschedule "bad": spec.every.weekdays: required when period is Week'
    ]


def test_bad_time_zone_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc({"schedule": "0 0 * * *", "timeZone": "Mars/Olympus"}))
    code, _, err = _cli("preview", "-f", str(path))
    assert code == 1 and "spec.timeZone" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no JobSchedule"),
        ("kind: ConfigMap\napiVersion: v1\n", "no JobSchedule"),
        ("a: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "not an object"),
    ],
)
def test_files_without_schedules_are_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    code, _, err = _cli("preview", "-f", str(path))
    assert code == 1 and message in err and len(err.splitlines()) == 1


def test_duplicate_schedules_are_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc({"schedule": "0 0 * * *"}), _doc({"schedule": "0 1 * * *"}))
    code, _, err = _cli("preview", "-f", str(path))
    assert code == 1 and "more than once" in err


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    code, _, err = _cli("preview", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1 and err.startswith("Error: cannot read") and len(err.splitlines()) == 1


def test_from_parsing() -> None:
    assert parse_from(None, now=NOW) == NOW
    assert parse_from("now", now=NOW) == NOW
    assert parse_from("2027-05-01T10:00:00", now=NOW) == datetime(2027, 5, 1, 10, tzinfo=UTC)
    assert parse_from("2027-05-01T12:00:00+02:00", now=NOW) == datetime(2027, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(PreviewError, match="--from"):
        parse_from("tomorrow", now=NOW)


def test_from_that_is_invalid_exits_1(tmp_path: Path) -> None:
    code, _, err = _cli("preview", "-f", str(EXAMPLES / "cron.yaml"), "--from", "soon")
    assert code == 1 and err.startswith("Error: --from")


def test_preview_works_without_any_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, _ = _cli(
        "preview",
        "-f",
        str(EXAMPLES / "run-at.yaml"),
        "-o",
        "json",
        "--from",
        "2026-06-01T00:00:00Z",
    )
    assert code == 0 and json.loads(out) == ["2027-01-01T14:00:00Z"]


def test_a_chained_schedule_is_previewed_as_running_after_its_upstreams() -> None:
    code, out, err = _cli("preview", "-f", str(EXAMPLES / "chain.yaml"), "--count", "2")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()]
    report = [r for r in rows if r[:2] == ["default", "report"]]
    assert report == [["default", "report", "after", "extract,", "load", "<none>", "<none>",
                       "<none>", "<none>", "<none>"]]  # fmt: skip
    notes = [line for line in out.splitlines() if line.startswith("default/")]
    assert notes[0].startswith("default/load runs after its upstreams: once a run of extract")
    assert any(
        n.startswith("default/report runs after its upstreams: once extract, load") for n in notes
    )
    assert "default/extract" not in [n.split()[0] for n in notes]  # on the clock only
    assert _preview_json(EXAMPLES / "chain.yaml")["default/report"] == []


def test_the_table_notes_a_run_dst_repeats(tmp_path: Path) -> None:
    spec = {
        "every": {"period": "Day", "times": ["01:45"]},
        "timeZone": "Australia/Lord_Howe",
        "dst": {"repeatedTime": "Both"},
        "jobTemplate": {},
    }
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(_doc(spec)))
    code, out, err = _cli(
        "preview", "-f", str(path), "--from", "2025-04-05T00:00:00Z", "--count", "3"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[-1] == "NOTE"
    assert "the first, at +11:00" in lines[1]
    assert "the second, at +10:30" in lines[2]
    assert "occurs twice" not in lines[3]


# --- calendars, offline -----------------------------------------------------------------------


CALENDAR = {
    "apiVersion": "jobwarden.io/v1alpha1",
    "kind": "JobCalendar",
    "metadata": {"name": "xmas"},
    "spec": {"yearly": ["12-25"]},
}


def test_preview_explains_a_move_by_a_calendar_given_as_a_file(tmp_path: Path) -> None:
    schedule = _doc(
        {
            "every": {"period": "Month", "monthDays": [25], "times": ["09:00"]},
            "calendars": ["xmas"],
            "calendarPolicy": "NextBusinessDay",
        },
        name="gifts",
    )
    path = _write(tmp_path, schedule)
    calendar = tmp_path / "calendars.yaml"
    calendar.write_text(yaml.safe_dump(CALENDAR))
    start = ("--from", "2027-12-01T00:00:00Z", "--count", "2")
    code, out, err = _cli("preview", "-f", str(path), "--calendar", str(calendar), *start)
    assert code == 0, err
    first = out.splitlines()[1]
    assert "2027-12-27T09:00:00Z" in first and first.endswith("moved from 2027-12-25: xmas")
    # Without the calendar the preview refuses, naming the entry and the way out.
    code, _, err = _cli("preview", "-f", str(path), *start)
    assert code != 0
    assert "spec.calendars[0]: JobCalendar 'xmas' does not exist" in err
    assert "--calendar FILE" in err
