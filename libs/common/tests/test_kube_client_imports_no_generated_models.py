"""The services' Kubernetes client loads none of kubernetes_asyncio's generated API and model
classes (kube/sdk.py), nor a storage client, in a fresh interpreter (no stack)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import substratus_common.runtime.reconciler  # what every consuming service imports
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_runtime_loads_no_generated_models_and_no_storage_client() -> None:
    loaded = json.loads(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, check=True).stdout)
    assert "kubernetes_asyncio.client.api_client" in loaded  # the client itself is there
    generated = [
        m for m in loaded if m.startswith(("kubernetes_asyncio.client.models.", "kubernetes_asyncio.client.api."))
    ]
    assert generated == []
    assert not any(m.startswith(("aioboto3", "gcloud")) for m in loaded)
