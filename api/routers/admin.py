"""Operations that change the service's state, behind the API key (``GEO_CS_API_KEY``).

The service never writes the database (ingests run through ``geo-cs ingest``, which swaps a new
file in; the server notices within half a second). What an operator may want is to make it look
now and drop its caches. Without a configured key these operations are off (403); with one, a
request must carry it (401 otherwise), compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel

from geo_cs.api import problems

router = APIRouter(prefix="/admin", tags=["admin"], responses=problems.RESPONSES)

_AUTH_RESPONSES = {
    401: {"description": "No API key, or the wrong one"},
    403: {"description": "Admin operations are off (no GEO_CS_API_KEY)"},
}


def require_api_key(
    request: Request,
    authorization: Annotated[str | None, Header(max_length=512)] = None,
    x_api_key: Annotated[str | None, Header(max_length=512)] = None,
) -> None:
    """The request carries the service's API key as ``Authorization: Bearer KEY`` or
    ``X-API-Key: KEY``, compared as bytes: the key's UTF-8 encoding against the header's bytes
    as sent (a key may be any text, ``clé-à-molette`` as much as ``s3cret``)."""
    key = request.app.state.settings.api_key
    if key is None:
        raise HTTPException(403, "admin operations are off: start the service with GEO_CS_API_KEY set")
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        # ASCII blanks only: str.strip() would also take U+00A0 and U+0085, which are the last
        # byte of some UTF-8 characters (à is C3 A0) as they arrive here
        given = authorization[7:].strip(" \t")
    # Starlette decodes header bytes as latin-1 (one character per byte): encoding back gives
    # the bytes the client sent, which for a UTF-8 key are its UTF-8 encoding
    if not given or not hmac.compare_digest(given.encode("latin-1"),
                                            key.get_secret_value().encode("utf-8")):
        raise HTTPException(401, "a valid API key is needed: 'Authorization: Bearer KEY' or "
                                 "'X-API-Key: KEY'", headers={"WWW-Authenticate": "Bearer"})


class Refreshed(BaseModel):
    data_version: int
    tiles_dropped: int
    values_dropped: int


@router.post("/refresh", response_model=Refreshed, responses=_AUTH_RESPONSES,
             dependencies=[Depends(require_api_key)])
def refresh(request: Request) -> Refreshed:
    """Open the database file again if an ingest replaced it, and empty the caches."""
    served = request.app.state.served.current(check_now=True)
    tiles = request.app.state.tile_cache.clear()
    values = request.app.state.values_cache.clear()
    return Refreshed(data_version=served.data_version, tiles_dropped=tiles, values_dropped=values)
