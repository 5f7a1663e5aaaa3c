"""A fuzzer driven by the CRD itself: specs the API server would admit, run through the operator.

Specs come from the CRD's own ``openAPIV3Schema``: hypothesis-jsonschema
draws every value, and objects are put together here from their properties
(its object strategy fails with the Hypothesis this project pins: 0.23.1
calls an internal, ``many.more()``, that Hypothesis has since removed); the
CEL rules a JSON Schema cannot say folded in where they shape what
is generated (exactly one of schedule/runAt/every/recurrences, the date-time year
range); a share of specs breaks even those, for the error path. Some fields
get valid values mixed in (:data:`MIXED_IN`), since random text that fits a
pattern is almost never a cron expression, a time zone or a calendar date.
``jobTemplate`` is drawn from a small strategy of valid templates rather
than its full Kubernetes schema (over a thousand nodes, which the operator
only copies; the API server's pruning and the depth bound of ``parse_spec``
guard it, and tests/unit/test_spec.py covers the depth).

:func:`exercise` then plays one schedule forward in simulated time, as the
scheduler would: plan, create the Jobs, let them run and finish, write the
status back, and plan again at the wake-up it asked for, with run-now and
terminate annotations arriving on the way. :func:`check_plan` states what
must hold after every plan.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from jobwarden import labels
from jobwarden.api.spec import SpecError, parse_spec
from jobwarden.api.status import ScheduleStatus, format_time
from jobwarden.reconcile import Observed, Plan, Policy, plan
from jobwarden.runs.jobs import observe_job
from jobwarden.runs.naming import is_dns_label

CRD = Path(__file__).resolve().parents[2] / "crds" / "jobschedules.jobwarden.io.yaml"
# A status must fit one API object with room to spare: etcd refuses requests
# over 1.5 MiB, and the whole JobSchedule (spec too) shares that.
STATUS_BOUND_BYTES = 1024 * 1024
FIRST = datetime(2000, 1, 1, tzinfo=UTC)
LAST = datetime(2999, 12, 31, 23, 59, tzinfo=UTC)
_YEAR_RULE = re.compile(r"^self\.matches\('(\^2\[0-9\]\{3\}-)'\)$")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Kiritimati",
         "Pacific/Chatham", "America/Santiago", "Asia/Kathmandu", "Etc/GMT+12"]  # fmt: skip
CRON_FIELDS = [
    ["*", "0", "59", "*/7", "H", "H(0-29)/10", "5-40/5", "1,2,3"],
    ["*", "0", "23", "*/5", "H", "2-3", "1,13"],
    ["*", "1", "29", "31", "L", "H", "15W", "1-7"],
    ["*", "1", "2", "12", "*/3", "FEB", "H"],
    ["*", "0", "7", "MON-FRI", "SUN", "1#3", "5L", "H"],
]
CRON_MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]


def crd_schema(part: str) -> dict[str, Any]:
    """``openAPIV3Schema.properties[part]`` of the CRD as it is in crds/."""
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    node: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return copy.deepcopy(node["properties"][part])


def json_schema(node: Any) -> Any:
    """A CRD schema node as plain JSON Schema: Kubernetes markers out, the year rule folded in."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("format", "description", "default"):
            continue
        out[key] = value if key in ("enum", "required", "pattern") else json_schema(value)
    for rule in node.get("x-kubernetes-validations", []):
        match = _YEAR_RULE.match(rule["rule"])
        if match and "pattern" in out:
            out["pattern"] = out["pattern"].replace("^[0-9]{4}-", match.group(1), 1)
    if node.get("x-kubernetes-int-or-string"):
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    return out


def _date_times() -> st.SearchStrategy[str]:
    moments = st.datetimes(FIRST.replace(tzinfo=None), LAST.replace(tzinfo=None))
    offsets = st.sampled_from(["", "Z", "+14:00", "-12:00", "+05:45"])
    return st.builds(lambda m, o: m.isoformat(timespec="seconds") + o, moments, offsets)


def _dates() -> st.SearchStrategy[str]:
    return st.dates(FIRST.date(), LAST.date()).map(lambda d: d.isoformat())


def _durations() -> st.SearchStrategy[str]:
    unit = st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", 86400)])
    return unit.flatmap(lambda u: st.integers(1, 3650 * 86400 // u[1]).map(lambda n: f"{n}{u[0]}"))


def _every(node: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A recurrence that keeps the CEL rule: weekdays with Week only, monthDays with Month only."""
    props = node["properties"]
    common = {k: from_schema(props[k]) for k in ("interval", "times")}

    def of(period: str) -> st.SearchStrategy[dict[str, Any]]:
        required: dict[str, st.SearchStrategy[Any]] = {"period": st.just(period)}
        if period == "Week":
            required["weekdays"] = from_schema(props["weekdays"])
        optional = dict(common)
        if period == "Month":
            required["monthDays"] = from_schema(props["monthDays"])
            optional["weekdaysOfMonth"] = from_schema(props["weekdaysOfMonth"])
            optional["businessDays"] = from_schema(props["businessDays"])
        return st.fixed_dictionaries(required, optional=optional)

    return st.sampled_from(["Day", "Week", "Month"]).flatmap(of)


# Valid values mixed into what a field's schema admits, by the field's path.
MIXED_IN: dict[str, st.SearchStrategy[Any]] = {
    "schedule": st.deferred(lambda: _cron()),
    "timeZone": st.sampled_from(ZONES),
    "runAt": st.deferred(_date_times),
    "startAt": st.deferred(_date_times),
    "endAt": st.deferred(_date_times),
    "exclude[]": st.deferred(_dates),
    "staleAfter": st.deferred(_durations),
    "every": st.deferred(lambda: _every(json_schema(crd_schema("spec"))["properties"]["every"])),
}


def _mostly(
    valid: st.SearchStrategy[Any], admitted: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Four in five from ``valid``: a field that is rarely valid would hide all the others."""
    return st.integers(0, 4).flatmap(lambda i: admitted if i == 0 else valid)


def values(node: dict[str, Any], path: str = "") -> st.SearchStrategy[Any]:
    """Values a (JSON Schema) node admits (objects field by field, the rest by from_schema),
    mostly the valid ones where :data:`MIXED_IN` has them."""
    admitted: st.SearchStrategy[Any]
    if node.get("type") == "object" and "properties" in node:
        required = set(node.get("required", []))
        prefix = f"{path}." if path else ""
        fields = {k: values(child, prefix + k) for k, child in node["properties"].items()}
        admitted = st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )
    else:
        admitted = from_schema(node)
    if path in MIXED_IN:
        return _mostly(MIXED_IN[path], admitted)
    if node.get("type") == "array" and f"{path}[]" in MIXED_IN:
        return _mostly(st.lists(MIXED_IN[f"{path}[]"], max_size=node["maxItems"]), admitted)
    return admitted


def _cron() -> st.SearchStrategy[str]:
    fields = st.tuples(*(st.sampled_from(choices) for choices in CRON_FIELDS)).map(" ".join)
    return st.one_of(fields, st.sampled_from(CRON_MACROS))


def job_templates() -> st.SearchStrategy[dict[str, Any]]:
    """Small valid job templates, with the parts the operator reads or writes varied."""
    names = st.from_regex(r"\A[a-z]([-a-z0-9]{0,20}[a-z0-9])?\Z")
    env = st.lists(
        st.fixed_dictionaries({"name": st.sampled_from(["A", "JOBWARDEN_SCHEDULED_TIME"]),
                               "value": st.text(max_size=8)}),
        max_size=2,
    )  # fmt: skip
    container = st.fixed_dictionaries(
        {"name": names, "image": st.just("busybox:1.36")}, optional={"env": env}
    )
    meta = st.fixed_dictionaries(
        {},
        optional={
            "labels": st.dictionaries(names, names, max_size=3),
            "annotations": st.dictionaries(names, st.text(max_size=20), max_size=3),
        },
    )
    pod = st.fixed_dictionaries(
        {"spec": st.fixed_dictionaries(
            {"restartPolicy": st.sampled_from(["Never", "OnFailure"]),
             "containers": st.lists(container, min_size=1, max_size=2)},
            optional={"initContainers": st.lists(container, max_size=1)},
        )},
        optional={"metadata": meta},
    )  # fmt: skip
    job_spec = st.fixed_dictionaries(
        {"template": pod},
        optional={
            "activeDeadlineSeconds": st.integers(1, 2**63 - 1),
            "backoffLimit": st.integers(0, 6),
        },
    )
    return st.fixed_dictionaries({"spec": job_spec}, optional={"metadata": meta})


@cache
def specs() -> st.SearchStrategy[dict[str, Any]]:
    """Specs as the CRD admits them (its schema, its CEL rules mostly), jobTemplate small."""
    schema = json_schema(crd_schema("spec"))
    props = schema["properties"]
    props.pop("jobTemplate")
    schema["required"] = [r for r in schema.get("required", []) if r != "jobTemplate"]
    forms = {name: props.pop(name) for name in ("schedule", "runAt", "every", "recurrences")}
    rest = values(schema)
    schedule = values(forms["schedule"], "schedule").map(lambda v: {"schedule": v})
    run_at = values(forms["runAt"], "runAt").map(lambda v: {"runAt": v})
    every = values(forms["every"], "every").map(lambda v: {"every": v})
    entry = st.one_of(values(forms["schedule"], "schedule").map(lambda v: {"schedule": v}), every)
    limit = forms["recurrences"]["maxItems"]
    # Entries as the schema admits them (none, or both of schedule and every, too).
    admitted = st.lists(
        values(forms["recurrences"]["items"], "recurrences[]"), min_size=1, max_size=limit
    )
    several = _mostly(st.lists(entry, min_size=1, max_size=limit), admitted).map(
        lambda v: {"recurrences": v}
    )
    one = st.one_of(schedule, run_at, every, several)
    # One in five: none or two, which the CEL rule refuses and parse_spec must too.
    other = st.one_of(st.just({}), st.builds(lambda a, b: {**a, **b}, one, one))
    when = st.one_of(one, one, one, one, other)
    return st.builds(
        lambda base, w, t: {**base, **w, "jobTemplate": t}, rest, when, job_templates()
    )


@cache
def status_validator() -> jsonschema.protocols.Validator:
    schema = json_schema(crd_schema("status"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies the status patch."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            old = result.get(key)
            result[key] = merge_patch(old if isinstance(old, Mapping) else {}, value)
        else:
            result[key] = value
    return result


@dataclass
class Run:
    """What :func:`exercise` saw, for reports and assertions."""

    valid: bool = False
    plans: int = 0
    jobs: int = 0
    status_bytes: int = 0
    names: list[str] = field(default_factory=list)


def check_plan(result: Plan, status: Mapping[str, Any]) -> None:
    """What holds after every plan: valid Job names and bodies, a status the CRD admits."""
    for start in result.starts:
        meta = start.body["metadata"]
        assert is_dns_label(meta["name"]), f"Job name {meta['name']!r} is not a DNS-1123 label"
        deadline = start.body["spec"].get("activeDeadlineSeconds")
        assert deadline is None or 0 < deadline < 2**63, deadline
        json.dumps(start.body)  # a body the API client can send
    ScheduleStatus.model_validate(dict(status))
    errors = sorted(status_validator().iter_errors(status), key=str)
    assert not errors, f"status the CRD refuses: {errors[0].message} at {list(errors[0].path)}"
    size = len(json.dumps(status, separators=(",", ":")))
    assert size <= STATUS_BOUND_BYTES, f"status is {size} bytes"


def exercise(
    spec: dict[str, Any], data: st.DataObject, *, steps: int = 6, name: str = "fuzzed"
) -> Run:
    """Play one schedule forward through ``steps`` plans; raise on any broken property."""
    run = Run()
    try:
        parse_spec(spec)
        run.valid = True
    except SpecError:
        pass  # the documented error; plan must still say so calmly, below
    now = data.draw(st.datetimes(min_value=FIRST.replace(tzinfo=None),
                                 max_value=LAST.replace(tzinfo=None)), label="now")  # fmt: skip
    now = now.replace(tzinfo=UTC)
    created = now - data.draw(st.timedeltas(timedelta(0), timedelta(days=800)), label="age")
    status: dict[str, Any] = {}
    annotations: dict[str, str] = {}
    jobs: dict[str, dict[str, Any]] = {}
    for step in range(steps):
        action = data.draw(
            st.sampled_from([None, None, labels.RUN_NOW_ANNOTATION, labels.TERMINATE_ANNOTATION,
                             labels.RESUME_ANNOTATION]), label="action")  # fmt: skip
        if action is not None:
            annotations[action] = f"t{step}"
        observed = Observed(
            namespace="ns", name=name, uid="uid-1", generation=1, created=created,
            annotations=dict(annotations), spec=spec, status=status,
        )  # fmt: skip
        result = plan(
            obj=observed,
            jobs=[observe_job(body) for body in jobs.values()],
            pending=frozenset(),
            now=now,
            policy=Policy(),
        )
        run.plans += 1
        if result.status is not None:
            status = merge_patch(status, result.status)
        check_plan(result, status)
        for start in result.starts:
            body = copy.deepcopy(start.body)
            assert body["metadata"]["name"] not in jobs, "a run was created twice"
            jobs[body["metadata"]["name"]] = body
            run.names.append(body["metadata"]["name"])
        for deletion in result.deletes:
            jobs.pop(deletion.job, None)
        _advance_jobs(jobs, now, data)
        later = now + data.draw(st.timedeltas(timedelta(seconds=1), timedelta(days=400)))
        if result.wake_at is not None and data.draw(st.booleans(), label="at wake-up"):
            later = max(result.wake_at, now + timedelta(seconds=1))
        if later > LAST:
            break
        now = later
    run.jobs = len(run.names)
    run.status_bytes = len(json.dumps(status, separators=(",", ":")))
    return run


def _advance_jobs(jobs: dict[str, dict[str, Any]], now: datetime, data: st.DataObject) -> None:
    """The Job controller's part: each running Job starts, and may succeed or fail."""
    for body in jobs.values():
        job_status = body.setdefault("status", {})
        if any(c.get("status") == "True" for c in job_status.get("conditions", [])):
            continue
        job_status.setdefault("startTime", format_time(now))
        outcome = data.draw(st.sampled_from(["Running", "Complete", "Failed"]), label="job")
        if outcome != "Running":
            job_status["conditions"] = [
                {"type": outcome, "status": "True", "lastTransitionTime": format_time(now),
                 "reason": data.draw(st.sampled_from(["", "BackoffLimitExceeded",
                                                      "DeadlineExceeded"]))},
            ]  # fmt: skip
            if outcome == "Complete":
                job_status["completionTime"] = format_time(now)
