"""A failed key comes back after a delay that grows with its failures, per key; forget resets it."""

from __future__ import annotations

import asyncio

import pytest

from substratus_common.runtime import workqueue


def test_exponential_doubles_up_to_its_cap() -> None:
    delay = workqueue.exponential(base_s=0.5, max_s=3.0)
    assert [delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_schedule_repeats_its_last_delay() -> None:
    delay = workqueue.schedule((0.5, 1.0, 5.0))
    assert [delay(n) for n in range(1, 6)] == [0.5, 1.0, 5.0, 5.0, 5.0]
    with pytest.raises(ValueError, match="at least one"):
        workqueue.schedule(())


async def test_delays_grow_per_key_and_forget_starts_again() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(workqueue.exponential(base_s=0.01, max_s=1.0))
    assert [queue.add_rate_limited("a") for _ in range(3)] == [0.01, 0.02, 0.04]
    assert queue.add_rate_limited("b") == 0.01, "another key's failures do not slow this one"
    assert queue.num_requeues("a") == 3
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    assert queue.add_rate_limited("a") == 0.01
    await queue.shut_down(grace_s=0)


async def test_a_rate_limited_key_is_handed_out_after_its_delay_not_before() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(workqueue.exponential(base_s=0.2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    delay = queue.add_rate_limited("a")
    assert len(queue) == 0
    assert queue.delayed == 1
    assert queue.is_delayed("a")
    assert await asyncio.wait_for(queue.get(), 5) == "a"
    assert loop.time() - started >= delay
    assert not queue.is_delayed("a")
    queue.done("a")


async def test_an_earlier_wake_up_wins_and_an_add_meanwhile_is_not_doubled() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add_after("a", 30)
    queue.add_after("a", 0.01)
    assert queue.delayed == 1
    assert await asyncio.wait_for(queue.get(), 5) == "a", "the 0.01 s timer replaced the 30 s one"
    queue.add("a")
    queue.add_after("a", 0.01)
    queue.done("a")
    assert await asyncio.wait_for(queue.get(), 5) == "a"
    queue.done("a")
    assert len(queue) == 0
    await queue.shut_down(grace_s=0)
    assert queue.delayed == 0


async def test_a_servers_retry_after_is_the_least_delay_and_the_backoff_still_grows() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(workqueue.exponential(base_s=0.5, max_s=8.0))
    assert queue.add_rate_limited("a", at_least_s=2.0) == 2.0, "Retry-After beats a shorter backoff"
    assert queue.add_rate_limited("a", at_least_s=2.0) == 2.0
    assert queue.add_rate_limited("a", at_least_s=2.0) == 2.0
    assert queue.add_rate_limited("a", at_least_s=2.0) == 4.0, "a longer backoff beats Retry-After"
    await queue.shut_down(grace_s=0)
