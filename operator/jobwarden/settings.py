"""Operator settings, from flags with environment variables as defaults.

Every setting has one flag and one ``JOBWARDEN_*`` variable, so the same
operator is configured the same way from a shell, a Deployment or a chart.
A bad value stops the process at start with a message naming the setting,
rather than surfacing later as a confusing runtime failure.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from jobwarden.api.spec import parse_duration

# Where a pod finds its own namespace: the default home of the leader Lease.
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SettingsError(ValueError):
    """A setting with an unusable value; the message names the flag and variable."""

    def __init__(self, *, setting: str, env: str, message: str) -> None:
        super().__init__(f"setting --{setting} ({env}): {message}")
        self.setting = setting


@dataclass(frozen=True, kw_only=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    selector: str | None = None
    stale_after: timedelta = timedelta(hours=6)
    start_deadline: timedelta = timedelta(hours=1)
    sweep_interval: timedelta = timedelta(seconds=60)
    unhealthy_after: int = 3
    dry_run: bool = False
    metrics_address: tuple[str, int] = ("0.0.0.0", 8080)
    # /metrics over HTTPS for bearer tokens the API server reviews; off: plain HTTP, open.
    metrics_secure: bool = True
    metrics_cert_file: Path | None = None  # None (with no key): a self-signed pair made at start
    metrics_key_file: Path | None = None
    # Off: no namespace or schedule label on any metric (one series per result).
    metrics_schedule_labels: bool = True
    health_address: tuple[str, int] = ("0.0.0.0", 8081)
    log_format: str = "text"
    lease: str | None = None  # None: standalone, always the leader
    lease_namespace: str = "default"
    # A ConfigMap beside the Lease naming the schedules due soon, read first at start
    # (jobwarden.handlers.duesoon); None: none kept, a start reads only its listing.
    due_soon_configmap: str | None = None
    # The owner's notification sinks (a JSON file, jobwarden.notify.sinks); None: none.
    notify_sinks: Path | None = None

    @property
    def all_namespaces(self) -> bool:
        return not self.namespaces


_ENV = {
    "namespace": "JOBWARDEN_NAMESPACES",
    "selector": "JOBWARDEN_SELECTOR",
    "stale-after": "JOBWARDEN_STALE_AFTER",
    "start-deadline": "JOBWARDEN_START_DEADLINE",
    "sweep-interval": "JOBWARDEN_SWEEP_INTERVAL",
    "unhealthy-after": "JOBWARDEN_UNHEALTHY_AFTER",
    "dry-run": "JOBWARDEN_DRY_RUN",
    "metrics-address": "JOBWARDEN_METRICS_ADDRESS",
    "metrics-secure": "JOBWARDEN_METRICS_SECURE",
    "metrics-cert-file": "JOBWARDEN_METRICS_CERT_FILE",
    "metrics-key-file": "JOBWARDEN_METRICS_KEY_FILE",
    "metrics-schedule-labels": "JOBWARDEN_METRICS_SCHEDULE_LABELS",
    "health-address": "JOBWARDEN_HEALTH_ADDRESS",
    "log-format": "JOBWARDEN_LOG_FORMAT",
    "lease": "JOBWARDEN_LEASE",
    "lease-namespace": "JOBWARDEN_LEASE_NAMESPACE",
    "due-soon-configmap": "JOBWARDEN_DUE_SOON_CONFIGMAP",
    "notify-sinks": "JOBWARDEN_NOTIFY_SINKS",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jobwarden",
        description="Run the jobwarden operator. Each flag defaults to its JOBWARDEN_* variable.",
    )
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="watch this namespace (repeatable; default: all) "
        "[JOBWARDEN_NAMESPACES, comma-separated]",
    )
    p.add_argument(
        "--selector", help="only JobSchedules matching this label selector [JOBWARDEN_SELECTOR]"
    )
    p.add_argument("--stale-after", help="default stale threshold, e.g. 6h [JOBWARDEN_STALE_AFTER]")
    p.add_argument(
        "--start-deadline",
        help="default start deadline: a run whose pods are not running this long after its "
        "Job was created is NeverStarted, e.g. 1h [JOBWARDEN_START_DEADLINE]",
    )
    p.add_argument(
        "--sweep-interval", help="stale sweep interval, e.g. 60s [JOBWARDEN_SWEEP_INTERVAL]"
    )
    p.add_argument(
        "--unhealthy-after",
        help="consecutive failures that make a schedule Unhealthy [JOBWARDEN_UNHEALTHY_AFTER]",
    )
    p.add_argument(
        "--dry-run",
        action="store_const",
        const="true",
        default=None,
        help="report stale runs, never terminate them [JOBWARDEN_DRY_RUN]",
    )
    p.add_argument(
        "--metrics-address", help="HOST:PORT serving /metrics [JOBWARDEN_METRICS_ADDRESS]"
    )
    p.add_argument(
        "--metrics-secure",
        metavar="true|false",
        help="serve /metrics over HTTPS to bearer tokens allowed 'get' on /metrics "
        "(TokenReview + SubjectAccessReview); false: plain HTTP, no authentication "
        "(default true) [JOBWARDEN_METRICS_SECURE]",
    )
    p.add_argument(
        "--metrics-cert-file",
        metavar="PATH",
        help="PEM certificate for /metrics (with --metrics-key-file; default: a "
        "self-signed one made at start) [JOBWARDEN_METRICS_CERT_FILE]",
    )
    p.add_argument(
        "--metrics-key-file",
        metavar="PATH",
        help="PEM private key of --metrics-cert-file [JOBWARDEN_METRICS_KEY_FILE]",
    )
    p.add_argument(
        "--metrics-schedule-labels",
        metavar="true|false",
        help="label metrics with namespace and schedule names; false: one series per "
        "result, for very large clusters (default true) [JOBWARDEN_METRICS_SCHEDULE_LABELS]",
    )
    p.add_argument("--health-address", help="HOST:PORT serving /healthz [JOBWARDEN_HEALTH_ADDRESS]")
    p.add_argument("--log-format", help="text or json [JOBWARDEN_LOG_FORMAT]")
    p.add_argument(
        "--lease",
        metavar="NAME",
        help="elect a leader among replicas with this coordination.k8s.io Lease; "
        "empty: standalone, always acting [JOBWARDEN_LEASE]",
    )
    p.add_argument(
        "--lease-namespace",
        help="namespace of the Lease and of the due-soon list (default: the pod's own "
        "namespace, else 'default') [JOBWARDEN_LEASE_NAMESPACE]",
    )
    p.add_argument(
        "--due-soon-configmap",
        metavar="NAME",
        help="keep the schedules due soon in this ConfigMap of the Lease's namespace, and "
        "read them first at start, ahead of the listing; empty: none "
        "[JOBWARDEN_DUE_SOON_CONFIGMAP]",
    )
    p.add_argument(
        "--notify-sinks",
        metavar="PATH",
        help="JSON file of the notification sinks schedules may name in spec.notify "
        '({"sinks": [{"name", "url", "tokenFile", ...}]}); empty: none '
        "[JOBWARDEN_NOTIFY_SINKS]",
    )
    return p


def _value(args: argparse.Namespace, env: Mapping[str, str], setting: str) -> str | None:
    """The flag's value, else the variable's; blank counts as not given, in both.

    A chart or a Deployment renders an unset value as ``--lease=`` as often as
    it leaves a variable empty; either means the default, not a bad value.
    """
    raw = getattr(args, setting.replace("-", "_"))
    if raw is not None:
        text = (",".join(raw) if isinstance(raw, list) else str(raw)).strip()
        if text:
            return text
    value = env.get(_ENV[setting], "").strip()
    return value or None


def _fail(setting: str, message: str) -> SettingsError:
    return SettingsError(setting=setting, env=_ENV[setting], message=message)


def _duration(setting: str, text: str | None, default: timedelta) -> timedelta:
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise _fail(setting, str(exc)) from None


def _address(setting: str, text: str | None, default: tuple[str, int]) -> tuple[str, int]:
    if text is None:
        return default
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise _fail(setting, f"expected HOST:PORT, got {text!r}")
    return (host or "0.0.0.0", int(port))


def _int(setting: str, text: str | None, default: int | None, *, minimum: int) -> int | None:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _fail(setting, f"expected an integer, got {text!r}") from None
    if value < minimum:
        raise _fail(setting, f"must be at least {minimum}, got {value}")
    return value


def _bool(setting: str, text: str | None, *, default: bool = False) -> bool:
    if text is None:
        return default
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise _fail(setting, f"expected true or false, got {text!r}")


def _file(setting: str, text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text)
    if not path.is_file():
        raise _fail(setting, f"no such file: {text!r}")
    return path


def _own_namespace(path: Path) -> str:
    """The namespace a pod runs in, from its service account mount; 'default' elsewhere."""
    try:
        text = path.read_text().strip()
    except OSError:
        return "default"
    return text or "default"


def parse_settings(
    *, argv: Sequence[str], env: Mapping[str, str], namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE
) -> Settings:
    """Build the settings; raises SettingsError for the first bad value.

    ``namespace_file`` is where the default Lease namespace is read from.
    """
    args = _parser().parse_args(list(argv))
    lease = _value(args, env, "lease")
    if lease is not None and (len(lease) > 253 or not _DNS_SUBDOMAIN.match(lease)):
        raise _fail("lease", f"not a valid Lease name (a DNS subdomain): {lease!r}")
    lease_namespace = _value(args, env, "lease-namespace") or _own_namespace(namespace_file)
    if len(lease_namespace) > 63 or not _DNS_LABEL.match(lease_namespace):
        raise _fail("lease-namespace", f"not a valid namespace name: {lease_namespace!r}")
    due_soon = _value(args, env, "due-soon-configmap")
    if due_soon is not None and (len(due_soon) > 253 or not _DNS_SUBDOMAIN.match(due_soon)):
        raise _fail("due-soon-configmap", f"not a valid ConfigMap name: {due_soon!r}")
    namespaces_text = _value(args, env, "namespace")
    namespaces = tuple(n.strip() for n in (namespaces_text or "").split(",") if n.strip())
    log_format = (_value(args, env, "log-format") or "text").lower()
    if log_format not in {"text", "json"}:
        raise _fail("log-format", f"expected text or json, got {log_format!r}")
    sweep = _duration("sweep-interval", _value(args, env, "sweep-interval"), timedelta(seconds=60))
    if sweep < timedelta(seconds=1):
        raise _fail("sweep-interval", "must be at least 1s")
    unhealthy = _int("unhealthy-after", _value(args, env, "unhealthy-after"), 3, minimum=1)
    secure = _bool("metrics-secure", _value(args, env, "metrics-secure"), default=True)
    cert_file = _file("metrics-cert-file", _value(args, env, "metrics-cert-file"))
    key_file = _file("metrics-key-file", _value(args, env, "metrics-key-file"))
    if (cert_file is None) != (key_file is None):
        given = "metrics-cert-file" if cert_file is not None else "metrics-key-file"
        raise _fail(given, "needs --metrics-cert-file and --metrics-key-file together")
    if cert_file is not None and not secure:
        raise _fail("metrics-cert-file", "a certificate needs --metrics-secure=true")
    return Settings(
        namespaces=namespaces,
        selector=_value(args, env, "selector"),
        stale_after=_duration("stale-after", _value(args, env, "stale-after"), timedelta(hours=6)),
        start_deadline=_duration(
            "start-deadline", _value(args, env, "start-deadline"), timedelta(hours=1)
        ),
        sweep_interval=sweep,
        unhealthy_after=unhealthy if unhealthy is not None else 3,
        dry_run=_bool("dry-run", _value(args, env, "dry-run")),
        metrics_address=_address(
            "metrics-address", _value(args, env, "metrics-address"), ("0.0.0.0", 8080)
        ),
        metrics_secure=secure,
        metrics_cert_file=cert_file,
        metrics_key_file=key_file,
        metrics_schedule_labels=_bool(
            "metrics-schedule-labels",
            _value(args, env, "metrics-schedule-labels"),
            default=True,
        ),
        health_address=_address(
            "health-address", _value(args, env, "health-address"), ("0.0.0.0", 8081)
        ),
        log_format=log_format,
        lease=lease,
        lease_namespace=lease_namespace,
        due_soon_configmap=due_soon,
        notify_sinks=_file("notify-sinks", _value(args, env, "notify-sinks")),
    )
