"""Settings shared by the CLI, the API and scripts (environment variables prefixed ``GEO_CS_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_cs.errors import NotFoundError

if TYPE_CHECKING:  # imported when asked for: settings are read by `geo-cs --help`, pandas is not
    from geo_cs.disclosure import DisclosureControl

_PACKAGE_DIR = Path(__file__).resolve().parent


def boundaries_dir() -> Path:
    """The ``boundaries/`` folder: geography registry, indicator specs, partnerships, demo bundle.

    In a source checkout it sits beside ``geo_cs/``; ``GEO_CS_BOUNDARIES_DIR`` overrides it
    (for an installed wheel, or an organisation's own registry and specs).
    """
    return _boundaries_dir(os.environ.get("GEO_CS_BOUNDARIES_DIR"))


@lru_cache
def _boundaries_dir(configured: str | None) -> Path:
    if configured:
        return Path(configured)
    candidate = _PACKAGE_DIR.parent / "boundaries"
    if (candidate / "registry.yaml").exists():
        return candidate
    raise NotFoundError(
        f"geo-cs cannot find its boundaries/ folder (looked in {candidate}); "
        "install from a checkout (pip install -e .) or set GEO_CS_BOUNDARIES_DIR"
    )


class Settings(BaseSettings):
    """Runtime settings. ``GEO_CS_DB=/data/geo-cs.duckdb geo-cs serve`` points every tool at a store."""

    model_config = SettingsConfigDict(env_prefix="GEO_CS_")

    db: Path = Path("geo-cs.duckdb")
    boundaries_dir: Path | None = None
    #: In-process caches of the web service (per worker): rendered tiles and per-measure values.
    #: Origins allowed to call the service from a browser page of their own (CORS); none by
    #: default. GEO_CS_CORS_ORIGINS='["https://maps.example.gov.uk"]', or '["*"]' for any.
    cors_origins: list[str] = []
    tile_cache_items: int = 20_000
    tile_cache_mb: int = 256
    values_cache_items: int = 256
    values_cache_mb: int = 512
    #: Disclosure control of everything published (API, tiles, maps, exports): counts rounded
    #: to the nearest ``disclosure_round_to``, rates of counts below ``disclosure_min_count``
    #: suppressed (see geo_cs.disclosure). Off by default; GEO_CS_DISCLOSURE_CONTROL=1.
    disclosure_control: bool = False
    disclosure_round_to: int = Field(5, ge=1)
    disclosure_min_count: int = Field(10, ge=0)
    #: Limits of the web service. A request whose body or URL is larger is refused (413/414);
    #: a response stops at max_response_mb (a streamed GeoJSON/CSV then ends early, logged);
    #: a database query running longer than query_timeout_s is interrupted (503).
    max_request_kb: int = Field(64, ge=1)
    max_url_kb: int = Field(8, ge=1)
    max_response_mb: int = Field(512, ge=1)
    query_timeout_s: float = Field(30.0, gt=0)
    #: Memory of the requests one worker answers at once (api.limits.MemoryBudget): each
    #: reserves what it may hold (a page of 10,000 items with geometry about 60 MB, a tile or a
    #: page of the map 1 MB) until its response is sent; one that does not fit waits up to
    #: memory_queue_s for room, then is refused (503 with Retry-After).
    memory_budget_mb: int = Field(512, ge=16)
    memory_queue_s: float = Field(10.0, ge=0)
    #: Key for the service's operations that change its state (POST /admin/…): sent as
    #: "Authorization: Bearer KEY" or "X-API-Key: KEY". Without a key those operations are off.
    api_key: SecretStr | None = None
    #: The service's public address (``https://maps.example.gov.uk/geo-cs``) when it runs
    #: behind a reverse proxy: absolute links in OGC responses and TileJSON are built from it
    #: rather than from the request's Host header. GEO_CS_BASE_URL, or ``serve --base-url``.
    base_url: str | None = Field(None, pattern=r"^https?://[^\s?#]+$")

    def disclosure(self) -> DisclosureControl | None:
        """The disclosure control to apply to published figures, or None when it is off."""
        if not self.disclosure_control:
            return None
        from geo_cs.disclosure import DisclosureControl

        return DisclosureControl(self.disclosure_round_to, self.disclosure_min_count)
