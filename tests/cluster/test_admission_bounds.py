"""Bounds at admission, on the real API server.

* ``spec.jobTemplate`` in crds/ is exactly what hack/job-template-schema.py
  makes of the batch/v1 OpenAPI this API server serves (no module cache
  needed), so the template is checked as a CronJob's is;
* garbage in a template is pruned and deep nesting cannot be stored;
* every maximum of the spec is refused at apply, naming the field, and a
  value at the maximum is admitted;
* the CRD installs with client-side ``kubectl apply`` (its last-applied
  annotation must fit 256 KiB).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.kube import Cluster
from tests.support.schedules import schedule

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "jobschedules.jobwarden.io.yaml"
ANNOTATION_LIMIT = 256 * 1024


def _generator() -> ModuleType:
    loaded = importlib.util.spec_from_file_location(
        "job_template_schema", ROOT / "hack" / "job-template-schema.py"
    )
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def test_job_template_schema_is_the_api_servers(cluster: Cluster) -> None:
    served = json.loads(cluster.kubectl("get", "--raw", "/openapi/v3/apis/batch/v1").stdout)
    text = CRD.read_text()
    assert _generator().generate(served, text) == text, (
        "crds/ differs from this API server's JobTemplateSpec: "
        "run python hack/job-template-schema.py --from-cluster"
    )


def _nested(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        inner = {"x": inner}
    return inner


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _garbage_manifest() -> dict[str, Any]:
    manifest = schedule("garbage", schedule="0 0 1 1 *")
    template = manifest["spec"]["jobTemplate"]
    template["garbage"] = _nested(200)
    template["metadata"] = {"labels": {"team": "a"}, "junk": _nested(50)}
    template["spec"]["notAJobField"] = {"a": 1}
    pod_spec = template["spec"]["template"]["spec"]
    pod_spec["containers"][0]["deep"] = _nested(500)
    pod_spec["volumes"] = [{"name": "v", "emptyDir": {"medium": "Memory", "junk": _nested(20)}}]
    return manifest


def test_garbage_in_the_template_is_refused_by_kubectl_naming_each_field(
    cluster: Cluster, namespace: str
) -> None:
    """kubectl asks for strict field validation, as it does for a CronJob's template."""
    # JSON: YAML's dumper recurses, and 500 levels are past Python's limit.
    result = cluster.apply(json.dumps(_garbage_manifest()), namespace=namespace, check=False)
    assert result.returncode != 0, result.stdout
    for field in (
        "spec.jobTemplate.garbage",
        "spec.jobTemplate.metadata.junk",
        "spec.jobTemplate.spec.notAJobField",
        "spec.jobTemplate.spec.template.spec.containers[0].deep",
        "spec.jobTemplate.spec.template.spec.volumes[0].emptyDir.junk",
    ):
        assert f'unknown field "{field}"' in result.stderr, result.stderr


def test_garbage_and_deep_nesting_in_the_template_are_pruned_without_validation(
    cluster: Cluster, namespace: str
) -> None:
    """A client that skips field validation gets its garbage pruned: nothing deep is stored."""
    cluster.kubectl(
        "apply", "--validate=false", "-n", namespace, "-f", "-",
        input=json.dumps(_garbage_manifest()),
    )  # fmt: skip
    stored = cluster.schedule(namespace, "garbage")["spec"]["jobTemplate"]
    assert "garbage" not in stored and "notAJobField" not in stored["spec"]
    assert stored["metadata"] == {"labels": {"team": "a"}}
    stored_pod = stored["spec"]["template"]["spec"]
    assert "deep" not in stored_pod["containers"][0]
    assert stored_pod["volumes"] == [{"name": "v", "emptyDir": {"medium": "Memory"}}]
    assert _depth(stored) < 20


def test_a_wrongly_typed_template_is_refused_naming_the_field(
    cluster: Cluster, namespace: str
) -> None:
    manifest = schedule("typed", schedule="0 0 1 1 *")
    manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] = {
        "deep": _nested(30)
    }
    result = cluster.apply(manifest, namespace=namespace, check=False)
    assert result.returncode != 0, result.stdout
    assert "spec.jobTemplate.spec.template.spec.containers[0].image" in result.stderr


TOO_BIG: list[tuple[str, dict[str, Any], str]] = [
    ("deadline", {"startingDeadlineSeconds": 10**15}, "spec.startingDeadlineSeconds"),
    ("staleAfter days", {"staleAfter": "5000000d"}, "spec.staleAfter"),
    ("staleAfter sum", {"staleAfter": "3650d1s"}, "spec.staleAfter"),
    ("endAt 9999", {"endAt": "9999-12-31T23:59:59Z"}, "spec.endAt"),
    ("startAt year 1", {"startAt": "0001-01-01T00:00:00+05:00"}, "spec.startAt"),
    ("exclude 9999", {"exclude": ["9999-12-31"]}, "spec.exclude"),
    ("jitter", {"jitterSeconds": 86401}, "spec.jitterSeconds"),
    ("maxExecutions", {"maxExecutions": 10**12}, "spec.maxExecutions"),
    ("historyLimit", {"historyLimit": 1001}, "spec.historyLimit"),
]


@pytest.mark.parametrize(("fields", "field"), [pytest.param(f, n, id=i) for i, f, n in TOO_BIG])
def test_beyond_a_maximum_is_refused_naming_the_field(
    cluster: Cluster, namespace: str, fields: dict[str, Any], field: str
) -> None:
    result = cluster.apply(
        schedule("big", schedule="0 0 1 1 *", **fields), namespace=namespace, check=False
    )
    assert result.returncode != 0, result.stdout
    assert field in result.stderr, result.stderr


@pytest.mark.parametrize(
    "fields",
    [
        {"runAt": "9999-12-31T23:59:59-05:00"},
        {"runAt": "3000-01-01T00:00:00Z"},
        {"every": {"period": "Day", "interval": 1001}},
    ],
    ids=["runAt-9999-offset", "runAt-3000", "interval"],
)
def test_other_forms_beyond_a_maximum_are_refused(
    cluster: Cluster, namespace: str, fields: dict[str, Any]
) -> None:
    result = cluster.apply(schedule("big", **fields), namespace=namespace, check=False)
    assert result.returncode != 0, result.stdout
    assert f"spec.{next(iter(fields))}" in result.stderr, result.stderr


def test_the_maxima_themselves_are_admitted(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        schedule(
            "at-the-bounds",
            schedule="0 0 1 1 *",
            startingDeadlineSeconds=315360000,
            staleAfter="3650d",
            jitterSeconds=86400,
            maxExecutions=100000000,
            historyLimit=1000,
            startAt="2000-01-01T00:00:00+14:00",
            endAt="2999-12-31T23:59:59-12:00",
            exclude=["2999-12-31"],
        ),
        namespace=namespace,
    )


def test_the_crd_installs_with_client_side_apply(cluster: Cluster) -> None:
    """``kubectl apply -f manifests/`` keeps the whole CRD in an annotation of 256 KiB at most."""
    dry = cluster.kubectl(
        "apply", "--dry-run=server", "-o", "json", "-f", str(CRD)
    )  # the session installed it server-side; a client-side apply over it must still fit
    applied = json.loads(dry.stdout)
    annotation = applied["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"
    ]
    assert len(annotation.encode()) < ANNOTATION_LIMIT, len(annotation.encode())
