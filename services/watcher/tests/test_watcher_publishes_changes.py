"""Applying a Model gives a CloudEvent on its change subject; its Job gives one on the child subject
(kwok simulates the Job's Pod), and the Job's Pod none."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from substratus_common.api import labels
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, streams, subjects
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, create_pod, eventually, stream_messages

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {{name: {name}, namespace: {ns}}}
spec:
  image: substratusai/model-loader-huggingface
  params: {{name: facebook/opt-125m}}
"""


async def _events(bus: connection.Bus, subject: str, count: int) -> list[envelope.CloudEvent]:
    """The events stored on ``subject``, once there are at least ``count`` (bounded wait)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        msgs = await stream_messages(bus, streams.CHANGES, subject)
        if len(msgs) >= count:
            return [envelope.decode(m.data) for m in msgs]
        assert asyncio.get_running_loop().time() < deadline, f"{len(msgs)} events on {subject}, wanted {count}"
        await asyncio.sleep(0.05)


async def test_a_model_change_is_a_cloudevent_on_its_subject(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    stack.kubectl("apply", "-f", "-", input=MODEL.format(name="opt.125m", ns=namespace))
    uid = stack.kubectl("get", "model", "opt.125m", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    subject = subjects.change("models", namespace, "opt.125m")
    assert subject.endswith(f".{namespace}.opt_125m")

    (event,) = await _events(bus, subject, 1)
    obj = payloads.change_object(event)
    assert event.type == "ai.substratus.model.changed.v1"
    assert event.source == "substratus/watcher"
    assert event.subject == f"models/{namespace}/opt.125m"
    assert event.id == f"{uid}/{obj['metadata']['resourceVersion']}"
    assert obj["spec"]["params"] == {"name": "facebook/opt-125m"}
    assert "managedFields" not in obj["metadata"]
    assert subjects.parse(subject).name == "opt.125m"

    stack.kubectl("delete", "model", "opt.125m", "-n", namespace)
    events = await _events(bus, subject, 2)
    assert events[-1].type == "ai.substratus.model.deleted.v1"


async def test_a_job_owned_by_a_model_is_published_on_the_child_subject_and_its_pod_is_not(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "m-modeller",
            "namespace": namespace,
            "labels": labels.for_child("models", "m", "modeller"),
        },
        "spec": {
            "template": {
                "metadata": {"labels": labels.for_child("models", "m", "modeller")},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "modeller", "image": "busybox"}]},
            }
        },
    }
    unlabelled = {
        **job,
        "metadata": {"name": "other", "namespace": namespace},
        "spec": {"template": {"spec": job["spec"]["template"]["spec"]}},  # type: ignore[index]
    }
    stack.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [job, unlabelled]})
    )
    subject = subjects.child_change("models", namespace, "m", "Job", "m-modeller")
    events = await _events(bus, subject, 1)
    assert events[0].type == "ai.substratus.job.changed.v1"
    assert events[0].subject == f"models/{namespace}/m/jobs/m-modeller"

    # The Job's Pod carries our labels (from the template) but is the Job's, not the Model's: its
    # owner follows the Job (ADR 138). A labelled Pod a resource owns itself is published.
    def job_pods() -> str:
        return stack.kubectl("get", "pods", "-n", namespace, "-l", f"{labels.JOB_NAME}=m-modeller", "-o", "name").stdout

    eventually(job_pods, 30, "a Pod of Job m-modeller")
    create_pod(stack, namespace, "m-own", "busybox", ["true"], labels=labels.for_child("models", "m", "notebook"))
    pods = await _events(bus, subjects.child_change("models", namespace, "m", "Pod", "m-own"), 1)
    assert pods[0].type == "ai.substratus.pod.changed.v1"
    # Both Pods come on the one Pod watch, the Job's first: had it been published, it would be by now.
    everything = await stream_messages(bus, streams.CHANGES, subjects.change_filter("*", namespace))
    published = [m.subject for m in everything]
    assert {s for s in published if ".pod." in s} == {subjects.child_change("models", namespace, "m", "Pod", "m-own")}
    assert not [s for s in published if s.endswith(".other")]
