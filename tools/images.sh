#!/usr/bin/env bash
# `make images`: build the Debian bases (mmdebstrap, cached), the service images, the storage helper
# image and the reference workload images (images/*), with buildah; no Docker Hub needed
# (docs/adr/027, docs/adr/091).
#
#   tools/images.sh [all|bases|services|storage|workloads]     default all (storage: only the
#                                                             storage helper image)
#
#   IMAGE_REPOSITORY     services and storage helper, default ghcr.io/substratusai (the chart's)
#   IMAGE_TAG            their tag, default the services' version (services/watcher/pyproject.toml)
#   WORKLOAD_REPOSITORY  reference images, default registry.substratus.local/substratus (ADR 028)
#   WORKLOAD_TAG         their tag, default latest
#   PYTHON_IMAGE         another Python base for the services instead of the Debian one (with
#                        PYTHON_BIN, its interpreter, e.g. /usr/local/bin/python3)
#   SERVICES             which services, default all seven;  STORAGE=0 skips the storage image
#   WORKLOADS            which images/* folders, default all
#   PUSH=1               push what was built: to REGISTRY (host:port, plain HTTP) when set, keeping
#                        each image's path and tag, else to the registry its name names
#   LOCAL=1              for `make up`'s stack: push to the REGISTRY of .dev/env, services and
#                        storage named registry.substratus.local/substratusai/... (ADR 028)
#   DEBIAN_MIRROR        default http://deb.debian.org/debian
#
# A base is made once per package set (the key hashes deploy/images/debian-bases.sh and this
# recipe) as a rootfs tar under ~/.cache/substratus/images, and imported as
# localhost/substratus-debian-<name>:<key>.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/images/debian-bases.sh

what="${1:-all}"
if [ "${LOCAL:-0}" = "1" ]; then
  [ -f .dev/env ] || { echo "make images: LOCAL=1 needs a running stack (.dev/env): run make up" >&2; exit 1; }
  REGISTRY="$(. .dev/env && echo "$REGISTRY")"
  IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-registry.substratus.local/substratusai}"
  PUSH=1
fi
repository="${IMAGE_REPOSITORY:-ghcr.io/substratusai}"
tag="${IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' services/watcher/pyproject.toml | head -1)}"
workload_repository="${WORKLOAD_REPOSITORY:-registry.substratus.local/substratus}"
workload_tag="${WORKLOAD_TAG:-latest}"
services="${SERVICES:-watcher status-writer builder uploader trainer server-manager notebook-manager}"
workloads="${WORKLOADS:-$(cd images && for d in */; do [ -f "$d/Containerfile" ] && echo "${d%/}"; done)}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/substratus/images"
recipe_revision=1

die() { echo "make images: $*" >&2; exit 1; }
say() { echo "make images: $*" >&2; }
command -v buildah >/dev/null 2>&1 || die "buildah is not installed (tools/bootstrap.sh installs it on Debian/Ubuntu)"

# RUN steps reach package registries (PyPI for uv) through this machine's CA bundle, which may
# hold a proxy's CA that the image's own bundle lacks; the image keeps Debian's bundle.
build_opts=(--layers --network host)
host_ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$host_ca" ] && build_opts+=(--volume "$host_ca:$host_ca:ro")

# debian_base NAME PACKAGES: prints the image name, making the rootfs and the image when missing.
debian_base() {
  local name="$1" packages="$2" key tar image
  key="$(printf '%s\n' "$recipe_revision" "$DEBIAN_SUITE" "$mirror" "$packages" "$DEBIAN_DPKG_OPTS" | sha256sum | cut -c1-12)"
  image="localhost/substratus-debian-$name:$key"
  tar="$cache/debian-$name-$key.tar"
  if buildah inspect --type image "$image" >/dev/null 2>&1; then
    echo "$image"; return
  fi
  if [ ! -f "$tar" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is not installed (tools/bootstrap.sh installs it)"
    mkdir -p "$cache"
    local dpkg_opts=() opt start=$SECONDS
    for opt in $DEBIAN_DPKG_OPTS; do dpkg_opts+=(--dpkgopt="$opt"); done
    rm -rf "$tar.partial"
    say "making the Debian base '$name' with mmdebstrap ($packages)"
    # Into a partial file renamed on success: mmdebstrap creates its output before it finishes.
    mmdebstrap --quiet --format=tar --variant=minbase --include="${packages// /,}" "${dpkg_opts[@]}" \
      "$DEBIAN_SUITE" "$tar.partial" "$mirror" </dev/null >&2 || die "mmdebstrap failed for the base '$name'"
    mv "$tar.partial" "$tar"
    say "base '$name': rootfs in $((SECONDS - start))s ($(du -h "$tar" | cut -f1))"
  fi
  local container
  container="$(buildah from scratch)"
  buildah add --quiet "$container" "$tar" / >/dev/null
  buildah config --env LANG=C.UTF-8 --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 \
    --env PATH=/usr/local/bin:/usr/bin:/bin --cmd '["python3"]' "$container"
  buildah commit --quiet --rm "$container" "$image" >/dev/null
  buildah tag "$image" "localhost/substratus-debian-$name:latest"
  echo "$image"
}

push() {
  [ "${PUSH:-0}" = "1" ] || return 0
  local image="$1" target
  if [ -n "${REGISTRY:-}" ]; then
    target="$REGISTRY/${image#*/}"
    buildah push --quiet --tls-verify=false "$image" "docker://$target"
  else
    buildah push --quiet "$image"
  fi
}

timed() { local start=$SECONDS; "$@"; say "  ... $((SECONDS - start))s"; }

python_base="$(debian_base python "$DEBIAN_PYTHON_PACKAGES")"
if [ "$what" = all ] || [ "$what" = workloads ] || [ "$what" = bases ]; then
  notebook_base="$(debian_base notebook "$DEBIAN_NOTEBOOK_PACKAGES")"
fi
say "bases: $python_base${notebook_base:+, $notebook_base}"

[ "$what" = storage ] && services=""
if [ "$what" = all ] || [ "$what" = services ] || [ "$what" = storage ]; then
  common=(--ignorefile deploy/images/containerignore --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE:-$python_base}")
  [ -n "${PYTHON_BIN:-}" ] && common+=(--build-arg "PYTHON_BIN=$PYTHON_BIN")
  buildah build "${build_opts[@]}" "${common[@]}" --target base -t localhost/substratus-base:latest -f deploy/images/base.Containerfile .
  buildah build "${build_opts[@]}" "${common[@]}" --target build -t localhost/substratus-build:latest -f deploy/images/base.Containerfile .
  common+=(--build-arg BASE_IMAGE=localhost/substratus-base:latest --build-arg BUILD_IMAGE=localhost/substratus-build:latest)
  targets=()
  for service in $services; do
    [ -f "services/$service/Containerfile" ] || die "no services/$service/Containerfile"
    targets+=("substratus-$service=services/$service/Containerfile")
  done
  [ "${STORAGE:-1}" != "0" ] && targets+=("substratus-storage=deploy/images/storage.Containerfile")
  for target in "${targets[@]}"; do
    image="$repository/${target%%=*}:$tag"
    say "building $image"
    timed buildah build --quiet "${build_opts[@]}" "${common[@]}" -t "$image" -f "${target#*=}" . >/dev/null
    push "$image"
  done
fi

if [ "$what" = all ] || [ "$what" = workloads ]; then
  for workload in $workloads; do
    [ -f "images/$workload/Containerfile" ] || die "no images/$workload/Containerfile"
    image="$workload_repository/$workload:$workload_tag"
    say "building $image"
    timed buildah build --quiet "${build_opts[@]}" --ignorefile deploy/images/workloads.containerignore \
      --build-arg "BASE_IMAGE=$python_base" --build-arg "NOTEBOOK_BASE_IMAGE=$notebook_base" \
      -t "$image" -f "images/$workload/Containerfile" images >/dev/null
    push "$image"
  done
fi
say "done ($what)"
