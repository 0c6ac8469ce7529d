"""The reconciler runtime's pure parts, with in-memory stand-ins for the bus and the API (no stack):
which messages wake which keys, that children are applied once, and when a report is new."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

import msgspec

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.events import envelope, subjects
from substratus_common.events.subjects import ResourceKey
from substratus_common.kube import client
from substratus_common.metrics import RuntimeMetrics
from substratus_common.runtime import consumer, reconciler, report, view

Object = dict[str, Any]
SPEC = reconciler.Spec(durable="trainer", owned=("models",), child_kinds=("job",), depends_on=("models",))


class FakeKube:
    def __init__(self) -> None:
        self.applied: list[Object] = []
        self.namespace_reads = 0

    async def get(self, rt: object, namespace: str | None, name: str) -> Object | None:
        self.namespace_reads += 1
        return {"metadata": {"name": name, "labels": {}}}  # enforces no Pod Security level

    async def create(self, body: Object, field_manager: str | None = None) -> Object:
        """A plain create (a Job or a ConfigMap new to the process): counted as a write like an apply."""
        self.applied.append(body)
        meta = {**body["metadata"], "uid": f"uid-{body['metadata']['name']}", "resourceVersion": "1"}
        return {**body, "metadata": meta}

    async def apply_child(self, body: Object, field_manager: str) -> tuple[Object, bool]:
        created = all(b["metadata"]["name"] != body["metadata"]["name"] for b in self.applied)
        self.applied.append(body)
        return {**body, "metadata": {**body["metadata"], "uid": f"uid-{body['metadata']['name']}"}}, created


class FakeBus:
    source = "substratus/test"

    def __init__(self) -> None:
        self.published: list[tuple[str, envelope.CloudEvent]] = []

    async def publish(self, subject: str, event: envelope.CloudEvent) -> bool:
        self.published.append((subject, event))
        return True


class Waits(reconciler.Reconciler):
    spec = SPEC
    field_manager = "substratus-test"

    def __init__(self, outcome: reconciler.Outcome) -> None:
        self.outcome = outcome

    async def reconcile(self, obj: Object) -> reconciler.Outcome:
        return self.outcome

    def dependencies(self, obj: Object) -> Iterable[ResourceKey]:
        key = reconciler.ref_key(obj, "models", (obj.get("spec") or {}).get("model"))
        return [key] if key else []


def _model(name: str, *, base: str | None = None, generation: int = 1, ready: bool = False, rv: int = 1) -> Object:
    spec: Object = {"image": "i"}
    if base:
        spec["model"] = {"name": base}
    return {
        "apiVersion": "substratus.ai/v1",
        "kind": "Model",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"u-{name}",
            "generation": generation,
            "resourceVersion": str(rv),
        },
        "spec": spec,
        "status": {"ready": ready},
    }


def _job(name: str, *, active: int = 0, succeeded: int = 0, rv: int = 1) -> Object:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{name}-modeller", "namespace": "ns", "uid": f"j-{name}", "resourceVersion": str(rv)},
        "status": {"active": active, "succeeded": succeeded, "startTime": f"2026-01-01T00:00:0{rv % 10}Z"},
    }


def _delivery(subject: str, obj: Object, *, deleted: bool = False) -> consumer.Delivery:
    kind = str(obj["kind"])
    event = envelope.make(
        id=f"{obj['metadata']['uid']}/{obj['metadata']['resourceVersion']}",
        source="substratus/watcher",
        type=envelope.change_type(kind, deleted),
        subject="x",
        data=obj,
    )
    return consumer.Delivery(subjects.parse(subject), event, 1, 1)


def _loop(
    outcome: reconciler.Outcome | None = None, settings: config.Settings | None = None
) -> tuple[reconciler.Loop, FakeKube, FakeBus]:
    kube, bus = FakeKube(), FakeBus()
    found = view.View(["models"], {"models": ["job"]})
    runtime = reconciler.Runtime(
        settings or config.Settings(service="trainer"),
        cast(connection.Bus, bus),
        cast(client.Kube, kube),
        found,
        RuntimeMetrics(),
    )
    loop = reconciler.Loop(runtime, Waits(outcome or reconciler.Outcome(())))
    runtime.loop = loop
    found.on_fold = loop.index
    return loop, kube, bus


MODEL = subjects.change("models", "ns", "m")
JOB = subjects.child_change("models", "ns", "m", "Job", "m-modeller")


def test_a_job_wakes_its_owner_only_when_what_the_owner_reports_changes() -> None:
    loop, _, _ = _loop()
    key = ResourceKey("models", "ns", "m")
    assert loop.route(_delivery(JOB, _job("m", active=1, rv=1))) == [key]
    assert loop.route(_delivery(JOB, _job("m", active=1, rv=2))) == []  # only startTime/resourceVersion moved
    assert loop.route(_delivery(JOB, _job("m", succeeded=1, rv=3))) == [key]
    assert loop.route(_delivery(JOB, _job("m", succeeded=1, rv=4), deleted=True)) == [key]
    assert loop.route(_delivery(MODEL, _model("m"))) == [key]


class IgnoresJobs(Waits):
    """As the builder sees the trainer's Jobs: nothing of them matters."""

    def summary(self, kind: str, child: Object) -> object:
        return reconciler.UNWATCHED


def test_an_unwatched_child_wakes_its_owner_not_even_when_first_seen_but_its_deletion_does() -> None:
    loop, _, _ = _loop()
    loop.reconciler = IgnoresJobs(reconciler.Outcome(()))
    key = ResourceKey("models", "ns", "m")
    assert loop.route(_delivery(JOB, _job("m", active=1, rv=1))) == []
    assert loop.route(_delivery(JOB, _job("m", succeeded=1, rv=2))) == []
    assert loop.route(_delivery(JOB, _job("m", succeeded=1, rv=3), deleted=True)) == [key]
    assert loop.route(_delivery(MODEL, _model("m"))) == [key]


def test_a_write_of_its_own_report_does_not_wake_a_resource_but_a_new_generation_or_another_services_does() -> None:
    loop, _, _ = _loop()
    key = ResourceKey("models", "ns", "m")
    assert loop.route(_delivery(MODEL, _model("m", rv=1))) == [key]
    reported = _model("m", rv=2)
    reported["status"]["conditions"] = [
        {"type": "Complete", "status": "False", "reason": "JobNotComplete", "message": "running"},
        {"type": "Ready", "status": "False", "reason": "JobNotComplete", "message": "running"},
    ]
    assert loop.route(_delivery(MODEL, reported)) == []  # the status writer applied our own report
    uploaded = _model("m", rv=3)
    uploaded["status"]["conditions"] = [
        *reported["status"]["conditions"],
        {"type": "Uploaded", "status": "True", "reason": "UploadFound", "message": "found"},
    ]
    assert loop.route(_delivery(MODEL, uploaded)) == [key]  # another service's condition moved
    assert loop.route(_delivery(MODEL, _model("m", generation=2, rv=4))) == [key]  # the spec changed
    assert loop.route(_delivery(MODEL, _model("m", generation=2, rv=5), deleted=True)) == [key]


def _reported(rv: int, message: str = "running") -> Object:
    """The Model after the status writer applied the trainer's own report."""
    model = _model("m", rv=rv)
    model["status"]["conditions"] = [
        {"type": "Complete", "status": "False", "reason": "JobNotComplete", "message": message},
        {"type": "Ready", "status": "False", "reason": "JobNotComplete", "message": message},
    ]
    return model


def test_a_replica_handed_a_change_it_never_saw_tells_from_its_view_whether_it_matters() -> None:
    """Replicas share the messages: the one handed the status writer's apply of the report (or a
    Job heartbeat) may have been handed nothing about that Model before. Its view, which follows
    every message, knows the version before, so the change wakes nothing there either."""
    a, _, _ = _loop()
    b, _, _ = _loop()
    key = ResourceKey("models", "ns", "m")
    stream = [
        (a, MODEL, _model("m", rv=1), [key]),
        (a, JOB, _job("m", active=1, rv=2), [key]),
        (b, MODEL, _reported(3), []),  # only our own report moved
        (b, JOB, _job("m", active=1, rv=4), []),  # only the Job's heartbeat moved
        (b, JOB, _job("m", succeeded=1, rv=5), [key]),  # the Job completed
    ]
    for handed, subject, obj, wakes in stream:
        for loop in (a, b):  # both views' readers fold the message before it is handed out
            loop.runtime.view.fold(subjects.parse(subject), _delivery(subject, obj).event)
        assert handed.route(_delivery(subject, obj)) == wakes, obj["metadata"]


def test_a_consumer_behind_its_view_is_judged_by_each_version_s_own_change() -> None:
    """Workers busy, the consumer is handed versions its view has already read past: each is
    judged by whether it moved the summary from the version before it, not by the newest."""
    loop, _, _ = _loop()
    key = ResourceKey("models", "ns", "m")
    model = subjects.parse(MODEL)

    def at(rv: int, generation: int = 1) -> Object:
        reported = _reported(rv)
        reported["metadata"]["generation"] = generation
        return reported

    assert loop.route(_delivery(MODEL, _model("m", rv=1))) == [key]
    for version in (at(2, generation=2), at(3, generation=2)):  # the reader reads on: a spec change, a report
        loop.runtime.view.fold(model, _delivery(MODEL, version).event)
    assert loop.route(_delivery(MODEL, at(2, generation=2))) == [key]  # the spec change is not lost
    assert loop.route(_delivery(MODEL, at(3, generation=2))) == []  # only our report moved
    assert loop.runtime.view.get(*key)["metadata"]["resourceVersion"] == "3"  # the newest stays
    for rv in range(4, 4 + view.HISTORY):  # many more reports: rv 3 drops out of the history
        loop.runtime.view.fold(model, _delivery(MODEL, at(rv, generation=2)).event)
    assert loop.route(_delivery(MODEL, at(3, generation=2))) == [key]  # too old to tell: a pass


def test_a_dependency_wakes_its_dependents_from_the_view_when_it_appears_or_turns_ready() -> None:
    loop, _, _ = _loop()
    loop.route(_delivery(MODEL, _model("m", base="base")))
    loop.runtime.view.apply(
        subjects.change("models", "ns", "other"),
        envelope.encode(
            envelope.make(
                id="u/1",
                source="s",
                type=envelope.change_type("Model", False),
                subject="x",
                data=_model("other", base="else"),
            )
        ),
    )
    base = subjects.change("models", "ns", "base")
    woken = loop.route(_delivery(base, _model("base", rv=1)))
    assert ResourceKey("models", "ns", "m") in woken
    assert ResourceKey("models", "ns", "other") not in woken
    assert ResourceKey("models", "ns", "m") not in loop.route(_delivery(base, _model("base", rv=2)))  # nothing new
    assert ResourceKey("models", "ns", "m") in loop.route(_delivery(base, _model("base", ready=True, rv=3)))
    # The dependent's spec no longer names it: it is not woken any more.
    loop.route(_delivery(MODEL, _model("m", rv=5)))
    assert loop.dependents(ResourceKey("models", "ns", "base")) == []


async def test_children_are_applied_once_and_shared_ones_once_per_process() -> None:
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "substratus-modeller", "namespace": "ns"},
    }
    owner = [{"kind": "Model", "name": "m", "uid": "u-m", "controller": True}]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "m-modeller", "namespace": "ns", "ownerReferences": owner},
    }
    outcome = reconciler.Outcome(
        [report.condition("Complete", False, "JobNotComplete", "running")], children=[account, job]
    )
    loop, kube, _ = _loop(outcome)
    await loop.write(_model("m"), outcome)
    await loop.write(_model("m"), outcome)  # a second pass before the Job is in the view
    assert [b["kind"] for b in kube.applied] == ["ServiceAccount", "Job"]
    loop.route(_delivery(JOB, _job("m"), deleted=True))  # the Job was deleted: wanted again
    await loop.write(_model("m"), outcome)
    assert [b["kind"] for b in kube.applied] == ["ServiceAccount", "Job", "Job"]


async def test_a_child_this_process_created_wakes_nothing_when_the_stream_shows_it_as_created() -> None:
    """The pass that created a Job has seen it: the Job's first version on the stream (the one
    the create answered) makes no second pass; its next change is compared with it."""
    owner = [{"kind": "Model", "name": "m", "uid": "u-m", "controller": True}]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "m-modeller", "namespace": "ns", "ownerReferences": owner},
    }
    outcome = reconciler.Outcome([report.condition("Complete", False, "JobNotComplete", "running")], children=[job])
    loop, _, _ = _loop(outcome)
    key = ResourceKey("models", "ns", "m")
    assert loop.route(_delivery(MODEL, _model("m"))) == [key]
    await loop.write(_model("m"), outcome)  # creates the Job: the API answers uid-m-modeller at version 1
    created = {**_job("m", rv=1), "metadata": {**_job("m", rv=1)["metadata"], "uid": "uid-m-modeller"}}
    assert loop.route(_delivery(JOB, created)) == []
    done = {**_job("m", succeeded=1, rv=2), "metadata": {**created["metadata"], "resourceVersion": "2"}}
    assert loop.route(_delivery(JOB, done)) == [key]


async def test_a_report_carries_its_generation_and_a_newer_generation_reports_again() -> None:
    built = reconciler.Outcome([report.condition("Built", True, "JobComplete", "built")])
    loop, _, bus = _loop(built)
    assert await loop.publish(_model("m", generation=1), built)
    assert not await loop.publish(_model("m", generation=1), built)  # the same report again: nothing new
    # The status (written at generation 1) says it, but the object is at generation 2 now.
    written = _model("m", generation=2)
    written["status"] = {
        "conditions": [
            {"type": "Built", "status": "True", "reason": "JobComplete", "message": "built", "observedGeneration": 1}
        ]
    }
    assert await loop.publish(written, built)
    generations = [msgspec.json.decode(e.data)["generation"] for _, e in bus.published]
    assert generations == [1, 2]


def test_a_status_that_already_holds_the_outcome_needs_no_report() -> None:
    outcome = reconciler.Outcome([report.condition("Complete", True, "JobComplete", "done")], "s3://b/x/artifacts")
    written = _model("m")
    written["status"] = {
        "artifacts": {"url": "s3://b/x/artifacts"},
        "conditions": [
            {"type": "Complete", "status": "True", "reason": "JobComplete", "message": "done", "observedGeneration": 1}
        ],
    }
    assert reconciler.status_says(written, outcome)
    assert not reconciler.status_says({**written, "metadata": {**written["metadata"], "generation": 2}}, outcome)
    assert not reconciler.status_says(written, reconciler.Outcome(outcome.conditions, "s3://b/y/artifacts"))


class Enqueued:
    """Stands in for the keyed consumer: records the keys the loop asks to reconcile."""

    def __init__(self) -> None:
        self.keys: list[ResourceKey] = []
        self.added = asyncio.Event()

    def enqueue(self, key: ResourceKey) -> None:
        self.keys.append(key)
        self.added.set()


async def test_a_report_the_status_never_says_is_published_again_until_it_does() -> None:
    done = reconciler.Outcome([report.condition("Complete", True, "JobComplete", "done")])
    loop, _, bus = _loop(done, config.Settings(service="trainer", report_resend_s=0.05))
    queue = Enqueued()
    loop.keyed = cast(consumer.KeyedConsumer, queue)
    key = ResourceKey("models", "ns", "m")
    model = _model("m")
    loop.route(_delivery(MODEL, model))  # the view holds the Model, status without the report
    assert await loop.publish(model, done)
    assert not await loop.publish(model, done)  # just published: nothing new yet

    # The status writer gave up on it: the status still says nothing after report_resend_s.
    await asyncio.wait_for(queue.added.wait(), 5)
    assert queue.keys == [key]
    assert await loop.publish(model, done), "the pass the check asked for publishes the report again"
    assert len(bus.published) == 2
    assert loop.runtime.metrics.reports_resent._value.get() == 1

    # Written this time: the next check finds it in the view and asks for nothing more.
    written = _model("m", rv=2)
    written["status"] = {
        "conditions": [
            {"type": "Complete", "status": "True", "reason": "JobComplete", "message": "done", "observedGeneration": 1}
        ]
    }
    loop.route(_delivery(MODEL, written))
    loop._checks.pop(key).cancel()
    loop._check_report(key)  # the check, run now rather than waited for
    assert queue.keys == [key]
    assert not await loop.publish(written, done)
    assert len(bus.published) == 2


async def test_generations_arriving_out_of_order_leave_the_newest_in_the_view_and_the_report() -> None:
    """Check 10 (docs/reliability.md), on the manager's side: an older version delivered after a
    newer one (a republish, a second watcher) neither replaces it in the view nor makes a report
    of the older generation; a late tombstone of an earlier object of that name deletes nothing."""
    done = reconciler.Outcome([report.condition("Complete", True, "JobComplete", "done")])
    loop, _, bus = _loop(done)
    key = ResourceKey("models", "ns", "m")
    newer, older = _model("m", generation=2, rv=20), _model("m", generation=1, rv=10)
    loop.route(_delivery(MODEL, newer))
    late = _delivery(MODEL, older)
    loop.route(late)
    held = loop.runtime.view.get(*key)
    assert held is not None
    assert held["metadata"]["generation"] == 2

    await loop.run_pass(key, [late])
    assert [msgspec.json.decode(e.data)["generation"] for _, e in bus.published] == [2]

    predecessor = {**older, "metadata": {**older["metadata"], "uid": "u-an-earlier-m"}}
    loop.route(_delivery(MODEL, predecessor, deleted=True))
    assert loop.runtime.view.get(*key) is not None, "a tombstone of another uid deleted the Model"
