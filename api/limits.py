"""Size limits of the web service, as one ASGI middleware in front of everything.

* a URL (path and query) longer than ``max_url_kb`` → 414, before any routing or parsing;
* a request body longer than ``max_request_kb`` → 413, whether it declares its length or
  streams it (the service reads no bodies, but a client could still send gigabytes);
* a response longer than ``max_response_mb`` is cut there and logged. The largest legitimate
  responses are streamed GeoJSON/CSV pages (``limit`` ≤ 10,000 features) whose headers are
  already sent when the cap is reached, so the cap is a guard against a runaway response, not
  a status code; ``limit`` and the tile size budget keep real responses far below it. A cut
  response is left unfinished (no last part), so the connection closes short of its end and
  the client sees an incomplete download, never a truncated body that looks whole.

And the memory of the requests a worker answers at once (:class:`MemoryBudget`, applied by
:class:`AdmissionControl`): each request reserves an estimate of what it will hold
(:func:`request_cost`) until its response is sent or its client has gone; one that does not fit
waits its turn for up to ``memory_queue_s`` seconds, then is refused with 503 and Retry-After.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: it must see the body chunks of
streamed responses, and it adds no task or copy per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_cs.api import problems
from geo_cs.api.problems import PROBLEM_JSON
from geo_cs.features import DEFAULT_LIMIT, MAX_LIMIT

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
                    # the cut part goes out as a part, never as the last one: the server then
                    # closes the connection short of its Content-Length (or of gzip's and
                    # chunked encoding's ends), so the client knows it was cut (issue 27)
                    await send({"type": "http.response.body",
                                "body": body[: self.max_response - sent], "more_body": True})
                    raise _ResponseCut
                sent += len(body)
            await send(message)

        try:
            await self.app(scope, counted_receive, capped_send)
        except _ResponseCut:
            return  # the response is left unfinished: the connection closes without its end
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


# -- memory: what the requests of a worker hold at once ------------------------------------------

MB = 1_000_000
#: What a request holds at most, by kind (bytes; measured with ``bench/bench_memory.py``: a
#: worker's VmRSS with N pages at once and no budget, the growth divided by N). An item of a
#: GeoJSON page: a page of 10,000 GB LSOAs is 17.8 MB of GeoJSON and held 39-43 MB (48 and 16
#: at once: DuckDB's result, the rows, the text and its gzip); 6 KB an item leaves a margin for
#: larger geometries. The demo's LSOAs, simpler, held 12.6 MB. A CSV row (no geometry): 5.2 MB
#: for 10,000 rows of the demo.
ITEM_BYTES_GEOJSON = 6_000
ITEM_BYTES_CSV = 1_000
#: A map drawn as a PNG (matplotlib): 15.5 MB for Dundee's map; larger partnerships more.
MAP_PNG_BYTES = 32 * MB
#: Any other request: a tile, a map page, a collection, TileJSON (their shared values and
#: tiles are in the caches, which have budgets of their own).
BASE_BYTES = 1 * MB
#: A request of at most this much is never kept waiting behind larger ones in the queue (a tile
#: or a map page need not wait for a 10,000-item download to find room): it needs only room.
SMALL_BYTES = 8 * MB

_ITEMS = re.compile(r"^/collections/[^/]+/items/?$")
_MAP_PNG = re.compile(r"^/maps/[^/]+/map\.png$")


def request_cost(scope: Scope) -> int:
    """The bytes a request may hold while it is answered, estimated from its path and query
    before anything runs: an items page by its ``limit`` (default 1,000) and format, a map PNG,
    and :data:`BASE_BYTES` for anything else. An invalid ``limit`` costs the default (the route
    refuses it anyway)."""
    path = scope.get("path", "")
    if _MAP_PNG.match(path):
        return MAP_PNG_BYTES
    if not _ITEMS.match(path):
        return BASE_BYTES
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        limit = min(max(int(query.get("limit", [""])[-1]), 1), MAX_LIMIT)
    except ValueError:
        limit = DEFAULT_LIMIT
    per_item = ITEM_BYTES_CSV if query.get("f", [""])[-1] == "csv" else ITEM_BYTES_GEOJSON
    return BASE_BYTES + limit * per_item


@dataclass(eq=False)
class _Waiter:
    charge: int
    admitted: asyncio.Future[bool]


@dataclass
class MemoryBudget:
    """A worker's budget of request memory, in bytes, shared by its requests on the event loop.

    Contract: :meth:`reserve` returns True once ``cost`` bytes are reserved, after waiting at
    most ``queue_seconds``; False when they could not be, having reserved nothing. Every True is
    matched by one :meth:`release` of the same cost, and the reservations held never exceed
    ``capacity``. Large requests (over :data:`SMALL_BYTES`) share all but an eighth of it, which
    is kept for small ones (tiles, pages of the map, items pages up to 1,000): those are never
    kept waiting by a burst of downloads. A large request costs at most its share (one larger
    runs alone). Waiting large requests are admitted in the order they came; a small one goes
    ahead as soon as there is room for it. Not thread-safe: every call is made on the event loop
    (the ASGI middleware), so none is interrupted by another.
    """

    capacity: int
    queue_seconds: float
    in_use: int = 0
    #: reservations now held, and requests refused since the start (for logs and tests)
    held: int = 0
    refused: int = 0
    #: seconds a large reservation is held, on average (exponentially weighted): Retry-After
    hold_seconds: float = 1.0
    _large_in_use: int = 0
    #: the waiting requests in the order they came (a dict: one that gives up leaves in O(1))
    _queue: dict[_Waiter, None] = field(default_factory=dict)
    _large_queued: int = 0

    @property
    def large_capacity(self) -> int:
        """What large requests may hold together: all but the eighth kept for small ones."""
        return self.capacity - self.capacity // 8

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def charge(self, cost: int) -> int:
        """What a request of estimated ``cost`` reserves: its cost, at most the share of its kind."""
        return cost if cost <= SMALL_BYTES else min(cost, self.large_capacity)

    def fits(self, charge: int) -> bool:
        if self.in_use + charge > self.capacity:
            return False
        return charge <= SMALL_BYTES or self._large_in_use + charge <= self.large_capacity

    async def reserve(self, cost: int) -> bool:
        charge = self.charge(cost)
        if self.fits(charge) and (charge <= SMALL_BYTES or not self._large_queued):
            self._take(charge)
            return True
        if self.queue_seconds <= 0:
            self.refused += 1
            return False
        waiter = _Waiter(charge, asyncio.get_running_loop().create_future())
        self._queue[waiter] = None
        self._large_queued += charge > SMALL_BYTES
        try:
            await asyncio.wait({waiter.admitted}, timeout=self.queue_seconds)
        except asyncio.CancelledError:   # the server stops, or the task is cancelled
            self._leave(waiter)
            raise
        if waiter.admitted.done():       # admitted by a release (nothing awaited since)
            return True
        self._leave(waiter)
        self.refused += 1
        return False

    def release(self, cost: int, held_seconds: float | None = None) -> None:
        """Give back the reservation of a request of estimated ``cost``, held ``held_seconds``
        (None: never used); admit the waiting requests that now fit."""
        charge = self.charge(cost)
        self.in_use -= charge
        self.held -= 1
        if charge > SMALL_BYTES:
            self._large_in_use -= charge
            if held_seconds is not None:
                self.hold_seconds = 0.8 * self.hold_seconds + 0.2 * held_seconds
        self._admit_waiting()

    def retry_after(self, cost: int) -> int:
        """Seconds until a request of ``cost`` would likely find room: the large requests'
        share drains about once per :attr:`hold_seconds`, what is held and queued ahead first
        (1 to 60)."""
        ahead = self._large_in_use + sum(w.charge for w in self._queue) + self.charge(cost)
        return max(1, min(60, math.ceil(self.hold_seconds * ahead / self.large_capacity)))

    def _take(self, charge: int) -> None:
        self.in_use += charge
        self.held += 1
        if charge > SMALL_BYTES:
            self._large_in_use += charge

    def _leave(self, waiter: _Waiter) -> None:
        """Take ``waiter`` out of the queue; if it had been admitted meanwhile, give its
        reservation back. Either way, those behind it may now fit."""
        if waiter.admitted.done() and not waiter.admitted.cancelled():
            self.release(waiter.charge)
            return
        waiter.admitted.cancel()
        self._dequeue(waiter)
        self._admit_waiting()

    def _dequeue(self, waiter: _Waiter) -> None:
        if self._queue.pop(waiter, False) is None:
            self._large_queued -= waiter.charge > SMALL_BYTES

    def _admit_waiting(self) -> None:
        # Large requests first come, first served: the first waits for room rather than be
        # overtaken by those behind it (a 10,000-item page is never starved by smaller pages).
        # Small ones whenever they fit.
        # The scan stops where nothing more can be admitted: a queue of thousands costs a
        # release a look at its head, not a walk through it.
        large_blocked = False
        for waiter in list(self._queue):
            if self.capacity - self.in_use < BASE_BYTES or (
                    large_blocked and len(self._queue) == self._large_queued):
                break
            small = waiter.charge <= SMALL_BYTES
            if (small or not large_blocked) and self.fits(waiter.charge):
                self._dequeue(waiter)
                self._take(waiter.charge)
                waiter.admitted.set_result(True)
            elif not small:
                large_blocked = True


class AdmissionControl:
    """ASGI middleware admitting each HTTP request within the worker's :class:`MemoryBudget`.

    A request reserves :func:`request_cost` before it reaches the application and releases it
    when the application has returned: its response sent to the end, cut, or abandoned by a
    client that went away (Starlette ends a stream on disconnect). One refused gets a 503
    problem (a page to a person's browser on a map page) with ``Retry-After``.
    """

    def __init__(self, app: ASGIApp, *, budget: MemoryBudget) -> None:
        self.app = app
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cost = request_cost(scope)
        asked = time.monotonic()
        if not await self.budget.reserve(cost):
            await self._refuse(scope, receive, send, cost, time.monotonic() - asked)
            return
        admitted = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.budget.release(cost, time.monotonic() - admitted)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, cost: int,
                      waited: float) -> None:
        budget = self.budget
        retry = budget.retry_after(cost)
        log.warning("busy: refused %s (needs %.0f MB; %.0f of %.0f MB reserved by %d requests, "
                    "%d waiting)", scope["path"], cost / MB, budget.in_use / MB,
                    budget.capacity / MB, budget.held, budget.waiting)
        items = bool(_ITEMS.match(scope["path"]))
        detail = (f"The service is answering as many requests as its memory allows. Try again in "
                  f"{retry} second{'s' if retry != 1 else ''}"
                  + (", or ask for fewer items at a time (a smaller limit)." if items else "."))
        response = problems.problem(
            503, detail, Request(scope), title="Busy: please try again shortly",
            setting="GEO_CS_MEMORY_BUDGET_MB", budget_mb=round(budget.capacity / MB),
            reserved_mb=round(budget.in_use / MB), request_mb=round(budget.charge(cost) / MB),
            waited_s=round(waited, 1), retry_after_s=retry)
        response.headers["Retry-After"] = str(retry)
        await response(scope, receive, send)
