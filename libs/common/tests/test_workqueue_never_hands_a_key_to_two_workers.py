"""N workers share one queue: many keys run at once, one key never runs twice at once."""

from __future__ import annotations

import asyncio
import collections

from substratus_common.runtime import workqueue


async def test_workers_run_keys_in_parallel_but_one_key_at_a_time() -> None:
    queue: workqueue.WorkQueue[int] = workqueue.WorkQueue()
    running: collections.Counter[int] = collections.Counter()
    overlaps: list[int] = []
    passes: collections.Counter[int] = collections.Counter()
    most_at_once = 0
    drained = asyncio.Event()

    async def worker() -> None:
        nonlocal most_at_once
        while (key := await queue.get()) is not None:
            running[key] += 1
            if running[key] > 1:
                overlaps.append(key)
            most_at_once = max(most_at_once, sum(running.values()))
            if passes[key] == 0:
                queue.add(key % 3)  # a first pass re-adds a key, maybe one running right now
            await asyncio.sleep(0.001)
            running[key] -= 1
            passes[key] += 1
            queue.done(key)
            if not len(queue) and not queue.processing:
                drained.set()

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for key in range(12):
        queue.add(key)

    await asyncio.wait_for(drained.wait(), 10)
    assert await queue.shut_down(grace_s=1) == frozenset()
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert overlaps == []
    assert most_at_once > 1, "different keys ran at the same time"
    assert set(passes) == set(range(12))
