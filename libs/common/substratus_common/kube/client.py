"""The one async Kubernetes client of every service (kubernetes_asyncio underneath).

Objects are plain dicts as the API server sends them. Writes are server-side apply with a field
manager, so they are idempotent and conflict-safe; status goes through the ``/status``
subresource. Transport and API errors are translated once, here, into ``kube.errors``.
"""

from __future__ import annotations

import asyncio
import os
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from substratus_common.kube import errors, sdk
from substratus_common.kube.resources import ResourceType
from substratus_common.kube.sdk import ApiException

Object = dict[str, Any]

HTTP_CREATED = 201
APPLY = "application/apply-patch+yaml"  # the client sends the body as JSON, which is valid YAML
MERGE = "application/merge-patch+json"


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: Object


@dataclass(frozen=True)
class ObjectList:
    items: list[Object]
    resource_version: str


class Kube:
    """An async Kubernetes API client. Create with :func:`connect`; close with :meth:`close`."""

    def __init__(self, api: sdk.ApiClient, request_timeout: float = 30.0) -> None:
        self._api = api
        self._timeout = request_timeout

    async def close(self) -> None:
        await self._api.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> Object:
        return (await self._request(method, path, query=query, body=body, content_type=content_type))[1]

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> tuple[int, Object]:
        """(HTTP status, answer) of one request; errors translated."""
        headers = {"Accept": "application/json", "Content-Type": content_type or "application/json"}
        try:
            response = await self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=self._timeout,
            )
            try:
                data = await response.read()
            finally:
                response.release()
        except ApiException as error:
            raise errors.from_api_exception(error) from error
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise errors.APIUnavailable(f"{method} {path}: {error!r}") from error
        if not 200 <= response.status < 300:
            retry_after = response.headers.get("Retry-After") if response.headers else None
            raise errors.from_http(response.status, str(response.reason), data, retry_after=retry_after)
        result: Object = _decode(data) if data else {}
        return response.status, result

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Object | None:
        """The object, or None when it does not exist."""
        try:
            return await self._call("GET", rt.path(namespace, name))
        except errors.NotFound:
            return None

    async def list(
        self, rt: ResourceType, namespace: str | None = None, *, label_selector: str | None = None, limit: int = 500
    ) -> ObjectList:
        """Every object of a type (paginated underneath), with the list's resourceVersion to watch from."""
        items: list[Object] = []
        resource_version = ""
        async for page in self.pages(rt, namespace, label_selector=label_selector, limit=limit):
            items.extend(page.items)
            resource_version = page.resource_version
        return ObjectList(items, resource_version)

    async def pages(
        self, rt: ResourceType, namespace: str | None = None, *, label_selector: str | None = None, limit: int = 500
    ) -> AsyncIterator[ObjectList]:
        """Every object of a type, ``limit`` at a time, each page with the list's resourceVersion:
        for a reader that need not hold the whole list at once (10,000 Pods as dicts are some
        hundreds of MiB)."""
        cont = ""
        while True:
            query = [("limit", str(limit))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if cont:
                query.append(("continue", cont))
            page = await self._call("GET", rt.path(namespace), query=query)
            items: list[Object] = []
            for item in page.get("items", []):
                # List items lack kind/apiVersion; put them back so items look like watched objects.
                item.setdefault("kind", rt.kind)
                item.setdefault("apiVersion", rt.api_version)
                items.append(item)
            meta = page.get("metadata", {})
            yield ObjectList(items, str(meta.get("resourceVersion", "")))
            cont = meta.get("continue", "")
            if not cont:
                return

    async def apply(
        self, obj: Object, field_manager: str, *, force: bool = True, subresource: str | None = None
    ) -> Object:
        """Server-side apply ``obj`` (must carry apiVersion, kind, metadata.name[, namespace])."""
        return (await self._apply(obj, field_manager, force=force, subresource=subresource))[1]

    async def apply_child(self, obj: Object, field_manager: str) -> tuple[Object, bool]:
        """Server-side apply (forced); the object and whether this apply created it (201), which
        replicas racing on one child can tell apart only this way."""
        status, answer = await self._apply(obj, field_manager, force=True)
        return answer, status == HTTP_CREATED

    async def _apply(
        self, obj: Object, field_manager: str, *, force: bool, subresource: str | None = None
    ) -> tuple[int, Object]:
        meta = obj.get("metadata", {})
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        path = _type_of(obj).path(meta.get("namespace"), meta["name"], subresource)
        return await self._request("PATCH", path, query=query, body=obj, content_type=APPLY)

    async def apply_status(self, obj: Object, field_manager: str) -> Object:
        """Server-side apply to the ``/status`` subresource: only ``status`` fields are written."""
        return await self.apply(obj, field_manager, subresource="status")

    async def patch(
        self, rt: ResourceType, namespace: str | None, name: str, patch: Object, *, subresource: str | None = None
    ) -> Object:
        return await self._call("PATCH", rt.path(namespace, name, subresource), body=patch, content_type=MERGE)

    async def create(self, obj: Object, field_manager: str | None = None) -> Object:
        """Create; ``errors.Conflict`` (409 AlreadyExists) when an object of that name exists."""
        rt = _type_of(obj)
        query = [("fieldManager", field_manager)] if field_manager else None
        return await self._call("POST", rt.path(obj.get("metadata", {}).get("namespace")), body=obj, query=query)

    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        """Delete; False when it was already gone. With ``uid``, only that object: if the name now
        belongs to another object (it was replaced meanwhile) the API answers Conflict."""
        body: Object = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self._call("DELETE", rt.path(namespace, name), body=body)
        except errors.NotFound:
            return False
        return True

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
        stall_after: float = 90.0,
    ) -> AsyncIterator[WatchEvent]:
        """Watch from ``resource_version`` with bookmarks until the server ends the stream.

        Raises ``errors.Gone`` when that version is too old (list again), ``errors.WatchStalled``
        when nothing, not even a bookmark, arrived for ``stall_after`` seconds.
        """
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        try:
            response = await self._api.call_api(
                rt.path(namespace),
                "GET",
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
            )
        except ApiException as error:
            raise errors.from_api_exception(error) from error
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise errors.APIUnavailable(f"watch {rt.plural}: {error!r}") from error
        if not 200 <= response.status < 300:
            body = await response.read()
            response.release()
            raise errors.from_http(response.status, str(response.reason), body)
        try:
            while True:
                try:
                    line = await asyncio.wait_for(response.content.readline(), stall_after)
                except TimeoutError:
                    # A half-open connection: close it rather than hand it back to the pool, where
                    # the next request would stall on it too.
                    response.close()
                    raise errors.WatchStalled(f"watch {rt.plural}: silent for {stall_after:.0f}s") from None
                except aiohttp.ClientError as error:
                    raise errors.APIUnavailable(f"watch {rt.plural}: {error!r}") from error
                if not line:
                    return  # the server closed the stream (timeoutSeconds): the caller watches again
                event = _decode(line)
                obj = event.get("object", {})
                if event.get("type") == "ERROR":
                    raise errors.from_status(obj)
                yield WatchEvent(str(event.get("type")), obj)
        finally:
            response.release()


def _type_of(obj: Object) -> ResourceType:
    from substratus_common.kube import resources

    return resources.of(obj)


async def connect(kubeconfig: str | None = None, *, qps_connections: int = 64) -> Kube:
    """A client from ``kubeconfig`` (or ``$KUBECONFIG``), or the in-cluster service account."""
    configuration = sdk.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        await sdk.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        sdk.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = qps_connections
    api = sdk.ApiClient(configuration)
    _no_proxy_lookups(api)
    return Kube(api)


def _decode(data: bytes) -> Any:
    """JSON as the API server sends it, decoded by msgspec (a watch line or a reply body)."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as error:
        raise errors.APIUnavailable(f"the API server sent something that is not JSON: {error}") from error


def _no_proxy_lookups(api: sdk.ApiClient) -> None:
    """kubernetes_asyncio's session trusts the environment, so aiohttp looks up proxy variables and
    reads ``~/.netrc`` in a thread on every request (a tenth of a service's CPU in a burst). With no
    proxy variable set there is nothing to find: the session is replaced by one that does not
    look. With one set, the environment is still honoured (as client-go does), and a kubeconfig's
    ``proxy-url`` is passed with each request either way."""
    if any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies_environment()):
        return
    rest = api.rest_client
    session: aiohttp.ClientSession = rest.pool_manager
    connector = session.connector
    session.detach()  # the connector (TLS settings, pool size) moves to the new session
    rest.pool_manager = aiohttp.ClientSession(connector=connector, trust_env=False, read_bufsize=2**21)
