"""Security headers on every HTML response, as one pure ASGI middleware.

A page of the service (the partnership index, a map, an error page) may show names that came
from data files: they are escaped where they are written, and the Content-Security-Policy
(:data:`maps.CONTENT_SECURITY_POLICY_HEADER`) makes sure that if one ever were not, no script
of its own could run — the pages hold no inline script, so the policy forbids all of it.
``nosniff`` stops a browser from reading a CSV or GeoJSON body as HTML.

Pure ASGI (like :mod:`api.limits`): it only rewrites the response's start message.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maps import CONTENT_SECURITY_POLICY_HEADER


class SecurityHeaders:
    """Adds ``Content-Security-Policy`` to HTML responses and ``X-Content-Type-Options:
    nosniff`` to every response."""

    def __init__(self, app: ASGIApp, policy: str = CONTENT_SECURITY_POLICY_HEADER,
                 exempt: tuple[str, ...] = ("/docs", "/redoc")) -> None:
        self.app = app
        self.policy = policy
        # FastAPI's own documentation pages start Swagger UI / ReDoc with an inline script
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if (headers.get("content-type", "").startswith("text/html")
                        and not scope["path"].startswith(self.exempt)):
                    headers.setdefault("Content-Security-Policy", self.policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)
