"""``kubectl applybuild -f model.yaml DIR``: build a Substratus resource's image from a local directory.

1. Tars DIR reproducibly (entries sorted, mtimes, owners and modes fixed, gzip without a name or
   time, ``.dockerignore`` honoured), so the same directory always has the same MD5.
2. Sets ``spec.build.upload`` to that MD5 and a new request ID and applies the manifest.
3. Waits for ``status.buildUpload`` to answer that request ID: either storage already holds the
   tarball (``Uploaded=True``, nothing to send) or there is a signed URL, which it PUTs the tarball
   to with a progress bar.
4. Follows the resource until ``Uploaded=True`` (``--wait uploaded``) or until it is ready
   (``--wait ready``, the default), printing each condition as it changes and, once the build
   Job ``<name>-<kind>-bld`` exists, its logs.

The signed URL is never printed. Exit codes: 0 done, 1 refused or failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from substratus_common.api import readiness

KINDS = {"Model": "models", "Dataset": "datasets", "Server": "servers", "Notebook": "notebooks"}
CONTENT_TYPE = "application/octet-stream"
CHUNK = 256 * 1024
FIXED_MTIME = 0


class ApplyBuildError(Exception):
    """Something the user must fix; printed without a traceback."""


# ---- .dockerignore ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    exclude: bool


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go ``filepath.Match`` plus ``**``) as a regex over ``/``-paths."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body[:1] in ("^", "!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


class DockerIgnore:
    """The rules of a ``.dockerignore``: the last matching rule wins, ``!`` re-includes.

    A rule that matches a directory also matches everything below it, as in Docker.
    """

    def __init__(self, text: str = "") -> None:
        self.rules: list[_Rule] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            if not exclude:
                line = line[1:].strip()
            line = os.path.normpath(line).replace(os.sep, "/").lstrip("/")
            if line in ("", "."):
                continue
            self.rules.append(_Rule(_pattern_regex(line), exclude))

    @classmethod
    def of(cls, directory: Path) -> DockerIgnore:
        path = directory / ".dockerignore"
        return cls(path.read_text() if path.is_file() else "")

    def excluded(self, rel: str) -> bool:
        """Whether the ``/``-separated path ``rel`` (relative to the context) is left out."""
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for rule in self.rules:
            if any(rule.regex.match(p) for p in prefixes):
                result = rule.exclude
        return result


# ---- reproducible tarball --------------------------------------------------------------------------


def context_files(directory: Path) -> list[str]:
    """The context's entries (``/``-paths, sorted), without what ``.dockerignore`` leaves out.

    The Dockerfile and ``.dockerignore`` are always sent, as Docker does.
    """
    ignore = DockerIgnore.of(directory)
    always = {"Dockerfile", ".dockerignore"}
    found: list[str] = []

    def walk(current: Path, rel: str) -> None:
        for entry in sorted(os.scandir(current), key=lambda e: e.name):
            path = f"{rel}/{entry.name}" if rel else entry.name
            if ignore.excluded(path) and path not in always:
                # A re-included path below an excluded directory still needs its parents.
                if entry.is_dir(follow_symlinks=False) and any(not r.exclude for r in ignore.rules):
                    before = len(found)
                    walk(Path(entry.path), path)
                    if len(found) > before:
                        found.insert(before, path)
                continue
            found.append(path)
            if entry.is_dir(follow_symlinks=False):
                walk(Path(entry.path), path)

    walk(directory, "")
    return found


def _tarinfo(directory: Path, rel: str) -> tuple[tarfile.TarInfo, Path | None]:
    path = directory / rel
    st = path.lstat()
    info = tarfile.TarInfo(rel)
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        return info, None
    if stat.S_ISLNK(st.st_mode):
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, os.readlink(path)
        return info, None
    if stat.S_ISREG(st.st_mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
        info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
        return info, path
    raise ApplyBuildError(f"{path}: only files, directories and symlinks can be in a build context")


def write_tarball(directory: Path, out: io.BufferedIOBase) -> list[str]:
    """Write the gzipped tar of ``directory`` to ``out``; the entries, in order."""
    entries = context_files(directory)
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=FIXED_MTIME, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for rel in entries:
            info, source = _tarinfo(directory, rel)
            if source is None:
                tar.addfile(info)
            else:
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
    return entries


@dataclass(frozen=True)
class Tarball:
    path: Path
    md5: str
    size: int
    entries: list[str]

    @property
    def content_md5(self) -> str:
        return base64.b64encode(bytes.fromhex(self.md5)).decode()


def make_tarball(directory: Path, out_dir: Path) -> Tarball:
    """Tar ``directory`` into ``out_dir/context.tar.gz``; refuse a directory without a Dockerfile."""
    if not directory.is_dir():
        raise ApplyBuildError(f"{directory}: not a directory")
    if not (directory / "Dockerfile").is_file():
        raise ApplyBuildError(f"{directory}: no Dockerfile; the build context needs one at its top")
    path = out_dir / "context.tar.gz"
    with path.open("wb") as handle:
        entries = write_tarball(directory, handle)
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return Tarball(path=path, md5=digest.hexdigest(), size=path.stat().st_size, entries=entries)


# ---- the resource ----------------------------------------------------------------------------------


def load_manifest(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ApplyBuildError(f"{path}: expected exactly one Model, Dataset, Server or Notebook")
    obj: dict[str, Any] = docs[0]
    if obj.get("kind") not in KINDS or not str(obj.get("apiVersion", "")).startswith("substratus.ai/"):
        raise ApplyBuildError(f"{path}: kind must be one of {', '.join(KINDS)} (apiVersion substratus.ai/v1)")
    if not (obj.get("metadata") or {}).get("name"):
        raise ApplyBuildError(f"{path}: metadata.name is required")
    return obj


def with_upload(obj: dict[str, Any], md5: str, request_id: str) -> dict[str, Any]:
    """The manifest building from the upload (replacing any ``spec.build``)."""
    out: dict[str, Any] = json.loads(json.dumps(obj))
    spec = out.setdefault("spec", {})
    spec["build"] = {"upload": {"md5Checksum": md5, "requestID": request_id}}
    return out


def new_request_id() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


@dataclass
class Kubectl:
    binary: str
    namespace: str | None
    extra: Sequence[str] = ()

    def run(self, *args: str, input: str | None = None) -> str:
        command = [self.binary, *self.extra, *args]
        if self.namespace:
            command[1:1] = ["-n", self.namespace]
        try:
            done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ApplyBuildError(f"kubectl failed: {error}") from error
        if done.returncode != 0:
            raise ApplyBuildError(f"kubectl {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        applied: dict[str, Any] = json.loads(self.run("apply", "-f", "-", "-o", "json", input=json.dumps(obj)))
        return applied

    def get(self, kind: str, name: str) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(self.run("get", KINDS[kind], name, "-o", "json"))
        return got

    def job_exists(self, name: str) -> bool:
        return bool(self.run("get", "job", name, "--ignore-not-found", "-o", "name").strip())

    def follow_logs(self, job: str, console: Console) -> subprocess.Popen[str]:
        """``kubectl logs -f job/<job>`` copied to the console, line by line, in the background."""
        command = [self.binary, *self.extra, "logs", "-f", f"job/{job}", "--all-containers"]
        if self.namespace:
            command[1:1] = ["-n", self.namespace]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def copy() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                console.print(f"build | {line.rstrip()}")

        threading.Thread(target=copy, name=f"logs:{job}", daemon=True).start()
        return proc


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(c.get("type")): c
        for c in (obj.get("status") or {}).get("conditions") or []
        if isinstance(c, dict) and c.get("type")
    }


# ---- the flow --------------------------------------------------------------------------------------


@dataclass
class Flow:
    kubectl: Kubectl
    console: Console
    poll_s: float = 1.0
    timeout_s: float = 900.0
    http: Callable[[], httpx.Client] = lambda: httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))

    def run(self, manifest: dict[str, Any], directory: Path, wait: str) -> None:
        kind, name = str(manifest["kind"]), str(manifest["metadata"]["name"])
        with tempfile.TemporaryDirectory(prefix="applybuild-") as tmp:
            tarball = make_tarball(directory, Path(tmp))
            self.console.print(
                f"tarred {len(tarball.entries)} entries of {directory} ({tarball.size} bytes, MD5 {tarball.md5})"
            )
            request_id = new_request_id()
            self.kubectl.apply(with_upload(manifest, tarball.md5, request_id))
            self.console.print(f"applied {kind.lower()}/{name} (upload request {request_id})")
            self._upload(kind, name, tarball, request_id)
        self._follow(kind, name, wait)

    def _upload(self, kind: str, name: str, tarball: Tarball, request_id: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            obj = self.kubectl.get(kind, name)
            upload = (obj.get("status") or {}).get("buildUpload") or {}
            uploaded = _conditions(obj).get("Uploaded", {})
            if upload.get("requestID") == request_id:
                if uploaded.get("status") == "True" and upload.get("storedMD5Checksum") == tarball.md5:
                    self.console.print("storage already holds this build context; nothing to upload")
                    return
                if upload.get("signedURL"):
                    self._put(str(upload["signedURL"]), tarball)
                    return
                if uploaded.get("reason") == "UploadExpired":
                    raise ApplyBuildError(f"the upload request expired: {uploaded.get('message')}; run again")
            if time.monotonic() > deadline:
                raise ApplyBuildError(
                    f"no signed URL for request {request_id} within {self.timeout_s:.0f}s; is the uploader running?"
                )
            time.sleep(self.poll_s)

    def _put(self, url: str, tarball: Tarball) -> None:
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Content-MD5": tarball.content_md5,
            "Content-Length": str(tarball.size),
        }
        columns = (TextColumn("uploading"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task("upload", total=tarball.size)

            def body() -> Iterator[bytes]:
                with tarball.path.open("rb") as handle:
                    while chunk := handle.read(CHUNK):
                        progress.advance(task, len(chunk))
                        yield chunk

            try:
                with self.http() as client:
                    response = client.put(url, content=body(), headers=headers)
            except httpx.HTTPError as error:
                raise ApplyBuildError(f"the upload failed: {type(error).__name__}: {error}") from None
        if response.status_code >= 300:
            raise ApplyBuildError(
                f"storage refused the upload (HTTP {response.status_code}): {_storage_error(response.text)}"
            )
        self.console.print("uploaded; waiting for the uploader to verify it")

    def _follow(self, kind: str, name: str, wait: str) -> None:
        logs: list[subprocess.Popen[str]] = []
        try:
            self._watch(kind, name, wait, logs)
        finally:
            for proc in logs:
                if proc.poll() is None:
                    proc.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=5)

    def _watch(self, kind: str, name: str, wait: str, logs: list[subprocess.Popen[str]]) -> None:
        """Print condition changes until ``wait`` holds; stream the build Job's logs once it exists."""
        deadline = time.monotonic() + self.timeout_s
        shown: dict[str, tuple[Any, ...]] = {}
        build_job = f"{name}-{kind.lower()}-bld"
        while True:
            obj = self.kubectl.get(kind, name)
            conditions = _conditions(obj)
            for type_, c in sorted(conditions.items()):
                if type_ == readiness.READY:
                    continue  # it repeats the condition that blocks; "is ready" is printed below
                seen = (c.get("status"), c.get("reason"), c.get("message"))
                if shown.get(type_) != seen:
                    shown[type_] = seen
                    self.console.print(f"{type_}={c.get('status')} {c.get('reason')}: {c.get('message') or ''}")
            uploaded = conditions.get("Uploaded", {})
            if uploaded.get("reason") in ("UploadExpired", "Forbidden", "Invalid", "ReconcileFailed"):
                raise ApplyBuildError(f"the upload failed: {uploaded.get('message')}")
            if wait == "uploaded" and uploaded.get("status") == "True":
                return
            if wait == "ready" and (obj.get("status") or {}).get("ready") is True:
                self.console.print(f"{kind.lower()}/{name} is ready")
                return
            if wait == "ready" and not logs and uploaded.get("status") == "True":
                with contextlib.suppress(ApplyBuildError, OSError):
                    if self.kubectl.job_exists(build_job):
                        logs.append(self.kubectl.follow_logs(build_job, self.console))
            failed = conditions.get("Built", {})
            if failed.get("status") == "False" and failed.get("reason") == "JobFailed":
                raise ApplyBuildError(f"the build failed: {failed.get('message')}")
            if time.monotonic() > deadline:
                raise ApplyBuildError(f"{kind.lower()}/{name} not {wait} within {self.timeout_s:.0f}s")
            time.sleep(self.poll_s)


def _storage_error(text: str) -> str:
    """The code and message of an S3/GCS XML error body, without echoing anything signed."""
    found = {tag: re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S) for tag in ("Code", "Message")}
    parts = [m.group(1).strip() for m in found.values() if m]
    return ": ".join(parts) if parts else "no details"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubectl applybuild",
        description="Apply a Substratus manifest and build its image from a local directory "
        "(tar'd reproducibly, uploaded through a signed URL).",
    )
    p.add_argument("-f", "--filename", required=True, help="the manifest (one Model, Dataset, Server or Notebook)")
    p.add_argument("directory", type=Path, help="the build context: a directory with a Dockerfile")
    p.add_argument("-n", "--namespace", help="namespace (default: kubectl's)")
    p.add_argument("--context", help="kubeconfig context (default: kubectl's)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's)")
    p.add_argument(
        "--wait",
        choices=("uploaded", "ready"),
        default="ready",
        help="follow the resource until the upload is verified, or until it is built and ready (default)",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for each stage (default 1800)")
    p.add_argument(
        "--kubectl", default=os.environ.get("KUBECTL", "kubectl"), help="kubectl binary (default: $KUBECTL or kubectl)"
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    console = Console(stderr=True, highlight=False, markup=False)
    extra = [f"--context={args.context}"] if args.context else []
    if args.kubeconfig:
        extra.append(f"--kubeconfig={args.kubeconfig}")
    binary = shutil.which(args.kubectl) or args.kubectl
    flow = Flow(Kubectl(binary, args.namespace, extra), console, timeout_s=args.timeout)
    try:
        manifest = load_manifest(args.filename)
        flow.run(manifest, args.directory, args.wait)
    except (ApplyBuildError, OSError, yaml.YAMLError) as error:
        console.print(f"error: {error}", style="red")
        sys.exit(1)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
