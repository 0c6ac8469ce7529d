"""The real node registers Ready beside the kwok nodes, tainted and labelled so that only the Pods
the local stack's admission policy sends there land on it (ADR 021, 022)."""

from __future__ import annotations

import json

from substratus_local import kwok_config, node, node_config
from substratus_local.stack import Stack


def test_real_node_is_ready_beside_the_kwok_nodes(real_node_stack: Stack) -> None:
    nodes = json.loads(real_node_stack.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    ready = {
        n["metadata"]["name"]: next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")
        for n in nodes
    }
    assert ready.get(node_config.NODE_NAME) == "True", ready
    kwok = {n.name for n in kwok_config.nodes()}
    assert all(ready.get(name) == "True" for name in kwok), ready

    real = next(n for n in nodes if n["metadata"]["name"] == node_config.NODE_NAME)
    key, value = node_config.NODE_LABEL
    assert real["metadata"]["labels"][key] == value
    assert node_config.NODE_TAINT in real["spec"]["taints"]
    info = real["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.36.3"
    assert info["containerRuntimeVersion"].startswith("containerd://2.3.")
    addresses = {a["type"]: a["address"] for a in real["status"]["addresses"]}
    net = real_node_stack.node_network
    assert net is not None
    assert addresses["InternalIP"] == net.node_ip


def test_a_second_up_changes_nothing(real_node_stack: Stack) -> None:
    pids = {name: real_node_stack.pid(name) for name in node.PROCESSES}
    again = Stack(real_node_stack.root)
    again.up()
    assert {name: again.pid(name) for name in node.PROCESSES} == pids
    assert all(again.alive(name) for name in node.PROCESSES)
