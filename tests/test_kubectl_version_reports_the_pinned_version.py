"""`kubectl version` succeeds against the local stack and both kubectl and the API server report the
Kubernetes version pinned in versions.toml and a real build date (the binaries carry
upstream's version ldflags; before, the server said ``v0.0.0-master+$Format:%H$``, built in 1970,
and kubectl could not parse it)."""

from __future__ import annotations

import datetime as dt
import json

from substratus_local import binaries
from substratus_local.stack import Stack


def test_kubectl_version_reports_the_pinned_version(stack: Stack) -> None:
    pinned = binaries.versions()["kubernetes"]
    done = stack.kubectl("version", "-o", "json", check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for side in ("clientVersion", "serverVersion"):
        info = report[side]
        assert info["gitVersion"] == pinned, f"{side}: {info}"
        assert (info["major"], info["minor"]) == tuple(pinned.removeprefix("v").split(".")[:2]), f"{side}: {info}"
        # gitCommit is stamped only when the module proxy reports the commit (Origin.Hash); the
        # cached module here has none, so it may be empty, but never upstream's placeholder.
        assert "$Format" not in info["gitCommit"], f"{side}: {info}"
        built = dt.datetime.fromisoformat(info["buildDate"].replace("Z", "+00:00"))
        assert built.year >= 2025, f"{side}: {info}"
    # The plain form a user runs, with no skew warning between the two.
    plain = stack.kubectl("version", check=False)
    assert plain.returncode == 0, plain.stderr
    assert f"Server Version: {pinned}" in plain.stdout
    assert "WARNING" not in plain.stderr
