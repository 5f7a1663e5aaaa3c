"""Names shared by the operator, the CRD, the plugin and the Jobs it creates.

Every label, annotation and API coordinate is spelled once, here, so that the
operator that writes a key and the plugin or test that reads it can never
drift apart.
"""

from __future__ import annotations

from typing import Final

# --- API coordinates of the JobSchedule resource ------------------------------------------

GROUP: Final = "jobwarden.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "JobSchedule"
PLURAL: Final = "jobschedules"
SINGULAR: Final = "jobschedule"
SHORT_NAME: Final = "jsched"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"
# The cluster-scoped JobCalendar: named dates that schedules share (spec.calendars).
CALENDAR_KIND: Final = "JobCalendar"
CALENDAR_PLURAL: Final = "jobcalendars"
CALENDAR_SINGULAR: Final = "jobcalendar"
CALENDAR_SHORT_NAME: Final = "jcal"
CALENDAR_CRD_NAME: Final = f"{CALENDAR_PLURAL}.{GROUP}"

# --- labels and annotations on the Jobs the operator creates ------------------------------

_PREFIX: Final = f"{GROUP}/"

# Label: the owning schedule's name. Lets one list call find a schedule's Jobs.
SCHEDULE_LABEL: Final = f"{_PREFIX}schedule"
# Label: what started the run, one of the TRIGGER_* values.
TRIGGER_LABEL: Final = f"{_PREFIX}trigger"
# Annotation: the scheduled time in RFC 3339 UTC (labels cannot hold ':').
SCHEDULED_TIME_ANNOTATION: Final = f"{_PREFIX}scheduled-time"
# Label: the scheduled time as epoch seconds, so selectors and sorting work on it.
SCHEDULED_AT_LABEL: Final = f"{_PREFIX}scheduled-at"
# Label, opt-in on any Job: hold it to a stale threshold (a duration like "90m").
STALE_AFTER_LABEL: Final = f"{_PREFIX}stale-after"
# Label, opt-in on any Job: report (or terminate) it when no pod of it runs within
# this long of its creation (a duration like "10m").
START_DEADLINE_LABEL: Final = f"{_PREFIX}start-deadline"
# Annotation on the operator's Jobs: the start deadline in seconds, fixed at creation.
START_DEADLINE_ANNOTATION: Final = f"{_PREFIX}start-deadline-seconds"
# Annotation: set when the operator capped activeDeadlineSeconds at the stale
# threshold, so a DeadlineExceeded failure reads back as a stale run.
STALE_DEADLINE_ANNOTATION: Final = f"{_PREFIX}stale-deadline-seconds"

# Label: the concurrency group (spec.concurrencyGroup.name) the run counts in.
GROUP_LABEL: Final = f"{_PREFIX}concurrency-group"

TRIGGER_SCHEDULE: Final = "Schedule"
TRIGGER_MANUAL: Final = "Manual"
TRIGGER_CATCH_UP: Final = "CatchUp"
TRIGGER_AFTER: Final = "After"
TRIGGERS: Final = frozenset({TRIGGER_SCHEDULE, TRIGGER_MANUAL, TRIGGER_CATCH_UP, TRIGGER_AFTER})
# Annotation on a run started by its upstreams: their Jobs, in spec.after order.
UPSTREAM_JOBS_ANNOTATION: Final = f"{_PREFIX}upstream-jobs"

# --- action annotations on the JobSchedule ------------------------------------------------

# Each holds a token; a token value the operator has not handled yet fires once.
RUN_NOW_ANNOTATION: Final = f"{_PREFIX}run-now"
TERMINATE_ANNOTATION: Final = f"{_PREFIX}terminate"
# Companion of TERMINATE_ANNOTATION: pod deletion grace period; "0" force-deletes.
TERMINATE_GRACE_ANNOTATION: Final = f"{_PREFIX}terminate-grace-seconds"
RESUME_ANNOTATION: Final = f"{_PREFIX}resume"
ACTION_ANNOTATIONS: Final = (RUN_NOW_ANNOTATION, TERMINATE_ANNOTATION, RESUME_ANNOTATION)

# --- the operator's identity towards the API server ---------------------------------------

FIELD_MANAGER: Final = "jobwarden"

# Environment variables set in every container of a created Job (runs/context.py).
SCHEDULE_ENV: Final = "JOBWARDEN_SCHEDULE"
SCHEDULED_TIME_ENV: Final = "JOBWARDEN_SCHEDULED_TIME"
# The schedule's instant before this run's scheduled time: the data interval's start.
PREVIOUS_SCHEDULED_TIME_ENV: Final = "JOBWARDEN_PREVIOUS_SCHEDULED_TIME"
TRIGGER_ENV: Final = "JOBWARDEN_TRIGGER"
# For a run started by its upstreams (trigger After): their Jobs and results, comma-
# separated in spec.after order, and the scheduled time they share.
UPSTREAM_JOB_ENV: Final = "JOBWARDEN_UPSTREAM_JOB"
UPSTREAM_RESULT_ENV: Final = "JOBWARDEN_UPSTREAM_RESULT"
UPSTREAM_SCHEDULED_TIME_ENV: Final = "JOBWARDEN_UPSTREAM_SCHEDULED_TIME"
RUN_ENV_NAMES: Final = (
    SCHEDULE_ENV,
    SCHEDULED_TIME_ENV,
    PREVIOUS_SCHEDULED_TIME_ENV,
    TRIGGER_ENV,
    UPSTREAM_JOB_ENV,
    UPSTREAM_RESULT_ENV,
    UPSTREAM_SCHEDULED_TIME_ENV,
)
