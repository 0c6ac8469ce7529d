"""The kind table names each kind's plural and children as DESIGN.md says."""

from __future__ import annotations

import pytest

from substratus_common.api import resources, types


@pytest.mark.parametrize(
    ("kind", "plural", "params", "workload", "build", "ready"),
    [
        ("Model", "models", "x-model-params", "x-modeller", "x-model-bld", "Complete"),
        ("Dataset", "datasets", "x-dataset-params", "x-data-loader", "x-dataset-bld", "Complete"),
        ("Server", "servers", "x-server-params", "x-server", "x-server-bld", "Serving"),
        ("Notebook", "notebooks", "x-notebook-params", "x-notebook", "x-notebook-bld", "Serving"),
    ],
)
def test_children_names(*, kind: str, plural: str, params: str, workload: str, build: str, ready: str) -> None:
    info = resources.kind_info(kind)
    assert info is resources.kind_info_for_plural(plural)
    assert info.params_name("x") == params
    assert info.workload_name("x") == workload
    assert info.build_job_name("x") == build
    assert info.ready_condition == ready
    assert info.cls.model_fields["kind"].default == kind


def test_longest_allowed_name_gives_job_pod_and_service_names_within_63_characters() -> None:
    # ConfigMap names may be 253 characters long; Jobs, Services and Pod hostnames are DNS labels.
    for info in resources.KINDS:
        name = "n" * info.max_name_length
        for child in (info.workload_name(name), info.build_job_name(name)):
            assert len(child) <= resources.DNS_LABEL_MAX, child


def test_only_server_has_no_artifacts() -> None:
    assert [i.kind for i in resources.KINDS if not i.has_artifacts] == ["Server"]
    assert resources.Server.model_fields["status"].annotation == types.Status | None
    assert "artifacts" not in types.Status.model_fields


def test_unknown_kind_and_plural_name_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: Model, Dataset, Server, Notebook"):
        resources.kind_info("Pipeline")
    with pytest.raises(ValueError, match="known: models, datasets, servers, notebooks"):
        resources.kind_info_for_plural("pipelines")
