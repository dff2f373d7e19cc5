"""``ReadingAiohttpTransport``: httpx over aiohttp's pool, the answer read whole before httpx sees it.

Every request not marked for the SSRF guard goes this way: PostgREST, Realtime's REST calls, OpenAI,
Telegram. All of them read their answers whole anyway; reading it here, in one call to aiohttp, spares
each response the chain of async generators that streaming it through httpx costs (httpx's
``aiter_bytes`` over ``aiter_raw`` over aiohttp's ``iter_chunked``). The URL, already encoded by httpx,
and the headers, as httpx holds them, are handed to aiohttp as they are, not parsed and merged again.
"""

from __future__ import annotations

import httpx
from aiohttp import ClientSession, ClientTimeout
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from yarl import URL


class ReadingAiohttpTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.proxy is not None:  # not used here: the library's own path
            return await super().handle_async_request(request)
        if not isinstance(self.client, ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        body: bytes | httpx.AsyncByteStream | None
        try:
            body = request.content or None
        except httpx.RequestNotRead:
            body = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)  # aiohttp frames the body itself
        with map_aiohttp_exceptions():
            async with self.client.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, as it does for its own transports
                compress=False,
                timeout=ClientTimeout(
                    sock_connect=timeout.get("connect"), sock_read=timeout.get("read"), connect=timeout.get("pool")
                ),
                server_hostname=request.extensions.get("sni_hostname"),
            ) as response:
                content = await response.read()
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=httpx.ByteStream(content),  # as a transport answers: httpx decodes it and adds no headers
            request=request,
            extensions=extensions,
        )
