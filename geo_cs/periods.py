"""Typed periods: DWP benefit quarters, calendar years and index editions.

DWP publishes out-of-work benefit counts for the quarters ending February, May, August and
November; an index such as IMD 2010 is an *edition* whose data refer to an earlier year (2008).
Every observation carries a period id, and the ``periods`` table says what it means.

Example
-------
>>> p = parse_period("May 2006")
>>> p.period_id, p.kind, p.label, p.start, p.end
('2006-05', 'quarter', 'May 2006', datetime.date(2006, 3, 1), datetime.date(2006, 5, 31))
>>> parse_period("2010/05/01").period_id
'2010-05'
>>> edition("IMD 2010", data_year=2008).label
'IMD 2010 (2008 data)'
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

PeriodKind = Literal["quarter", "year", "edition"]

#: DWP quarters are named by their last month.
QUARTER_MONTHS = (2, 5, 8, 11)
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_name) if name})


@dataclass(frozen=True, order=True)
class Period:
    period_id: str
    kind: PeriodKind
    label: str
    start: date
    end: date
    data_year: int


def quarter(year: int, month: int) -> Period:
    """The DWP quarter ending in ``month`` of ``year`` (month one of 2, 5, 8, 11)."""
    if month not in QUARTER_MONTHS:
        raise ValueError(
            f"{calendar.month_name[month]} {year} is not a DWP quarter "
            "(quarters end in February, May, August or November)"
        )
    start_month = month - 2
    start_year = year
    if start_month < 1:
        start_month += 12
        start_year -= 1
    last = calendar.monthrange(year, month)[1]
    return Period(
        period_id=f"{year:04d}-{month:02d}",
        kind="quarter",
        label=f"{calendar.month_name[month]} {year}",
        start=date(start_year, start_month, 1),
        end=date(year, month, last),
        data_year=year,
    )


def year(value: int) -> Period:
    return Period(str(value), "year", str(value), date(value, 1, 1), date(value, 12, 31), value)


def edition(name: str, data_year: int) -> Period:
    """An index edition (``IMD 2010``) whose data refer to ``data_year`` (2008)."""
    period_id = re.sub(r"[^a-z0-9]+", "", name.lower())
    return Period(
        period_id=period_id,
        kind="edition",
        label=f"{name} ({data_year} data)",
        start=date(data_year, 1, 1),
        end=date(data_year, 12, 31),
        data_year=data_year,
    )


_ISO = re.compile(r"^(\d{4})[-/](\d{1,2})(?:[-/](\d{1,2}))?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})$")
_MONTH_YEAR = re.compile(r"^([A-Za-z]+)[\s\-]+(\d{2}|\d{4})$")
_YEAR_MONTH = re.compile(r"^(\d{4})[\s\-]+([A-Za-z]+)$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str, kind: PeriodKind | None = None) -> Period:
    """Parse how DWP, Nomis and Stat-Xplore write periods into a :class:`Period`.

    Accepts ``2006-05``, ``2006-05-01``, ``2010/05/01``, ``200605``, ``May 2006``, ``May-06``,
    ``2006 May`` (quarters) and ``2019`` (a year). ``kind`` forces the reading. Raises
    ``ValueError`` with the reason when the text is not a period.
    """
    raw = text.strip()
    if kind == "year" or (kind is None and _YEAR.match(raw)):
        match = _YEAR.match(raw) or _ISO.match(raw)
        if not match:
            raise ValueError(f"{text!r} is not a year (expected e.g. 2019)")
        return year(int(match.group(1)))
    month_year = _month_and_year(raw)
    if month_year is None:
        raise ValueError(
            f"{text!r} is not a period (expected a quarter such as 2006-05 or May 2006, "
            "or a year such as 2019)"
        )
    y, m = month_year
    return quarter(y, m)


def _month_and_year(raw: str) -> tuple[int, int] | None:
    for pattern in (_ISO, _COMPACT):
        match = pattern.match(raw)
        if match:
            y, m = int(match.group(1)), int(match.group(2))
            return (y, m) if 1 <= m <= 12 else None
    match = _MONTH_YEAR.match(raw)
    if match and match.group(1).lower() in _MONTHS:
        y = int(match.group(2))
        if y < 100:  # Stat-Xplore's "May-06"
            y += 2000 if y < 70 else 1900
        return y, _MONTHS[match.group(1).lower()]
    match = _YEAR_MONTH.match(raw)
    if match and match.group(2).lower() in _MONTHS:
        return int(match.group(1)), _MONTHS[match.group(2).lower()]
    return None
