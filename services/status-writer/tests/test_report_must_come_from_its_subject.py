"""A report is applied only when its body names the service and resource of the subject it came
on: NATS lets the trainer publish only on its own subjects, and that must not let it write as the
builder (e.g. set ``spec.image``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from substratus_common import errors
from substratus_common.bus import connection
from substratus_common.events import envelope, payloads, subjects
from substratus_common.runtime import report
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually
from substratus_status_writer import writer

from .writer_harness import apply_model, condition, get

BUILT = report.conditions(("Built", "True", "JobComplete", "image built"))


def _report(service: str, name: str = "opt", image: str | None = None) -> payloads.StatusReport:
    return payloads.StatusReport(
        kind="Model", namespace="ns", name=name, uid="u", generation=1, service=service, conditions=BUILT, image=image
    )


def test_a_matching_subject_passes() -> None:
    writer.check_origin(_report("builder"), subjects.parse(subjects.status("models", "ns", "opt", "builder")))


@pytest.mark.parametrize(
    ("made", "subject"),
    [
        (_report("builder", image="evil:1"), subjects.status("models", "ns", "opt", "trainer")),
        (_report("trainer", name="other"), subjects.status("models", "ns", "opt", "trainer")),
        (_report("trainer"), subjects.status("datasets", "ns", "opt", "trainer")),
    ],
)
def test_a_body_that_disagrees_with_its_subject_is_forbidden(made: payloads.StatusReport, subject: str) -> None:
    with pytest.raises(errors.PermanentError) as refused:
        writer.check_origin(made, subjects.parse(subject))
    assert refused.value.reason == "Forbidden"


async def test_the_trainer_cannot_set_the_image_by_claiming_to_be_the_builder(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    writer_process = run_service("status-writer")
    model = apply_model(stack, namespace, "opt")
    spoofed = report.report_for(model, "builder", BUILT, image="registry.example/evil:1")
    event = envelope.make(
        id=spoofed.event_id(),
        source="substratus/trainer",
        type=envelope.STATUS_TYPE,
        subject=f"models/{namespace}/opt",
        data=spoofed,
    )
    await bus.publish(subjects.status("models", namespace, "opt", "trainer"), event)
    eventually(lambda: "permanent failure" in writer_process.logs(), 30, "the spoofed report to be refused")
    assert get(stack, namespace, "opt")["spec"]["image"] == model["spec"]["image"]
    assert condition(get(stack, namespace, "opt"), "Built") == {}

    genuine = report.report_for(model, "builder", BUILT, image="registry.example/opt:1")
    await report.publish(bus, genuine, "models")
    eventually(lambda: get(stack, namespace, "opt")["spec"]["image"] == "registry.example/opt:1", 30, "the image")
    obj = get(stack, namespace, "opt")
    assert condition(obj, "Built")["reason"] == "JobComplete"
