"""Without ``--follow``, ``substratus events`` prints what was stored when it began and exits, however busy the bus."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.runtime import report
from substratus_local.stack import Stack


def model(namespace: str, name: str) -> dict[str, object]:
    meta = {"namespace": namespace, "name": name, "uid": f"uid-{name}", "generation": 1}
    return {"apiVersion": "substratus.ai/v1", "kind": "Model", "metadata": meta}


async def test_replay_exits_while_reports_keep_arriving(stack: Stack, namespace: str) -> None:
    env = {**os.environ, **stack.env}
    exe = shutil.which("substratus", path=env["PATH"])
    assert exe is not None
    async with connection.connected(config.Settings(service="cli-test", nats_url=stack.nats_url)) as bus:
        before = 20
        for i in range(before):
            stored = report.report_for(
                model(namespace, f"m{i}"), "cli-test", [report.condition("Complete", False, "A")]
            )
            assert await report.publish(bus, stored, "models")

        async def keep_publishing() -> None:
            i = 0
            while True:
                i += 1
                busy = report.report_for(
                    model(namespace, f"n{i}"), "cli-test", [report.condition("Complete", True, "B")]
                )
                await report.publish(bus, busy, "models")
                await asyncio.sleep(0.005)

        publisher = asyncio.create_task(keep_publishing())
        try:
            proc = await asyncio.create_subprocess_exec(
                exe,
                "events",
                "-n",
                namespace,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    shown = [line.split()[2] for line in lines]
    assert shown[:before] == [f"models/{namespace}/m{i}" for i in range(before)]
    assert all(line.split()[1] == "status" for line in lines)
