"""Reaching the test cluster: kubectl, API clients, and waiting on conditions."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config

T = TypeVar("T")


class Timeout(AssertionError):
    pass


# Every wait's ceiling is multiplied by this. A ceiling bounds how long a test
# waits for what the control plane does at its own pace (the Job controller
# setting startTime, a pod created); it is never the claim under test: claims
# about time are made from the objects' own timestamps. Two busy cores running
# four workers can stretch that pace several-fold, hence 2 unless set.
PATIENCE = float(os.environ.get("JOBWARDEN_TEST_PATIENCE") or 2)


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after
    ``timeout`` times PATIENCE seconds."""
    ceiling = timeout * PATIENCE
    deadline = time.monotonic() + ceiling
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {ceiling:g}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def holds(predicate: Callable[[], Any], *, seconds: float, what: str) -> None:
    """Fail unless ``predicate`` stays true throughout the next ``seconds``.

    For what must *not* happen (a pod must stay, a second Job must not come):
    there is no event to wait for, so the claim is checked over a window, which
    PATIENCE leaves as it is.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"{what} stopped holding"
        time.sleep(0.25)


def condition_true(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    """The object's condition of type ``kind`` if it is True (Complete, Failed, ...)."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            found: dict[str, Any] = cond
            return found
    return None


@dataclass
class Cluster:
    kubeconfig: Path
    bin_dir: Path | None
    local: bool
    _api: client.ApiClient | None = field(default=None, repr=False)

    @property
    def kubectl_path(self) -> str:
        if self.bin_dir is not None and (self.bin_dir / "kubectl").exists():
            return str(self.bin_dir / "kubectl")
        return "kubectl"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        if self.local:
            # kubectl caches discovery per host:port; a control plane made again on a
            # port an earlier one used would otherwise "not know" its CRDs.
            env["KUBECACHEDIR"] = str(self.kubeconfig.parent / "kubectl-cache")
        if self.bin_dir is not None:
            env["PATH"] = f"{self.bin_dir}:{env.get('PATH', '')}"
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, as_user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.kubectl_path, *args]
        if as_user:
            cmd += ["--as", as_user]
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env(), timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def apply(
        self, manifest: dict[str, Any] | str, *, namespace: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        return self.kubectl(*args, input=text, check=check)

    def install_crds(self, directory: Path) -> None:
        """Apply the CRDs in ``directory`` and wait until each is Established.

        Polled rather than ``kubectl wait``: right after a create the CRD has no
        conditions yet, and ``kubectl wait`` then fails at once ("<nil> is of the
        type <nil>") instead of waiting, as seen with the large jobTemplate schema.
        """
        applied = self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(directory), "-o", "name"
        )
        for name in applied.stdout.split():
            wait_for(
                lambda n=name: self._established(n),  # type: ignore[misc]
                timeout=60,
                what=f"{name} Established",
            )

    def _established(self, name: str) -> bool:
        path = '{.status.conditions[?(@.type=="Established")].status}'
        return self.kubectl("get", name, "-o", f"jsonpath={path}", check=False).stdout == "True"

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            configuration = client.Configuration()
            config.load_kube_config(
                config_file=str(self.kubeconfig), client_configuration=configuration
            )
            self._api = client.ApiClient(configuration)
        return self._api

    def schedule(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            "jobwarden.io", "v1alpha1", namespace, "jobschedules", name
        )
        return result

    def jobs(self, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        resp = client.BatchV1Api(self.api).list_namespaced_job(
            namespace, label_selector=selector or "", _preload_content=False
        )
        items: list[dict[str, Any]] = json.loads(resp.data)["items"]
        return items

    def pods(self, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        resp = client.CoreV1Api(self.api).list_namespaced_pod(
            namespace, label_selector=selector or "", _preload_content=False
        )
        items: list[dict[str, Any]] = json.loads(resp.data)["items"]
        return items

    def events(self, namespace: str, *, name: str | None = None) -> list[dict[str, Any]]:
        resp = client.CoreV1Api(self.api).list_namespaced_event(
            namespace,
            field_selector=f"involvedObject.name={name}" if name else "",
            _preload_content=False,
        )
        items: list[dict[str, Any]] = json.loads(resp.data)["items"]
        return items


def start_cluster(root: Path) -> Cluster:
    """The cluster KUBECONFIG names when asked, else the local control plane (started if down)."""
    script = root / "tests" / "controlplane" / "cluster.sh"
    if os.environ.get("JOBWARDEN_TEST_KUBECONFIG") == "1":
        path = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        return Cluster(kubeconfig=Path(path.split(os.pathsep)[0]), bin_dir=None, local=False)
    out = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"could not start the local control plane:\n{out.stderr}")
    bin_dir = subprocess.run(
        ["bash", str(script), "bin-dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Cluster(
        kubeconfig=Path(out.stdout.strip().splitlines()[-1]), bin_dir=Path(bin_dir), local=True
    )
