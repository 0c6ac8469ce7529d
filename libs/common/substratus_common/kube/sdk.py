"""The parts of kubernetes_asyncio the client uses, imported without its package ``__init__``s.

``import kubernetes_asyncio`` (or ``kubernetes_asyncio.client``) imports every API group and about
800 generated model classes: some 70 MiB and over a second of CPU in every process, for classes
this project never uses. Our client sends and decodes plain dicts through ``ApiClient.call_api``
(``_preload_content=False``) and needs only the ``ApiClient``, its ``Configuration``, the REST layer,
``ApiException`` and the kubeconfig and in-cluster loaders.

So the two packages, and ``kubernetes_asyncio.client.models`` (which ``api_client`` imports only to
deserialize into model classes, which we never ask it to do), are registered as bare packages
(their ``__path__`` only) before those modules are imported. Where the whole library was imported
already (a tool, a test), that is used as it is. The names this module exports are the library's
own classes and functions either way.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types

TOP = "kubernetes_asyncio"


def _bare(name: str, path: str) -> types.ModuleType:
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [path]
    module = importlib.util.module_from_spec(spec)
    module.__path__ = [path]
    sys.modules[name] = module
    return module


def _register_bare_packages() -> None:
    if f"{TOP}.client" in sys.modules:
        return  # imported whole (or registered) already
    found = importlib.util.find_spec(TOP)  # finds the package without running its __init__
    if found is None or not found.submodule_search_locations:
        raise ImportError(f"{TOP} is not installed")
    top_path = next(iter(found.submodule_search_locations))
    top = sys.modules.get(TOP) or _bare(TOP, top_path)
    client_package = _bare(f"{TOP}.client", os.path.join(top_path, "client"))
    models = _bare(f"{TOP}.client.models", os.path.join(top_path, "client", "models"))
    top.client = client_package  # type: ignore[attr-defined]
    client_package.models = models  # type: ignore[attr-defined]


_register_bare_packages()

from kubernetes_asyncio.client.api_client import ApiClient  # noqa: E402
from kubernetes_asyncio.client.configuration import Configuration  # noqa: E402
from kubernetes_asyncio.client.exceptions import ApiException  # noqa: E402

_client_package = sys.modules[f"{TOP}.client"]
for _name, _value in (("ApiClient", ApiClient), ("Configuration", Configuration), ("ApiException", ApiException)):
    if not hasattr(_client_package, _name):
        setattr(_client_package, _name, _value)  # what kube_config imports from the package

from kubernetes_asyncio.config.incluster_config import load_incluster_config  # noqa: E402
from kubernetes_asyncio.config.kube_config import load_kube_config  # noqa: E402

__all__ = ["ApiClient", "ApiException", "Configuration", "load_incluster_config", "load_kube_config"]
