"""Read the audit trail from the streams: ephemeral ordered consumers, nothing durable is left behind.

Each stream gets one ordered push consumer (in memory, no acks; the client recreates it from the
next sequence after a gap, and the server drops it once this process is gone), starting at a
time (``opt_start_time``) or at the beginning. Replay merges the three streams by the time each
message was stored and stops once every stream is caught up; following then prints each new
message as it arrives. nats-py errors are translated here, once, into ``bus.errors``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from substratus_cli.render import Stored
from substratus_common.bus import connection
from substratus_common.bus.errors import BusError

CATCH_UP_POLL_S = 0.3
"""While replaying: how long to wait for the next message before asking the server whether more is due."""


def _stored(stream: str, msg: Msg) -> Stored:
    meta = msg.metadata
    return Stored(
        stream=stream, subject=msg.subject, sequence=int(meta.sequence.stream), stored_at=meta.timestamp, data=msg.data
    )


@dataclass
class _Source:
    """One stream's consumer, with the stream's last sequence when replay began."""

    stream: str
    sub: JetStreamContext.PushSubscription
    last_seq: int
    newer: list[Stored] = field(default_factory=list)
    """Messages stored after replay began, met while catching up: printed only when following."""


async def _subscribe(js: JetStreamContext, stream: str, filters: Sequence[str], start: dt.datetime | None) -> _Source:
    # The stream's end first: whatever is stored after this is "new", however fast it arrives.
    last_seq = int((await js.stream_info(stream)).state.last_seq)
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_TIME if start else DeliverPolicy.ALL,
        opt_start_time=start,
        ack_policy=AckPolicy.NONE,
        filter_subjects=list(filters) if len(filters) > 1 else None,
    )
    sub = await js.subscribe(filters[0], stream=stream, config=config, ordered_consumer=True)
    return _Source(stream, sub, last_seq)


async def _catch_up(source: _Source) -> AsyncIterator[Stored]:
    """What the stream held when replay began, for this consumer, in stream order."""
    received = 0

    async def caught_up() -> bool:
        info = await source.sub.consumer_info()
        delivered = info.delivered.consumer_seq if info.delivered else 0
        return not info.num_pending and (delivered or 0) <= received

    if source.last_seq == 0 or await caught_up():
        return
    while True:
        try:
            msg = await source.sub.next_msg(timeout=CATCH_UP_POLL_S)
        except nats.errors.TimeoutError:
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

    async def pump(stream: str, sub: JetStreamContext.PushSubscription) -> None:
        try:
            while True:
                await queue.put(_stored(stream, await sub.next_msg(timeout=None)))
        except (nats.errors.Error, TimeoutError) as error:
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
                sources.append(await _subscribe(bus.js, stream, subject_filters, start))
            except nats.js.errors.NotFoundError:
                warn(f"stream {stream} does not exist (nothing has been published to it yet)")
        async for item in _merged([_catch_up(source) for source in sources]):
            yield item
        if follow:
            async for item in _tail(sources):
                yield item
    except (nats.errors.Error, TimeoutError) as error:
        raise BusError(f"reading the streams failed: {error!r}") from error
    finally:
        for source in sources:
            with suppress(nats.errors.Error, TimeoutError):
                await source.sub.unsubscribe()
