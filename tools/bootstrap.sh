#!/usr/bin/env bash
# Installs what `make up` and `make test` need on a fresh machine, idempotently:
# uv (from PyPI, into a private venv when missing), Debian's docker-registry and buildah, what the
# real node needs (runc, CNI plugins, nftables, gcc, busybox-static), the Python workspace
# (uv sync --frozen), and the Go-built Kubernetes and containerd binaries (cached).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/substratus"
uv_version="0.13.8"

uv_bin() {
  if command -v uv >/dev/null 2>&1; then command -v uv; return; fi
  if [ ! -x "$cache/uv/bin/uv" ]; then
    echo "bootstrap: installing uv $uv_version from PyPI into $cache/uv" >&2
    python3 -m venv "$cache/uv" >&2
    "$cache/uv/bin/pip" install --quiet "uv==$uv_version" >&2
  fi
  echo "$cache/uv/bin/uv"
}

apt_packages() {
  local missing=()
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v buildah >/dev/null 2>&1 || missing+=(buildah)
  # The real node (ADR 021): runc, CNI plugins in /usr/lib/cni, nft for kube-proxy and the host's
  # port map, iproute2 and nsenter for its network namespace, gcc + libc6-dev for the static pause
  # binary, busybox-static for the tests' image.
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v nft >/dev/null 2>&1 || missing+=(nftables)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  # mmdebstrap: the Debian base images of tools/images.sh (docs/adr/027).
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "bootstrap: please install Debian packages: ${missing[*]}" >&2
    exit 1
  fi
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

case "${1:-all}" in
  uv-path) uv_bin ;;
  all)
    export UV_PYTHON_DOWNLOADS=never
    uv="$(uv_bin)"
    apt_packages
    "$uv" sync --frozen --quiet
    # Builds kube-apiserver & co. once per version (minutes the first time), then reuses the cache.
    "$uv" run --frozen python -m substratus_local build
    ;;
  *) echo "usage: $0 [all|uv-path]" >&2; exit 2 ;;
esac
