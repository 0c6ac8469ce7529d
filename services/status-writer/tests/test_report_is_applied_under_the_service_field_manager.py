"""A status report published by a service appears on the resource under that service's field
manager; `ready` follows; another manager's labels and another service's conditions survive."""

from __future__ import annotations

from collections.abc import Callable

from substratus_common.bus import connection
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

from .writer_harness import apply_model, condition, get, publish, status_managers


async def test_report_lands_under_the_reporting_service_and_keeps_what_others_own(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("status-writer")
    model = apply_model(stack, namespace, "opt")
    stack.kubectl("label", "model", "opt", "-n", namespace, "team=research", "--field-manager=platform-team")

    await publish(bus, model, "builder", ("Built", "True", "JobComplete", "image built"))
    await publish(bus, model, "trainer", ("Complete", "False", "JobNotComplete", "the modeller Job is running"))
    eventually(
        lambda: condition(get(stack, namespace, "opt"), "Complete").get("reason") == "JobNotComplete",
        30,
        "the trainer's first report",
    )
    await publish(bus, model, "trainer", ("Complete", "True", "JobComplete", "the modeller Job completed"))

    def written() -> bool:
        obj = get(stack, namespace, "opt")
        assert obj.get("status", {}).get("ready") is True, obj.get("status")
        return True

    eventually(written, 30, "ready after the trainer's report")
    obj = get(stack, namespace, "opt")
    complete = condition(obj, "Complete")
    assert complete["status"] == "True"
    assert complete["reason"] == "JobComplete"
    assert complete["message"] == "the modeller Job completed"
    assert complete["observedGeneration"] == obj["metadata"]["generation"]
    assert complete["lastTransitionTime"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]

    managers = status_managers(obj)
    assert '{"type":"Complete"}' in str(managers["substratus-trainer"].get("f:conditions", {}))
    assert '{"type":"Built"}' in str(managers["substratus-builder"].get("f:conditions", {}))
    # ready and observedGeneration travel in the reporting service's apply (one write per report).
    assert "f:ready" in managers["substratus-trainer"]

    # What others own is left alone: the label, and the builder's condition.
    assert obj["metadata"]["labels"]["team"] == "research"
    assert condition(obj, "Built")["reason"] == "JobComplete"
