"""The plugin's kubeconfig handling and error messages, without a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from jobwarden.cli.client import RESOURCE, Client, _Target, connect
from jobwarden.cli.errors import CliError
from jobwarden.cli.kubeconfig import (
    ConnectOptions,
    kubeconfig_paths,
    resolve_context,
    resolve_namespace,
)
from tests.support.operator import free_port


def _kubeconfig(
    path: Path,
    *,
    current: str | None,
    contexts: dict[str, str | None],
    server: str = "https://127.0.0.1:6443",
) -> Path:
    data: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})},
            }
            for name, ns in contexts.items()
        ],
    }
    if current is not None:
        data["current-context"] = current
    path.write_text(yaml.safe_dump(data))
    return path


def test_kubeconfig_flag_beats_the_environment(tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", current="x", contexts={"x": None})
    b = _kubeconfig(tmp_path / "b", current="x", contexts={"x": None})
    options = ConnectOptions(kubeconfig=str(a), environ={"KUBECONFIG": str(b)})
    assert kubeconfig_paths(options) == [a]


def test_missing_kubeconfig_flag_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="does not exist"):
        kubeconfig_paths(ConnectOptions(kubeconfig=str(tmp_path / "nope"), environ={}))


def test_kubeconfig_list_skips_missing_files(tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", current="x", contexts={"x": None})
    listed = f"{tmp_path / 'missing'}:{a}"
    assert kubeconfig_paths(ConnectOptions(environ={"KUBECONFIG": listed})) == [a]


def test_home_kubeconfig_is_the_fallback(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    config = _kubeconfig(tmp_path / ".kube" / "config", current="x", contexts={"x": None})
    assert kubeconfig_paths(ConnectOptions(environ={"HOME": str(tmp_path)})) == [config]


def test_first_current_context_wins_like_kubectl(tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", current="one", contexts={"one": "ns-one"})
    b = _kubeconfig(tmp_path / "b", current="two", contexts={"two": "ns-two", "one": "other"})
    options = ConnectOptions(environ={"KUBECONFIG": f"{a}:{b}"})
    assert resolve_context(options, [a, b]) == ("one", "ns-one")
    assert resolve_namespace(options) == "ns-one"


def test_context_flag_picks_its_namespace(tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", current="one", contexts={"one": "ns-one", "two": "ns-two"})
    options = ConnectOptions(context="two", environ={"KUBECONFIG": str(a)})
    assert resolve_namespace(options) == "ns-two"


def test_namespace_flag_beats_the_context(tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", current="one", contexts={"one": "ns-one"})
    options = ConnectOptions(namespace="flag", environ={"KUBECONFIG": str(a)})
    assert resolve_namespace(options) == "flag"


def test_context_without_namespace_means_default(tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", current="one", contexts={"one": None})
    assert resolve_namespace(ConnectOptions(environ={"KUBECONFIG": str(a)})) == "default"


def test_unknown_context_flag_is_an_error(tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", current="one", contexts={"one": None})
    with pytest.raises(CliError, match='context "nope" does not exist'):
        resolve_namespace(ConnectOptions(context="nope", environ={"KUBECONFIG": str(a)}))
    # Offline (preview), an unusable kubeconfig just means the default namespace.
    assert (
        resolve_namespace(
            ConnectOptions(context="nope", environ={"KUBECONFIG": str(a)}), strict=False
        )
        == "default"
    )


def test_no_kubeconfig_at_all_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="no kubeconfig found"):
        connect(ConnectOptions(environ={"HOME": str(tmp_path)}))


def test_unreachable_server_is_reported_with_its_address(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    a = _kubeconfig(tmp_path / "a", current="one", contexts={"one": "ns"}, server=server)
    client = connect(ConnectOptions(environ={"KUBECONFIG": str(a)}, request_timeout=5))
    assert client.namespace == "ns"
    with pytest.raises(CliError) as exc:
        client.list_schedules(namespace="ns")
    assert exc.value.message == (
        f"cannot reach the Kubernetes API server at {server}: connection refused"
    )


def test_impersonation_headers(tmp_path: Path) -> None:
    a = _kubeconfig(tmp_path / "a", current="one", contexts={"one": None})
    client = connect(
        ConnectOptions(as_user="jane", as_groups=("devs",), environ={"KUBECONFIG": str(a)})
    )
    headers = client._api.default_headers
    assert headers["Impersonate-User"] == "jane"
    assert headers["Impersonate-Group"] == "devs"
    with pytest.raises(CliError, match="needs --as"):
        connect(ConnectOptions(as_groups=("devs",), environ={"KUBECONFIG": str(a)}))


def _error(status: int, body: Any) -> SimpleNamespace:
    return SimpleNamespace(
        status=status, reason="r", body=json.dumps(body) if not isinstance(body, str) else body
    )


@pytest.fixture
def client(tmp_path: Path) -> Client:
    a = _kubeconfig(tmp_path / "a", current="one", contexts={"one": None})
    return connect(ConnectOptions(environ={"KUBECONFIG": str(a)}))


def test_not_found_names_the_schedule_and_namespace(client: Client) -> None:
    target = _Target(verb="get", resource=RESOURCE, namespace="team", name="x")
    err = client._api_error(target, _error(404, {"details": {"name": "x"}, "message": "m"}))
    assert err.message == 'jobschedule "x" not found in namespace "team"'


def test_missing_resource_type_hints_at_the_crd(client: Client) -> None:
    target = _Target(verb="list", resource=RESOURCE, namespace="team")
    err = client._api_error(target, _error(404, "404 page not found"))
    assert "is the jobwarden CRD installed?" in err.message


def test_forbidden_says_which_verb_and_resource(client: Client) -> None:
    target = _Target(verb="patch", resource=RESOURCE, namespace="team", name="x")
    message = (
        'jobschedules.jobwarden.io "x" is forbidden: User "jane" cannot patch resource '
        '"jobschedules" in API group "jobwarden.io" in the namespace "team"'
    )
    err = client._api_error(target, _error(403, {"message": message}))
    assert err.message.startswith(
        'forbidden: cannot patch jobschedules.jobwarden.io "x" in namespace "team"'
    )
    assert 'User "jane"' in err.message
    every = _Target(verb="list", resource=RESOURCE, namespace=None)
    assert "in any namespace" in client._api_error(every, _error(403, {})).message


def test_unauthorized_and_other_errors(client: Client) -> None:
    target = _Target(verb="list", resource=RESOURCE, namespace="team")
    assert client._api_error(target, _error(401, {})).message.startswith("unauthorized")
    other = client._api_error(target, _error(500, {"message": "etcd is sad"}))
    assert other.message == f"list {RESOURCE}: 500 etcd is sad"
