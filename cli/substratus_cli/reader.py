"""Read the audit trail from the streams: ephemeral ordered consumers, nothing durable is left behind.

Each stream gets one ordered push consumer (in memory, no acks; the client recreates it from the
next sequence after a gap, and the server drops it once this process is gone), starting at a
time (``opt_start_time``) or at the beginning. Replay merges the three streams by the time each
message was stored and stops once every stream is caught up; following then prints each new
message as it arrives. The consumers are the bus's own ``OrderedSubscription``s: nats-py stays
inside ``substratus_common.bus``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from substratus_cli.render import Stored
from substratus_common.bus import connection, messages
from substratus_common.bus.errors import BusError, StreamNotFound

CATCH_UP_POLL_S = 0.3
"""While replaying: how long to wait for the next message before asking the server whether more is due."""


def _stored(stream: str, msg: messages.Message) -> Stored:
    meta = msg.metadata
    return Stored(
        stream=stream, subject=msg.subject, sequence=meta.stream_sequence, stored_at=meta.timestamp, data=msg.data
    )


@dataclass
class _Source:
    """One stream's consumer, with the stream's last sequence when replay began."""

    stream: str
    sub: messages.OrderedSubscription
    last_seq: int
    newer: list[Stored] = field(default_factory=list)
    """Messages stored after replay began, met while catching up: printed only when following."""


async def _subscribe(bus: connection.Bus, stream: str, filters: Sequence[str], start: dt.datetime | None) -> _Source:
    # The stream's end first: whatever is stored after this is "new", however fast it arrives.
    last_seq = await bus.last_sequence(stream)
    sub = await bus.ordered(stream, filters, start_time=start)
    return _Source(stream, sub, last_seq)


async def _catch_up(source: _Source) -> AsyncIterator[Stored]:
    """What the stream held when replay began, for this consumer, in stream order."""
    received = 0

    async def caught_up() -> bool:
        progress = await source.sub.progress()
        return not progress.num_pending and progress.delivered <= received

    if source.last_seq == 0 or await caught_up():
        return
    while True:
        try:
            msg = await source.sub.next(CATCH_UP_POLL_S)
        except TimeoutError:
            if await caught_up():
                return
            continue
        received += 1
        stored = _stored(source.stream, msg)
        if stored.sequence > source.last_seq:
            source.newer.append(stored)
            return
        yield stored
        if msg.metadata.num_pending == 0 or stored.sequence == source.last_seq:
            return


async def _merged(sources: Sequence[AsyncIterator[Stored]]) -> AsyncIterator[Stored]:
    """The sources' messages by stored time (each source is already in order)."""
    heap: list[tuple[dt.datetime, int, int, Stored]] = []

    async def advance(index: int) -> None:
        item = await anext(sources[index], None)
        if item is not None:
            heapq.heappush(heap, (item.stored_at, index, item.sequence, item))

    for index in range(len(sources)):
        await advance(index)
    while heap:
        _, index, _, item = heapq.heappop(heap)
        yield item
        await advance(index)


async def _tail(sources: Sequence[_Source]) -> AsyncIterator[Stored]:
    """Every new message of any stream, as it arrives; ends only when cancelled or the bus fails."""
    queue: asyncio.Queue[Stored | BaseException] = asyncio.Queue(maxsize=1024)

    async def pump(stream: str, sub: messages.OrderedSubscription) -> None:
        try:
            while True:
                await queue.put(_stored(stream, await sub.next(None)))
        except (BusError, TimeoutError) as error:
            await queue.put(error)

    for newer in sorted((m for source in sources for m in source.newer), key=lambda m: m.stored_at):
        yield newer
    tasks = [asyncio.create_task(pump(s.stream, s.sub), name=f"tail-{s.stream}") for s in sources]
    try:
        while True:
            got = await queue.get()
            if isinstance(got, BaseException):
                raise BusError(f"following the streams failed: {got!r}") from got
            yield got
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read(
    bus: connection.Bus,
    filters: Mapping[str, Sequence[str]],
    *,
    start: dt.datetime | None,
    follow: bool,
    warn: Callable[[str], None] = lambda _: None,
) -> AsyncGenerator[Stored, None]:
    """Stored messages matching ``filters`` (stream → filter subjects) from ``start``.

    Without ``follow``: what the streams hold now, merged by stored time, then the iterator ends.
    With ``follow``: then every new message until the caller stops iterating. A stream that does
    not exist is skipped with a warning (nothing was ever published to it).
    """
    sources: list[_Source] = []
    try:
        for stream, subject_filters in filters.items():
            try:
                sources.append(await _subscribe(bus, stream, subject_filters, start))
            except StreamNotFound:
                warn(f"stream {stream} does not exist (nothing has been published to it yet)")
        async for item in _merged([_catch_up(source) for source in sources]):
            yield item
        if follow:
            async for item in _tail(sources):
                yield item
    except TimeoutError as error:
        raise BusError(f"reading the streams failed: {error!r}") from error
    finally:
        for source in sources:
            await source.sub.unsubscribe()
