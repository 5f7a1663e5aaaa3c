"""The chart's admission policy and user roles, as rendered (tests/cluster/test_admission.py
proves what they do on an API server).

The policy, the aggregated roles, the plugin (cli/access.py) and the
permission table of docs/operations.md each spell the virtual subresources;
these tests hold the four to one set.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jobwarden.cli.access import permissions
from tests.unit.test_chart import ROOT, Rendered, grants, helm, template  # noqa: F401

POLICY = "jobwarden-jobschedules"
PODS = "jobwarden-operator-pods"
ACTIONS = {"runnow", "terminate", "forceterminate", "resume"}


def policy(r: Rendered) -> dict[str, Any]:
    return r.one("ValidatingAdmissionPolicy", POLICY)


def binding(r: Rendered) -> dict[str, Any]:
    return r.one("ValidatingAdmissionPolicyBinding", POLICY)


def expressions(p: dict[str, Any]) -> str:
    spec = p["spec"]
    parts = [v["expression"] for v in spec["validations"]]
    parts += [v["expression"] for v in spec.get("variables") or []]
    return "\n".join(parts)


def test_policy_is_on_by_default_and_denies(helm: Path) -> None:  # noqa: F811
    r = template(helm)
    p, b = policy(r), binding(r)
    assert p["apiVersion"] == b["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert p["spec"]["failurePolicy"] == "Fail"
    # JobSchedules only, never their status subresource (the operator's writes).
    assert p["spec"]["matchConstraints"] == {
        "resourceRules": [
            {
                "apiGroups": ["jobwarden.io"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["jobschedules"],
            }
        ]
    }
    assert b["spec"]["policyName"] == POLICY
    assert b["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in b["spec"], "all namespaces are watched: all are guarded"
    for v in p["spec"]["validations"]:
        assert v["reason"] == "Forbidden", v
        assert "messageExpression" in v, v


def test_policy_checks_each_action_and_the_template(helm: Path) -> None:  # noqa: F811
    text = expressions(policy(template(helm)))
    assert set(re.findall(r"\.subresource\('([a-z]+)'\)", text)) == ACTIONS
    assert re.findall(r"\.check\('([a-z]+)'\)", text).count("update") == len(ACTIONS)
    assert "authorizer.group('batch').resource('jobs')" in text
    assert "check('create')" in text
    for key in ("run-now", "terminate", "terminate-grace-seconds", "resume"):
        assert f"'jobwarden.io/{key}'" in text, key
    assert "serviceAccount" not in text, "the allow-list is off by default"


def test_watch_namespaces_scope_the_binding(helm: Path) -> None:  # noqa: F811
    r = template(helm, {"watchNamespaces": ["team-a", "team-b"]})
    assert binding(r)["spec"]["matchResources"] == {
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["team-a", "team-b"],
                }
            ]
        }
    }


def test_policy_switches(helm: Path) -> None:  # noqa: F811
    off = template(helm, {"admissionPolicy": {"enabled": False}})
    assert not {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} & off.kinds()
    warn = template(helm, {"admissionPolicy": {"validationActions": ["Warn", "Audit"]}})
    assert binding(warn)["spec"]["validationActions"] == ["Warn", "Audit"]
    restricted = template(helm, {"admissionPolicy": {"serviceAccounts": {"restrict": True}}})
    text = expressions(policy(restricted))
    assert "serviceAccountName" in text and "serviceAccount.orValue" in text
    assert "'jobwarden.io/allowed-service-accounts'" in text
    assert len(policy(restricted)["spec"]["validations"]) == len(ACTIONS) + 2


def test_policy_is_named_after_the_release(helm: Path) -> None:  # noqa: F811
    r = template(helm, release="shard-b")
    b = r.one("ValidatingAdmissionPolicyBinding", "shard-b-jobwarden-jobschedules")
    assert b["spec"]["policyName"] == "shard-b-jobwarden-jobschedules"
    names = {d["metadata"]["name"] for d in r.all("ValidatingAdmissionPolicy")}
    assert names == {"shard-b-jobwarden-jobschedules", "shard-b-jobwarden-operator-pods"}


def test_user_roles_split_the_actions(helm: Path) -> None:  # noqa: F811
    """edit: run now and no more; admin: every action; view: none."""
    r = template(helm)
    view = grants(r.one("ClusterRole", "jobwarden-view"))
    edit = grants(r.one("ClusterRole", "jobwarden-edit"))
    admin_role = r.one("ClusterRole", "jobwarden-admin")
    admin = grants(admin_role)
    labels = admin_role["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-edit" not in labels

    def actions(g: dict[tuple[str, str], set[str]]) -> set[str]:
        return {
            res.split("/")[1]
            for (group, res), verbs in g.items()
            if group == "jobwarden.io" and res.split("/")[-1] in ACTIONS and "update" in verbs
        }

    assert actions(view) == set()
    assert actions(edit) == {"runnow"}
    assert actions(admin) == {"terminate", "forceterminate", "resume"}
    assert set(admin) == {("jobwarden.io", f"jobschedules/{a}") for a in ACTIONS - {"runnow"}}
    assert "jobwarden-admin" not in {
        d["metadata"]["name"]
        for d in template(helm, {"rbac": {"aggregateToDefaultRoles": False}}).docs
    }


def test_plugin_and_docs_name_the_same_permissions(helm: Path) -> None:  # noqa: F811
    asked = {p.subresource for p in permissions() if p.subresource}
    assert asked == ACTIONS
    docs = (ROOT / "docs" / "operations.md").read_text()
    section = docs.split("## Permissions", 1)[1].split("\n## ", 1)[0]
    for action in ACTIONS:
        assert f"`jobschedules/{action}`" in section, action
    assert "`create` on `jobs` (batch)" in section


def test_operator_pod_writes_are_narrowed(helm: Path) -> None:  # noqa: F811
    """Only the operator's ServiceAccount is matched; only pods; update and delete."""
    r = template(helm, {"watchNamespaces": ["team-a"]}, namespace="ops")
    p = r.one("ValidatingAdmissionPolicy", PODS)
    assert p["spec"]["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["UPDATE", "DELETE"],
            "resources": ["pods"],
        }
    ]
    (condition,) = p["spec"]["matchConditions"]
    assert condition["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:ops:jobwarden'"
    )
    b = r.one("ValidatingAdmissionPolicyBinding", PODS)
    assert b["spec"]["policyName"] == PODS
    values = b["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert values == ["team-a"]
    named = template(helm, {"serviceAccount": {"create": False, "name": "custom"}})
    (condition,) = named.one("ValidatingAdmissionPolicy", PODS)["spec"]["matchConditions"]
    assert condition["expression"].endswith(":custom'")
    no_rbac = template(helm, {"rbac": {"create": False}})
    assert {d["metadata"]["name"] for d in no_rbac.all("ValidatingAdmissionPolicy")} == {POLICY}
