"""Editing ``env`` rolls out a new ReplicaSet; ten reconciles of an unchanged Server (each a change
event: an annotation that is not part of the spec) create none and apply nothing."""

from __future__ import annotations

from collections.abc import Callable

from substratus_local.testing import eventually

from .server_platform import MODEL, SERVER, Platform, platform_fixture  # noqa: F401  (the fixture)


def test_env_edit_rolls_and_resyncs_do_not(platform: Callable[..., Platform]) -> None:
    p = platform()
    p.apply(MODEL)
    p.wait_ready("model", "opt")
    p.apply(SERVER)
    p.wait_ready("server", "opt")
    (first,) = p.replica_sets("opt")
    deployment = p.get("deployment", "opt-server")
    assert deployment is not None
    generation = deployment["metadata"]["generation"]
    assert p.applies == 1

    # Ten reconciles of the unchanged Server: each annotation is a new resourceVersion, an event.
    before = p.acked
    for i in range(10):
        p.kubectl("annotate", "server", "opt", f"example.com/resync={i}", "--overwrite")
    eventually(lambda: p.acked >= before + 10, 60, "ten change events handled")
    assert [rs["metadata"]["name"] for rs in p.replica_sets("opt")] == [first["metadata"]["name"]]
    again = p.get("deployment", "opt-server")
    assert again is not None
    assert again["metadata"]["generation"] == generation
    assert again["spec"]["template"] == deployment["spec"]["template"]
    assert p.applies == 1

    # An env edit rolls the Pods: a second ReplicaSet whose template has the new value.
    p.apply(SERVER.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))

    def rolled() -> list[str]:
        sets = p.replica_sets("opt")
        assert len(sets) == 2, [rs["metadata"]["name"] for rs in sets]
        return [rs["metadata"]["name"] for rs in sets]

    eventually(rolled, 60, "a new ReplicaSet")
    newest = max(
        p.replica_sets("opt"), key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
    )
    env = {e["name"]: e.get("value") for e in newest["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LOG_LEVEL"] == "debug"
    assert p.applies == 2
    server = p.wait_ready("server", "opt")
    eventually(
        lambda: p.condition("server", "opt").get("observedGeneration") == server["metadata"]["generation"],
        60,
        "Serving observed at the new generation",
    )
