"""Shutdown: no more hand-outs or adds, waiting workers return, a bounded wait for running keys."""

from __future__ import annotations

import asyncio

from substratus_common.runtime import workqueue


async def test_waiting_workers_return_none_and_adds_are_ignored() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    workers = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    assert await queue.shut_down(grace_s=1) == frozenset()
    assert await asyncio.wait_for(asyncio.gather(*workers), 5) == [None, None, None]
    queue.add("late")
    queue.add_after("late", 0.01)
    assert len(queue) == 0
    assert queue.delayed == 0
    assert await queue.get() is None


async def test_shutdown_waits_for_a_running_key_that_finishes_in_time() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add("a")
    key = await queue.get()
    assert key == "a"
    asyncio.get_running_loop().call_later(0.05, queue.done, "a")
    assert await queue.shut_down(grace_s=5) == frozenset()


async def test_shutdown_returns_the_keys_still_running_after_the_grace() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add("stuck")
    queue.add("queued")
    assert await queue.get() == "stuck"
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await queue.shut_down(grace_s=0.1) == frozenset({"stuck"})
    assert loop.time() - started < 5
    assert await queue.get() is None, "a queued key is not handed out after shutdown"
