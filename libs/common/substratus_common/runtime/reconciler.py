"""One contract for every consuming service, and the runtime that runs it (docs/adr/105).

A service (the trainer, server-manager, notebook-manager, builder, uploader) is a
:class:`Reconciler`: it says which resources it owns, what they depend on, and, for one resource,
the children it wants and the conditions to report (:class:`Outcome`). :func:`main` does the rest:

- settings, bus, Kubernetes, storage when asked, the :class:`view.View`, consumer options from
  settings, ``/readyz``, the service's root tasks, one bounded shutdown;
- **routing** (what makes a key dirty in the keyed consumer): a change of an owned resource → its
  key, unless only this service's own condition (or ``Ready``) moved, i.e. the status writer
  applied our report; a child's change → its owner's key only when the child's summary (phase, readiness,
  failure; not its heartbeats) differs from the version before it on the stream (the view keeps
  both, so a replica needs no earlier message about the key to tell); a dependency whose existence or
  readiness changed → the keys of its dependents, from an index kept as the view folds events;
- **a pass** reads the resource from the view (the API only when the view holds a cut-down
  copy), calls ``reconcile``, deletes what ``Outcome.replace`` names (uid precondition; the pass is
  retried until it is gone), applies ``Outcome.children`` in order with server-side apply
  (children owned by no resource, e.g. a namespace's ServiceAccount, once per process; others
  again only when their body changed or they were deleted), and publishes the report;
- **reports** are published only when they differ from what this process last published for
  that generation and, unless this process published another report for that generation (which
  may not be written yet), from what the status already says. A report carries the generation of
  the object it was computed from, so a pass over a newer generation always reports again.

Errors are the keyed consumer's (one table, docs/adr/101): a pass raises, the runtime does not
translate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from substratus_common import config, errors, failpoints
from substratus_common.api import resources
from substratus_common.api.types import Reason
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_common.events.subjects import ResourceKey
from substratus_common.kube import client
from substratus_common.kube import errors as kube_errors
from substratus_common.kube import resources as kube_resources
from substratus_common.metrics import RuntimeMetrics
from substratus_common.runtime import consumer, report, service, view
from substratus_common.storage import backends, base
from substratus_common.workloads import contract, gpu_table_file, gpus, job_status, ownership, plan, pod_security

log = logging.getLogger(__name__)

POD_SECURITY_TTL_S = 60.0
"""How long a namespace's Pod Security level is trusted before it is read again."""

RESEND_MAX_S = 600.0
"""The longest wait between two resends of a report the status does not say."""

Object = dict[str, Any]
T = TypeVar("T")
Applied = plan.Applied
UNWATCHED = view.UNWATCHED
Child = plan.Child
Replace = plan.Replace


@dataclass(frozen=True)
class Spec:
    """What a reconciler consumes and reports."""

    durable: str
    """Name of the durable consumer (the service name): replicas share it."""
    owned: Sequence[str]
    """Plurals the service reconciles, e.g. ``("models", "datasets")``."""
    child_kinds: Sequence[str] = ()
    """Child kinds (lowercase) whose changes reconcile their owner, e.g. ``("job",)``."""
    depends_on: Sequence[str] = ()
    """Plurals whose existence or readiness wakes dependents, e.g. ``("models",)``."""
    condition: str = "Complete"
    """The main condition type; failures are reported on it."""
    watches: Sequence[str] | None = None
    """Conditions other services report on an owned resource that a pass reads (the builder waits
    for the uploader's ``Uploaded``); a change of any other one wakes nothing. None: every one."""

    def filter_subjects(self) -> list[str]:
        prefix = f"{subjects.PREFIX}.{subjects.CHANGE}"
        wanted: list[str] = []
        for plural in dict.fromkeys([*self.owned, *self.depends_on]):
            wanted.append(f"{prefix}.{plural}.*.*")
            if plural in self.owned:
                wanted += [f"{prefix}.{plural}.*.*.{kind}.*" for kind in self.child_kinds]
        return wanted


@dataclass(frozen=True)
class Outcome:
    """What one pass found: the service's conditions, the status fields it owns, its children."""

    conditions: Sequence[payloads.ConditionReport]
    artifacts_url: str | None = None
    image: str | None = None
    """``spec.image`` to set (the builder after a successful build)."""
    build_upload: dict[str, str] | None = None
    """``status.buildUpload`` (the uploader)."""
    children: Sequence[Child] = ()
    """Server-side apply bodies, applied in this order after ``replace``."""
    replace: Replace | None = None


class Reconciler(Protocol):
    """What a service implements; subclass it to inherit the defaults of the optional parts."""

    spec: Spec

    @property
    def field_manager(self) -> str:
        """The server-side apply field manager of the service's writes: ``substratus-<durable>``."""
        return f"substratus-{self.spec.durable}"

    async def reconcile(self, obj: Object) -> Outcome:
        """Bring one resource (as the view holds it) in line: its children and what to report."""
        ...

    def dependencies(self, obj: Object) -> Iterable[ResourceKey]:
        """The resources ``obj`` waits for (e.g. a Model's base Model and Dataset)."""
        return ()

    def baseline(self, obj: Object) -> Outcome:
        """What a failure report must carry besides the failed main condition (e.g. artifacts URL)."""
        return Outcome(())

    def root_tasks(self) -> Mapping[str, service.RootTask]:
        """Named tasks beside the consumer (the uploader's pollers, the builder's executor)."""
        return {}

    def summary(self, kind: str, child: Object) -> object:
        """What of a child its owner reports; a change of it (only) wakes the owner. :data:`UNWATCHED`:
        nothing of this child matters here, and not even its first sighting wakes the owner."""
        return default_summary(child)

    def status_says(self, obj: Object, outcome: Outcome) -> bool:
        """Whether the resource's status already holds the outcome at its generation."""
        return status_says(obj, outcome)

    def applied(self, child: Object, *, created: bool) -> None:
        """The runtime just applied this child; ``created``: the apply created it (another replica's
        apply of the same child at the same time finds it and only updates it)."""
        return None  # noqa: RET501 (a body, so the Protocol's default is not abstract)

    def forget(self, key: ResourceKey) -> None:
        """The resource is gone: drop what the service remembers about it."""
        return None  # noqa: RET501 (a body, so the Protocol's default is not abstract)


@dataclass
class Runtime:
    """What a service's ``make`` gets: its connections, its view, and the runtime's two verbs."""

    settings: config.Settings
    bus: connection.Bus
    kube: client.Kube
    view: view.View
    metrics: RuntimeMetrics
    storage: base.Storage | None = None
    loop: Loop | None = None
    gpu_table: gpu_table_file.TableFile = field(default_factory=lambda: gpu_table_file.TableFile(None))
    """The GPU-type table (``gpu_types_file``), re-read when the file changes."""

    _levels: dict[str, tuple[str | None, float]] = field(default_factory=dict)

    async def pod_security(self, namespace: str) -> str | None:
        """The Pod Security level ``namespace`` enforces (its label), read at most once a minute."""
        now = asyncio.get_running_loop().time()
        cached = self._levels.get(namespace)
        if cached is not None and now - cached[1] < POD_SECURITY_TTL_S:
            return cached[0]
        try:
            found = await self.kube.get(kube_resources.NAMESPACE, None, namespace)
        except kube_errors.Forbidden:
            # An older chart without `get namespaces`: templates stay as they are.
            log.warning("cannot read the namespace's Pod Security level", extra={"namespace": namespace})
            found = None
        level = pod_security.level(found)
        self._levels[namespace] = (level, now)
        return level

    def enqueue(self, key: ResourceKey) -> None:
        """Make a key dirty from outside a message (a poller, a finished local build)."""
        assert self.loop is not None
        assert self.loop.keyed is not None
        self.loop.keyed.enqueue(ResourceKey(*key))

    async def publish(self, obj: Object, outcome: Outcome) -> bool:
        """Publish a report now (progress before a long step); False when it says nothing new."""
        assert self.loop is not None
        return await self.loop.publish(obj, outcome)


class Service(Reconciler):
    """A :class:`Reconciler` with the runtime's connections at hand, as most services want them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime, self.kube, self.settings, self.view = runtime, runtime.kube, runtime.settings, runtime.view

    async def child(self, owner: ResourceKey, kind: str, name: str) -> Object | None:
        """The owner's child from the view; from the API when the view has none. Before creating a
        workload the view cannot be trusted to know it is absent: a resource deleted and applied
        again at once still has its predecessor's child, not yet on the bus, which must be waited
        for rather than adopted (one GET per workload created)."""
        found = self.view.child(owner, kind, name)
        if found is None:
            found = await self.kube.get(kube_resources.by_kind(kind), owner.namespace, name)
        return found


Make = Callable[[Runtime], Reconciler | Awaitable[Reconciler]]


@dataclass
class _Published:
    uid: str
    generation: int
    fingerprint: tuple[Any, ...]
    outcome: Outcome | None = None
    resend_s: float = 0.0
    """Wait before checking that the status says this report (grows after each resend)."""
    resend_due: bool = False
    """The check found the status without it: the next pass publishes it again."""


@dataclass
class Loop:
    """The routing, the pass and the reports of one reconciler (one per process)."""

    runtime: Runtime
    reconciler: Reconciler
    keyed: consumer.KeyedConsumer | None = None
    reports_published: int = 0
    applies: int = 0
    _published: dict[ResourceKey, _Published] = field(default_factory=dict)
    _applied: dict[tuple[str, str, str], tuple[str, Object, str | None]] = field(default_factory=dict)
    """(kind, namespace, name) → (fingerprint, what the API answered, controller uid) of the
    children this process applied."""
    _seen_dependencies: dict[ResourceKey, object] = field(default_factory=dict)
    _depends: dict[ResourceKey, frozenset[ResourceKey]] = field(default_factory=dict)
    _dependents: dict[ResourceKey, set[ResourceKey]] = field(default_factory=dict)
    _checks: dict[ResourceKey, asyncio.TimerHandle] = field(default_factory=dict)

    @property
    def spec(self) -> Spec:
        return self.reconciler.spec

    # ---- routing ------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        self.runtime.view.summarize = self.summarize

    def route(self, delivery: consumer.Delivery) -> list[ResourceKey]:
        """Fold the message into the view; the keys it makes dirty.

        Whether a change of an owned resource or of its child matters is the view's record of that
        version against the one before it on the stream (:meth:`summarize`), not what this process
        was handed before: replicas share the messages, and each replica's view sees them all."""
        subject, key = delivery.subject, delivery.subject.key
        deleted = envelope.is_deleted(delivery.event.type)
        obj, changed = self.runtime.view.fold_change(subject, delivery.event)  # indexes dependents (on_fold)
        keys: list[ResourceKey] = []
        if key.plural in self.spec.owned:
            if subject.child_kind is None:
                matters = deleted or obj is None or not view.View.trusted(obj) or changed
            else:
                matters = deleted or obj is None or changed
                if (deleted or obj is None) and subject.child is not None:
                    self._applied.pop((subject.child_kind, key.namespace, subject.child), None)  # apply it again
            if matters:
                keys.append(key)
        if subject.child_kind is None and key.plural in self.spec.depends_on:
            seen = (obj is not None, _uid(obj), _is_ready(obj))
            if self._seen_dependencies.get(key) != seen:
                self._seen_dependencies[key] = seen
                keys += sorted(self._dependents.get(key, ()))
        return keys

    def summarize(self, key: ResourceKey, child: view.ChildKey | None, obj: Object) -> object:
        """What of a version matters to a pass (the view keeps it per version, see :meth:`route`):
        for a child, :meth:`Reconciler.summary`; for an owned resource, all but the status writer's
        apply of this service's own report (it would cost one more pass per report): spec changes
        move the generation, metadata is compared whole, and the conditions other services report
        that ``Spec.watches`` names (the builder waits for the uploader's ``Uploaded``)."""
        if key.plural not in self.spec.owned:
            return None
        if child is not None:
            return self.reconciler.summary(child[0], obj)
        meta = obj.get("metadata") or {}
        ours, watches = (self.spec.condition, "Ready"), self.spec.watches
        others = sorted(
            (str(c.get("type")), str(c.get("status")), str(c.get("reason")), str(c.get("message", "")))
            for c in ((obj.get("status") or {}).get("conditions") or [])
            if isinstance(c, dict) and c.get("type") not in ours and (watches is None or c.get("type") in watches)
        )
        return (
            meta.get("uid"),
            meta.get("generation"),
            meta.get("deletionTimestamp"),
            json.dumps([meta.get("labels"), meta.get("annotations"), others], sort_keys=True, default=str),
        )

    def index(self, key: ResourceKey, obj: Object | None) -> None:
        """Keep the dependents index current for one owned resource (called on every fold)."""
        if key.plural not in self.spec.owned or not self.spec.depends_on:
            return
        wanted = (
            frozenset(ResourceKey(*k) for k in self.reconciler.dependencies(obj)) if obj is not None else frozenset()
        )
        before = self._depends.get(key, frozenset())
        if wanted == before:
            return
        for dep in before - wanted:
            users = self._dependents.get(dep)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._dependents[dep]
        for dep in wanted - before:
            self._dependents.setdefault(dep, set()).add(key)
        if wanted:
            self._depends[key] = wanted
        else:
            self._depends.pop(key, None)

    def dependents(self, dependency: ResourceKey) -> list[ResourceKey]:
        return sorted(self._dependents.get(ResourceKey(*dependency), ()))

    # ---- one pass -----------------------------------------------------------------------------

    async def run_pass(self, key: ResourceKey, deliveries: Sequence[consumer.Delivery]) -> None:
        obj = await self.read(key)
        if obj is None:
            self._forget(key)
            return
        await failpoints.delay(failpoints.SLOW_RECONCILE)  # benchmarks only (SUBSTRATUS_FAILPOINTS)
        outcome = await self.reconciler.reconcile(obj)
        await self.write(obj, outcome)
        await self.publish(obj, outcome, deliveries[-1].event.id if deliveries else "")

    async def read(self, key: ResourceKey) -> Object | None:
        """The resource from the view; from the API when the view holds only its identity."""
        found = self.runtime.view.get(*key)
        if found is not None and not view.View.trusted(found):
            found = await self.runtime.kube.get(kube_resources.by_plural(key.plural), key.namespace, key.name)
        return found

    async def write(self, obj: Object, outcome: Outcome) -> None:
        """Delete what must be replaced, then apply the children in order."""
        kube, manager = self.runtime.kube, self.reconciler.field_manager
        if outcome.replace is not None:
            await self._replace(outcome.replace)
        applied: dict[tuple[str, str], Object] = {}
        for child in outcome.children:
            body = child(applied) if callable(child) else child
            meta = body["metadata"]
            kind, name, namespace = str(body["kind"]), str(meta["name"]), str(meta.get("namespace") or "")
            if kind in pod_security.WORKLOAD_KINDS:
                level = await self.runtime.pod_security(namespace)
                body = pod_security.restricted(body) if level == pod_security.RESTRICTED else body
            memo_key = (kind.lower(), namespace, name)
            fingerprint = _digest(body)
            memo = self._applied.get(memo_key)
            if memo is not None and memo[0] == fingerprint:
                applied[(kind, name)] = memo[1]
                continue
            controller = _controller_uid(body)
            # New to this process, or last written for an earlier resource of this name (whose
            # child may not be garbage-collected yet): never a forced apply over what is there.
            ours = controller is not None and controller == (obj.get("metadata") or {}).get("uid")
            if ours and kind in CREATE_FIRST and (memo is None or memo[2] != controller):
                answer, created = await self._create_or_check(body, obj, manager)
            else:
                answer, created = await kube.apply_child(body, manager)
            self.applies += 1
            self.reconciler.applied(body, created=created)
            if created:  # the pass saw it just made: its first version on the stream wakes nothing
                self.runtime.view.remember_created(key_of(obj), kind, name, answer)
            kept = {"metadata": {k: answer.get("metadata", {}).get(k) for k in ("name", "namespace", "uid")}}
            self._applied[memo_key] = (fingerprint, kept, controller)
            applied[(kind, name)] = kept

    async def _create_or_check(self, body: Object, owner: Object, manager: str) -> tuple[Object, bool]:
        """Create a child this process has not written for this resource yet. If one of that name
        exists, write it only when it is this resource's, or an earlier resource's of this kind and
        name (left for the garbage collector), which it takes over; anyone else's is refused
        (ADR 134): a forced apply would overwrite anyone's object."""
        kube = self.runtime.kube
        try:
            return await kube.create(body, field_manager=manager), True
        except kube_errors.Conflict:
            pass  # AlreadyExists: ours from before a restart, an earlier owner's, or someone else's
        meta, kind = body["metadata"], str(body["kind"])
        rt = kube_resources.by_kind(kind)
        current = await kube.get(rt, meta.get("namespace"), str(meta["name"]))
        if current is None:
            raise errors.TemporaryError(f"{kind} {meta['name']} was deleted meanwhile", delay_s=0.5)
        if kind not in TAKE_OVER:
            ownership.check(current, owner, kind)  # a workload of an earlier owner is waited for
            return await kube.apply_child(body, manager)
        held_by = ownership.refuse_foreign(current, owner, kind)
        if (current.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.TemporaryError(f"waiting for {kind} {meta['name']} to be deleted", delay_s=1.0)
        if held_by.get("uid") != _controller_uid(body):
            # An earlier resource's: a merge patch replaces its owner list, which the apply alone
            # would only add to when another operation wrote it (two controllers: refused).
            owners = {"metadata": {"ownerReferences": meta["ownerReferences"]}}
            await kube.patch(rt, meta.get("namespace"), str(meta["name"]), owners)
        return await kube.apply_child(body, manager)

    async def _replace(self, old: Replace) -> None:
        kube, rt = self.runtime.kube, kube_resources.by_kind(old.kind)
        await kube.delete(rt, old.namespace, old.name, propagation="Background", uid=old.uid)
        current = await kube.get(rt, old.namespace, old.name)
        if current is not None and (current.get("metadata") or {}).get("uid") == old.uid:
            raise errors.TemporaryError(f"waiting for the previous {old.kind} {old.name} to be deleted", delay_s=1.0)
        self._applied.pop((old.kind.lower(), old.namespace, old.name), None)

    # ---- reports ------------------------------------------------------------------------------

    async def publish(self, obj: Object, outcome: Outcome, event_id: str = "") -> bool:
        """Publish the report unless the status already says it or this process just published it."""
        key = key_of(obj)
        meta = obj["metadata"]
        uid, generation = str(meta.get("uid")), int(meta.get("generation") or 0)
        fingerprint = _fingerprint(outcome)
        last = self._published.get(key)
        resend = False
        if last is not None and (last.uid, last.generation, last.fingerprint) == (uid, generation, fingerprint):
            if not last.resend_due:
                return False
            # The status did not say this report long after it was published (the status writer
            # gave up on it, or the stream lost it): send it again unless it has arrived since.
            last.resend_due = False
            if self.reconciler.status_says(obj, outcome):
                return False
            resend = True
        # A report this process published for this generation may not be written yet: the status
        # read now can be older than it, and would be overwritten by it. Only a new report is safe.
        pending = last is not None and (last.uid, last.generation) == (uid, generation)
        if not pending and not resend and self.reconciler.status_says(obj, outcome):
            self._published[key] = _Published(uid, generation, fingerprint)
            return False
        made = report.report_for(
            obj,
            self.runtime.settings.service,
            outcome.conditions,
            observed=event_id or f"{uid}/{meta.get('resourceVersion')}",
            artifacts_url=outcome.artifacts_url,
            build_upload=outcome.build_upload,
            image=outcome.image,
        )
        await report.publish(self.runtime.bus, made, key.plural)
        first_s = self.runtime.settings.report_resend_s
        wait_s = min(last.resend_s * 2, RESEND_MAX_S) if resend and last is not None else first_s
        kept = dataclasses.replace(outcome, children=(), replace=None)  # the resend check needs no bodies
        self._published[key] = _Published(uid, generation, fingerprint, kept, wait_s)
        self.reports_published += 1
        if resend:
            self.runtime.metrics.reports_resent.inc()
            log.info("report published again: the status did not say it", extra={"key": str(key)})
        self._check_later(key, wait_s)
        return True

    def _check_later(self, key: ResourceKey, wait_s: float) -> None:
        """In ``wait_s``, see whether the status (as the view holds it) says the last report; if
        not, run a pass over the key, which publishes it again."""
        before = self._checks.pop(key, None)
        if before is not None:
            before.cancel()
        self._checks[key] = asyncio.get_running_loop().call_later(wait_s, self._check_report, key)

    def _check_report(self, key: ResourceKey) -> None:
        self._checks.pop(key, None)
        last = self._published.get(key)
        if last is None or last.outcome is None or self.keyed is None:
            return
        obj = self.runtime.view.get(*key)
        if obj is None:
            return  # gone: the deletion's pass forgets it
        meta = obj.get("metadata") or {}
        if str(meta.get("uid")) != last.uid or int(meta.get("generation") or 0) != last.generation:
            return  # a newer object: its own pass reports
        if view.View.trusted(obj) and self.reconciler.status_says(obj, last.outcome):
            return
        last.resend_due = True
        self.keyed.enqueue(key)

    async def give_up(self, key: ResourceKey, reason: str, message: str) -> None:
        """The consumer gave up on a key: put the reason on the resource's main condition."""
        if key.plural not in self.spec.owned:
            return
        obj = await self.read(ResourceKey(*key))
        if obj is None:
            return
        base_outcome = self.reconciler.baseline(obj)
        conditions = [
            *(c for c in base_outcome.conditions if c.type != self.spec.condition),
            report.condition(self.spec.condition, False, reason, message),
        ]
        failed = Outcome(
            conditions,
            base_outcome.artifacts_url,
            image=base_outcome.image,
            build_upload=base_outcome.build_upload,
        )
        await self.publish(obj, failed)

    def _forget(self, key: ResourceKey) -> None:
        self._published.pop(key, None)
        check = self._checks.pop(key, None)
        if check is not None:
            check.cancel()
        self.index(key, None)
        self.reconciler.forget(key)


# ---- main ---------------------------------------------------------------------------------------


Wants = bool | Callable[[config.Settings], bool]
"""Whether a service needs storage: always, never, or as its settings say."""


def main(service_name: str, make: Make, *, storage: Wants = False) -> None:
    """Console-script entry point of a reconciler service."""

    async def setup(ctx: service.Context) -> Mapping[str, service.RootTask]:
        return await start(ctx, make, storage=storage)

    service.main(service_name, setup)


async def start(ctx: service.Context, make: Make, *, storage: Wants = False) -> Mapping[str, service.RootTask]:
    """Connect, build the reconciler, load the view; the root tasks (the consumer and the service's)."""
    settings = ctx.settings
    bus = await connection.connect(settings)
    ctx.resources.push_async_callback(bus.close)
    ctx.watch_bus(bus)
    kube = await client.connect()
    ctx.resources.push_async_callback(kube.close)
    store = None
    if storage(settings) if callable(storage) else storage:
        store = backends.from_settings(settings)
        ctx.resources.push_async_callback(store.close)
    table = gpu_table_file.TableFile(settings.gpu_types_file)
    runtime = Runtime(settings, bus, kube, view.View(()), ctx.metrics, store, gpu_table=table)
    made = make(runtime)
    reconciler = await made if inspect.isawaitable(made) else made
    spec = reconciler.spec
    runtime.view.follows([*spec.owned, *spec.depends_on], {p: spec.child_kinds for p in spec.owned})
    loop = Loop(runtime, reconciler)
    runtime.loop = loop
    runtime.view.on_fold = loop.index
    options = consumer.options(
        settings,
        stream=streams.CHANGES,
        durable=spec.durable,
        filter_subjects=spec.filter_subjects(),
        accepts=envelope.is_change_type,
    )
    loop.keyed = consumer.KeyedConsumer(
        bus, settings.service, options, loop.run_pass, route=loop.route, on_give_up=loop.give_up, metrics=ctx.metrics
    )
    await runtime.view.follow(bus)
    ctx.resources.push_async_callback(runtime.view.close)
    runner = loop.keyed
    ctx.add_readiness_check("consuming", lambda: runner.ready and runtime.view.loaded.is_set())

    async def consume(ctx: service.Context) -> None:
        await runner.run(ctx.stop, grace_s=settings.shutdown_grace_s)

    return {"consume-changes": consume, **reconciler.root_tasks()}


# ---- helpers the services share -----------------------------------------------------------------


def refs(obj: Object, **fields: str) -> list[ResourceKey]:
    """Keys of the ObjectRefs in ``spec`` by plural, e.g. ``refs(obj, models="model")``."""
    spec = obj.get("spec") or {}
    keys = [ref_key(obj, plural, spec.get(name)) for plural, name in fields.items()]
    return [k for k in keys if k is not None]


def ref_key(obj: Object, plural: str, ref: Any) -> ResourceKey | None:
    """The key of ``spec.<field>`` (an ObjectRef dict) in the object's namespace, or None."""
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    return ResourceKey(plural, str(obj["metadata"]["namespace"]), str(ref["name"]))


@dataclass(frozen=True)
class Dependency:
    """One kind of resource a reconcile waits for (an ObjectRef in ``spec``), and the reasons it
    reports while waiting."""

    label: str
    """How messages name it, e.g. ``base Model`` or ``Dataset``."""
    plural: str
    field: str
    """The ``spec`` field that names it, e.g. ``model``."""
    not_found: str
    not_ready: str


MODEL = Dependency("Model", "models", "model", Reason.MODEL_NOT_FOUND, Reason.MODEL_NOT_READY)
BASE_MODEL = Dependency("base Model", "models", "model", Reason.BASE_MODEL_NOT_FOUND, Reason.BASE_MODEL_NOT_READY)
DATASET = Dependency("Dataset", "datasets", "dataset", Reason.DATASET_NOT_FOUND, Reason.DATASET_NOT_READY)


def parse(obj: Object, kinds: type[T] | tuple[type[T], ...], service_name: str) -> T:
    """The typed resource, or a PermanentError (``Invalid``) naming what is wrong with it."""
    try:
        resource = resources.parse(obj)
    except ValidationError as error:
        raise errors.PermanentError(resources.validation_message(error), reason=Reason.INVALID) from None
    if not isinstance(resource, kinds):
        raise errors.PermanentError(f"the {service_name} does not run {resource.kind}s", reason=Reason.INVALID)
    return resource


@contextlib.contextmanager
def refused_specs() -> Iterator[None]:
    """A spec that cannot run (an unknown GPU type, a broken container contract) is ``Invalid``:
    reported on the resource, not retried."""
    try:
        yield
    except (gpus.UnknownGPUType, contract.ContractError) as error:
        raise errors.PermanentError(str(error), reason=Reason.INVALID) from None


def depends(obj: Object, table: Iterable[Dependency]) -> list[ResourceKey]:
    """The keys of the dependencies ``obj`` names (for :meth:`Reconciler.dependencies`)."""
    return refs(obj, **{dep.plural: dep.field for dep in table})


def waiting_for(found: view.View, obj: Object, table: Iterable[Dependency], then: str) -> tuple[str, str] | None:
    """(reason, message) naming every dependency that is missing or not ready (in the view), or None.

    The reason is the first one found; ``then`` says what happens once they are ready, e.g.
    ``the Job starts by itself``. A dependency turning ready wakes the dependent (routing), so the
    view is never older than the event that would change the answer.
    """
    namespace = str(obj["metadata"]["namespace"])
    missing: list[tuple[str, str]] = []
    for dep in table:
        key = ref_key(obj, dep.plural, (obj.get("spec") or {}).get(dep.field))
        if key is None:
            continue
        found_obj = found.get(*key)
        if found_obj is None:
            missing.append((dep.not_found, f"{dep.label} {key.name} not found in namespace {namespace}"))
        elif not _is_ready(found_obj):
            missing.append((dep.not_ready, f"{dep.label} {key.name} is not ready"))
    if not missing:
        return None
    return missing[0][0], "; ".join(m for _, m in missing) + f"; {then} once they are ready"


async def failed_pod_message(kube: client.Kube, job: Object) -> str:
    """Why the newest failed Pod of a failed Job failed (exit codes, reasons, messages): one list
    of the Job's Pods, read only once the Job failed (Pods are not in the view)."""
    uid = job["metadata"].get("uid")
    if not uid:
        return ""
    selector = f"{job_status.POD_SELECTOR_LABEL}={uid}"
    listed = await kube.list(kube_resources.POD, job["metadata"]["namespace"], label_selector=selector)
    return job_status.failed_pod_summary(listed.items)


def key_of(obj: Object) -> ResourceKey:
    meta = obj["metadata"]
    return ResourceKey(resources.kind_info(str(obj["kind"])).plural, str(meta["namespace"]), str(meta["name"]))


_VOLATILE = ("Time", "Timestamp", "At", "resourceVersion", "observedGeneration", "heartbeat")


def default_summary(child: Object) -> object:
    """A child as its owner sees it: identity, spec-hash annotations, deletion, and its status
    without timestamps and heartbeats (probe times, resourceVersion), as a comparable string."""
    meta = child.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("substratus.ai/")}
    shown = {
        "uid": meta.get("uid"),
        "deleting": bool(meta.get("deletionTimestamp")),
        "annotations": annotations,
        "replicas": (child.get("spec") or {}).get("replicas"),
        "status": _strip(child.get("status") or {}),
    }
    return json.dumps(shown, sort_keys=True, default=str)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not any(k.endswith(s) for s in _VOLATILE)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def status_says(obj: Object, outcome: Outcome) -> bool:
    """Whether the resource's status already holds this outcome at its current generation."""
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    status = obj.get("status") or {}
    if outcome.artifacts_url and (status.get("artifacts") or {}).get("url") != outcome.artifacts_url:
        return False
    if outcome.image and (obj.get("spec") or {}).get("image") != outcome.image:
        return False
    if outcome.build_upload is not None and (status.get("buildUpload") or None) != outcome.build_upload:
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


TAKE_OVER = frozenset({"ConfigMap", "PersistentVolumeClaim", "Service"})
"""Children that carry no outcome of their own: one left by an earlier resource of the same kind
and name is taken over rather than waited for (ADR 134)."""

CREATE_FIRST = TAKE_OVER | {"Job"}
"""Children created with a plain create the first time this process writes them, so a same-named
object of someone else's is found and reported, not overwritten. A Job is created without a GET
before it (the trainer reads it from the view only): one that exists is read after the create
failed and checked like any Job (an earlier Model's is waited for, never adopted). Deployments and
Pods are checked by their services before they are written."""


def _controller_uid(child: Object) -> str | None:
    controller = ownership.controller_of(child)
    return None if controller is None else str(controller.get("uid"))


def _uid(obj: Object | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("uid"))


def _is_ready(obj: Object | None) -> bool:
    status = (obj or {}).get("status")
    return isinstance(status, dict) and status.get("ready") is True


def _digest(body: Object) -> str:
    """What tells one body of a child from another: a digest, not the body, since this process
    remembers one per child it wrote."""
    return hashlib.blake2b(json.dumps(body, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _fingerprint(outcome: Outcome) -> tuple[Any, ...]:
    conditions = tuple(sorted((c.type, c.status, c.reason, c.message) for c in outcome.conditions))
    upload = tuple(sorted(outcome.build_upload.items())) if outcome.build_upload is not None else None
    return conditions, outcome.artifacts_url, outcome.image, upload
