"""100 Models applied at once all become ready, with exactly one Job each."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

from substratus_common.bus import connection
from substratus_common.events import streams, subjects
from substratus_local.testing import eventually, stream_messages

from .trainer_platform import Platform, platform_fixture  # noqa: F401  (the fixture)

COUNT = 100


def _models(n: int) -> str:
    items = [
        {
            "apiVersion": "substratus.ai/v1",
            "kind": "Model",
            "metadata": {"name": f"m-{i:03d}"},
            "spec": {"image": "substratusai/model-loader-huggingface", "params": {"name": f"org/model-{i}"}},
        }
        for i in range(n)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


async def test_a_hundred_models_become_ready_with_one_job_each(
    platform: Callable[..., Platform], bus: connection.Bus
) -> None:
    p = platform()
    started = time.monotonic()
    p.apply(_models(COUNT))

    def all_ready() -> bool:
        models = p.items("models")
        ready = sum(1 for m in models if (m.get("status") or {}).get("ready") is True)
        assert ready == COUNT, f"{ready}/{COUNT} Models ready"
        return True

    eventually(all_ready, 300, f"{COUNT} Models ready")
    elapsed = time.monotonic() - started
    print(f"\n{COUNT} Models ready {elapsed:.1f}s after kubectl apply")

    jobs = p.items("jobs")
    per_model = Counter(j["metadata"]["labels"]["substratus.ai/name"] for j in jobs)
    assert len(per_model) == COUNT
    assert set(per_model.values()) == {1}
    assert all(j["metadata"]["annotations"]["substratus.ai/generation"] == "1" for j in jobs)

    # Reports are published only when they change what the status says: about two per Model
    # (artifacts URL with JobNotComplete, then JobComplete), not one per event.
    reports = await stream_messages(
        bus, streams.STATUS, f"{subjects.PREFIX}.{subjects.STATUS}.models.{p.namespace}.*.trainer"
    )
    print(f"{len(reports)} trainer reports for {COUNT} Models")
    assert len(reports) <= 3 * COUNT
