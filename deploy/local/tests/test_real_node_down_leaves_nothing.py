"""``down`` of a stack with the real node leaves nothing on the host: no mount, network namespace,
link, cgroup, process, nft table or iptables chain, changed sysctl or log link (ADR 023) — also
when the kubelet and containerd were killed first."""

from __future__ import annotations

import os
import signal

import pytest

from substratus_local import hoststate, node_images
from substratus_local.stack import Stack
from substratus_local.testing import create_pod, eventually, wait_pod_phase


@pytest.mark.parametrize("crash", [False, True], ids=["running", "after-kill-9"])
def test_down_restores_the_host(tmp_path_factory: pytest.TempPathFactory, crash: bool) -> None:
    # A short root: the kubelet's unix sockets live under it (107 bytes at most).
    root = tmp_path_factory.mktemp("rn")
    before = hoststate.take(root)
    s = Stack(root, real_node=True)
    try:
        s.up()
        image = node_images.push_busybox(s.registry)
        s.kubectl("create", "namespace", "t")
        eventually(lambda: s.kubectl("get", "serviceaccount", "default", "-n", "t", check=False).returncode == 0)
        # A Pod with an emptyDir in memory and a projected token: mounts, a sandbox, CNI, cgroups.
        create_pod(
            s,
            "t",
            "busy",
            image,
            ["/bin/sh", "-c", "exec sleep 3600"],
            pod_spec={"volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}]},
            container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
        )
        wait_pod_phase(s, "t", "busy", {"Running"})
        during = hoststate.take(root)
        changed = hoststate.difference(before, during, root)
        # The snapshot sees what a node adds, so an empty difference after down means something.
        for kind in ("mounts", "netns", "links", "cgroups", "processes", "nft_tables", "files"):
            assert kind in changed, f"the running node added no {kind}: {changed.keys()}"
        if crash:
            for name in ("kubelet", "containerd"):
                pid = s.pid(name)
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
            eventually(lambda: not s.alive("kubelet") and not s.alive("containerd"), 10, "both dead")
    finally:
        s.down()
    assert hoststate.difference(before, hoststate.take(root), root) == {}
    assert s.leftover_pids() == []
