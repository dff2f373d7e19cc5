"""Pure-ASGI limits on request size: the headers, the declared Content-Length, and the body bytes that arrive."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import HeadersTooLarge, InputError, PayloadTooLarge
from ..web.errors import input_error_response

# uvicorn's httptools parser buffers headers of any size; nginx's default allows 4 x 8 KiB. The API needs ~3 KiB.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_FIELDS = 100


class BodySizeLimit:
    """Answer 431 before the app runs when the headers are over their limits, 413 when Content-Length is.

    A chunked body declares no length, so the bytes are counted as the app reads them, and the
    read that crosses the limit raises ``PayloadTooLarge`` (the error table turns it into 413).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal: InputError | None = _oversized_headers(scope["headers"])
        declared = _content_length(Headers(scope=scope))
        if refusal is None and declared is not None and declared > self.max_bytes:
            refusal = self._too_large()
        if refusal is not None:
            await input_error_response(refusal)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge("body", f"the body must be at most {self.max_bytes} bytes")


def _oversized_headers(raw: list[tuple[bytes, bytes]]) -> HeadersTooLarge | None:
    size = sum(len(name) + len(value) + 4 for name, value in raw)  # ": " and CRLF, as on the wire
    if len(raw) > MAX_HEADER_FIELDS or size > MAX_HEADER_BYTES:
        return HeadersTooLarge(
            "headers", f"the headers must be at most {MAX_HEADER_BYTES} bytes in {MAX_HEADER_FIELDS} fields"
        )
    return None


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)
