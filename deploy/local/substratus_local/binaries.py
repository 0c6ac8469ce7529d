"""Find or build the binaries of the local stack.

No registry ships kube-apiserver and friends, so they are compiled from Go modules with
the machine's Go toolchain, once per version, into a cache outside the repository.
Binaries found through ``KUBEBUILDER_ASSETS`` or on ``PATH`` are used as they are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.toml")

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy")

# Bumped when the way a component is built changes (new binaries, new flags), so a cache
# filled by an older recipe is rebuilt instead of trusted.
RECIPE = "r2"


class BuildError(RuntimeError):
    """A binary could not be found or built; the message says what to install or set."""


def versions() -> dict[str, str]:
    with VERSIONS_FILE.open("rb") as f:
        data = tomllib.load(f)
    return {name: str(section["version"]) for name, section in data.items()}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "substratus"


@dataclass(frozen=True)
class Component:
    """A group of binaries built together from one Go module at one version."""

    name: str
    module: str
    version: str
    packages: dict[str, str]  # binary name -> Go package path
    staging_replaces: bool = False  # k8s.io/kubernetes needs every staging module pinned
    version_stamps: bool = False  # set the version variables the upstream Kubernetes build sets
    tags: str = ""  # Go build tags

    @property
    def bin_dir(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}-{RECIPE}" / "bin"


def components() -> list[Component]:
    v = versions()
    return [
        Component(
            "kubernetes",
            "k8s.io/kubernetes",
            v["kubernetes"],
            {cmd: f"k8s.io/kubernetes/cmd/{cmd}" for cmd in KUBE_COMMANDS},
            staging_replaces=True,
            version_stamps=True,
        ),
        Component("etcd", "go.etcd.io/etcd/server/v3", v["etcd"], {"etcd": "go.etcd.io/etcd/server/v3"}),
        Component("kwok", "sigs.k8s.io/kwok", v["kwok"], {"kwok": "sigs.k8s.io/kwok/cmd/kwok"}),
        Component("helm", "helm.sh/helm/v3", v["helm"], {"helm": "helm.sh/helm/v3/cmd/helm"}),
        Component(
            "containerd",
            "github.com/containerd/containerd/v2",
            v["containerd"],
            {
                name: f"github.com/containerd/containerd/v2/cmd/{name}"
                for name in ("containerd", "containerd-shim-runc-v2", "ctr")
            },
            # No btrfs headers here, and the real node uses overlayfs only.
            tags="no_btrfs,no_devmapper,no_zfs",
        ),
    ]


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"  # never try to download another toolchain
    env.setdefault("CGO_ENABLED", "0")
    env.setdefault("GOFLAGS", "-buildvcs=false")
    return env


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError("Go is not installed: install the Go toolchain (>= 1.26) to build the local stack")
    return go


def _staging_modules(module: str, version: str) -> list[str]:
    """The k8s.io/* modules that k8s.io/kubernetes replaces with its staging directory."""
    gomod = Path(str(_go_json("mod", "download", "-json", f"{module}@{version}")["GoMod"])).read_text()
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", gomod, re.MULTILINE)))


def _write_wrapper(component: Component, workdir: Path) -> None:
    """A throwaway module that requires the component and names its commands as tools."""
    lines = ["module substratus.local/build", "", "go 1.26", "", f"require {component.module} {component.version}", ""]
    if component.staging_replaces:
        staging_version = "v0." + component.version.removeprefix("v1.")
        lines.append("replace (")
        lines += [f"\t{m} => {m} {staging_version}" for m in _staging_modules(component.module, component.version)]
        lines += [")", ""]
    lines += [f"tool {pkg}" for pkg in component.packages.values()]
    (workdir / "go.mod").write_text("\n".join(lines) + "\n")


def _go_json(*args: str) -> dict[str, object]:
    """The JSON a go command prints about a module (``go mod download -json``, ``go list -m -json``)."""
    out = subprocess.run(
        [_go(), *args], check=True, capture_output=True, text=True, env=_go_env(), cwd=cache_root()
    ).stdout
    info: dict[str, object] = json.loads(out)
    return info


def version_ldflags(version: str, commit: str, build_date: str) -> list[str]:
    """The -X flags of upstream's hack/lib/version.sh, so `kubectl version` and the API server
    report ``gitVersion v1.36.x`` instead of ``v0.0.0-master+$Format:%H$``."""
    major, minor = version.removeprefix("v").split(".")[:2]
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": commit,
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return flags


def _stamps(component: Component) -> list[str]:
    if not component.version_stamps:
        return []
    module = f"{component.module}@{component.version}"
    origin = _go_json("mod", "download", "-json", module).get("Origin")
    # A proxy that keeps no origin leaves the commit empty, as upstream's build does without git.
    commit = str(origin.get("Hash", "")) if isinstance(origin, dict) else ""
    # The module's publish time stands in for the commit date: reproducible, never 1970.
    when = str(_go_json("list", "-m", "-json", module).get("Time", "")).replace("+00:00", "Z")
    return version_ldflags(component.version, commit, when)


Progress = Callable[[str], None]


def _run_streaming(cmd: list[str], cwd: Path, progress: Progress) -> None:
    """Run a go command, feeding each package it reports to ``progress``; keep the tail for errors."""
    tail: list[str] = []
    with subprocess.Popen(
        cmd, cwd=cwd, env=_go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            tail = [*tail[-40:], line]
            progress(line)
        if proc.wait() != 0:
            raise BuildError(f"{' '.join(cmd[:3])} failed in {cwd}:\n" + "\n".join(tail))


def build(component: Component, progress: Progress) -> None:
    workdir = cache_root() / "build" / f"{component.name}-{component.version}"
    workdir.mkdir(parents=True, exist_ok=True)
    _write_wrapper(component, workdir)
    progress(f"resolving modules for {component.name} {component.version}")
    _run_streaming([_go(), "mod", "tidy"], workdir, progress)
    staging = component.bin_dir.with_name("bin.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ldflags = " ".join(["-s", "-w", *_stamps(component)])
    tags = [f"-tags={component.tags}"] if component.tags else []
    for binary, package in component.packages.items():
        # One build per binary so the file gets the binary's name (go would name etcd "server").
        _run_streaming(
            [_go(), "build", "-v", "-trimpath", *tags, f"-ldflags={ldflags}", "-o", str(staging / binary), package],
            workdir,
            progress,
        )
    # The rename makes the cache entry appear whole or not at all.
    shutil.rmtree(component.bin_dir, ignore_errors=True)
    staging.rename(component.bin_dir)


KWOK_CRDS = ("portforwards", "clusterportforwards", "logs", "clusterlogs", "execs", "clusterexecs")


def kwok_crds() -> list[Path]:
    """kwok's CRDs for simulated port-forward, logs and exec, read from its Go module (cached)."""
    component = next(c for c in components() if c.name == "kwok")
    target = component.bin_dir.parent / "crds"
    if not all((target / f"kwok.x-k8s.io_{name}.yaml").is_file() for name in KWOK_CRDS):
        cache_root().mkdir(parents=True, exist_ok=True)
        info = _go_json("mod", "download", "-json", f"{component.module}@{component.version}")
        source = Path(str(info["Dir"])) / "kustomize" / "crd" / "bases"
        partial = target.with_name("crds.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name in KWOK_CRDS:
            shutil.copyfile(source / f"kwok.x-k8s.io_{name}.yaml", partial / f"kwok.x-k8s.io_{name}.yaml")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return [target / f"kwok.x-k8s.io_{name}.yaml" for name in KWOK_CRDS]


def _found_elsewhere(binary: str) -> Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / binary).is_file():
        return Path(assets) / binary
    # The machine's kubectl may be a cloud SDK dispatcher; only trust real binaries for the rest.
    if binary != "kubectl":
        found = shutil.which(binary)
        if found:
            return Path(found)
    return None


def _print_progress(component: str) -> Progress:
    started = time.monotonic()
    count = 0
    interactive = sys.stderr.isatty()

    def report(line: str) -> None:
        nonlocal count
        count += 1
        msg = f"  building {component}: {count} packages, {time.monotonic() - started:4.0f}s  {line[:70]}"
        if interactive:
            sys.stderr.write("\r\033[K" + msg)
        elif count % 200 == 0:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    return report


def ensure(names: list[str] | None = None, progress: Callable[[str], Progress] = _print_progress) -> dict[str, Path]:
    """Paths of the wanted binaries, building whatever component is missing from the cache."""
    result: dict[str, Path] = {}
    for component in components():
        wanted = [b for b in component.packages if names is None or b in names]
        if not wanted:
            continue
        missing = []
        for binary in wanted:
            path = _found_elsewhere(binary)
            if path is None and (component.bin_dir / binary).is_file():
                path = component.bin_dir / binary
            if path is None:
                missing.append(binary)
            else:
                result[binary] = path
        if missing:
            started = time.monotonic()
            sys.stderr.write(f"building {component.name} {component.version} (once; cached in {component.bin_dir})\n")
            cache_root().mkdir(parents=True, exist_ok=True)
            build(component, progress(component.name))
            sys.stderr.write(f"\n  built {component.name} in {time.monotonic() - started:.0f}s\n")
            for binary in missing:
                result[binary] = component.bin_dir / binary
    return result


if __name__ == "__main__":
    for name, path in ensure(sys.argv[1:] or None).items():
        print(f"{name}\t{path}")
