"""manifests/ (the `kubectl apply -f manifests/` install) as the API server judges it.

A server-side dry run validates every object against the live schemas and
admission, Pod Security included, and persists nothing. The bundle installs
into its own namespace, ``jobwarden-system``, which a dry run cannot create
for the objects after it; so the test moves the namespaced objects (and the
ServiceAccount the bindings name) into this test's namespace, which enforces
`restricted` as ``jobwarden-system`` does. The CRD files are dry-run as they
are: an update of the CRD this session installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.cluster._delivery import MANIFESTS, RESTRICTED, dry_run, label, object_names
from tests.support.kube import Cluster

HOME = "jobwarden-system"


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def moved(docs: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The bundle as installed into ``namespace`` instead of its own."""
    out = []
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            assert meta["name"] == HOME
            doc = {**doc, "metadata": {**meta, "name": namespace}}
        elif "namespace" in meta:
            assert meta["namespace"] == HOME, (doc["kind"], meta["name"])
            doc = {**doc, "metadata": {**meta, "namespace": namespace}}
        if "subjects" in doc:
            subjects = []
            for s in doc["subjects"]:
                assert s.get("namespace") == HOME, s
                subjects.append({**s, "namespace": namespace})
            doc = {**doc, "subjects": subjects}
        out.append(doc)
    return out


def test_crd_files_are_accepted_as_they_are(cluster: Cluster) -> None:
    docs = [d for path in sorted(MANIFESTS.glob("00-crd-*.yaml")) for d in load(path)]
    assert {d["kind"] for d in docs} == {"CustomResourceDefinition"}
    result = dry_run(cluster, docs)
    assert sorted(result.objects) == sorted(object_names(docs))
    assert result.warnings == []


def test_bundle_is_accepted_in_a_restricted_namespace(cluster: Cluster, namespace: str) -> None:
    """Every object of the bundle is valid and its pod meets the `restricted` standard."""
    label(cluster, namespace, RESTRICTED)
    bundles = sorted(MANIFESTS.glob("*.yaml"))
    docs = [d for path in bundles if not path.name.startswith("00-crd-") for d in load(path)]
    assert docs[0]["kind"] == "Namespace", "the Namespace must come first in apply order"
    labels = docs[0]["metadata"]["labels"]
    assert {k: labels.get(k) for k in RESTRICTED} == RESTRICTED
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"} <= {
        d["kind"] for d in docs
    }
    relocated = moved(docs, namespace)
    result = dry_run(cluster, relocated)
    assert sorted(result.objects) == sorted(object_names(relocated))
    assert result.warnings == [], result.warnings
