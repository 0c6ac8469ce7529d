"""``kill -9`` of the trainer in the middle of a 200-Model burst: once it is started again every
Model becomes ready with exactly one Job, and no Job that existed at the kill was replaced (same
uid at the end). What the dead process had fetched but not acked comes back to the new one."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest

from substratus_local.testing import eventually

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

COUNT = 200


def _models(n: int) -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": f"k-{i:03d}"},
            "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": f"org/model-{i}"}},
        }
        for i in range(n)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def _job_uids(p: Platform) -> dict[str, str]:
    return {j["metadata"]["name"]: j["metadata"]["uid"] for j in p.items("jobs")}


@pytest.mark.timeout(600)
def test_trainer_killed_mid_burst_leaves_one_job_per_model(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(_models(COUNT))
    eventually(lambda: _job_uids(p) or None, 120, "the first Job")
    p.trainer.kill()
    at_kill = _job_uids(p)
    print(f"\n{len(at_kill)}/{COUNT} Jobs existed when the trainer was killed")

    p.trainer.start()

    def all_ready() -> bool:
        models = p.items("models")
        ready = sum(1 for m in models if (m.get("status") or {}).get("ready") is True)
        assert ready == COUNT, f"{ready}/{COUNT} Models ready"
        return True

    eventually(all_ready, 420, f"{COUNT} Models ready")

    jobs = p.items("jobs")
    per_model = Counter(j["metadata"]["labels"]["substratus.ai/name"] for j in jobs)
    assert len(per_model) == COUNT
    assert set(per_model.values()) == {1}
    assert all(j["metadata"]["annotations"]["substratus.ai/generation"] == "1" for j in jobs)
    at_end = _job_uids(p)
    assert {name: at_end.get(name) for name in at_kill} == at_kill  # none was deleted and created again
