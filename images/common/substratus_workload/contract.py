"""The container contract as a workload sees it (docs/adr/026).

``/content/params.json`` holds the params; each is also env ``PARAM_<UPPERCASE_KEY>``. The file
wins when both exist (it keeps ints as ints); env alone works for ``docker run``-style tests.
Inputs are read-only at ``/content/data`` and ``/content/model``; output goes to
``/content/artifacts``. ``SUBSTRATUS_CONTENT`` moves the root (unit tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

PARAM_PREFIX = "PARAM_"
TERMINATION_LOG = Path("/dev/termination-log")


class ParamError(ValueError):
    """A param is missing or malformed; the message says which and what is expected."""


def content_root(env: Mapping[str, str] | None = None) -> Path:
    return Path((env if env is not None else os.environ).get("SUBSTRATUS_CONTENT", "/content"))


def load_params(root: Path, env: Mapping[str, str]) -> dict[str, str | int]:
    """Params from ``<root>/params.json``, completed by ``PARAM_*`` env (lower-cased keys)."""
    params: dict[str, str | int] = {
        k[len(PARAM_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(PARAM_PREFIX)
    }
    path = root / "params.json"
    if path.is_file():
        loaded = json.loads(path.read_text() or "{}")
        if not isinstance(loaded, dict):
            raise ParamError(f"{path} must hold a JSON object, got {type(loaded).__name__}")
        for key, value in loaded.items():
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise ParamError(f"param {key!r} must be a string or an integer, got {value!r}")
            params[str(key)] = value
    return params


def param_str(params: Mapping[str, str | int], key: str, default: str | None = None) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    return str(value)


def param_int(params: Mapping[str, str | int], key: str, default: int, *, minimum: int | None = None) -> int:
    value = params.get(key, default)
    try:
        number = int(value)
    except ValueError:
        raise ParamError(f"param {key!r} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ParamError(f"param {key!r} must be at least {minimum}, got {number}")
    return number


def fail(message: str, code: int) -> int:
    """Log ``message`` as the last line and leave it in the termination log (kubectl describe shows it)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):  # not in a Kubernetes container (unit tests, a plain shell)
        TERMINATION_LOG.write_text(message + "\n")
    return code
