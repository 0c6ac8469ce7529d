"""``substratus events --follow`` prints each new event as it is stored, and Ctrl-C ends it cleanly.

The namespace is new, so ``--since 10m`` replays nothing: every line is an event stored while following.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import signal
import subprocess
import threading

from substratus_common import config
from substratus_common.bus import connection
from substratus_common.runtime import report
from substratus_local.stack import Stack


def model(namespace: str, name: str) -> dict[str, object]:
    meta = {"namespace": namespace, "name": name, "uid": f"uid-{name}", "generation": 1}
    return {"apiVersion": "substratus.ai/v1", "kind": "Model", "metadata": meta}


class Lines:
    """stdout of a process, line by line, readable with a time limit."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                self.queue.put(line.rstrip("\n"))
            self.queue.put(None)

        self.thread = threading.Thread(target=pump, daemon=True)
        self.thread.start()

    async def next(self) -> str | None:
        """The next line (None at the end); fails the test after 20 s."""
        return await asyncio.to_thread(self.queue.get, timeout=20)


async def test_new_events_are_printed_as_they_come_and_ctrl_c_stops(stack: Stack, namespace: str) -> None:
    env = {**os.environ, **stack.env, "PYTHONUNBUFFERED": "1"}
    exe = shutil.which("substratus", path=env["PATH"])
    assert exe is not None
    with subprocess.Popen(  # noqa: ASYNC220 - a process that lives through the test, read by a thread
        [exe, "events", "--follow", "--since", "10m", "--kind", "model", "-n", namespace],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            lines = Lines(proc)
            async with connection.connected(config.Settings(service="cli-test", nats_url=stack.nats_url)) as bus:
                # Stored first, but in another namespace: the first line must still be ours.
                other = report.report_for(
                    model("elsewhere", "m"), "cli-test", [report.condition("Complete", True, "X")]
                )
                assert await report.publish(bus, other, "models")
                for reason in ("JobNotComplete", "JobComplete"):
                    done = reason == "JobComplete"
                    reported = report.report_for(
                        model(namespace, "m"), "cli-test", [report.condition("Complete", done, reason)]
                    )
                    assert await report.publish(bus, reported, "models")
                    line = await lines.next()
                    assert line is not None, proc.stderr.read() if proc.stderr else ""
                    assert line.split()[1:3] == ["status", f"models/{namespace}/m"]
                    assert line.endswith(f"Complete={done}/{reason}")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0
            assert await lines.next() is None  # nothing more was printed
            err = proc.stderr.read() if proc.stderr else ""
            assert "Traceback" not in err, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
