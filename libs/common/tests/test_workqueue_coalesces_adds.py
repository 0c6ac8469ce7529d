"""Adds of one key coalesce: queued at most once, and adds during a pass make exactly one more pass."""

from __future__ import annotations

import asyncio

from substratus_common.runtime import workqueue


async def test_many_adds_of_a_waiting_key_queue_it_once() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_adds_during_a_pass_collapse_into_exactly_one_more_pass() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    for _ in range(3):
        queue.add("a")
    assert len(queue) == 0, "a key being processed is not handed out again meanwhile"
    queue.done("a")
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0, "no third pass: the adds collapsed into one"


async def test_a_key_not_added_during_its_pass_is_not_queued_again() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0
    assert not queue.is_dirty("a")


async def test_a_waiting_worker_wakes_for_a_new_key() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    worker = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not worker.done()
    queue.add("a")
    assert await asyncio.wait_for(worker, 5) == "a"
