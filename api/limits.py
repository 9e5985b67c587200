"""Size limits of the web service, as one ASGI middleware in front of everything.

* a URL (path and query) longer than ``max_url_kb`` → 414, before any routing or parsing;
* a request body longer than ``max_request_kb`` → 413, whether it declares its length or
  streams it (the service reads no bodies, but a client could still send gigabytes);
* a response longer than ``max_response_mb`` is cut there and logged. The largest legitimate
  responses are streamed GeoJSON/CSV pages (``limit`` ≤ 10,000 features) whose headers are
  already sent when the cap is reached, so the cap is a guard against a runaway response, not
  a status code; ``limit`` and the tile size budget keep real responses far below it.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: it must see the body chunks of
streamed responses, and it adds no task or copy per request.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON

log = logging.getLogger("geo_cs.api")


class _TooLarge(Exception):
    pass


class _ResponseCut(Exception):
    """Raised into the app once its response is cut, so it stops producing the rest."""


class SizeLimits:
    """ASGI middleware enforcing the URL, request body and response size limits."""

    def __init__(self, app: ASGIApp, *, max_url_bytes: int, max_request_bytes: int,
                 max_response_bytes: int) -> None:
        self.app = app
        self.max_url = max_url_bytes
        self.max_request = max_request_bytes
        self.max_response = max_response_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url_bytes > self.max_url:
            await _problem(send, scope, 414, "URI too long",
                           f"the URL is {url_bytes:,} bytes; the service accepts at most {self.max_url:,}")
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_request:
            await _problem(send, scope, 413, "Content too large",
                           f"the request body is {int(declared):,} bytes; the service accepts at "
                           f"most {self.max_request:,}")
            return

        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_request:
                    raise _TooLarge
            return message

        sent = 0
        started = False

        async def capped_send(message: Message) -> None:
            nonlocal sent, started
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if sent + len(body) > self.max_response:
                    log.warning("response to %s cut at the %s-byte limit (GEO_CS_MAX_RESPONSE_MB)",
                                scope["path"], f"{self.max_response:,}")
                    await send({"type": "http.response.body",
                                "body": body[: self.max_response - sent], "more_body": False})
                    raise _ResponseCut
                sent += len(body)
            await send(message)

        try:
            await self.app(scope, counted_receive, capped_send)
        except _ResponseCut:
            return  # the response is complete as far as the client knows; the stream is dropped
        except _TooLarge:
            if not started:
                await _problem(send, scope, 413, "Content too large",
                               f"the request body exceeds {self.max_request:,} bytes")


async def _problem(send: Send, scope: Scope, status: int, title: str, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail,
                       "instance": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_JSON.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
