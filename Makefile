# Thin wrappers: the logic lives in tools/bootstrap.sh and the substratus_local launcher.
SHELL := bash
export UV_PYTHON_DOWNLOADS := never
UV := $(shell tools/bootstrap.sh uv-path)
RUN := $(UV) run --frozen

.PHONY: help bootstrap up down status test test-unit lint fmt crds bench images

help:
	@echo "make up      start the local stack (Kubernetes + kwok and a real node, NATS, S3, registry, services)"
	@echo "make down    stop everything make up started (the real node's mounts, links, cgroups too)"
	@echo "make status  show what runs"
	@echo "make test    lint, then every test (starts its own stack on free ports)"
	@echo "make lint    ruff, mypy --strict, import-linter"
	@echo "make crds    regenerate deploy/crds (and the chart's copy) and docs/api.md from the API types"
	@echo "make bench   benchmarks, not tests (BENCH=burst,replicas,stages BENCH_N=1000; docs/performance.md)"
	@echo "make images  build the Debian bases, service and reference images with buildah (tools/images.sh;"
	@echo "            LOCAL=1 pushes them to make up's registry)"

bootstrap:
	@tools/bootstrap.sh

# REAL_NODE=0: kwok nodes only (no root needed, ~2 s faster).
up: bootstrap
	$(RUN) python -m substratus_local up $(if $(filter 0,$(REAL_NODE)),--no-real-node)

down:
	$(RUN) python -m substratus_local down

status:
	$(RUN) python -m substratus_local status

lint: bootstrap
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports

fmt:
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

test: lint
	$(RUN) pytest

test-unit: bootstrap
	$(RUN) pytest -m "not integration"

crds:
	$(RUN) python -m substratus_common.api.crd deploy/crds
	cp deploy/crds/*.yaml deploy/helm/substratus/crds/
	$(RUN) python -m substratus_common.api.reference docs/api.md

bench: bootstrap
	$(RUN) python -m bench

images:
	tools/images.sh $(IMAGES)
