"""A report computed from an older generation never overwrites what a newer one wrote."""

from __future__ import annotations

from collections.abc import Callable

from substratus_common.bus import connection
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess, eventually

from .writer_harness import apply_model, condition, get, publish


async def test_an_older_generation_is_dropped(
    stack: Stack, namespace: str, bus: connection.Bus, run_service: Callable[..., ServiceProcess]
) -> None:
    writer = run_service("status-writer")
    old = apply_model(stack, namespace, "opt")
    new = apply_model(stack, namespace, "opt", image="substratusai/model-loader-huggingface:v2")
    assert new["metadata"]["generation"] == old["metadata"]["generation"] + 1

    await publish(bus, new, "trainer", ("Complete", "False", "JobNotComplete", "generation 2 is running"))
    eventually(
        lambda: condition(get(stack, namespace, "opt"), "Complete").get("observedGeneration") == 2,
        30,
        "the report about generation 2",
    )
    # A late report about generation 1 (e.g. from a replica that read the old spec).
    await publish(bus, new, "trainer", ("Complete", "True", "JobComplete", "generation 1 finished"), generation=1)
    eventually(lambda: "dropped a stale report" in writer.logs(), 30, "the stale report to be handled")

    obj = get(stack, namespace, "opt")
    assert condition(obj, "Complete")["message"] == "generation 2 is running"
    assert condition(obj, "Complete")["observedGeneration"] == 2
    assert obj["status"].get("ready") is False
