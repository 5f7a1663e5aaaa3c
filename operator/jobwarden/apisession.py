"""One aiohttp session to the API server, and what its non-2xx answers mean.

aiohttp (which kopf brings) carries the informers' streams rather than the
kubernetes client's ``ApiClient``: that client is synchronous, so each open
watch would hold a thread for as long as it streams, one per resource and
namespace. The credentials and TLS settings still come from the client's
``Configuration``, so a bearer token it refreshes is refreshed here too.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
from kubernetes import client


class Gone(Exception):
    """410: the resourceVersion is older than the API server keeps; relist.

    For an expired continue token the API server also sends one that reads
    the rest of the listing as of now (``resume``): see ``Informer._cycle``.
    """

    def __init__(self, message: str, *, resume: str = "") -> None:
        super().__init__(message)
        self.resume = resume


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Connection:
    """One aiohttp session to the API server, with the kubernetes client's credentials."""

    def __init__(self, configuration: client.Configuration, *, user_agent: str = "") -> None:
        self._config = configuration
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        cfg = self._config
        if not cfg.host.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file)
        if not cfg.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _headers(self) -> dict[str, str]:
        # auth_settings() asks the client's refresh hook first: rotated tokens apply.
        headers = {"Accept": "application/json"}
        if self._user_agent:
            headers["User-Agent"] = self._user_agent
        settings: Mapping[str, Any] = self._config.auth_settings()
        for auth in settings.values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[str(auth["key"])] = str(auth["value"])
        return headers

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def get(
        self, path: str, query: Mapping[str, str], *, read_timeout: float
    ) -> aiohttp.ClientResponse:
        """An open response to ``GET path?query``; raises ``Gone`` or ``ApiError`` for non-2xx."""
        url = f"{self._config.host}{path}?{urlencode(query)}"
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=read_timeout)
        response = await self.session().get(url, headers=self._headers(), timeout=timeout)
        if response.status == 200:
            return response
        text = await response.text()
        response.release()
        if response.status == 410:
            raise Gone(text[:200], resume=_continue_of(text))
        raise ApiError(response.status, text[:500])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _continue_of(text: str) -> str:
    """The ``metadata.continue`` of a Status body, if it has one."""
    try:
        status = json.loads(text)
        token = status["metadata"]["continue"]
    except (ValueError, RecursionError, KeyError, TypeError):
        return ""
    return token if isinstance(token, str) else ""
