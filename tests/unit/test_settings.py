"""Operator settings: flags over ``JOBWARDEN_*`` variables over defaults, and bad values.

A bad value has to stop the operator at start with a message that names both
ways of setting it, since whoever reads the message may have set it in a
Deployment's env or in its args and should not have to guess which.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from jobwarden.settings import Settings, SettingsError, parse_settings


@pytest.fixture
def nowhere(tmp_path: Path) -> Path:
    """A service-account namespace file that does not exist (not in a pod)."""
    return tmp_path / "namespace"


def parse(nowhere: Path, *argv: str, **env: str) -> Settings:
    return parse_settings(argv=list(argv), env=env, namespace_file=nowhere)


def test_defaults(nowhere: Path) -> None:
    settings = parse(nowhere)
    assert settings.namespaces == ()
    assert settings.all_namespaces
    assert settings.selector is None
    assert settings.stale_after == timedelta(hours=6)
    assert settings.sweep_interval == timedelta(seconds=60)
    assert settings.unhealthy_after == 3
    assert settings.dry_run is False
    assert settings.metrics_address == ("0.0.0.0", 8080)
    assert settings.health_address == ("0.0.0.0", 8081)
    assert settings.log_format == "text"
    assert settings.lease is None
    assert settings.lease_namespace == "default"


def test_every_setting_from_the_environment(nowhere: Path) -> None:
    settings = parse(
        nowhere,
        JOBWARDEN_NAMESPACES="team-a, team-b,,",
        JOBWARDEN_SELECTOR="shard=a",
        JOBWARDEN_STALE_AFTER="90m",
        JOBWARDEN_SWEEP_INTERVAL="2s",
        JOBWARDEN_UNHEALTHY_AFTER="5",
        JOBWARDEN_DRY_RUN="yes",
        JOBWARDEN_METRICS_ADDRESS="127.0.0.1:9090",
        JOBWARDEN_HEALTH_ADDRESS=":9091",
        JOBWARDEN_LOG_FORMAT="JSON",
        JOBWARDEN_LEASE="jobwarden",
        JOBWARDEN_LEASE_NAMESPACE="ops",
    )
    assert settings.namespaces == ("team-a", "team-b")
    assert not settings.all_namespaces
    assert settings.selector == "shard=a"
    assert settings.stale_after == timedelta(minutes=90)
    assert settings.sweep_interval == timedelta(seconds=2)
    assert settings.unhealthy_after == 5
    assert settings.dry_run is True
    assert settings.metrics_address == ("127.0.0.1", 9090)
    assert settings.health_address == ("0.0.0.0", 9091)  # no host: every interface
    assert settings.log_format == "json"
    assert (settings.lease, settings.lease_namespace) == ("jobwarden", "ops")


def test_every_setting_from_flags(nowhere: Path) -> None:
    settings = parse(
        nowhere,
        "-n", "team-a", "--namespace", "team-b",
        "--selector", "tier=batch",
        "--stale-after", "1h30m",
        "--sweep-interval", "10s",
        "--unhealthy-after", "2",
        "--dry-run",
        "--metrics-address", "10.0.0.1:1000",
        "--health-address", "10.0.0.1:1001",
        "--log-format", "json",
        "--lease", "jw.lease",
        "--lease-namespace", "jobwarden-system",
    )  # fmt: skip
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.selector == "tier=batch"
    assert settings.stale_after == timedelta(minutes=90)
    assert settings.sweep_interval == timedelta(seconds=10)
    assert settings.unhealthy_after == 2
    assert settings.dry_run is True
    assert settings.metrics_address == ("10.0.0.1", 1000)
    assert settings.health_address == ("10.0.0.1", 1001)
    assert settings.log_format == "json"
    assert (settings.lease, settings.lease_namespace) == ("jw.lease", "jobwarden-system")


def test_a_flag_wins_over_its_variable(nowhere: Path) -> None:
    settings = parse(
        nowhere,
        "--namespace", "flagged",
        "--stale-after", "1h",
        "--log-format", "text",
        JOBWARDEN_NAMESPACES="a,b",
        JOBWARDEN_STALE_AFTER="2h",
        JOBWARDEN_LOG_FORMAT="json",
        JOBWARDEN_UNHEALTHY_AFTER="7",
    )  # fmt: skip
    assert settings.namespaces == ("flagged",)
    assert settings.stale_after == timedelta(hours=1)
    assert settings.log_format == "text"
    assert settings.unhealthy_after == 7  # no flag given: the variable holds


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("On", True), ("0", False), ("false", False), ("NO", False)],
)
def test_dry_run_spellings(nowhere: Path, value: str, expected: bool) -> None:
    assert parse(nowhere, JOBWARDEN_DRY_RUN=value).dry_run is expected


def test_blank_values_mean_unset(nowhere: Path) -> None:
    """An empty variable or flag (a chart rendering ``--lease=`` for an unset
    value, say) is the default, not a bad value."""
    from_env = parse(nowhere, JOBWARDEN_STALE_AFTER="  ", JOBWARDEN_LEASE="", JOBWARDEN_DRY_RUN="")
    assert (from_env.stale_after, from_env.lease, from_env.dry_run) == (
        timedelta(hours=6), None, False)  # fmt: skip
    from_flags = parse(nowhere, "--lease", "", "--stale-after", " ", "--namespace", "")
    assert (from_flags.lease, from_flags.stale_after) == (None, timedelta(hours=6))
    assert from_flags.all_namespaces


def test_the_lease_namespace_defaults_to_the_pods_own(tmp_path: Path) -> None:
    file = tmp_path / "namespace"
    file.write_text("jobwarden-system\n")
    settings = parse_settings(argv=[], env={}, namespace_file=file)
    assert settings.lease_namespace == "jobwarden-system"


# (setting, bad value): each is tried as its flag and as its variable.
BAD = [
    ("stale-after", "soon"),
    ("stale-after", "0s"),
    ("stale-after", "-5m"),
    ("sweep-interval", "500ms"),
    ("sweep-interval", "0.5s"),
    ("unhealthy-after", "0"),
    ("unhealthy-after", "three"),
    ("metrics-address", "8080"),
    ("metrics-address", "localhost:99999"),
    ("metrics-address", "localhost:0"),
    ("health-address", "localhost:http"),
    ("log-format", "xml"),
    ("lease", "Not_A_Name"),
    ("lease-namespace", "a.b"),
]
VARIABLES = {
    "stale-after": "JOBWARDEN_STALE_AFTER",
    "sweep-interval": "JOBWARDEN_SWEEP_INTERVAL",
    "unhealthy-after": "JOBWARDEN_UNHEALTHY_AFTER",
    "metrics-address": "JOBWARDEN_METRICS_ADDRESS",
    "health-address": "JOBWARDEN_HEALTH_ADDRESS",
    "log-format": "JOBWARDEN_LOG_FORMAT",
    "lease": "JOBWARDEN_LEASE",
    "lease-namespace": "JOBWARDEN_LEASE_NAMESPACE",
    "dry-run": "JOBWARDEN_DRY_RUN",
}


def _check(err: SettingsError, setting: str, value: str) -> None:
    message = str(err)
    assert err.setting == setting
    assert f"--{setting}" in message
    assert VARIABLES[setting] in message
    assert value.strip() in message or "at least" in message


@pytest.mark.parametrize(("setting", "value"), BAD)
def test_a_bad_flag_names_the_flag_and_the_variable(
    nowhere: Path, setting: str, value: str
) -> None:
    with pytest.raises(SettingsError) as err:
        parse(nowhere, f"--{setting}={value}")
    _check(err.value, setting, value)


@pytest.mark.parametrize(("setting", "value"), [*BAD, ("dry-run", "maybe")])
def test_a_bad_variable_names_the_flag_and_the_variable(
    nowhere: Path, setting: str, value: str
) -> None:
    with pytest.raises(SettingsError) as err:
        parse(nowhere, **{VARIABLES[setting]: value})
    _check(err.value, setting, value)


def test_a_settings_error_is_a_value_error() -> None:
    """``main`` reports both the same way: one line on stderr and exit code 2."""
    assert issubclass(SettingsError, ValueError)


def test_an_unknown_flag_stops_with_usage(nowhere: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        parse(nowhere, "--stale-afer", "1h")
    assert stop.value.code == 2
