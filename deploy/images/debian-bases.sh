# The Debian package sets of the base images tools/images.sh makes with mmdebstrap (docs/adr/027).
# Sourced by tools/images.sh; a change here changes the cache key, so the base is rebuilt.
DEBIAN_SUITE=bookworm
# Python for the services (python3-venv: the build stage's private pip installs uv) and the
# workload images (python3-dulwich: the dataset-loader's git client).
DEBIAN_PYTHON_PACKAGES="python3 python3-venv ca-certificates passwd python3-dulwich"
# Jupyter Server, the classic UI and a Python kernel for the notebook image.
DEBIAN_NOTEBOOK_PACKAGES="$DEBIAN_PYTHON_PACKAGES python3-jupyter-server python3-nbclassic python3-ipykernel"
# Docs, man pages and translations are not needed in a container.
DEBIAN_DPKG_OPTS="path-exclude=/usr/share/doc/* path-include=/usr/share/doc/*/copyright path-exclude=/usr/share/man/* path-exclude=/usr/share/info/* path-exclude=/usr/share/locale/*"
