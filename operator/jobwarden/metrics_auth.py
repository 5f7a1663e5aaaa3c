"""Who may read /metrics: a bearer token, reviewed by the API server.

The metrics name every tenant's namespaces and schedules, so a scrape must
come from a subject the cluster's RBAC allows ``get`` on the non-resource URL
``/metrics`` (the usual rule for Prometheus). The token is authenticated with
a TokenReview and the subject authorized with a SubjectAccessReview, as
controller-runtime's secure metrics server does.

Answers are cached briefly, keyed by a digest of the token (never the token
itself), in two bounded caches: a flood of bad tokens evicts only other bad
tokens, never the scraper's allowed entry. Reviews are time-boxed and at most
a few run at once, so that nobody can turn /metrics into a load on the API
server. A review that gets no answer is not cached: the scraper gets 503 and
tries again at its next interval.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("jobwarden.metrics")

METRICS_PATH = "/metrics"
# A ServiceAccount token is a JWT of 1-2 KiB; anything far longer is not one.
MAX_TOKEN_LENGTH = 16 * 1024


@dataclass(frozen=True, kw_only=True)
class Identity:
    """The subject a TokenReview found behind a token."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The answer to one request: an HTTP status and a message safe to send back."""

    status: int
    message: str

    @property
    def allowed(self) -> bool:
        return self.status == 200


UNAUTHENTICATED = Verdict(status=401, message="Unauthorized")
UNAVAILABLE = Verdict(status=503, message="Access review unavailable, try again")


class ReviewError(Exception):
    """The API server gave no usable answer in time (refusal, error or timeout)."""


class Reviewer(Protocol):
    def authenticate(self, token: str) -> Identity | None:
        """The token's subject; None when the token is not valid. Raises ReviewError."""

    def authorize(self, identity: Identity, *, path: str, verb: str) -> bool:
        """Whether the subject may ``verb`` the non-resource ``path``. Raises ReviewError."""


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for anything else."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    if any(c.isspace() for c in token):
        return None
    return token


class TTLCache:
    """A bounded map whose entries expire: the least recently used goes first when full."""

    def __init__(self, *, max_entries: int, ttl: float, clock: Callable[[], float]) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: OrderedDict[bytes, tuple[float, Verdict]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Verdict | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, verdict = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return verdict

    def put(self, key: bytes, verdict: Verdict) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl, verdict)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class Gate:
    """Decides each request to /metrics from its Authorization header."""

    def __init__(
        self,
        *,
        reviewer: Reviewer,
        allow_ttl: float = 60.0,
        deny_ttl: float = 10.0,
        max_allowed: int = 64,
        max_denied: int = 1024,
        concurrent_reviews: int = 4,
        wait_for_slot: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reviewer = reviewer
        self._allowed = TTLCache(max_entries=max_allowed, ttl=allow_ttl, clock=clock)
        self._denied = TTLCache(max_entries=max_denied, ttl=deny_ttl, clock=clock)
        self._slots = threading.BoundedSemaphore(concurrent_reviews)
        self._wait_for_slot = wait_for_slot

    def decide(self, authorization: str | None, *, path: str = METRICS_PATH) -> Verdict:
        token = bearer_token(authorization)
        if token is None:
            return UNAUTHENTICATED
        key = hashlib.sha256(token.encode()).digest()
        cached = self._allowed.get(key) or self._denied.get(key)
        if cached is not None:
            return cached
        if not self._slots.acquire(timeout=self._wait_for_slot):
            return UNAVAILABLE
        try:
            verdict = self._review(token, path=path)
        except ReviewError as exc:
            log.warning("metrics access review failed: %s", exc)
            return UNAVAILABLE
        finally:
            self._slots.release()
        (self._allowed if verdict.allowed else self._denied).put(key, verdict)
        return verdict

    def _review(self, token: str, *, path: str) -> Verdict:
        identity = self._reviewer.authenticate(token)
        if identity is None:
            return UNAUTHENTICATED
        if self._reviewer.authorize(identity, path=path, verb="get"):
            return Verdict(status=200, message="OK")
        log.info("metrics access denied to %s", identity.username)
        return Verdict(status=403, message=f"Forbidden: {identity.username} may not get {path}")


class KubeReviewer:
    """TokenReview and SubjectAccessReview through the operator's API identity.

    These two calls live here, not in kube.py: they run in the metrics
    server's threads on a client of their own, so a scrape never waits
    behind a burst of reconciles, nor they behind a slow review.
    """

    def __init__(self, api: client.ApiClient, *, timeout: float = 5.0) -> None:
        self._authn = client.AuthenticationV1Api(api)
        self._authz = client.AuthorizationV1Api(api)
        self._timeout = timeout

    def authenticate(self, token: str) -> Identity | None:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        status = self._call(self._authn.create_token_review, body, "TokenReview")
        if not status or not status.authenticated or status.user is None:
            return None
        user = status.user
        return Identity(
            username=user.username or "",
            uid=user.uid or "",
            groups=tuple(user.groups or ()),
            extra={k: tuple(v or ()) for k, v in (user.extra or {}).items()},
        )

    def authorize(self, identity: Identity, *, path: str, verb: str) -> bool:
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": identity.username,
                "uid": identity.uid or None,
                "groups": list(identity.groups),
                "extra": {k: list(v) for k, v in identity.extra.items()},
                "nonResourceAttributes": {"path": path, "verb": verb},
            },
        }
        status = self._call(self._authz.create_subject_access_review, body, "SubjectAccessReview")
        return bool(status is not None and status.allowed)

    def _call(self, create: Callable[..., Any], body: dict[str, Any], kind: str) -> Any:
        try:
            review = create(body, _request_timeout=self._timeout)
        except ApiException as exc:
            # The exception's body may echo the request: name only its status.
            raise ReviewError(f"{kind} refused: {exc.status} {exc.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ReviewError(f"{kind}: {type(exc).__name__}") from None
        return review.status
