"""The bus's own message and subscription types: nothing outside ``bus`` touches nats-py objects.

- :class:`Message`: subject, data, :class:`Metadata`, and the settle calls (``ack``, ``nak``,
  ``term``, ``in_progress``), each raising :class:`BusError` when the bus cannot take it.
- :class:`PullSubscription`: a bound durable pull consumer; ``fetch`` raises ``TimeoutError``
  when nothing arrived in time.
- :class:`OrderedSubscription`: an ephemeral, ordered push consumer (in memory, no acks, gone
  with this process): the view's and the CLI's way to read a stream in order.
"""

from __future__ import annotations

import datetime as dt
from contextlib import suppress
from dataclasses import dataclass

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from substratus_common.bus.errors import BusError


@dataclass(frozen=True)
class Metadata:
    """Where a stored message sits in its stream and in its consumer."""

    stream: str
    stream_sequence: int
    consumer_sequence: int
    num_delivered: int
    """Deliveries of this message to this consumer, this one included (1 the first time)."""
    num_pending: int
    """Messages still waiting for this consumer after this one."""
    timestamp: dt.datetime
    """When the stream stored it."""


class Message:
    """One message from a JetStream consumer."""

    __slots__ = ("_msg", "data", "metadata", "subject")

    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        self.subject: str = msg.subject
        self.data: bytes = msg.data
        meta = msg.metadata
        self.metadata = Metadata(
            stream=str(meta.stream),
            stream_sequence=int(meta.sequence.stream),
            consumer_sequence=int(meta.sequence.consumer),
            num_delivered=int(meta.num_delivered),
            num_pending=int(meta.num_pending),
            timestamp=meta.timestamp,
        )

    async def ack(self) -> None:
        """Done: never delivered again."""
        try:
            await self._msg.ack()
        except nats.errors.Error as error:
            raise BusError(f"ack of {self.subject}: {error}") from error

    async def nak(self, delay_s: float | None = None) -> None:
        """Deliver again, after ``delay_s`` when given."""
        try:
            await self._msg.nak(delay=delay_s)
        except nats.errors.Error as error:
            raise BusError(f"nak of {self.subject}: {error}") from error

    async def term(self) -> None:
        """Never deliver again (given up)."""
        try:
            await self._msg.term()
        except nats.errors.Error as error:
            raise BusError(f"term of {self.subject}: {error}") from error

    async def in_progress(self) -> None:
        """Still working on it: restart the consumer's ack timer."""
        try:
            await self._msg.in_progress()
        except nats.errors.Error as error:
            raise BusError(f"in_progress of {self.subject}: {error}") from error


class PullSubscription:
    """A bound durable pull consumer (replicas of a service share it)."""

    def __init__(self, sub: JetStreamContext.PullSubscription, description: str) -> None:
        self._sub = sub
        self._description = description

    async def fetch(self, batch: int, timeout_s: float) -> list[Message]:
        """Up to ``batch`` messages; ``TimeoutError`` when none arrived within ``timeout_s``."""
        try:
            msgs = await self._sub.fetch(batch, timeout=timeout_s)
        except nats.errors.TimeoutError as error:
            raise TimeoutError(f"nothing to fetch from {self._description}") from error
        except nats.errors.Error as error:
            raise BusError(f"fetching from {self._description}: {error}") from error
        return [Message(m) for m in msgs]

    async def unsubscribe(self) -> None:
        with suppress(nats.errors.Error, TimeoutError):
            await self._sub.unsubscribe()


@dataclass(frozen=True)
class ConsumerState:
    """A durable consumer's counters, as the server reports them."""

    num_pending: int
    """Stored messages not yet delivered."""
    num_ack_pending: int
    """Delivered and not yet acked (held by some replica, or waiting for redelivery)."""
    num_redelivered: int
    max_ack_pending: int


@dataclass(frozen=True)
class Progress:
    """How far an ordered consumer has read."""

    num_pending: int
    """Messages the server still has to deliver."""
    delivered: int
    """Messages delivered so far (the consumer sequence; 0 before the first)."""


class OrderedSubscription:
    """An ephemeral ordered push consumer: messages in stream order, recreated by the client on a gap."""

    def __init__(self, sub: JetStreamContext.PushSubscription, description: str) -> None:
        self._sub = sub
        self._description = description

    async def next(self, timeout_s: float | None = None) -> Message:
        """The next message; ``TimeoutError`` when none arrived within ``timeout_s`` (None: wait)."""
        try:
            msg = await self._sub.next_msg(timeout=timeout_s)
        except nats.errors.TimeoutError as error:
            raise TimeoutError(f"nothing new on {self._description}") from error
        except nats.errors.Error as error:
            raise BusError(f"reading {self._description}: {error}") from error
        return Message(msg)

    async def progress(self) -> Progress:
        try:
            info = await self._sub.consumer_info()
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"reading {self._description}: {error}") from error
        # consumer_seq, not stream_seq: a filter that matches nothing still reports the stream's position.
        delivered = info.delivered.consumer_seq if info.delivered else 0
        return Progress(num_pending=int(info.num_pending or 0), delivered=int(delivered or 0))

    async def unsubscribe(self) -> None:
        with suppress(nats.errors.Error, TimeoutError):
            await self._sub.unsubscribe()
