"""One NATS connection per process with JetStream, streams provisioned idempotently.

All nats-py exceptions are turned into :mod:`bus.errors` here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from substratus_common import config, logs
from substratus_common.bus import messages
from substratus_common.bus.errors import BusConfigError, BusError, StreamNotFound
from substratus_common.events import envelope, streams

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0


@dataclass
class Link:
    """Whether the connection to NATS is up now, since when, and who wants to know when it moves
    (readiness and metrics). nats-py reconnects by itself; this only tells."""

    connected: bool = True
    since: float = field(default_factory=time.monotonic)
    disconnects: int = 0
    listeners: list[Callable[[bool], None]] = field(default_factory=list)
    _up: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.connected:
            self._up.set()

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) for the connection to be up; whether it is."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout_s)
        return self.connected

    def moved(self, connected: bool) -> None:
        if connected == self.connected:
            return
        away_s = time.monotonic() - self.since
        self.connected, self.since = connected, time.monotonic()
        if connected:
            self._up.set()
        else:
            self._up.clear()
        if connected:
            log.info("NATS connection back", extra={"away_s": round(away_s, 1)})
        else:
            self.disconnects += 1
            log.warning("NATS connection lost; reconnecting")
        for listener in self.listeners:
            listener(connected)

    def describe(self) -> str:
        """Why the link is not usable, for ``/readyz``."""
        away_s = time.monotonic() - self.since
        return "connected" if self.connected else f"disconnected from NATS for {away_s:.0f}s; reconnecting"


@dataclass
class Bus:
    nc: Client
    js: JetStreamContext
    source: str
    """CloudEvents ``source`` of what this process publishes, e.g. ``substratus/watcher``."""
    link: Link = field(default_factory=Link)

    async def publish(self, subject: str, event: envelope.CloudEvent) -> bool:
        """Store the event; True when stored, False when the stream dropped it as a duplicate id."""
        try:
            ack = await self.js.publish(
                subject, envelope.encode(event), timeout=PUBLISH_TIMEOUT_S, headers={"Nats-Msg-Id": event.id}
            )
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"publishing to {subject} failed: {error}") from error
        return not ack.duplicate

    async def publish_raw(self, subject: str, payload: bytes, msg_id: str | None = None) -> None:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        try:
            await self.js.publish(subject, payload, timeout=PUBLISH_TIMEOUT_S, headers=headers)
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"publishing to {subject} failed: {error}") from error

    async def pull(
        self,
        stream: str,
        durable: str,
        filter_subjects: Sequence[str],
        *,
        max_ack_pending: int,
        ack_wait_s: float,
    ) -> messages.PullSubscription:
        """Bind to the durable pull consumer, creating or updating it (replicas share it)."""
        wanted = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=list(filter_subjects),
            max_ack_pending=max_ack_pending,
            ack_wait=ack_wait_s,
            max_deliver=-1,  # the runtime counts deliveries and dead-letters itself
        )
        try:
            await self.js.add_consumer(stream, wanted)
            sub = await self.js.pull_subscribe_bind(durable=durable, stream=stream)
        except nats.js.errors.BadRequestError as error:
            raise BusConfigError(f"consumer {durable} on {stream}: {error.description}") from error
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"consumer {durable} on {stream}: {error}") from error
        return messages.PullSubscription(sub, f"consumer {durable} on {stream}")

    async def ordered(
        self,
        stream: str,
        filter_subjects: Sequence[str],
        *,
        last_per_subject: bool = False,
        start_time: dt.datetime | None = None,
    ) -> messages.OrderedSubscription:
        """An ephemeral ordered consumer on ``stream``: everything, the last message per subject, or
        what was stored from ``start_time``; then live. Nothing durable is left behind."""
        if last_per_subject:
            policy = DeliverPolicy.LAST_PER_SUBJECT
        elif start_time is not None:
            policy = DeliverPolicy.BY_START_TIME
        else:
            policy = DeliverPolicy.ALL
        config = ConsumerConfig(
            deliver_policy=policy,
            opt_start_time=start_time if policy is DeliverPolicy.BY_START_TIME else None,
            ack_policy=AckPolicy.NONE,
            filter_subjects=list(filter_subjects) if len(filter_subjects) > 1 else None,
        )
        described = f"{stream} ({', '.join(filter_subjects)})"
        try:
            sub = await self.js.subscribe(filter_subjects[0], stream=stream, config=config, ordered_consumer=True)
        except nats.js.errors.NotFoundError as error:
            raise StreamNotFound(f"stream {stream} does not exist") from error
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"following {described}: {error}") from error
        return messages.OrderedSubscription(sub, described)

    async def consumer_state(self, stream: str, durable: str) -> messages.ConsumerState | None:
        """What a durable consumer holds now (None when it does not exist): for tests and the bench."""
        try:
            info = await self.js.consumer_info(stream, durable)
        except nats.js.errors.NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"consumer {durable} on {stream}: {error}") from error
        return messages.ConsumerState(
            num_pending=int(info.num_pending or 0),
            num_ack_pending=int(info.num_ack_pending or 0),
            num_redelivered=int(info.num_redelivered or 0),
            max_ack_pending=int(info.config.max_ack_pending or 0),
        )

    async def last_sequence(self, stream: str) -> int:
        """The sequence of the newest message stored in ``stream`` (0 when empty)."""
        try:
            return int((await self.js.stream_info(stream)).state.last_seq)
        except nats.js.errors.NotFoundError as error:
            raise StreamNotFound(f"stream {stream} does not exist") from error
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"stream {stream}: {error}") from error

    async def last_per_subject(
        self, stream: str, filter_subject: str, batch: int = 512
    ) -> AsyncIterator[messages.Message]:
        """The newest message of every subject matching the filter, then stops (no live tail)."""
        try:
            sub = await self.js.pull_subscribe(
                filter_subject,
                stream=stream,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                    ack_policy=AckPolicy.NONE,
                    inactive_threshold=30.0,
                    mem_storage=True,
                ),
            )
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"reading {filter_subject} from {stream}: {error}") from error
        try:
            info = await sub.consumer_info()
            remaining = int(info.num_pending or 0)
            stalls = 0
            while remaining > 0:
                try:
                    msgs = await sub.fetch(min(batch, remaining), timeout=5)
                except TimeoutError:
                    # What was counted as pending may have been discarded since (discard-old
                    # limits) or expired: ask the server again instead of waiting for it.
                    stalls += 1
                    remaining = int((await sub.consumer_info()).num_pending or 0)
                    if remaining > 0 and stalls >= 3:
                        raise
                    continue
                stalls = 0
                for msg in msgs:
                    remaining = int(msg.metadata.num_pending)
                    yield messages.Message(msg)
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"reading {filter_subject} from {stream}: {error}") from error
        finally:
            with suppress(nats.errors.Error):
                await sub.unsubscribe()

    async def close(self) -> None:
        """Drain: flush what was published, let subscriptions finish, then close."""
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("draining the NATS connection failed; closing", extra={"error": str(error)})
            await self.nc.close()


def inbox_prefix(service: str) -> str:
    """The reply-subject prefix of a service's connection, e.g. ``_INBOX_trainer``."""
    return f"_INBOX_{service}"


async def connect(
    settings: config.Settings,
    *,
    connect_timeout_s: float = 5.0,
    connect_deadline_s: float = 30.0,
    provision: bool = True,
) -> Bus:
    """Connect (bounded attempts) and make sure the three streams exist with the settings.

    ``provision=False`` is for read-only clients such as the ``substratus`` CLI: the streams are
    used as they are, never created or reconfigured from the client's (default) settings.
    """

    link = Link()

    async def _error(error: Exception) -> None:
        log.warning("NATS connection error", extra={"error": str(error)})

    async def _disconnected() -> None:
        link.moved(False)

    async def _reconnected() -> None:
        link.moved(True)

    try:
        # nats-py keeps retrying a first connection as long as reconnects are unbounded; bound it.
        nc = await asyncio.wait_for(
            nats.connect(
                settings.nats_url.split(","),
                name=f"substratus-{settings.service}",
                # Credentials travel apart from the URL, so no error message can carry them.
                user=settings.nats_user,
                password=settings.nats_password.get_secret_value() if settings.nats_password else None,
                user_credentials=str(settings.nats_creds_file) if settings.nats_creds_file else None,
                # Replies and deliveries come to an inbox only this service may subscribe to
                # (the chart's NATS permissions allow `_INBOX_<service>.>` and nothing broader).
                inbox_prefix=inbox_prefix(settings.service),
                connect_timeout=connect_timeout_s,
                max_reconnect_attempts=-1,  # once connected, keep trying; health turns red meanwhile
                reconnect_time_wait=1,
                allow_reconnect=True,
                # A half-open connection (a peer or NAT gone silent) answers no ping: replace it
                # after a bounded time instead of nats-py's minutes (check 8, docs/reliability.md).
                ping_interval=settings.nats_ping_interval_s,
                max_outstanding_pings=settings.nats_max_outstanding_pings,
                error_cb=_error,
                disconnected_cb=_disconnected,
                reconnected_cb=_reconnected,
            ),
            connect_deadline_s,
        )
    except (nats.errors.Error, OSError, TimeoutError) as error:
        where = logs.redact_urls(settings.nats_url)
        why = logs.redact_urls(str(error)) or type(error).__name__  # a timeout's text is empty
        raise BusError(f"cannot connect to NATS at {where}: {why}") from error
    bus = Bus(nc=nc, js=nc.jetstream(timeout=PUBLISH_TIMEOUT_S), source=f"substratus/{settings.service}", link=link)
    if not provision:
        return bus
    try:
        if settings.provision_streams:
            await ensure_streams(bus.js, settings)
        else:
            await wait_for_streams(bus.js, settings.stream_wait_s)
    except BaseException:
        await nc.close()
        raise
    return bus


async def wait_for_streams(js: JetStreamContext, timeout_s: float) -> None:
    """Wait (bounded, growing delay) until the provisioning service has created the three streams."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.2
    for name in streams.NAMES:
        while True:
            try:
                await js.stream_info(name)
                break
            except nats.js.errors.NotFoundError:
                if loop.time() + delay > deadline:
                    raise BusError(
                        f"stream {name} does not exist after {timeout_s:.0f}s; the watcher creates the streams"
                        " (or set SUBSTRATUS_PROVISION_STREAMS=true)"
                    ) from None
                log.info("waiting for a stream to be created", extra={"stream": name, "delay_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except (nats.errors.Error, TimeoutError) as error:
                raise BusError(f"stream {name}: {error}") from error


@asynccontextmanager
async def connected(settings: config.Settings) -> AsyncIterator[Bus]:
    bus = await connect(settings)
    try:
        yield bus
    finally:
        await bus.close()


def _stream_config(spec: streams.StreamSpec) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE if spec.file_storage else StorageType.MEMORY,
        num_replicas=spec.replicas,
        max_age=spec.max_age_s,
        max_msgs_per_subject=spec.max_msgs_per_subject,
        duplicate_window=spec.duplicate_window_s,
        max_bytes=spec.max_bytes,
        max_msg_size=spec.max_msg_size,
        discard=DiscardPolicy.OLD if spec.discard_old else DiscardPolicy.NEW,
        allow_direct=True,
    )


async def ensure_streams(js: JetStreamContext, settings: config.Settings) -> None:
    """Create each stream, or update the settings that differ (idempotent; safe from many replicas)."""
    for spec in streams.all_streams(settings):
        wanted = _stream_config(spec)
        try:
            try:
                info = await js.stream_info(spec.name)
            except nats.js.errors.NotFoundError:
                await js.add_stream(wanted)
                log.info("stream created", extra={"stream": spec.name})
                continue
            have = info.config
            if (
                have.subjects != wanted.subjects
                or have.num_replicas != wanted.num_replicas
                or have.max_age != wanted.max_age
                or have.max_msgs_per_subject != wanted.max_msgs_per_subject
                or have.duplicate_window != wanted.duplicate_window
                or have.max_bytes != wanted.max_bytes
                or have.max_msg_size != wanted.max_msg_size
                or have.discard != wanted.discard
            ):
                await js.update_stream(wanted)
                log.info("stream settings updated", extra={"stream": spec.name})
        except nats.js.errors.BadRequestError as error:
            raise BusConfigError(f"stream {spec.name}: {error.description}") from error
        except (nats.errors.Error, TimeoutError) as error:
            raise BusError(f"stream {spec.name}: {error}") from error
