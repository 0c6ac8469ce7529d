"""The API client reads proxy settings from the environment only when one is set (no stack).

kubernetes_asyncio's session trusts the environment, which makes aiohttp look up proxy variables
and read ``~/.netrc`` in a thread on every request; with none set the client's session does not.
"""

from __future__ import annotations

import pytest

from substratus_common.kube import client, sdk


@pytest.mark.parametrize(("variable", "trusted"), [(None, False), ("HTTPS_PROXY", True), ("http_proxy", True)])
async def test_the_environment_is_read_only_when_a_proxy_is_set(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, trusted: bool
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    if variable is not None:
        monkeypatch.setenv(variable, "http://127.0.0.1:3128")
    configuration = sdk.Configuration()
    configuration.connection_pool_maxsize = 7
    api = sdk.ApiClient(configuration)
    try:
        client._no_proxy_lookups(api)
        session = api.rest_client.pool_manager
        assert session.trust_env is trusted
        assert session.connector is not None
        assert session.connector.limit == 7  # the pool is kept
    finally:
        await api.close()
