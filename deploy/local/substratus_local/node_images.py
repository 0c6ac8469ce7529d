"""Images the real node needs and its tests use, built here with gcc and buildah (no Docker Hub,
no registry.k8s.io on this machine).

- the sandbox image: ``pause/pause.c`` compiled with ``gcc -static``, packed with buildah into a
  docker-archive tar, cached like the Go binaries and imported with ``ctr images import``;
- a busybox image (Debian's static busybox and its applet links) pushed into a stack's registry,
  for tests that need a shell, ``httpd`` and ``wget`` in a Pod.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from substratus_local import binaries

PAUSE_SOURCE = Path(__file__).with_name("pause") / "pause.c"
PAUSE_IMAGE = "localhost/substratus-pause:1"
BUSYBOX = Path("/bin/busybox")


class ImageError(RuntimeError):
    """An image could not be built; the message names the command and its error."""


def _run(*cmd: str) -> str:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise ImageError(f"`{' '.join(cmd)}` failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout.strip()


def _need(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise ImageError(f"{tool} not found: install Debian's {package} package (tools/bootstrap.sh does)")
    return found


def pause_archive() -> Path:
    """The sandbox image as a docker-archive tar, built once per source version."""
    digest = hashlib.sha256(PAUSE_SOURCE.read_bytes()).hexdigest()[:12]
    target = binaries.cache_root() / f"pause-{digest}" / "pause.tar"
    if target.is_file():
        return target
    gcc, buildah = _need("gcc", "gcc"), _need("buildah", "buildah")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "pause"
        _run(gcc, "-static", "-Os", "-Wall", "-Wextra", "-o", str(binary), str(PAUSE_SOURCE))
        partial = target.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        container = _run(buildah, "from", "scratch")
        _run(buildah, "copy", container, str(binary), "/pause")
        _run(buildah, "config", "--entrypoint", '["/pause"]', "--user", "65535:65535", container)
        # Committed straight into the tar: nothing is left in the machine's image store.
        _run(buildah, "commit", "-q", "--rm", container, f"docker-archive:{partial}:{PAUSE_IMAGE}")
        partial.rename(target)
    return target


def push_busybox(registry: str, name: str = "busybox:local") -> str:
    """Push a busybox image (``/bin/sh``, ``httpd``, ``wget``, ...) to ``registry``; its reference."""
    buildah = _need("buildah", "buildah")
    if not BUSYBOX.is_file():
        raise ImageError(f"{BUSYBOX} not found: install Debian's busybox-static package (tools/bootstrap.sh does)")
    ref = f"{registry}/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        applets = _run(str(BUSYBOX), "--list").split()
        for applet in applets:
            if applet != "busybox":
                (rootfs / "bin" / applet).symlink_to("busybox")
        for directory in ("tmp", "etc", "proc", "sys", "dev", "www"):
            (rootfs / directory).mkdir()
        (rootfs / "tmp").chmod(0o1777)
        (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
        (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
        container = _run(buildah, "from", "scratch")
        _run(buildah, "copy", container, f"{rootfs}/", "/")
        _run(buildah, "config", "--cmd", '["/bin/sh"]', "--env", "PATH=/bin", container)
        _run(buildah, "commit", "-q", "--rm", "--tls-verify=false", container, f"docker://{ref}")
    return ref
