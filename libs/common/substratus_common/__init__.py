"""Shared library of every Substratus service: import its modules, e.g. ``from substratus_common import config``."""
