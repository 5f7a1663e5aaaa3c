"""Argument handling and the commands' effects, against a recording fake client."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from jobwarden import labels
from jobwarden.cli.errors import CliError
from jobwarden.cli.kubeconfig import ConnectOptions
from jobwarden.cli.main import run
from jobwarden.cli.parser import build_parser, connect_options
from tests.support.plugin import COMMANDS, FakeClient

NOW = datetime(2027, 1, 1, 12, 0, 0, tzinfo=UTC)


def _schedule(name: str = "nightly", namespace: str = "team", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "jobwarden.io/v1alpha1",
        "kind": "JobSchedule",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "creationTimestamp": "2026-12-31T12:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {}},
        "status": status,
    }


def _cli(fake: FakeClient, *argv: str) -> tuple[int, str, str, list[ConnectOptions]]:
    out, err = io.StringIO(), io.StringIO()
    seen: list[ConnectOptions] = []

    def connector(options: ConnectOptions) -> Any:
        seen.append(options)
        return fake

    code = run(list(argv), out=out, err=err, connector=connector, clock=lambda: NOW)
    return code, out.getvalue(), err.getvalue(), seen


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "ns1", "list"],
        ["list", "-n", "ns1"],
        ["--namespace", "ns1", "list"],
        ["list", "--namespace=ns1"],
    ],
)
def test_namespace_flag_before_or_after_the_command(argv: list[str]) -> None:
    assert connect_options(build_parser().parse_args(argv)).namespace == "ns1"


def test_a_flag_after_the_command_wins_and_none_given_means_unset() -> None:
    args = build_parser().parse_args(["-n", "a", "--context", "c1", "list", "-n", "b"])
    options = connect_options(args)
    assert (options.namespace, options.context) == ("b", "c1")
    assert connect_options(build_parser().parse_args(["list"])).namespace is None


def test_connection_flags_reach_the_client() -> None:
    args = build_parser().parse_args(
        [
            "describe",
            "x",
            "--kubeconfig",
            "/k",
            "--context",
            "c",
            "--as",
            "u",
            "--as-group",
            "g",
            "--request-timeout",
            "5s",
        ]
    )
    options = connect_options(args)
    assert (
        options.kubeconfig,
        options.context,
        options.as_user,
        options.as_groups,
        options.request_timeout,
    ) == ("/k", "c", "u", ("g",), 5.0)


def test_dashboard_defaults_to_a_free_port_in_the_contexts_namespace() -> None:
    args = build_parser().parse_args(["dashboard"])
    assert (args.port, args.open, args.all_namespaces) == (0, False, False)
    args = build_parser().parse_args(["dashboard", "-A", "--port", "8765", "--open"])
    assert (args.port, args.open, args.all_namespaces) == (8765, True, True)


def test_watch_timeout_is_hidden_but_parsed() -> None:
    parser = build_parser()
    assert parser.parse_args(["list", "-w", "--watch-timeout", "3s"]).watch_timeout == 3.0
    assert parser.parse_args(["describe", "x", "--watch-timeout", "2"]).watch_timeout == 2.0
    help_text = io.StringIO()
    parser._subparsers._group_actions[0].choices["list"].print_help(help_text)  # type: ignore[union-attr]
    assert "--watch-timeout" not in help_text.getvalue()
    assert "--watch" in help_text.getvalue()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["frobnicate"], "invalid choice"),
        (["list", "--bogus"], "unrecognized arguments"),
        (["describe"], "NAME"),
        (["preview"], "-f/--filename"),
        (["preview", "-f", "x", "--count", "0"], "at least 1"),
        (["preview", "-f", "x", "--count", "many"], "whole number"),
        (["list", "-o", "table"], "invalid choice"),
        (["health", "--since", "yesterday"], "invalid duration"),
        (["dashboard", "--port", "70000"], "between 0 and 65535"),
        (["dashboard", "--port", "http"], "not a port number"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        run(argv, out=io.StringIO(), err=io.StringIO())
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("Error: ") and fragment in err


def test_no_command_prints_help() -> None:
    out = io.StringIO()
    assert run([], out=out, err=io.StringIO()) == 0
    for command in COMMANDS:
        assert command in out.getvalue()


# --- actions -------------------------------------------------------------------------------


def test_run_sets_a_fresh_run_now_token_in_metadata_only() -> None:
    fake = FakeClient(objects=[_schedule()])
    code, out, _, _ = _cli(fake, "run", "nightly")
    code2, _, _, _ = _cli(fake, "run", "nightly")
    assert code == code2 == 0
    (ns, name, first), (_, _, second) = fake.patches
    assert (ns, name) == ("team", "nightly")
    assert set(first) == {"metadata"}
    token = first["metadata"]["annotations"][labels.RUN_NOW_ANNOTATION]
    assert token and token != second["metadata"]["annotations"][labels.RUN_NOW_ANNOTATION]
    assert (
        f"jobschedule.jobwarden.io/nightly run requested ({labels.RUN_NOW_ANNOTATION}="
        f"{token})" in out
    )


def test_suspend_patches_spec_suspend() -> None:
    fake = FakeClient(objects=[_schedule()])
    assert _cli(fake, "suspend", "nightly")[0] == 0
    assert fake.patches == [("team", "nightly", {"spec": {"suspend": True}})]


def test_resume_of_a_user_suspension_only_patches_spec() -> None:
    fake = FakeClient(objects=[_schedule()])
    code, out, _, _ = _cli(fake, "resume", "nightly")
    assert code == 0
    assert fake.patches == [("team", "nightly", {"spec": {"suspend": False}})]
    assert labels.RESUME_ANNOTATION not in out


def test_resume_lifts_the_operators_suspension_with_a_token() -> None:
    fake = FakeClient(objects=[_schedule(suspendedByOperator={"suspended": True})])
    code, out, _, _ = _cli(fake, "resume", "nightly")
    assert code == 0
    ((_, _, patch),) = fake.patches
    assert patch["spec"] == {"suspend": False}
    assert patch["metadata"]["annotations"][labels.RESUME_ANNOTATION]
    assert labels.RESUME_ANNOTATION in out


def test_terminate_sets_token_and_clears_a_previous_force() -> None:
    fake = FakeClient(objects=[_schedule(active=[{"name": "j1"}, {"name": "j2"}])])
    code, out, _, _ = _cli(fake, "terminate", "nightly")
    assert code == 0
    annotations = fake.patches[0][2]["metadata"]["annotations"]
    assert annotations[labels.TERMINATE_ANNOTATION]
    # None in a merge patch deletes the key.
    assert annotations[labels.TERMINATE_GRACE_ANNOTATION] is None
    assert "for 2 active run(s)" in out


def test_terminate_force_sets_grace_zero() -> None:
    fake = FakeClient(objects=[_schedule()])
    assert _cli(fake, "terminate", "nightly", "--force")[0] == 0
    annotations = fake.patches[0][2]["metadata"]["annotations"]
    assert annotations[labels.TERMINATE_GRACE_ANNOTATION] == "0"
    assert annotations[labels.TERMINATE_ANNOTATION]


@pytest.mark.parametrize("command", ["run", "suspend", "resume", "terminate", "describe"])
def test_unknown_schedule_is_one_error_line(command: str) -> None:
    fake = FakeClient(objects=[_schedule()])
    code, out, err, _ = _cli(fake, command, "missing")
    assert code == 1 and out == ""
    assert err == 'Error: jobschedule "missing" not found in namespace "team"\n'
    assert fake.patches == []


# --- reading -------------------------------------------------------------------------------


def test_list_uses_the_client_namespace_and_all_namespaces() -> None:
    fake = FakeClient(objects=[_schedule("a"), _schedule("b", "other")])
    code, out, _, _ = _cli(fake, "list")
    assert code == 0 and fake.listed == ["team"]
    assert out.splitlines()[0].startswith("NAME ")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["a"]
    code, out, _, _ = _cli(fake, "list", "-A")
    assert fake.listed[-1] is None
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["other", "b"], ["team", "a"]]


def test_list_of_nothing_says_so_on_stderr() -> None:
    code, out, err, _ = _cli(FakeClient(), "list")
    assert (code, out) == (0, "")
    assert err == "No resources found in team namespace.\n"


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_list_output_is_a_kubectl_list_without_managed_fields(output: str) -> None:
    fake = FakeClient(objects=[_schedule("a")])
    code, out, _, _ = _cli(fake, "list", "-o", output)
    data = json.loads(out) if output == "json" else yaml.safe_load(out)
    assert code == 0 and data["kind"] == "List"
    assert [i["metadata"]["name"] for i in data["items"]] == ["a"]
    assert "managedFields" not in data["items"][0]["metadata"]


def test_list_watch_prints_the_table_then_a_row_per_change() -> None:
    changed = _schedule("a", lastResult="Succeeded")
    changed["metadata"]["resourceVersion"] = "2"
    fake = FakeClient(
        objects=[_schedule("a")], watches=[[("MODIFIED", changed), ("MODIFIED", changed)]]
    )
    code, out, _, _ = _cli(fake, "list", "-w", "--watch-timeout", "1")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("NAME")
    assert len(lines) == 3  # header, first row, one row for the change (the repeat is quiet)
    assert "<none>" in lines[1] and "Succeeded" in lines[2]
    # The change's row keeps the columns of the first table.
    age_column = lines[0].index("AGE")
    assert lines[1][age_column:] == lines[2][age_column:] == "24h"


def test_describe_watch_reprints_on_change() -> None:
    changed = _schedule("a", phase="Suspended")
    changed["metadata"]["resourceVersion"] = "2"
    fake = FakeClient(objects=[_schedule("a")], watches=[[("MODIFIED", changed)]])
    code, out, _, _ = _cli(fake, "describe", "a", "-w", "--watch-timeout", "1")
    assert code == 0
    first, second = out.split("\n---\n")
    assert "Phase:                  <none>" in first
    assert "Phase:                  Suspended" in second


def test_health_output_json() -> None:
    fake = FakeClient(
        objects=[
            _schedule("a", health={"state": "Healthy"}),
            _schedule("b", health={"state": "Unhealthy", "reason": "X"}),
        ]
    )
    code, out, _, _ = _cli(fake, "health", "-o", "json")
    data = json.loads(out)
    assert code == 0
    assert data["schedulesByHealth"] == {"Healthy": 1, "Degraded": 0, "Unhealthy": 1, "Unknown": 0}
    assert [a["name"] for a in data["needsAttention"]] == ["b"]


def test_client_errors_are_one_line() -> None:
    def broken(options: ConnectOptions) -> Any:
        raise CliError("cannot reach the Kubernetes API server at https://x: connection refused")

    err = io.StringIO()
    code = run(["list"], out=io.StringIO(), err=err, connector=broken)
    assert code == 1
    assert err.getvalue() == (
        "Error: cannot reach the Kubernetes API server at https://x: connection refused\n"
    )
