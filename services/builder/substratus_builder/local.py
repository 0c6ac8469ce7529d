"""The local executor: the same build as the Job's, run with buildah on the builder's machine.

Used by ``make up`` (``SUBSTRATUS_BUILDER_EXECUTOR=local``), where kwok only simulates Pods: the
source is cloned with ``git`` (the Job's clone arguments) or downloaded from storage and unpacked,
``buildah build --isolation chroot`` builds it (a ``Containerfile`` or ``Dockerfile`` at the
context's root) and ``buildah push`` sends ``plan.image`` to the registry. buildah's storage
(``vfs``, which works as root in any container) lives under ``builder_local_dir`` so base images stay
cached, or in a temporary directory removed after the build. Each build's output goes to a log
file; a failure's message carries the end of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from substratus_common import config, errors
from substratus_common.api.types import Reason
from substratus_common.storage import base
from substratus_common.workloads import builds

log = logging.getLogger(__name__)

LOG_TAIL_LINES, LOG_TAIL_CHARS = 15, 2000
"""How much of the build log a failure's message quotes: its last lines, at most this many characters."""


@dataclass(frozen=True)
class Result:
    ok: bool
    detail: str = ""
    """Why the build failed, with the end of its log."""


class StepFailed(Exception):
    """One command of the build exited non-zero; the message names it and quotes its output."""


class LocalExecutor:
    def __init__(self, settings: config.Settings, storage: base.Storage | None) -> None:
        self.settings, self.storage = settings, storage
        self.builds = 0

    def where(self, plan: builds.Plan) -> str:
        """Where the build runs and logs, for the running message."""
        log_path = self._log_path(plan, None)
        return "on the builder's machine with buildah" + (f" (log: {log_path})" if log_path else "")

    async def build(self, plan: builds.Plan) -> Result:
        """Fetch the source, build and push ``plan.image``. Storage errors are raised (retry or report)."""
        self.builds += 1
        if shutil.which("buildah") is None:  # checked at start too; not recorded as this build's failure
            raise errors.PermanentError(
                "buildah is not installed on the builder's machine (tools/bootstrap.sh installs it)",
                reason=Reason.RECONCILE_FAILED,
            )
        persistent = self.settings.builder_local_dir
        if persistent is not None:
            persistent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="substratus-build-", dir=persistent) as tmp:
            work = Path(tmp)
            store = (persistent or work) / "buildah"
            log_path = self._log_path(plan, work)
            assert log_path is not None
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("")
            try:
                async with asyncio.timeout(self.settings.local_build_timeout_s):
                    context = await self._fetch(plan, work, log_path)
                    await self._buildah(store, log_path, "build", "--isolation=chroot", "-t", plan.image, str(context))
                    tls = "false" if self.settings.registry_insecure else "true"
                    await self._buildah(
                        store, log_path, "push", f"--tls-verify={tls}", plan.image, f"docker://{plan.image}"
                    )
                    with contextlib.suppress(StepFailed):
                        await self._buildah(store, log_path, "rmi", plan.image)
            except StepFailed as error:
                return Result(False, f"{error}{_tail(log_path)}")
            except TimeoutError:
                timeout = self.settings.local_build_timeout_s
                return Result(False, f"the build ran longer than {timeout:.0f}s{_tail(log_path)}")
            finally:
                if persistent is None:
                    await asyncio.to_thread(shutil.rmtree, store, True)
        return Result(True)

    # ---- steps ---------------------------------------------------------------------------------

    async def _fetch(self, plan: builds.Plan, work: Path, log_path: Path) -> Path:
        """The build context directory: a shallow clone's ``path``, or the unpacked upload."""
        if plan.git is not None:
            source = work / "source"
            await _run(["git", *builds.clone_args(plan.git, str(source))], log_path, "git clone")
            context = source / plan.git.path if plan.git.path else source
            if not context.is_dir():
                raise StepFailed(f"directory {plan.git.path!r} is not in the repository")
            return context
        assert plan.upload is not None
        if self.storage is None:
            raise StepFailed("no storage is configured to read the upload from")
        tarball = work / "context.tar.gz"
        with tarball.open("wb") as out:
            async for chunk in self.storage.read(plan.upload.key):
                out.write(chunk)
        context = work / "context"
        context.mkdir()
        try:
            await asyncio.to_thread(_unpack, tarball, context)
        except (tarfile.TarError, OSError) as error:
            raise StepFailed(f"the uploaded build context is not a readable .tar.gz: {error}") from None
        return context

    async def _buildah(self, store: Path, log_path: Path, command: str, *args: str) -> None:
        argv = [
            "buildah",
            f"--root={store / 'root'}",
            f"--runroot={store / 'run'}",
            "--storage-driver=vfs",
            command,
            *args,
        ]
        await _run(argv, log_path, f"buildah {command}")

    def _log_path(self, plan: builds.Plan, work: Path | None) -> Path | None:
        name = f"{plan.namespace}-{plan.kind.lower()}-{plan.name}.log"
        if self.settings.builder_local_dir is not None:
            return self.settings.builder_local_dir / "logs" / name
        return work / name if work is not None else None


async def _run(argv: Sequence[str], log_path: Path, what: str) -> None:
    """Run one command with its output appended to the log; StepFailed when it exits non-zero."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    with log_path.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT, env=env
        )
        try:
            code = await proc.wait()
        finally:
            if proc.returncode is None:  # cancelled or timed out: the command does not outlive the build
                proc.kill()
                await proc.wait()
    if code != 0:
        raise StepFailed(f"{what} exited with code {code}")


def _unpack(tarball: Path, into: Path) -> None:
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(into, filter="data")  # no absolute paths, links out of the tree or devices


def _tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    text = "\n".join(lines[-LOG_TAIL_LINES:])[-LOG_TAIL_CHARS:]
    return f":\n{text}" if text else ""
