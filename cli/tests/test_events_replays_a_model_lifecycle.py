"""``substratus events --since 10m --kind models`` shows a Model's lifecycle in order: changed, status, deleted.

On the real stack: the watcher and the status writer run as processes, the Model is applied with
kubectl, a status report is published as a service would, and the CLI runs as a user runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Callable

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.runtime import report
from substratus_local.stack import Stack
from substratus_local.testing import ServiceProcess

MODEL = """
apiVersion: substratus.ai/v1
kind: Model
metadata: {{name: {name}, namespace: {ns}}}
spec:
  image: substratusai/model-loader-huggingface
  params: {{name: facebook/opt-125m}}
"""


def substratus_events(stack: Stack, *args: str) -> list[str]:
    env = {**os.environ, **stack.env}
    exe = shutil.which("substratus", path=env["PATH"])
    assert exe is not None, "the substratus console script is not installed"
    result = subprocess.run([exe, "events", *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` for at most 30 s without blocking the event loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not check():
        assert loop.time() < deadline, f"{what} did not happen within 30s"
        await asyncio.sleep(0.1)


async def test_the_lifecycle_of_a_model_is_shown_in_order(
    stack: Stack, namespace: str, run_service: Callable[..., ServiceProcess]
) -> None:
    run_service("watcher")
    run_service("status-writer")
    stack.kubectl("apply", "-f", "-", input=MODEL.format(name="opt.125m", ns=namespace))
    obj = json.loads(stack.kubectl("get", "model", "opt.125m", "-n", namespace, "-o", "json").stdout)
    mine = f"models/{namespace}/opt.125m "

    def lines() -> list[str]:
        return [line for line in substratus_events(stack, "--since", "10m", "--kind", "models") if mine in line]

    # A service reports only about what it has seen on the bus: wait for the watcher first.
    await until(lambda: any(" model.changed " in line for line in lines()), "the Model reaching the bus")
    async with connection.connected(config.Settings(service="cli-test", nats_url=stack.nats_url)) as bus:
        reported = report.report_for(obj, "cli-test", [report.condition("Complete", False, "JobNotComplete")])
        assert await report.publish(bus, reported, "models")

    def written() -> bool:
        status = stack.kubectl("get", "model", "opt.125m", "-n", namespace, "-o", "jsonpath={.status.conditions}")
        return "JobNotComplete" in status.stdout

    await until(written, "the status writer writing the reported condition")
    stack.kubectl("delete", "model", "opt.125m", "-n", namespace)

    await until(lambda: any(" model.deleted " in line for line in lines()), "the deletion reaching the bus")
    shown = lines()
    kinds = [line.split()[1] for line in shown]
    # First the Model as applied, then the report, the Model carrying the written status, and its deletion.
    assert kinds[0] == "model.changed", shown
    assert kinds[-1] == "model.deleted", shown
    status = kinds.index("status")
    assert "model.changed" in kinds[status + 1 : -1], shown
    first = shown[0].split()
    assert first[2:5] == [f"models/{namespace}/opt.125m", f"rv={obj['metadata']['resourceVersion']}", "gen=1"]
    assert shown[status].endswith("cli-test gen=1 Complete=False/JobNotComplete"), shown
    # The status writer's writes come back as changes of the Model, the last one with readiness.
    assert any("ready=false" in line for line in shown[status + 1 : -1]), shown
    times = [line.split()[0] for line in shown]
    assert times == sorted(times), shown
