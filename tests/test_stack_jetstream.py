"""The stack's NATS has JetStream: duplicates are dropped by Nats-Msg-Id, unacked messages come back."""

from __future__ import annotations

import secrets

import nats
from nats.js.api import ConsumerConfig, StreamConfig

from substratus_local.stack import Stack


async def test_duplicate_window_drops_a_republished_msg_id(stack: Stack) -> None:
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        name = "T" + secrets.token_hex(4).upper()
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], duplicate_window=60))
        first = await js.publish(f"{name}.a", b"one", headers={"Nats-Msg-Id": "uid-1/1"})
        again = await js.publish(f"{name}.a", b"one again", headers={"Nats-Msg-Id": "uid-1/1"})
        assert not first.duplicate
        assert again.duplicate
        info = await js.stream_info(name)
        assert info.state.messages == 1
        await js.delete_stream(name)
    finally:
        await nc.close()


async def test_durable_pull_consumer_redelivers_an_unacked_message(stack: Stack) -> None:
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        name = "T" + secrets.token_hex(4).upper()
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
        await js.publish(f"{name}.a", b"work")
        sub = await js.pull_subscribe(f"{name}.>", durable="worker", config=ConsumerConfig(ack_wait=1.0))
        (first,) = await sub.fetch(1, timeout=5)
        assert first.metadata.num_delivered == 1
        # Not acked: after ack_wait the same message is delivered again.
        (second,) = await sub.fetch(1, timeout=10)
        assert second.data == b"work"
        assert second.metadata.num_delivered == 2
        await second.ack()
        await js.delete_stream(name)
    finally:
        await nc.close()
