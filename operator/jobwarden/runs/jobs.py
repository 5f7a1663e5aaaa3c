"""The batch/v1 Job a run becomes, and what a Job body says about its run.

Both directions are pure functions over plain dicts, the form kopf hands the
operator and the API accepts, so they are tested without a cluster and the
wiring layer only has to send or receive the dicts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from jobwarden.api.status import format_time, parse_time
from jobwarden.api.values import MAX_DURATION_SECONDS
from jobwarden.labels import (
    API_VERSION,
    GROUP_LABEL,
    KIND,
    SCHEDULE_LABEL,
    SCHEDULED_AT_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    STALE_DEADLINE_ANNOTATION,
    START_DEADLINE_ANNOTATION,
    TRIGGER_LABEL,
    UPSTREAM_JOBS_ANNOTATION,
)
from jobwarden.runs.context import RunContext, set_run_env
from jobwarden.runs.naming import schedule_label_value

JobResult = Literal["Running", "Succeeded", "Failed"]

_CONTAINER_LISTS: Final = ("containers", "initContainers")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def build_job(
    *,
    schedule_name: str,
    schedule_uid: str,
    namespace: str,
    job_template: Mapping[str, Any],
    context: RunContext,
    name: str,
    stale_after_seconds: int | None,
    start_deadline_seconds: int | None = None,
) -> dict[str, Any]:
    """The Job for one run of a schedule, as a plain dict ready to create.

    * namespace is always the schedule's: a template cannot place work in a
      namespace its author may not write to;
    * the owner reference makes the Job go with its schedule (garbage
      collection) and marks the operator as its controller;
    * ``activeDeadlineSeconds`` is capped at the stale threshold, so the Job
      controller stops a stale run even while the operator is down; a tighter
      deadline from the template is kept;
    * ``start_deadline_seconds`` is written on the Job (an annotation), so the
      start guard reads the deadline the run was created under from the Job alone.

    Every container (and init container) gets the run's env vars (``context``).
    The template is deep-copied and never modified.
    """
    scheduled, trigger = context.scheduled, context.trigger
    template = copy.deepcopy(dict(job_template))
    meta_in = _mapping(template.get("metadata"))
    spec: dict[str, Any] = dict(_mapping(template.get("spec")))
    when = format_time(scheduled)
    schedule_label = schedule_label_value(schedule_name)

    labels = dict(_mapping(meta_in.get("labels")))
    labels.update(
        {
            SCHEDULE_LABEL: schedule_label,
            TRIGGER_LABEL: trigger,
            SCHEDULED_AT_LABEL: str(int(scheduled.astimezone(UTC).timestamp())),
        }
    )
    annotations = dict(_mapping(meta_in.get("annotations")))
    annotations[SCHEDULED_TIME_ANNOTATION] = when
    if context.upstreams:
        annotations[UPSTREAM_JOBS_ANNOTATION] = ",".join(job for job, _ in context.upstreams)

    if stale_after_seconds is not None:
        current = spec.get("activeDeadlineSeconds")
        if not isinstance(current, int) or current > stale_after_seconds:
            spec["activeDeadlineSeconds"] = stale_after_seconds
            annotations[STALE_DEADLINE_ANNOTATION] = str(stale_after_seconds)

    if start_deadline_seconds is not None:
        annotations[START_DEADLINE_ANNOTATION] = str(start_deadline_seconds)

    pod = dict(_mapping(spec.get("template")))
    pod_meta = dict(_mapping(pod.get("metadata")))
    pod_meta["labels"] = {**_mapping(pod_meta.get("labels")), SCHEDULE_LABEL: schedule_label}
    pod["metadata"] = pod_meta
    pod_spec = dict(_mapping(pod.get("spec")))
    for key in _CONTAINER_LISTS:
        containers = pod_spec.get(key)
        if isinstance(containers, list):
            for container in containers:
                if isinstance(container, MutableMapping):
                    set_run_env(container, context)
    pod["spec"] = pod_spec
    spec["template"] = pod

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": schedule_name,
                    "uid": schedule_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


@dataclass(frozen=True, slots=True)
class JobObservation:
    """What the operator needs from one Job body, and nothing more.

    Slim on purpose: the operator may hold one per active run of every
    schedule, and a full Job body is tens of kilobytes once parsed.
    """

    name: str
    namespace: str
    schedule: str | None
    trigger: str | None
    scheduled_time: datetime | None
    start_time: datetime | None
    finish_time: datetime | None
    result: JobResult
    reason: str | None
    message: str | None
    active: int
    stale_deadline: bool
    """True when the run failed on the deadline the operator set at the stale
    threshold: the history shows it as ``Stale``, not as an ordinary failure."""
    owner_uid: str | None = None
    """The uid in the Job's JobSchedule ownerReference: a run of the schedule with
    that uid. None when no JobSchedule owns it (a tenant's Job with our labels)."""
    created: datetime | None = None
    start_deadline: timedelta | None = None
    """The start guard's deadline the operator wrote on the Job (None: no guard)."""
    pods_started: bool = False
    """Whether the Job's status shows a pod that ran (ready, succeeded or failed)."""
    suspended: bool = False
    group: str | None = None
    """The concurrency group the run counts in (its label), if any."""

    @property
    def finished(self) -> bool:
        return self.result != "Running"

    @property
    def duration_seconds(self) -> float | None:
        if self.start_time is None or self.finish_time is None:
            return None
        return max(0.0, (self.finish_time - self.start_time).total_seconds())


def _get(mapping: Mapping[str, Any], camel: str) -> Any:
    """``mapping[camel]``, or its snake_case twin (bodies from ``to_dict()``)."""
    if camel in mapping:
        return mapping[camel]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return mapping.get(snake)


def _true_condition(conditions: Sequence[Any], kind: str) -> Mapping[str, Any] | None:
    for raw in conditions:
        cond = _mapping(raw)
        if cond.get("type") == kind and str(cond.get("status")) == "True":
            return cond
    return None


def _owner(meta: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The name and uid of the JobSchedule owning a Job (its first such reference)."""
    refs = _get(meta, "ownerReferences")
    for raw in refs if isinstance(refs, list) else []:
        ref = _mapping(raw)
        if ref.get("kind") == KIND and _get(ref, "apiVersion") == API_VERSION:
            name, uid = ref.get("name"), ref.get("uid")
            return (str(name) if name else None), (str(uid) if uid else None)
    return None, None


def _time(value: object) -> datetime | None:
    """A timestamp from a Job body, or None: anyone may write one near the ends of the
    calendar, where turning it into UTC overflows."""
    try:
        return parse_time(value)
    except OverflowError:
        return None


def _seconds(value: object) -> timedelta | None:
    """Whole positive seconds within the spec's bound, as the operator writes them."""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit() and len(value) <= 12):
        return None
    seconds = int(value)
    return timedelta(seconds=seconds) if 0 < seconds <= MAX_DURATION_SECONDS else None


def _count(status: Mapping[str, Any], key: str) -> int:
    value = _get(status, key)
    return value if isinstance(value, int) else 0


def _scheduled_time(labels: Mapping[str, Any], annotations: Mapping[str, Any]) -> datetime | None:
    moment = _time(annotations.get(SCHEDULED_TIME_ANNOTATION))
    if moment is not None:
        return moment
    epoch = labels.get(SCHEDULED_AT_LABEL)
    # Eleven digits reach the year 5138; a longer label was not written by the operator.
    if isinstance(epoch, str) and epoch.isascii() and epoch.isdigit() and len(epoch) <= 11:
        return datetime.fromtimestamp(int(epoch), tz=UTC)
    return None


def observe_job(job: Mapping[str, Any]) -> JobObservation:
    """Read a Job body (camelCase from the API, or snake_case) into an observation.

    A Job is finished only once it has a ``Complete`` or ``Failed`` condition;
    ``FailureTarget``/``SuccessCriteriaMet`` come first while pods still
    terminate, and their reason is reported while the result stays Running.
    """
    meta = _mapping(job.get("metadata"))
    status = _mapping(job.get("status"))
    labels = _mapping(meta.get("labels"))
    annotations = _mapping(meta.get("annotations"))
    conditions = _get(status, "conditions") or []

    result: JobResult = "Running"
    finish: datetime | None = None
    cond = _true_condition(conditions, "Complete")
    if cond is not None:
        result = "Succeeded"
        finish = _time(_get(status, "completionTime")) or _time(_get(cond, "lastTransitionTime"))
    else:
        cond = _true_condition(conditions, "Failed")
        if cond is not None:
            result = "Failed"
            finish = _time(_get(cond, "lastTransitionTime"))
        else:
            cond = _true_condition(conditions, "FailureTarget") or _true_condition(
                conditions, "Suspended"
            )

    reason = str(cond["reason"]) if cond and cond.get("reason") else None
    message = str(cond["message"]) if cond and cond.get("message") else None
    owner, owner_uid = _owner(meta)
    schedule = owner or labels.get(SCHEDULE_LABEL)
    active = _get(status, "active")
    return JobObservation(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        schedule=str(schedule) if schedule else None,
        trigger=str(labels[TRIGGER_LABEL]) if labels.get(TRIGGER_LABEL) else None,
        scheduled_time=_scheduled_time(labels, annotations),
        start_time=_time(_get(status, "startTime")),
        finish_time=finish,
        result=result,
        reason=reason,
        message=message,
        active=active if isinstance(active, int) else 0,
        stale_deadline=(
            result == "Failed"
            and reason == "DeadlineExceeded"
            and STALE_DEADLINE_ANNOTATION in annotations
        ),
        owner_uid=owner_uid,
        created=_time(_get(meta, "creationTimestamp")),
        start_deadline=_seconds(annotations.get(START_DEADLINE_ANNOTATION)),
        pods_started=result != "Running"
        or any(_count(status, k) > 0 for k in ("ready", "succeeded", "failed")),
        suspended=_true_condition(conditions, "Suspended") is not None,
        group=str(labels[GROUP_LABEL]) if labels.get(GROUP_LABEL) else None,
    )
