"""Deterministic Job names: the operator's guard against running anything twice.

A Job's name is a pure function of the schedule and the run, so a restart, a
retried create or a second replica that decides the same run computes the same
name, and the API server's uniqueness check (409 AlreadyExists) turns the
duplicate into a no-op. No lock or lease is needed for exactly-once creation.

Shape of a name, always a DNS-1123 label of at most 63 characters:

* ``<prefix>-<epoch minutes>`` for ``Schedule`` and ``CatchUp`` runs. Both
  triggers share the form on purpose: a catch-up of a time that was in fact
  run collides with the existing Job instead of doubling it. A scheduled time
  with seconds (possible with ``runAt``) becomes ``<epoch minutes>s<SS>``.
* ``<prefix>-m<hash of token>`` for ``Manual`` runs: each run-now token gives
  one name, so a token seen twice still makes one Job.
* ``<prefix>-a<hash of the scheduled time>`` for ``After`` runs (``spec.after``):
  the upstream runs that start one share that scheduled time, so each set of
  upstream runs gives one name.

The last ``-``-separated segment never contains ``-``, is all digits for
scheduled runs (plus ``s<SS>``), starts with ``m`` for manual ones and ``a`` for
After ones, so a name splits back into (prefix, run) in one way only.

``<prefix>`` is the schedule's name when it is already a short, label-safe
name; otherwise it is cut and followed by a hash of the full name, so two long
names that share their beginning still get different prefixes.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Final

from jobwarden.labels import TRIGGER_AFTER, TRIGGER_CATCH_UP, TRIGGER_MANUAL, TRIGGER_SCHEDULE

MAX_NAME: Final = 63
# Room kept for "-" + run suffix; "<9-digit minutes>s<SS>" is 12 characters
# and lasts until the year 3870.
_SUFFIX_ROOM: Final = 13
MAX_PREFIX: Final = MAX_NAME - _SUFFIX_ROOM
_NAME_HASH_LEN: Final = 8  # 40 bits: distinct long names clash with odds ~1e-12
_TOKEN_HASH_LEN: Final = 10  # 50 bits per token within one schedule

_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_UNSAFE_RE: Final = re.compile(r"[^a-z0-9-]")
_LABEL_VALUE_RE: Final = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def short_hash(text: str, *, length: int) -> str:
    """A lowercase base32 digest of ``text``: label-safe, denser than hex."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:length]


def is_dns_label(name: str) -> bool:
    """Whether ``name`` is a valid DNS-1123 label (what Job names must be here)."""
    return len(name) <= MAX_NAME and _LABEL_RE.match(name) is not None


def _cut(text: str, *, limit: int, full: str) -> str:
    """``text`` cut to ``limit`` characters including a hash of ``full``."""
    head = text[: limit - _NAME_HASH_LEN - 1].strip("-._")
    digest = short_hash(full, length=_NAME_HASH_LEN)
    return f"{head}-{digest}" if head else digest


def name_prefix(schedule: str) -> str:
    """The stable first part of every Job name of ``schedule``.

    Schedule names are DNS subdomains (up to 253 characters, dots allowed);
    Job names here must be labels, because the Job controller copies the name
    into a pod label. A name that is already a short label is kept as it is,
    so ``kubectl get jobs`` reads naturally; any other is cut and hashed.
    """
    safe = _UNSAFE_RE.sub("-", schedule.lower()).strip("-")
    if safe and safe == schedule and len(safe) <= MAX_PREFIX:
        return safe
    return _cut(safe, limit=MAX_PREFIX, full=schedule)


def schedule_label_value(schedule: str) -> str:
    """The value of the schedule label on Jobs: a label value (<= 63 chars).

    The name itself whenever it fits, which is almost always; a cut-and-hash
    form for the rare name longer than 63 characters. The full name is always
    in the Job's ownerReferences.
    """
    if len(schedule) <= MAX_NAME and _LABEL_VALUE_RE.match(schedule):
        return schedule
    safe = re.sub(r"[^-A-Za-z0-9_.]", "-", schedule)
    return _cut(safe, limit=MAX_NAME, full=schedule)


def _run_suffix(scheduled: datetime) -> str:
    if scheduled.tzinfo is None:
        raise ValueError("scheduled time must be timezone-aware")
    seconds = int(scheduled.astimezone(UTC).timestamp() // 1)
    if seconds < 0:
        raise ValueError("scheduled time before 1970 cannot name a Job")
    minutes, rest = divmod(seconds, 60)
    return str(minutes) if rest == 0 else f"{minutes}s{rest:02d}"


def job_name(*, schedule: str, scheduled: datetime, trigger: str, token: str | None = None) -> str:
    """The name of the Job for one run of ``schedule``.

    ``scheduled`` counts to the second (sub-second parts are dropped) and is
    ignored for ``Manual`` runs, which are named by their ``token`` instead.
    Raises ``ValueError`` for an unknown trigger, a Manual run without a
    token, or a naive or pre-1970 ``scheduled``.
    """
    prefix = name_prefix(schedule)
    if trigger in (TRIGGER_SCHEDULE, TRIGGER_CATCH_UP):
        suffix = _run_suffix(scheduled)
    elif trigger == TRIGGER_AFTER:
        # The upstream runs' scheduled time, hashed: one name per set of upstream
        # runs, whatever replica or restart decides it, and short at any date.
        suffix = "a" + short_hash(_run_suffix(scheduled), length=_TOKEN_HASH_LEN)
    elif trigger == TRIGGER_MANUAL:
        if not token:
            raise ValueError("a Manual run needs its run-now token")
        suffix = "m" + short_hash(token, length=_TOKEN_HASH_LEN)
    else:
        raise ValueError(f"unknown trigger {trigger!r}")
    name = f"{prefix}-{suffix}"
    if len(name) > MAX_NAME:  # only for scheduled times past the year 3870
        raise ValueError(f"scheduled time {scheduled.isoformat()} is too far ahead")
    return name
