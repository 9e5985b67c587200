"""The geo-cs web API: an application factory over a read-only store.

Routers stay thin: they parse requests and format responses; the work is in ``geo_cs``.
Later issues add OGC API Features, vector tiles and the web map as routers here.

    uvicorn api.app:create_app --factory
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

import geo_cs
from geo_cs.config import Settings
from geo_cs.demo import OGL_ATTRIBUTION
from geo_cs.store import Store


class Health(BaseModel):
    status: str
    version: str
    database: str
    data_version: int
    areas: int
    attribution: str


def get_store(request: Request) -> Iterator[Store]:
    """A read-only cursor on the app's store for one request (DuckDB cursors are thread-safe)."""
    store: Store = request.app.state.store
    cursor = Store(store.con.cursor(), store.path, read_only=True)
    try:
        yield cursor
    finally:
        cursor.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application for the store named in ``settings`` (default: env)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.store = Store.open(settings.db, read_only=True)
        try:
            yield
        finally:
            app.state.store.close()

    app = FastAPI(
        title="geo-cs",
        version=geo_cs.__version__,
        description="Worklessness analysis and mapping for local employment partnerships.",
        lifespan=lifespan,
    )

    @app.get("/health", response_model=Health, tags=["service"])
    def health(store: Annotated[Store, Depends(get_store)]) -> Health:
        """Whether the service is up, which database it serves and its data version."""
        return Health(
            status="ok",
            version=geo_cs.__version__,
            database=str(settings.db),
            data_version=store.data_version(),
            areas=store.sql("SELECT count(*) FROM areas").fetchone()[0],
            attribution=OGL_ATTRIBUTION,
        )

    return app
