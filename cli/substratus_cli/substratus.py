"""The ``substratus`` command."""

from __future__ import annotations

import argparse
import sys

from substratus_cli import events, status


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="substratus", description="Audit and inspect Substratus.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    events.add_parser(commands)
    status.add_parser(commands)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    sys.exit(args.run(args))
