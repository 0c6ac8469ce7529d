"""Changing ``spec.build.git.tag`` builds once more (a new Job, a new image); events about an
unchanged build — annotations, status writes, the builder restarted — never build again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from substratus_local.testing import eventually

from .builder_platform import BuilderPlatform, builder_platform_fixture  # noqa: F401  (the fixture)

SERVER = """
apiVersion: substratus.ai/v1
kind: Server
metadata: {name: api}
spec:
  build:
    git: {url: https://github.com/substratusai/images, path: model-server-basaran, tag: v1}
  model: {name: some-model}
"""


def _built(p: BuilderPlatform, tag: str) -> dict[str, Any]:
    image = f"{p.stack.registry}/local-server-{p.namespace}-api:{tag}"

    def check() -> bool:
        server = p.get("server", "api") or {}
        built = p.condition("server", "api")
        assert server.get("spec", {}).get("image") == image, server.get("spec")
        assert built.get("status") == "True", built
        assert built.get("observedGeneration") == server["metadata"]["generation"], built
        return True

    eventually(check, 90, f"server/api built {image}")
    job = p.get("job", "api-server-bld")
    assert job is not None
    return job


def test_changed_tag_rebuilds_once(builder_platform: Callable[..., BuilderPlatform]) -> None:
    p = builder_platform()
    p.apply(SERVER)
    first = _built(p, "v1")

    # Events about the unchanged build: an annotation, and a restart of the builder (kill -9).
    p.stack.kubectl("annotate", "server", "api", "-n", p.namespace, "example.com/touched=1")
    p.wait_builder_handled("servers", "api")
    p.builder.kill()
    p.builder.start()
    p.stack.kubectl("annotate", "server", "api", "-n", p.namespace, "example.com/touched=2", "--overwrite")
    p.wait_builder_handled("servers", "api")
    same = p.get("job", "api-server-bld")
    assert same is not None
    assert same["metadata"]["uid"] == first["metadata"]["uid"]

    # A new tag: one new Job and a new image.
    p.patch("server", "api", {"spec": {"build": {"git": {"tag": "v2"}}}})
    second = _built(p, "v2")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert (
        f"--destination={p.stack.registry}/local-server-{p.namespace}-api:v2"
        in (second["spec"]["template"]["spec"]["containers"][0]["args"])
    )
    p.wait_builder_handled("servers", "api")
    assert p.builder.logs().count('"build Job created"') == 2, p.builder.logs()
