"""The ``substratus`` command."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="substratus", description="Audit and inspect Substratus.")
    parser.add_subparsers(dest="command", required=True)
    parser.parse_args(argv)
