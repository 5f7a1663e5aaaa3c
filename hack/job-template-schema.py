#!/usr/bin/env python3
"""Type ``spec.jobTemplate`` in the CRD with the real batch/v1 JobTemplateSpec schema.

    python hack/job-template-schema.py --from-cluster  # from the API server KUBECONFIG names
    python hack/job-template-schema.py --openapi FILE  # from a saved /openapi/v3/apis/batch/v1
    python hack/job-template-schema.py                 # from the Go module cache
    python hack/job-template-schema.py --check ...     # exit 1 if the CRD is out of date

The source is the OpenAPI v3 document of the Kubernetes version the control
plane is built from. The CRD holds what the API server serves (it carries
the enums of fields such as restartPolicy, which the copy in the Go module
cache, k8s.io/kubernetes@VERSION/api/openapi-spec/v3, lacks);
tests/cluster/test_admission_bounds.py compares it with the live API
server's, and tests/unit/test_crd.py with the module cache's, apart from
enums and descriptions. The conversion makes the schema structural, as a
CRD must be:

* ``$ref`` (and ``allOf: [$ref]``) are inlined; the outer description wins;
* IntOrString and Quantity become ``x-kubernetes-int-or-string`` (Quantity
  keeps its pattern, as controller-gen writes it);
* defaults are dropped (the Job API applies them when the Job is created),
  except those of list-map keys, which a CRD requires;
* markers a CRD refuses (patch strategies, unions, group-version-kind,
  readOnly) are dropped;
* descriptions are kept whole for the fields of the JobSpec, and cut to
  their first sentence below it (``kubectl explain cronjob.spec.jobTemplate``
  has the rest). With every description whole the CRD is about 320 KB of
  JSON, over the 256 KiB that ``kubectl apply``'s last-applied annotation may
  hold; this way it is about 195 KB (figures in docs/api.md).

Then ``python hack/render-manifests.py`` copies the CRD into the chart and
manifests/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CRD = ROOT / "crds" / "jobschedules.jobwarden.io.yaml"
KUBERNETES_VERSION = "v1.34.4"
ROOT_SCHEMA = "io.k8s.api.batch.v1.JobTemplateSpec"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# Schemas whose fields keep their whole descriptions (see the module docstring for why not all).
DESCRIBED = frozenset({"JobTemplateSpec", "JobSpec", "PodTemplateSpec"})
# What a CRD's JSONSchemaProps accepts from the OpenAPI document, and nothing else.
KEPT = frozenset(
    {
        "type",
        "format",
        "description",
        "properties",
        "items",
        "additionalProperties",
        "required",
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)
# Where the CRD file's jobTemplate block starts (its indentation is kept).
BLOCK_KEY = "jobTemplate:"
BLOCK_INDENT = 16


class Converter:
    """Inlines one OpenAPI document's schemas into a structural CRD schema."""

    def __init__(self, schemas: dict[str, Any], *, described: frozenset[str]) -> None:
        self.schemas = schemas
        self.described = described

    def schema(self, name: str, *, stack: tuple[str, ...] = ()) -> dict[str, Any]:
        """The named schema inlined; descriptions of its own fields only if it is described."""
        if name in stack:
            raise SystemExit(f"recursive schema {name}: a CRD cannot hold it")
        source = self.schemas[name]
        if name in (INT_OR_STRING, QUANTITY):
            out: dict[str, Any] = {"x-kubernetes-int-or-string": True}
            if name == QUANTITY:
                out = {
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                    "pattern": QUANTITY_PATTERN,
                    "x-kubernetes-int-or-string": True,
                }
            return out
        described = name.rsplit(".", 1)[-1] in self.described
        out = self.node(source, stack=(*stack, name), described=described)
        out.pop("description", None)  # the field that holds it describes it
        return out

    def node(
        self, source: dict[str, Any], *, stack: tuple[str, ...], described: bool
    ) -> dict[str, Any]:
        ref = source.get("$ref") or next(
            (part["$ref"] for part in source.get("allOf", []) if "$ref" in part), None
        )
        if ref is not None:
            out = self.schema(ref.rsplit("/", 1)[-1], stack=stack)
            if "description" in source:
                text = source["description"]
                out = {"description": text if described else first_sentence(text), **out}
            return out
        out = {}
        for key, value in source.items():
            if key not in KEPT:
                continue
            if key == "description":
                out[key] = value if described else first_sentence(value)
            elif key == "properties":
                out[key] = {
                    k: self.node(v, stack=stack, described=described) for k, v in value.items()
                }
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                out[key] = self.node(value, stack=stack, described=described)
            else:
                out[key] = value
        keys = out.get("x-kubernetes-list-map-keys")
        if keys is not None:
            self._keep_key_defaults(source, out, keys)
        return out

    def _keep_key_defaults(
        self, source: dict[str, Any], out: dict[str, Any], keys: list[str]
    ) -> None:
        """A list-map key must be required or defaulted: keep the default it has."""
        raw_item = source["items"]
        ref = raw_item.get("$ref") or raw_item["allOf"][0]["$ref"]
        raw_props = self.schemas[ref.rsplit("/", 1)[-1]]["properties"]
        required = set(out["items"].get("required", []))
        for key in keys:
            if key in required:
                continue
            if "default" not in raw_props[key]:
                raise SystemExit(f"list-map key {key} is neither required nor defaulted")
            out["items"]["properties"][key]["default"] = raw_props[key]["default"]


def first_sentence(text: str) -> str:
    """The first sentence of a description: what a field is, without the details."""
    paragraph = text.split("\n\n", 1)[0]
    match = re.match(r"(.+?\.)(\s|$)", paragraph, re.DOTALL)
    return " ".join((match.group(1) if match else paragraph).split())


def load_openapi(path: Path | None, *, from_cluster: bool = False) -> dict[str, Any]:
    """The batch/v1 OpenAPI document: from a file, the cluster, or the Go module cache."""
    if from_cluster:
        text = subprocess.run(
            ["kubectl", "get", "--raw", "/openapi/v3/apis/batch/v1"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    else:
        if path is None:
            gomodcache = (
                os.environ.get("GOMODCACHE")
                or subprocess.run(
                    ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
                ).stdout.strip()
            )
            path = (
                Path(gomodcache)
                / f"k8s.io/kubernetes@{KUBERNETES_VERSION}"
                / "api/openapi-spec/v3/apis__batch__v1_openapi.json"
            )
        text = path.read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def job_template_schema(openapi: dict[str, Any], *, crd_node: dict[str, Any]) -> dict[str, Any]:
    """The jobTemplate node: the generated schema under the CRD's own descriptions."""
    schemas = openapi["components"]["schemas"]
    out = Converter(schemas, described=DESCRIBED).schema(ROOT_SCHEMA)
    # The CRD's words say what the operator does with each part; keep them.
    out["description"] = crd_node["description"]
    out["required"] = ["spec"]
    props = out["properties"]
    for part in ("metadata", "spec"):
        props[part]["description"] = crd_node["properties"][part]["description"]
    template = props["spec"]["properties"]["template"]
    template["description"] = crd_node["properties"]["spec"]["properties"]["template"][
        "description"
    ]
    return {k: out[k] for k in ("type", "description", "required", "properties")}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_block(node: dict[str, Any]) -> str:
    # Keys sorted: the API server and the module cache list them in different orders.
    text = yaml.dump(
        {"jobTemplate": node}, Dumper=_Dumper, sort_keys=True, width=100, allow_unicode=True
    )
    pad = " " * BLOCK_INDENT
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def replace_block(crd_text: str, block: str) -> str:
    """``crd_text`` with its jobTemplate block (up to the next less-indented key) replaced."""
    lines = crd_text.splitlines(True)
    start = next(
        i
        for i, line in enumerate(lines)
        if line.strip() == BLOCK_KEY and len(line) - len(line.lstrip()) == BLOCK_INDENT
    )
    end = start + 1
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > BLOCK_INDENT
    ):
        end += 1
    return "".join(lines[:start]) + block + "".join(lines[end:])


def generate(openapi: dict[str, Any], crd_text: str) -> str:
    crd = yaml.load(crd_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    node = job_template_schema(openapi, crd_node=spec["properties"]["jobTemplate"])
    return replace_block(crd_text, render_block(node))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openapi", type=Path, help="an /openapi/v3/apis/batch/v1 document")
    parser.add_argument(
        "--from-cluster", action="store_true", help="read it from the API server (kubectl)"
    )
    parser.add_argument("--check", action="store_true", help="fail if the CRD is out of date")
    args = parser.parse_args(argv)
    current = CRD.read_text()
    wanted = generate(load_openapi(args.openapi, from_cluster=args.from_cluster), current)
    if args.check:
        if wanted != current:
            print(f"{CRD.relative_to(ROOT)} is out of date: run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    CRD.write_text(wanted)
    print(f"wrote {CRD.relative_to(ROOT)} ({len(wanted.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
