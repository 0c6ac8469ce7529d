"""A work queue keyed by resource, for N workers (the idea of client-go's workqueue, our own code).

- ``add(key)`` marks the key dirty. A dirty key is queued at most once, however many adds arrive.
- ``get()`` hands a key to one worker and marks it processing; the same key never goes to two
  workers at once. Adds that arrive while it is processing collapse into exactly one more pass,
  queued when the worker calls ``done(key)``.
- ``add_after(key, delay)`` adds later (one timer per key; an earlier time wins);
  ``add_rate_limited(key)`` adds after the key's next backoff delay, which grows with each call
  until ``forget(key)`` (call it after a success).
- ``shut_down(grace_s)``: no more adds or hand-outs; waits at most ``grace_s`` for the keys being
  processed and returns those still running, so the caller can cancel them and say which.

Pure asyncio; one event loop; no I/O.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

Backoff = Callable[[int], float]
"""Seconds to wait before the ``n``-th retry of a key (n = 1 for the first)."""


def exponential(base_s: float = 0.05, max_s: float = 60.0) -> Backoff:
    """``base_s * 2**(n-1)``, at most ``max_s``."""

    def delay(n: int) -> float:
        return float(min(max_s, base_s * 2 ** max(n - 1, 0)))

    return delay


def schedule(delays_s: Sequence[float]) -> Backoff:
    """Delays from a table (e.g. ``Settings.retry_backoff_s``); the last one repeats."""
    if not delays_s:
        raise ValueError("a backoff schedule needs at least one delay")
    table = tuple(float(d) for d in delays_s)

    def delay(n: int) -> float:
        return table[min(max(n - 1, 0), len(table) - 1)]

    return delay


class WorkQueue(Generic[K]):
    def __init__(self, backoff: Backoff | None = None) -> None:
        self._backoff = backoff or exponential()
        self._queue: collections.deque[K] = collections.deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._shutting_down = False

    # ---- what the queue holds -----------------------------------------------------------------

    def __len__(self) -> int:
        """Keys waiting for a worker (the queue depth)."""
        return len(self._queue)

    @property
    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    @property
    def busy(self) -> int:
        """Keys being processed now (one per busy worker)."""
        return len(self._processing)

    @property
    def delayed(self) -> int:
        """Keys waiting for a timer (backoff or ``add_after``)."""
        return len(self._timers)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def is_dirty(self, key: K) -> bool:
        return key in self._dirty

    def is_delayed(self, key: K) -> bool:
        """Whether the key waits for a timer (its backoff or an ``add_after``)."""
        return key in self._timers

    def num_requeues(self, key: K) -> int:
        """Failures recorded by ``add_rate_limited`` since the key's last ``forget``."""
        return self._failures.get(key, 0)

    # ---- adding ---------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done(): one more pass, however many adds arrive meanwhile
        self._queue.append(key)
        self._notify()

    def add_after(self, key: K, delay_s: float) -> None:
        if self._shutting_down:
            return
        if delay_s <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay_s
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= when:
                return  # an earlier wake-up is already set
            pending[1].cancel()
        self._timers[key] = (when, loop.call_at(when, self._fire, key))

    def add_rate_limited(self, key: K, delay_s: float | None = None, *, at_least_s: float = 0.0) -> float:
        """Count a failure of the key and add it after its next backoff delay (or after ``delay_s``,
        when the failure said how long to wait), and never sooner than ``at_least_s`` (a server's
        ``Retry-After``); returns the delay."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = max(self._backoff(failures) if delay_s is None else delay_s, at_least_s)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The key succeeded (or was given up): its next failure starts the backoff again."""
        self._failures.pop(key, None)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    # ---- handing out ----------------------------------------------------------------------------

    async def get(self) -> K | None:
        """The next dirty key, now processing; None once the queue shuts down."""
        while not self._queue and not self._shutting_down:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled():
                    self._notify()  # it was woken for a key it will not take: pass the wake-up on
                raise
        if self._shutting_down:
            return None
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        self._idle.clear()
        return key

    def done(self, key: K) -> None:
        """The worker finished ``key``: if it was added meanwhile, it is queued once more."""
        self._processing.discard(key)
        if not self._processing:
            self._idle.set()
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._notify()

    # ---- stopping -------------------------------------------------------------------------------

    async def shut_down(self, grace_s: float) -> frozenset[K]:
        """Stop adding and handing out; wait at most ``grace_s`` for processing keys; the stuck ones."""
        self._shutting_down = True
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
        if self._processing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_s)
        return frozenset(self._processing)

    def _notify(self) -> None:
        """Wake one waiting worker (it re-checks the queue, so a spare wake-up is harmless)."""
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return
