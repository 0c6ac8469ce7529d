#!/usr/bin/env bash
# `make images`: build the shared base (deploy/images/base.Containerfile) and one image per service
# (services/<name>/Containerfile) with buildah, tagged <IMAGE_REPOSITORY>/substratus-<name>:<IMAGE_TAG>,
# and the storage helper of workload Pods (deploy/images/storage.Containerfile) as
# <IMAGE_REPOSITORY>/substratus-storage:<IMAGE_TAG>.
#
#   IMAGE_REPOSITORY  default ghcr.io/substratusai (the chart's image.repository)
#   IMAGE_TAG         default the services' version from services/watcher/pyproject.toml
#   PYTHON_IMAGE      the Python base, default docker.io/library/python:3.11-slim-bookworm; name a
#                     mirror where Docker Hub is not reachable
#   SERVICES          which services, default all seven
#   STORAGE=0         skip the storage helper image (built by default)
#   PUSH=1            push the service and storage images after building them
#   PULL_TIMEOUT      seconds to wait for the base image before giving up, default 120
#
# It never hangs on an unreachable registry: the base image is pulled first, within PULL_TIMEOUT,
# and a failure says what to set.
set -euo pipefail
cd "$(dirname "$0")/.."

repository="${IMAGE_REPOSITORY:-ghcr.io/substratusai}"
tag="${IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' services/watcher/pyproject.toml | head -1)}"
python_image="${PYTHON_IMAGE:-docker.io/library/python:3.11-slim-bookworm}"
services="${SERVICES:-watcher status-writer builder uploader trainer server-manager notebook-manager}"
pull_timeout="${PULL_TIMEOUT:-120}"

die() { echo "make images: $*" >&2; exit 1; }

command -v buildah >/dev/null 2>&1 || die "buildah is not installed (tools/bootstrap.sh installs it on Debian/Ubuntu)"

echo "make images: pulling the base image $python_image (at most ${pull_timeout}s)" >&2
if ! timeout --kill-after=10 "$pull_timeout" buildah pull --quiet "$python_image" >/dev/null; then
  die "cannot pull the base image $python_image within ${pull_timeout}s.
  Set PYTHON_IMAGE to a Python 3.11+ slim (Debian) image your machine can reach, e.g.
    make images PYTHON_IMAGE=mirror.gcr.io/library/python:3.11-slim-bookworm
  or pull it into local storage first (buildah pull / podman load)."
fi

common=(--layers --ignorefile deploy/images/containerignore --build-arg "PYTHON_IMAGE=$python_image")
buildah build "${common[@]}" --target base -t localhost/substratus-base:latest -f deploy/images/base.Containerfile .
buildah build "${common[@]}" --target build -t localhost/substratus-build:latest -f deploy/images/base.Containerfile .

for service in $services; do
  [ -f "services/$service/Containerfile" ] || die "no services/$service/Containerfile"
  image="$repository/substratus-$service:$tag"
  echo "make images: building $image" >&2
  buildah build "${common[@]}" \
    --build-arg BASE_IMAGE=localhost/substratus-base:latest \
    --build-arg BUILD_IMAGE=localhost/substratus-build:latest \
    -t "$image" -f "services/$service/Containerfile" .
  if [ "${PUSH:-0}" = "1" ]; then
    buildah push "$image"
  fi
done
built="$(echo "$services" | wc -w) service images as $repository/substratus-<service>:$tag"

if [ "${STORAGE:-1}" != "0" ]; then
  image="$repository/substratus-storage:$tag"
  echo "make images: building $image" >&2
  buildah build "${common[@]}" \
    --build-arg BASE_IMAGE=localhost/substratus-base:latest \
    --build-arg BUILD_IMAGE=localhost/substratus-build:latest \
    -t "$image" -f deploy/images/storage.Containerfile .
  if [ "${PUSH:-0}" = "1" ]; then
    buildah push "$image"
  fi
  built="$built, and $image"
fi
echo "make images: built $built" >&2
