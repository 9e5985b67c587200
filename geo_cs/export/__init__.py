"""Static exports for reports: print maps, charts, partnership reports, area profiles, PMTiles.

The formats are checked here, before anything heavy is imported, so that a command with a
wrong ``--format`` is told at once.
"""

from __future__ import annotations

from geo_cs.errors import InputError

REPORT_FORMATS = ("pdf", "html", "docx", "odt")


def check_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    """``formats`` if each is one of :data:`REPORT_FORMATS` (and there is one), else an
    :class:`~geo_cs.errors.InputError` naming them."""
    unknown = [f for f in formats if f not in REPORT_FORMATS]
    if unknown or not formats:
        raise InputError(f"--format {','.join(formats)!r}: expected one or more of "
                         f"{', '.join(REPORT_FORMATS)}")
    return formats
