"""The status writer applies a report from its view of the resource, without reading it from the
API (ADR 136); when the resource changed since the view saw it, the API server refuses the write
(its version is a precondition), and the writer reads the resource and writes it right; a report
about a resource deleted since is dropped. On the real API server."""

from __future__ import annotations

from substratus_common.events import subjects
from substratus_common.kube import client
from substratus_common.runtime import report, view
from substratus_local.stack import Stack
from substratus_status_writer import writer

from .writer_harness import apply_model, condition, get


async def test_a_report_is_written_from_the_view_and_a_changed_resource_is_read_again(
    stack: Stack, namespace: str
) -> None:
    kube = await client.connect(str(stack.kubeconfig))
    try:
        known = view.View(writer.PLURALS)
        apply = writer.Writer(kube, known=known)
        model = apply_model(stack, namespace, "opt")
        key = subjects.ResourceKey("models", namespace, "opt")
        known.remember(key, model)

        await apply.apply(
            report.report_for(model, "trainer", report.conditions(("Complete", "False", "JobNotComplete", "running")))
        )
        assert apply.reads == 0, "a report about what the view holds was applied without a read"
        written = get(stack, namespace, "opt")
        assert condition(written, "Complete")["message"] == "running"
        held = known.get("models", namespace, "opt")
        assert held is not None
        assert held["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]

        # Someone changes the Model after the view saw it: the view's version is out of date.
        stack.kubectl("annotate", "model", "opt", "-n", namespace, "example.com/touched=yes")
        done = report.conditions(("Complete", "True", "JobComplete", "done"))
        await apply.apply(report.report_for(model, "trainer", done))
        assert apply.reads == 1, "the refused write was followed by one read of the resource"
        final = get(stack, namespace, "opt")
        assert condition(final, "Complete")["message"] == "done"
        assert final["status"]["ready"] is True
        assert final["metadata"]["annotations"]["example.com/touched"] == "yes"

        # Deleted after the view saw it: the report is dropped, nothing raised, nothing re-created.
        stack.kubectl("delete", "model", "opt", "-n", namespace, "--wait=true")
        again = report.conditions(("Complete", "False", "JobNotComplete", "running again"))
        await apply.apply(report.report_for(final, "trainer", again))
        left = stack.kubectl("get", "models", "-n", namespace, "-o", "name").stdout.split()
        assert left == [], left
    finally:
        await apply.events.aclose()
        await kube.close()
