"""``substratus events``: replay or tail the lifecycle of Substratus resources from the bus.

    substratus events --since 10m --kind models -n team-a
    substratus events --name opt-125m --follow
    substratus events --since 2024-05-01T12:00:00Z --json | jq .

Without ``--follow`` it prints what the streams hold (from ``--since``, or everything) and exits;
with it, it keeps printing new events until Ctrl-C. The bus is read, never configured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TextIO

from substratus_cli import query, reader, render
from substratus_common import config
from substratus_common.bus import connection
from substratus_common.bus.errors import BusError

CONNECT_TIMEOUT_S = 10.0


def _flag(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse ``type``: argparse puts the flag's name in front of the message."""

    def convert(value: str) -> object:
        try:
            return parse(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "events",
        help="replay or tail the lifecycle of resources from the bus",
        description="Replay (and with --follow, tail) the events of Substratus resources: changes seen by "
        "the watcher, status reports of the services, and messages a service gave up on. "
        "Reads the bus at $NATS_URL.",
    )
    parser.add_argument(
        "--kind", type=_flag(query.plural), help=f"only this kind: {', '.join(query.PLURALS)} (singular works too)"
    )
    parser.add_argument("-n", "--namespace", type=_flag(query.namespace), help="only this namespace (default: all)")
    parser.add_argument("--name", type=_flag(query.name), help="only resources with this name (and their children)")
    parser.add_argument(
        "--since",
        type=_flag(query.since),
        help="start this long ago (30s, 10m, 2h) or at an RFC 3339 time (default: everything stored)",
    )
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events until Ctrl-C")
    parser.add_argument("--json", action="store_true", help="print each event as its CloudEvent JSON, one per line")
    parser.set_defaults(run=run)


def query_from(args: argparse.Namespace) -> query.Query:
    return query.Query(
        plural=args.kind,
        namespace=args.namespace,
        name=args.name,
        since=args.since,
        follow=args.follow,
        as_json=args.json,
    )


async def show(q: query.Query, settings: config.Settings, out: TextIO, err: TextIO) -> int:
    """Print the events of ``q``; the exit status."""
    try:
        # connect() keeps retrying a server that never answered; a command gives up instead.
        bus = await asyncio.wait_for(connection.connect(settings, provision=False), CONNECT_TIMEOUT_S)
    except (BusError, TimeoutError) as error:
        detail = str(error) or f"no answer within {CONNECT_TIMEOUT_S:.0f}s"
        print(f"substratus events: cannot reach NATS at {settings.nats_url}: {detail} (set NATS_URL)", file=err)
        return 1
    try:
        stream = reader.read(
            bus,
            q.filters(),
            start=q.start_time(dt.datetime.now(dt.UTC)),
            follow=q.follow,
            warn=lambda text: print(f"substratus events: {text}", file=err),
        )
        # Closed here, whatever happens, so the consumers are gone before the connection drains.
        async with contextlib.aclosing(stream):
            async for stored in stream:
                text, warning = render.render(stored, as_json=q.as_json)
                if warning is not None:
                    print(f"substratus events: {warning}", file=err)
                if text is not None:
                    print(text, file=out, flush=q.follow)
    except BusError as error:
        print(f"substratus events: {error}", file=err)
        return 1
    finally:
        await bus.close()
    return 0


def run(args: argparse.Namespace) -> int:
    q = query_from(args)
    settings = config.Settings(service="cli")
    # The bus layer logs each reconnection attempt for services; a command reports failures itself.
    logging.basicConfig(level=logging.ERROR, format="substratus events: %(message)s")

    async def main() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, task.cancel)
        try:
            return await show(q, settings, sys.stdout, sys.stderr)
        except asyncio.CancelledError:
            return 0  # Ctrl-C while following: a normal way to stop
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(main())
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
