"""Settings shared by the CLI, the API and scripts (environment variables prefixed ``GEO_CS_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

_PACKAGE_DIR = Path(__file__).resolve().parent


def boundaries_dir() -> Path:
    """The ``boundaries/`` folder: geography registry, indicator specs, partnerships, demo bundle.

    In a source checkout it sits beside ``geo_cs/``; in an installed wheel it is packaged as
    ``geo_cs/_boundaries``. ``GEO_CS_BOUNDARIES_DIR`` overrides both.
    """
    configured = Settings().boundaries_dir
    if configured is not None:
        return configured
    for candidate in (_PACKAGE_DIR.parent / "boundaries", _PACKAGE_DIR / "_boundaries"):
        if (candidate / "registry.yaml").exists():
            return candidate
    raise FileNotFoundError("geo-cs cannot find its boundaries/ folder (set GEO_CS_BOUNDARIES_DIR)")


class Settings(BaseSettings):
    """Runtime settings. ``GEO_CS_DB=/data/geo-cs.duckdb geo-cs serve`` points every tool at a store."""

    model_config = SettingsConfigDict(env_prefix="GEO_CS_")

    db: Path = Path("geo-cs.duckdb")
    boundaries_dir: Path | None = None


@lru_cache
def default_settings() -> Settings:
    return Settings()
