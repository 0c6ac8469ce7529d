"""``kubectl notebook NAME [DIR]`` / ``kubectl notebook -f notebook.yaml [DIR]``: a notebook session.

1. Applies the manifest (``-f``) or takes the existing Notebook (``NAME``) and sets
   ``spec.suspend: false`` with server-side apply under the field manager ``kubectl-notebook``
   (the user's intent; the status stays the status writer's).
2. Shows the ``Serving`` condition as it changes until the Notebook is ready.
3. Port-forwards local port 8888 (or ``--port``; when 8888 is taken and no port was asked for, a
   free one) to the Pod's Jupyter with ``kubectl port-forward``, and starts it again whenever it
   drops (a Pod replaced, a network blip) once the Pod is ready again.
4. Prints the URL with the token from the Secret ``<name>-notebook-token`` and opens a browser
   unless ``--no-browser``.
5. Every ``--sync-interval`` seconds, and once more at the end, copies files the notebook wrote
   under ``/content`` into DIR (default: the current directory) through ``kubectl exec``: a
   listing (path, size, mtime) by the image's ``python3``, then ``tar`` of the files that are new
   or newer there. The Model, Dataset, artifacts (in the bucket already) and ``params.json`` are
   not copied, nor files over ``--max-file-mb``; files deleted there stay here.
6. On Ctrl-C or SIGTERM: stops the port-forward, syncs, and suspends the Notebook (its Pod stops,
   ``/content`` stays) unless ``--no-suspend``.

kubectl does the talking, so the kubeconfig, its current context and namespace, ``--context``,
``--kubeconfig`` and ``-n`` mean what they mean to kubectl. Exit codes: 0 done, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import webbrowser
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

import yaml

FIELD_MANAGER = "kubectl-notebook"
"""Owns ``spec.suspend`` only, so setting it never drops another field (server-side apply)."""
MANIFEST_FIELD_MANAGER = "kubectl"
"""The manifest of ``-f`` is applied as ``kubectl apply --server-side`` would: the user's own spec."""
API_VERSION = "substratus.ai/v1"
REMOTE_PORT = 8888
DEFAULT_PORT = 8888
HOST = "127.0.0.1"
CONTAINER = "notebook"
NOT_SYNCED_TOP = frozenset({"model", "data", "artifacts", "params.json", "lost+found"})
"""Entries of /content that are not the user's work: mounted inputs, artifacts (in the bucket), params."""
NOT_SYNCED_ANYWHERE = frozenset({".ipynb_checkpoints", "__pycache__"})
FAILED_REASONS = frozenset({"Invalid", "Forbidden", "ReconcileFailed"})
TAR_BATCH = 200

# Runs in the notebook container, whose working directory is /content: lists regular files as
# JSON [path, size, mtime], leaving out what is not the user's work and symlinks.
LIST_SCRIPT = """
import json, os, sys
top, anywhere = set(sys.argv[1].split("/")), set(sys.argv[2].split("/"))
out = []
for root, dirs, files in os.walk("."):
    rel = os.path.relpath(root, ".")
    keep = []
    for d in sorted(dirs):
        p = os.path.normpath(os.path.join(rel, d))
        if d in anywhere or (rel == "." and d in top) or os.path.islink(os.path.join(root, d)):
            continue
        keep.append(d)
    dirs[:] = keep
    for f in sorted(files):
        full = os.path.join(root, f)
        if (rel == "." and f in top) or os.path.islink(full) or not os.path.isfile(full):
            continue
        st = os.stat(full)
        out.append([os.path.normpath(os.path.join(rel, f)), st.st_size, st.st_mtime])
json.dump(out, sys.stdout)
"""


class NotebookError(Exception):
    """Something the user must know or fix; printed without a traceback."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- kubectl --------------------------------------------------------------------------------------


@dataclass
class Kubectl:
    binary: str
    namespace: str | None = None
    extra: Sequence[str] = ()

    def command(self, *args: str) -> list[str]:
        ns = ["-n", self.namespace] if self.namespace else []
        return [self.binary, *self.extra, *ns, *args]

    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        try:
            done = subprocess.run(
                self.command(*args), input=input, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise NotebookError(f"kubectl {' '.join(args[:2])} failed: {error}") from error
        if done.returncode != 0:
            raise NotebookError(f"kubectl {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def run_bytes(self, *args: str, timeout: float = 300) -> bytes:
        try:
            done = subprocess.run(self.command(*args), capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise NotebookError(f"kubectl {' '.join(args[:2])} failed: {error}") from error
        if done.returncode != 0:
            raise NotebookError(f"kubectl {' '.join(args[:2])}: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        out = self.run("get", kind, name, "--ignore-not-found", "-o", "json")
        if not out.strip():
            return None
        obj: dict[str, Any] = json.loads(out)
        return obj

    def apply(self, obj: dict[str, Any], field_manager: str = FIELD_MANAGER) -> dict[str, Any]:
        out = self.run(
            "apply",
            "--server-side",
            f"--field-manager={field_manager}",
            "--force-conflicts",
            "-o",
            "json",
            "-f",
            "-",
            input=json.dumps(obj),
        )
        applied: dict[str, Any] = json.loads(out)
        return applied

    def current_namespace(self) -> str:
        """The namespace kubectl uses: ``-n``, else the current context's, else ``default``."""
        if self.namespace:
            return self.namespace
        out = self.run("config", "view", "--minify", "-o", "jsonpath={..namespace}").strip()
        return out or "default"


# ---- the Notebook ---------------------------------------------------------------------------------


def load_manifest(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    if len(docs) != 1 or not isinstance(docs[0], dict) or docs[0].get("kind") != "Notebook":
        raise NotebookError(f"{path}: expected exactly one Notebook ({API_VERSION})")
    obj: dict[str, Any] = docs[0]
    if obj.get("apiVersion") != API_VERSION:
        raise NotebookError(f"{path}: apiVersion must be {API_VERSION}")
    if not (obj.get("metadata") or {}).get("name"):
        raise NotebookError(f"{path}: metadata.name is required")
    return obj


def without_suspend(obj: dict[str, Any]) -> dict[str, Any]:
    """The manifest without ``spec.suspend`` (a copy): that field is the session's to set."""
    out: dict[str, Any] = json.loads(json.dumps(obj))
    (out.get("spec") or {}).pop("suspend", None)
    return out


def suspend_patch(name: str, suspend: bool) -> dict[str, Any]:
    """Just ``spec.suspend``, applied under our field manager: the rest of the spec stays the user's."""
    return {"apiVersion": API_VERSION, "kind": "Notebook", "metadata": {"name": name}, "spec": {"suspend": suspend}}


def serving_condition(obj: dict[str, Any]) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Serving":
            return c
    return {}


def is_ready_now(obj: dict[str, Any]) -> bool:
    """Ready, for this generation (not a report written before the un-suspend)."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    return status.get("ready") is True and serving_condition(obj).get("observedGeneration") == generation


def pod_is_ready(pod: dict[str, Any] | None) -> bool:
    if not pod or pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


# ---- local port -----------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_port(asked: int | None, is_free: Callable[[int], bool] = port_is_free) -> tuple[int, str | None]:
    """(local port, a note for the user or None). A port that was asked for must be free."""
    if asked is not None:
        if not is_free(asked):
            raise NotebookError(f"local port {asked} is in use; pass another --port")
        return asked, None
    if is_free(DEFAULT_PORT):
        return DEFAULT_PORT, None
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = int(s.getsockname()[1])
    return port, f"local port {DEFAULT_PORT} is in use; forwarding from {port} instead (choose one with --port)"


# ---- port-forward with reconnects -----------------------------------------------------------------


@dataclass
class PortForward:
    """``kubectl port-forward pod/<pod> <local>:8888`` kept running until :meth:`stop`."""

    kubectl: Kubectl
    pod: str
    local_port: int
    retry_s: float = 1.0
    check_s: float = 2.0
    connected: threading.Event = field(default_factory=threading.Event)
    reconnects: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _proc: subprocess.Popen[str] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="port-forward", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            if not first:
                self._wait_for_pod()
                if self._stop.is_set():
                    return
                self.reconnects += 1
                say(f"port-forward: reconnecting to pod/{self.pod}")
            first = False
            self._forward_once()
            self.connected.clear()
            if not self._stop.is_set():
                say("port-forward: the connection dropped")
                self._stop.wait(self.retry_s)

    def _forward_once(self) -> None:
        """One ``kubectl port-forward``, until it exits or the Pod it reaches is gone or replaced.

        kubectl ends by itself when the kubelet drops the stream, but not always (kwok, a half-open
        connection): watching the Pod's UID ends it in every case.
        """
        uid: str | None = None
        with contextlib.suppress(NotebookError):
            uid = ((self.kubectl.get("pod", self.pod) or {}).get("metadata") or {}).get("uid")
        command = self.kubectl.command(
            "port-forward", f"pod/{self.pod}", f"{self.local_port}:{REMOTE_PORT}", f"--address={HOST}"
        )
        try:
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
            )
        except OSError as error:
            say(f"port-forward: {error}")
            return
        self._proc = proc
        watcher = threading.Thread(target=self._watch_pod, args=(proc, uid), name="port-forward-pod", daemon=True)
        watcher.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Forwarding from"):
                self.connected.set()
            elif line.strip() and not line.startswith("Handling connection"):
                say(f"port-forward: {line.rstrip()}")
        proc.wait()
        watcher.join(timeout=15)

    def _watch_pod(self, proc: subprocess.Popen[str], uid: str | None) -> None:
        """End ``proc`` once the Pod is not the one it forwards to any more (deleted or replaced)."""
        while proc.poll() is None and not self._stop.wait(self.check_s):
            try:
                pod = self.kubectl.get("pod", self.pod)
            except NotebookError:
                continue  # the API is unreachable for a moment: keep the forward
            if pod is None or pod["metadata"].get("uid") != uid or pod["metadata"].get("deletionTimestamp"):
                if proc.poll() is None:
                    proc.terminate()
                return

    def _wait_for_pod(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(NotebookError):
                if pod_is_ready(self.kubectl.get("pod", self.pod)):
                    return
            self._stop.wait(self.retry_s)


# ---- syncing /content back ------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    mtime: float


def parse_listing(text: str) -> list[RemoteFile]:
    return [RemoteFile(str(p), int(s), float(m)) for p, s, m in json.loads(text or "[]")]


def safe_relative(path: str) -> PurePosixPath | None:
    """The path if it stays inside the directory (relative, no ``..``), else None."""
    p = PurePosixPath(path)
    if p.is_absolute() or not p.parts or ".." in p.parts:
        return None
    return p


def to_fetch(remote: Iterable[RemoteFile], directory: Path, max_bytes: int) -> tuple[list[RemoteFile], list[str]]:
    """(files to copy: new here, another size, or newer there; paths left out as too large)."""
    fetch, too_large = [], []
    for f in remote:
        rel = safe_relative(f.path)
        if rel is None:
            continue
        if f.size > max_bytes:
            too_large.append(f.path)
            continue
        local = directory / rel
        try:
            st = local.stat()
        except FileNotFoundError:
            fetch.append(f)
            continue
        if st.st_size != f.size or int(f.mtime) > int(st.st_mtime):
            fetch.append(f)
    return fetch, too_large


def extract(data: bytes, directory: Path, wanted: dict[str, RemoteFile]) -> list[str]:
    """Write the wanted regular files of a tar stream under ``directory`` (atomically, remote mtime)."""
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            name = str(PurePosixPath(member.name))
            if not member.isfile() or name not in wanted:
                continue
            rel = safe_relative(name)
            source = tar.extractfile(member)
            if rel is None or source is None:
                continue
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.kubectl-notebook")
            with partial.open("wb") as out:
                shutil.copyfileobj(source, out)
            mtime = wanted[name].mtime
            os.utime(partial, (mtime, mtime))
            partial.replace(target)
            written.append(name)
    return written


@dataclass
class Syncer:
    """Copies files the notebook wrote under /content into ``directory`` through ``kubectl exec``."""

    kubectl: Kubectl
    pod: str
    directory: Path
    max_bytes: int
    synced: int = 0
    _warned: set[str] = field(default_factory=set)

    def sync_once(self) -> list[str]:
        listing = self.kubectl.run(
            "exec",
            f"pod/{self.pod}",
            "-c",
            CONTAINER,
            "--",
            "python3",
            "-c",
            LIST_SCRIPT,
            "/".join(sorted(NOT_SYNCED_TOP)),
            "/".join(sorted(NOT_SYNCED_ANYWHERE)),
        )
        fetch, too_large = to_fetch(parse_listing(listing), self.directory, self.max_bytes)
        for path in too_large:
            if path not in self._warned:
                self._warned.add(path)
                say(f"sync: {path} is larger than --max-file-mb; not copied")
        written: list[str] = []
        for i in range(0, len(fetch), TAR_BATCH):
            batch = fetch[i : i + TAR_BATCH]
            data = self.kubectl.run_bytes(
                "exec", f"pod/{self.pod}", "-c", CONTAINER, "--", "tar", "-cf", "-", "--", *[f.path for f in batch]
            )
            written += extract(data, self.directory, {f.path: f for f in batch})
        for path in written:
            say(f"sync: {path}")
        self.synced += len(written)
        return written


# ---- the session ----------------------------------------------------------------------------------


@dataclass
class Options:
    port: int | None = None
    browser: bool = True
    suspend_on_exit: bool = True
    sync: bool = True
    sync_interval_s: float = 5.0
    max_file_bytes: int = 100 * 1024 * 1024
    timeout_s: float = 1800.0
    poll_s: float = 1.0


@dataclass
class Session:
    kubectl: Kubectl
    options: Options
    directory: Path
    stop: threading.Event = field(default_factory=threading.Event)
    open_browser: Callable[[str], object] = webbrowser.open
    _last_sync_error: str = ""

    def run(self, name: str, manifest: dict[str, Any] | None) -> None:
        namespace = self.kubectl.current_namespace()
        self.kubectl.namespace = namespace
        port, note = choose_port(self.options.port)
        if manifest is not None:
            self.kubectl.apply(without_suspend(manifest), MANIFEST_FIELD_MANAGER)
            say(f"applied notebook/{name} in namespace {namespace}")
        elif self.kubectl.get("notebook", name) is None:
            raise NotebookError(f"notebook/{name} not found in namespace {namespace}; create it with -f")
        self.kubectl.apply(suspend_patch(name, False))
        say(f"notebook/{name}: spec.suspend=false; waiting until it is ready")
        try:
            self._session(name, port, note)
        finally:
            if self.options.suspend_on_exit:
                self.kubectl.apply(suspend_patch(name, True))
                say(f"suspended notebook/{name}: its Pod stops, /content is kept (resume: kubectl notebook {name})")
            else:
                say(
                    f"notebook/{name} keeps running (--no-suspend); suspend it with: kubectl notebook {name} and Ctrl-C"
                )

    def _session(self, name: str, port: int, note: str | None) -> None:
        self._wait_ready(name)
        if self.stop.is_set():
            return
        pod = f"{name}-notebook"
        token = self._token(name)
        forward = PortForward(self.kubectl, pod, port)
        if note:
            say(note)
        forward.start()
        syncer = Syncer(self.kubectl, pod, self.directory, self.options.max_file_bytes)
        try:
            while not forward.connected.wait(0.2):
                if self.stop.is_set():
                    return
            url = f"http://{HOST}:{port}/?token={token}"
            print(f"notebook/{name} is ready: {url}", flush=True)
            if self.options.browser:
                self.open_browser(url)
            if self.options.sync:
                self.directory.mkdir(parents=True, exist_ok=True)
                say(f"syncing files written under /content to {self.directory.resolve()} (Ctrl-C to stop)")
            while not self.stop.wait(self.options.sync_interval_s):
                if self.options.sync:
                    self._sync(syncer)
        finally:
            forward.stop()
            if self.options.sync:
                self._sync(syncer)

    def _sync(self, syncer: Syncer) -> None:
        try:
            syncer.sync_once()
        except NotebookError as error:
            if str(error) != self._last_sync_error:  # say it once, not every interval
                say(f"sync: {error}")
            self._last_sync_error = str(error)
        else:
            self._last_sync_error = ""

    def _wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + self.options.timeout_s
        shown: tuple[Any, ...] | None = None
        while not self.stop.is_set():
            obj = self.kubectl.get("notebook", name)
            if obj is None:
                raise NotebookError(f"notebook/{name} was deleted")
            c = serving_condition(obj)
            seen = (c.get("status"), c.get("reason"), c.get("message"))
            if c and seen != shown:
                shown = seen
                say(f"Serving={c.get('status')} {c.get('reason')}: {c.get('message') or ''}")
            if is_ready_now(obj):
                return
            if c.get("reason") in FAILED_REASONS and c.get("observedGeneration") == obj["metadata"].get("generation"):
                raise NotebookError(f"notebook/{name} cannot start: {c.get('message')}")
            if time.monotonic() > deadline:
                raise NotebookError(f"notebook/{name} not ready within {self.options.timeout_s:.0f}s")
            self.stop.wait(self.options.poll_s)

    def _token(self, name: str) -> str:
        secret = self.kubectl.get("secret", f"{name}-notebook-token")
        encoded = ((secret or {}).get("data") or {}).get("token")
        if not encoded:
            raise NotebookError(f"secret/{name}-notebook-token has no token; is the notebook-manager running?")
        return base64.b64decode(encoded).decode()


# ---- command line ---------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubectl notebook",
        description="Start a Substratus Notebook (or resume a suspended one), forward its Jupyter to this "
        "machine, copy the files it writes under /content here, and suspend it on exit.",
        epilog="kubectl notebook NAME [DIR]  |  kubectl notebook -f notebook.yaml [DIR]",
    )
    p.add_argument("args", nargs="*", metavar="NAME|DIR", help="the Notebook's name (without -f), then DIR")
    p.add_argument("-f", "--filename", help="a manifest with one Notebook to apply")
    p.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig's current one)")
    p.add_argument("--context", help="kubeconfig context (default: kubectl's)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's)")
    p.add_argument("--port", type=int, help=f"local port (default {DEFAULT_PORT}, or a free one when it is taken)")
    p.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    p.add_argument("--no-suspend", action="store_true", help="leave the Notebook running on exit")
    p.add_argument("--no-sync", action="store_true", help="do not copy files from /content")
    p.add_argument("--sync-interval", type=float, default=5.0, help="seconds between syncs (default 5)")
    p.add_argument("--max-file-mb", type=float, default=100.0, help="larger files are not copied (default 100)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for ready (default 1800)")
    p.add_argument(
        "--kubectl", default=os.environ.get("KUBECTL", "kubectl"), help="kubectl binary (default: $KUBECTL or kubectl)"
    )
    return p


def resolve_target(args: argparse.Namespace) -> tuple[str, dict[str, Any] | None, Path]:
    """(name, manifest or None, directory) from the command line."""
    rest = list(args.args)
    manifest = None
    if args.filename:
        manifest = load_manifest(args.filename)
        name = str(manifest["metadata"]["name"])
        if manifest["metadata"].get("namespace") and not args.namespace:
            args.namespace = str(manifest["metadata"]["namespace"])
    elif rest:
        name = rest.pop(0)
    else:
        raise NotebookError("name a Notebook (kubectl notebook NAME) or a manifest (kubectl notebook -f FILE)")
    if len(rest) > 1:
        raise NotebookError(f"unexpected arguments: {' '.join(rest[1:])}")
    return name, manifest, Path(rest[0]) if rest else Path.cwd()


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    extra = [f"--context={args.context}"] if args.context else []
    if args.kubeconfig:
        extra.append(f"--kubeconfig={args.kubeconfig}")
    try:
        name, manifest, directory = resolve_target(args)
    except (NotebookError, OSError, yaml.YAMLError) as error:
        say(f"error: {error}")
        sys.exit(2)
    options = Options(
        port=args.port,
        browser=not args.no_browser,
        suspend_on_exit=not args.no_suspend,
        sync=not args.no_sync,
        sync_interval_s=args.sync_interval,
        max_file_bytes=int(args.max_file_mb * 1024 * 1024),
        timeout_s=args.timeout,
    )
    binary = shutil.which(args.kubectl) or args.kubectl
    session = Session(Kubectl(binary, args.namespace, extra), options, directory)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if session.stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for the clean exit
        say("stopping…")
        session.stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        session.run(name, manifest)
    except NotebookError as error:
        say(f"error: {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
