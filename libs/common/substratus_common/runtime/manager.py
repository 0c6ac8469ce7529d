"""The loop every workload manager (trainer, server-manager, notebook-manager) is built from.

- One durable consumer on the change subjects of the kinds the manager owns (the resource and
  the child kinds it reads, e.g. ``job``) and on the resource subjects of the kinds it depends on.
- Each event only names a resource: the manager reads that resource from the API and calls the
  service's ``reconcile``, which returns the conditions to report (level-triggered).
- Dependents: before reconciling, the manager records what the resource depends on. When a
  dependency's change event shows it ``ready``, every resource that depends on it (found in that
  record and in the local :class:`view.View` rebuilt from the stream, never by listing the API) is
  reconciled again, inside the dependency's message, so a crash redelivers the wake-up.
- Reports: published only when they differ from what this process last published and, unless
  this process published another report for that generation (which may not be written yet),
  from what the resource's status already says; every report carries the service's whole view
  (conditions and ``artifacts_url``), since the status writer applies it with server-side apply;
  the builder's also carry ``image``, which the status writer sets as ``spec.image``.
- Errors: a :class:`errors.PermanentError` (or an API answer that retrying cannot fix) becomes a
  condition on the resource; past max deliveries the runtime reports ``ReconcileFailed``.

Locks: one reconcile at a time per resource in this process; a wake-up never holds one lock
while waiting for another, so dependency cycles cannot deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from substratus_common import config, errors, failpoints
from substratus_common.api import resources
from substratus_common.api.types import Reason
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_common.kube import client
from substratus_common.kube import errors as kube_errors
from substratus_common.kube import resources as kube_resources
from substratus_common.metrics import RuntimeMetrics
from substratus_common.runtime import consumer, report, view

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # plural, namespace, name
Object = dict[str, Any]

WAKE_CONCURRENCY = 16


@dataclass(frozen=True)
class Outcome:
    """What one reconcile found: the service's conditions and the status fields it owns."""

    conditions: Sequence[payloads.ConditionReport]
    artifacts_url: str | None = None
    image: str | None = None
    """``spec.image`` to set (the builder after a successful build); the status writer applies it
    only from the builder's reports."""


Reconcile = Callable[[Object], Awaitable[Outcome]]
"""Bring the children of one resource (as read from the API) in line; return what to report."""
Dependencies = Callable[[Object], Iterable[Key]]
"""The resources an object depends on (e.g. a Model's base Model and Dataset)."""
Baseline = Callable[[Object], Outcome]
"""The status fields a report must always carry besides the failure condition (e.g. artifacts URL)."""


@dataclass(frozen=True)
class Spec:
    """What a manager consumes and reports."""

    durable: str
    """Name of the durable consumer (the service name): replicas share it."""
    owned: Sequence[str]
    """Plurals the manager reconciles, e.g. ``("models", "datasets")``."""
    child_kinds: Sequence[str] = ()
    """Child kinds (lowercase) whose changes reconcile their owner, e.g. ``("job",)``."""
    depends_on: Sequence[str] = ()
    """Plurals whose turning ready wakes dependents, e.g. ``("models", "datasets")``."""
    condition: str = "Complete"
    """The main condition type; failures are reported on it."""
    wake_on_every_change: bool = False
    """Wake dependents on every change of a dependency (created, changed, deleted), not only when it
    shows ready: a waiting dependent then moves from ``…NotFound`` to ``…NotReady`` as soon as the
    dependency appears (the server-manager, whose Servers wait for one Model)."""

    def filter_subjects(self) -> list[str]:
        prefix = f"{subjects.PREFIX}.{subjects.CHANGE}"
        wanted: list[str] = []
        for plural in dict.fromkeys([*self.owned, *self.depends_on]):
            wanted.append(f"{prefix}.{plural}.*.*")
            if plural in self.owned:
                wanted += [f"{prefix}.{plural}.*.*.{kind}.*" for kind in self.child_kinds]
        return wanted


@dataclass
class _Published:
    uid: str
    generation: int
    fingerprint: tuple[Any, ...]


@dataclass
class Manager:
    bus: connection.Bus
    kube: client.Kube
    settings: config.Settings
    spec: Spec
    reconcile: Reconcile
    dependencies: Dependencies = lambda obj: ()
    baseline: Baseline = lambda obj: Outcome(())
    metrics: RuntimeMetrics | None = None
    view: view.View = field(init=False)
    runner: consumer.Consumer = field(init=False)
    reports_published: int = 0
    _locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    _lock_users: dict[Key, int] = field(default_factory=dict)
    _depends: dict[Key, frozenset[Key]] = field(default_factory=dict)
    _published: dict[Key, _Published] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.view = view.View(dict.fromkeys([*self.spec.owned, *self.spec.depends_on]))
        options = consumer.ConsumerOptions(
            stream=streams.CHANGES,
            durable=self.spec.durable,
            filter_subjects=self.spec.filter_subjects(),
            concurrency=self.settings.consumer_concurrency,
            ack_wait_s=self.settings.ack_wait_s,
            max_deliveries=self.settings.max_deliveries,
            backoff_s=self.settings.retry_backoff_s,
            accepts=envelope.is_change_type,
        )
        self.runner = consumer.Consumer(
            self.bus, self.settings.service, options, self.handle, on_give_up=self.give_up, metrics=self.metrics
        )

    @property
    def ready(self) -> bool:
        return self.runner.ready and self.view.loaded.is_set()

    async def start(self) -> None:
        """Load the view of owned and dependency kinds (last change per resource from the stream)."""
        await self.view.follow(self.bus)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.runner.run(stop, grace_s=self.settings.shutdown_grace_s)
        finally:
            await self.view.close()

    # ---- handling one message ---------------------------------------------------------------

    async def handle(self, delivery: consumer.Delivery) -> None:
        key = delivery.subject.key
        plural = key[0]
        if plural in self.spec.owned:
            async with self._exclusive(key):
                await self.reconcile_key(key, delivery.event.id)
        if (
            delivery.subject.child_kind is None
            and plural in self.spec.depends_on
            and (
                self.spec.wake_on_every_change
                or (not envelope.is_deleted(delivery.event.type) and _is_ready(payloads.change_object(delivery.event)))
            )
        ):
            await self.wake_dependents(key, delivery.event.id)

    async def reconcile_key(self, key: Key, event_id: str) -> None:
        """Read the resource and reconcile it; report what was found. Call under its lock."""
        plural, namespace, name = key
        rt = kube_resources.by_plural(plural)
        obj = await self.kube.get(rt, namespace, name)
        if obj is None:
            self._forget(key)
            return
        self._depends[key] = frozenset(self.dependencies(obj))
        await failpoints.delay(failpoints.SLOW_RECONCILE)  # benchmarks only (SUBSTRATUS_FAILPOINTS)
        try:
            outcome = await self.reconcile(obj)
        except errors.PermanentError:
            raise
        except kube_errors.APIError as error:
            if error.retryable:
                raise
            reason = Reason.FORBIDDEN if isinstance(error, kube_errors.Forbidden) else Reason.INVALID
            raise errors.PermanentError(
                f"the Kubernetes API refused a child of this resource: {error.message}", reason=reason
            ) from error
        await self.publish(obj, outcome, event_id)

    async def wake_dependents(self, dependency: Key, event_id: str) -> None:
        """Reconcile everything that depends on ``dependency`` (which just showed ready)."""
        waiting = self.dependents(dependency)
        if not waiting:
            return
        log.info(
            "dependency ready; waking dependents",
            extra={
                "resource": dependency[0],
                "namespace": dependency[1],
                "object": dependency[2],
                "dependents": len(waiting),
            },
        )
        limit = asyncio.Semaphore(WAKE_CONCURRENCY)
        temporary: list[str] = []

        async def wake(key: Key) -> None:
            async with limit, self._exclusive(key):
                try:
                    await self.reconcile_key(key, event_id)
                except errors.PermanentError as error:
                    await self._report_failure(key, error.reason, error.message, event_id)
                except Exception as error:
                    temporary.append(f"{'/'.join(key)}: {error}")

        await asyncio.gather(*(wake(k) for k in waiting))
        if temporary:
            raise errors.TemporaryError("waking dependents failed: " + "; ".join(temporary[:5]))

    def dependents(self, dependency: Key) -> list[Key]:
        """Owned resources that depend on ``dependency``: as last reconciled here, or in the view."""
        found = {k for k, deps in self._depends.items() if dependency in deps}
        for k, obj in list(self.view.objects.items()):
            if k[0] in self.spec.owned and k not in self._depends and dependency in set(self.dependencies(obj)):
                found.add(k)
        return sorted(found)

    # ---- reports ------------------------------------------------------------------------------

    async def publish(self, obj: Object, outcome: Outcome, event_id: str) -> bool:
        """Publish the report unless the status already says it or this process just published it."""
        key = _key_of(obj)
        meta = obj["metadata"]
        uid, generation = str(meta.get("uid")), int(meta.get("generation") or 0)
        fingerprint = _fingerprint(outcome)
        last = self._published.get(key)
        if last is not None and (last.uid, last.generation, last.fingerprint) == (uid, generation, fingerprint):
            return False
        # A report this process published for this generation may not be written yet: the status
        # read now can be older than it, and would be overwritten by it. Only a new report is safe.
        pending = last is not None and (last.uid, last.generation) == (uid, generation)
        if not pending and _status_says(obj, outcome, generation):
            self._published[key] = _Published(uid, generation, fingerprint)
            return False
        made = report.report_for(
            obj,
            self.settings.service,
            outcome.conditions,
            observed=event_id,
            artifacts_url=outcome.artifacts_url,
            image=outcome.image,
        )
        await report.publish(self.bus, made, key[0])
        self._published[key] = _Published(uid, generation, fingerprint)
        self.reports_published += 1
        return True

    async def give_up(self, delivery: consumer.Delivery, reason: str, message: str) -> None:
        """The runtime terminated a message: put the reason on the resource's main condition."""
        key = delivery.subject.key
        if key[0] not in self.spec.owned:
            return
        await self._report_failure(key, reason, message, delivery.event.id)

    async def _report_failure(self, key: Key, reason: str, message: str, event_id: str) -> None:
        obj = await self.kube.get(kube_resources.by_plural(key[0]), key[1], key[2])
        if obj is None:
            return
        base = self.baseline(obj)
        conditions = [
            *(c for c in base.conditions if c.type != self.spec.condition),
            report.condition(self.spec.condition, False, reason, message),
        ]
        await self.publish(obj, Outcome(conditions, base.artifacts_url), event_id)

    # ---- bookkeeping --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: Key) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[key] -= 1
            if self._lock_users[key] == 0:
                del self._lock_users[key]
                self._locks.pop(key, None)

    def _forget(self, key: Key) -> None:
        self._depends.pop(key, None)
        self._published.pop(key, None)


def ref_key(obj: Object, plural: str, ref: Any) -> Key | None:
    """The key of ``spec.<field>`` (an ObjectRef dict) in the object's namespace, or None."""
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    return plural, str(obj["metadata"]["namespace"]), str(ref["name"])


@dataclass(frozen=True)
class Dependency:
    """One resource a reconcile waits for, and the reasons it reports while waiting."""

    label: str
    """How messages name it, e.g. ``base Model`` or ``Dataset``."""
    name: str
    rt: kube_resources.ResourceType
    not_found: str
    not_ready: str


async def waiting_for(
    kube: client.Kube, namespace: str, dependencies: Iterable[Dependency], then: str
) -> tuple[str, str] | None:
    """(reason, message) naming every dependency that is missing or not ready, or None.

    The reason is the first one found; ``then`` says what happens once they are ready, e.g.
    ``the Job starts by itself``.
    """
    found: list[tuple[str, str]] = []
    for dep in dependencies:
        obj = await kube.get(dep.rt, namespace, dep.name)
        if obj is None:
            found.append((dep.not_found, f"{dep.label} {dep.name} not found in namespace {namespace}"))
        elif not _is_ready(obj):
            found.append((dep.not_ready, f"{dep.label} {dep.name} is not ready"))
    if not found:
        return None
    return found[0][0], "; ".join(m for _, m in found) + f"; {then} once they are ready"


def _key_of(obj: Object) -> Key:
    meta = obj["metadata"]
    return resources.kind_info(str(obj["kind"])).plural, str(meta["namespace"]), str(meta["name"])


def _is_ready(obj: Object) -> bool:
    status = obj.get("status")
    return isinstance(status, dict) and status.get("ready") is True


def _fingerprint(outcome: Outcome) -> tuple[Any, ...]:
    conditions = tuple(sorted((c.type, c.status, c.reason, c.message) for c in outcome.conditions))
    return conditions, outcome.artifacts_url, outcome.image


def _status_says(obj: Object, outcome: Outcome, generation: int) -> bool:
    """Whether the resource's status already holds this outcome at this generation."""
    status = obj.get("status") or {}
    if outcome.artifacts_url and (status.get("artifacts") or {}).get("url") != outcome.artifacts_url:
        return False
    if outcome.image and (obj.get("spec") or {}).get("image") != outcome.image:
        return False
    have = {c.get("type"): c for c in status.get("conditions") or []}
    for c in outcome.conditions:
        written = have.get(c.type)
        if written is None or int(written.get("observedGeneration") or 0) != generation:
            return False
        if (written.get("status"), written.get("reason"), written.get("message", "")) != (
            c.status,
            c.reason,
            c.message,
        ):
            return False
    return True
