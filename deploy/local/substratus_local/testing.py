"""pytest fixtures for tests on the real local stack (loaded by the repository's root conftest.py).

- ``stack``: the session's stack (API server, controllers, kwok nodes, NATS, S3, registry), started
  through the same launcher as ``make up`` on free ports in a temporary directory, and stopped at
  the end with a check that no process it started is left. With ``SUBSTRATUS_TEST_STACK=.dev`` the
  tests attach to a stack already started by ``make up`` instead (and leave it running).
- ``namespace``: a fresh namespace per test, deleted afterwards.

Tests that use ``stack`` are marked ``integration`` automatically.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from substratus_local import stack as stack_mod

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value (returned) or ``timeout`` passes (fails the test).

    ``check`` may raise AssertionError while the condition does not hold yet; the last one is shown.
    """
    deadline = time.monotonic() + timeout
    interval = 0.05
    last: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError as error:
            last = error
        if time.monotonic() > deadline:
            detail = f": {last}" if last else ""
            pytest.fail(f"{what} did not hold within {timeout:.0f}s{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack_mod.Stack]:
    reuse = os.environ.get("SUBSTRATUS_TEST_STACK")
    if reuse:
        attached = stack_mod.Stack(Path(reuse))
        down = [name for name, alive in attached.running().items() if not alive]
        if down:
            pytest.fail(f"SUBSTRATUS_TEST_STACK={reuse}: not running: {', '.join(down)} (run `make up`)")
        yield attached
        return
    s = stack_mod.Stack(tmp_path_factory.mktemp("stack"))
    try:
        s.up()
        s.apply_crds()
        yield s
    finally:
        s.down()
    left = s.leftover_pids()
    assert not left, f"processes of the test stack still running after teardown: {left}"


@pytest.fixture
def namespace(stack: stack_mod.Stack) -> Iterator[str]:
    name = "t-" + secrets.token_hex(4)
    stack.kubectl("create", "namespace", name)
    # The ServiceAccount admission plugin refuses Pods until the namespace's default account exists.
    eventually(
        lambda: stack.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        30,
        f"default ServiceAccount in {name}",
    )
    yield name
    stack.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
