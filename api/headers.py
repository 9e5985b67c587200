"""Security headers on every HTML response, as one pure ASGI middleware.

A page of the service (the partnership index, a map, an error page) may show names that came
from data files: they are escaped where they are written, and the Content-Security-Policy
(:data:`geo_cs.maps.CONTENT_SECURITY_POLICY_HEADER`) makes sure that if one ever were not, no script
of its own could run — the pages hold no inline script, so the policy forbids all of it.
``nosniff`` stops a browser from reading a CSV or GeoJSON body as HTML.

Framing: every page may be shown in a frame by the service's own pages only (``frame-ancestors
'self'``), except the embed view of a map (``/maps/{partnership}/embed``), which the origins of
``GEO_CS_FRAME_ANCESTORS`` may frame too (:func:`embed_policy`, :data:`EMBED_PATH`). No ``X-Frame-Options`` is
sent: it cannot name another origin, and ``frame-ancestors`` supersedes it in every browser
that reads CSP.

Pure ASGI (like :mod:`geo_cs.api.limits`): it only rewrites the response's start message.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_cs.maps import CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_HEADER


def embed_policy(frame_ancestors: list[str]) -> str:
    """The Content-Security-Policy of a map's embed view: the pages' own policy, framed by the
    service's own pages and the ``frame_ancestors`` origins (``Settings.frame_ancestors``,
    checked to be origins when the settings were read: nothing else reaches the header).

    >>> embed_policy([]).endswith("; frame-ancestors 'self'")
    True
    >>> embed_policy(["https://intranet.example.gov.uk"]).rpartition("; ")[2]
    "frame-ancestors 'self' https://intranet.example.gov.uk"
    """
    return "; ".join([CONTENT_SECURITY_POLICY, " ".join(["frame-ancestors 'self'", *frame_ancestors])])


#: The embed view of a map (``api.routers.maps.partnership_embed``), its error pages included:
#: an iframe showing an error page says what went wrong rather than being refused.
EMBED_PATH = re.compile(r"/maps/[^/]+/embed$")


class SecurityHeaders:
    """Adds ``Content-Security-Policy`` to HTML responses and ``X-Content-Type-Options:
    nosniff`` to every response. The embed view's pages take ``embed_policy``
    (:func:`embed_policy`) instead of ``policy``."""

    def __init__(self, app: ASGIApp, policy: str = CONTENT_SECURITY_POLICY_HEADER,
                 embed_policy: str = CONTENT_SECURITY_POLICY_HEADER) -> None:
        self.app = app
        self.policy = policy
        self.embed_policy = embed_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        policy = self.embed_policy if EMBED_PATH.search(scope["path"]) else self.policy

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", policy)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeadLikeGet:
    """Answers ``HEAD`` wherever ``GET`` is answered (RFC 9110 §9.3.2): the same status and
    headers, no body. GDAL's ``/vsicurl/`` and link checkers ask HEAD first; FastAPI's GET
    routes alone answer it 405.

    A streamed response (GeoJSON and CSV pages) has no length until it is written, and
    ``/vsicurl/`` needs one: for HEAD the body is produced, counted and dropped, so the
    ``Content-Length`` is the one a GET sends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        start: dict = {}
        length = 0

        async def count_body(message: Message) -> None:
            nonlocal length
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] == "http.response.body":
                length += len(message.get("body", b""))
                if message.get("more_body", False):
                    return
                headers = MutableHeaders(scope=start)
                if "content-length" not in headers:
                    headers["content-length"] = str(length)
                await send(start)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, count_body)
