"""Typed periods: DWP benefit quarters, calendar months, calendar years and index editions.

DWP publishes out-of-work benefit counts for the quarters ending February, May, August and
November; Nomis and Stat-Xplore publish the Claimant Count and Universal Credit *monthly*; an
index such as IMD 2010 is an *edition* whose data refer to an earlier year (2008). Every
observation carries a period id, and the ``periods`` table says what it means.

Period ids (what URLs, tiles and ``--baseline`` use; each kind its own form, so a store can hold
quarterly and monthly series side by side without the quarter May 2010 and the month May 2010
sharing an id):

========  ============  ===================  =========================================
kind      id            label                read from
========  ============  ===================  =========================================
quarter   ``2006-05``   ``May 2006``         ``2006-05``, ``May-06``, ``2006/05/01``…
month     ``2017m10``   ``October 2017``     ``2017-10``, ``2017-10-01``, ``Oct-17``…
year      ``2019``      ``2019``             ``2019``
edition   ``imd2010``   ``IMD 2010 (2008…)`` a spec's ``[period] edition``
rolling   ``2019y12``   ``Jan 2019-Dec 2019``  ``Jan 2019-Dec 2019``; a Nomis ``date`` 2019-12
========  ============  ===================  =========================================

A *rolling year* is the Annual Population Survey's period: twelve months of interviews, published
every quarter (Jan-Dec 2019, Apr 2019-Mar 2020, …), so consecutive periods overlap by nine
months. It is a kind of its own, named by its last month and labelled as Nomis labels it; it is
never read as a quarter or a calendar year (:func:`rolling_year`, :func:`parse_rolling_year`).

A month-and-year text is the same for a quarter and a month, so the *frequency* decides: a
spec's ``[period] frequency = "month"`` (or ``"quarter"``) forces it; otherwise the ingest reads a
whole file as monthly when its periods include months other than February, May, August and
November (:func:`infer_kind`: two such months, or only such months) — a monthly series holds
Feb/May/Aug/Nov too, so one text alone cannot tell; a single odd month among quarters is refused
as a slip ("March 2006 is not a DWP quarter"). :func:`parse_period` on its own, without a
kind, keeps reading month-and-year texts as DWP quarters (and refuses ``2006-03``), except
the month id form ``2017m10``.

Example
-------
>>> p = parse_period("May 2006")
>>> p.period_id, p.kind, p.label, p.start, p.end
('2006-05', 'quarter', 'May 2006', datetime.date(2006, 3, 1), datetime.date(2006, 5, 31))
>>> parse_period("2010/05/01").period_id
'2010-05'
>>> parse_period("2017-10-01", "month").period_id, parse_period("Oct-17", "month").label
('2017m10', 'October 2017')
>>> parse_period("2017-11", "month").period_id
'2017m11'
>>> edition("IMD 2010", data_year=2008).label
'IMD 2010 (2008 data)'
>>> r = parse_rolling_year("Apr 2019-Mar 2020")
>>> r.period_id, r.kind, r.label, r.start, r.end
('2020y03', 'rolling_year', 'Apr 2019-Mar 2020', datetime.date(2019, 4, 1), datetime.date(2020, 3, 31))
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

PeriodKind = Literal["quarter", "month", "year", "edition", "rolling_year"]
PERIOD_KINDS: tuple[str, ...] = ("quarter", "month", "year", "edition", "rolling_year")
#: Spec spellings of a frequency: ``[period] frequency = "monthly"`` means kind ``month``.
_KIND_ALIASES = {"monthly": "month", "quarterly": "quarter", "annual": "year", "yearly": "year",
                 "rolling": "rolling_year", "rolling year": "rolling_year"}

#: DWP quarters are named by their last month.
QUARTER_MONTHS = (2, 5, 8, 11)
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_name) if name})
_MONTHS["sept"] = 9


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
            "(quarters end in February, May, August or November; for a monthly series set "
            "[period] frequency = \"month\" in the spec)"
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


def month(year: int, month_number: int) -> Period:
    """The calendar month ``month_number`` of ``year`` (id ``2017m10``, label ``October 2017``).

    >>> month(2017, 10).start, month(2017, 10).end
    (datetime.date(2017, 10, 1), datetime.date(2017, 10, 31))
    """
    if not 1 <= month_number <= 12:
        raise ValueError(f"month {month_number} of {year} is not a month (1-12)")
    last = calendar.monthrange(year, month_number)[1]
    return Period(
        period_id=f"{year:04d}m{month_number:02d}",
        kind="month",
        label=f"{calendar.month_name[month_number]} {year}",
        start=date(year, month_number, 1),
        end=date(year, month_number, last),
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


def rolling_year(year_end: int, month_end: int) -> Period:
    """The twelve months ending with ``month_end`` of ``year_end`` (id ``2019y12``, label
    ``Jan 2019-Dec 2019``, as Nomis writes the Annual Population Survey's periods).

    >>> rolling_year(2019, 12).label, rolling_year(2020, 3).start
    ('Jan 2019-Dec 2019', datetime.date(2019, 4, 1))
    """
    if not 1 <= month_end <= 12:
        raise ValueError(f"month {month_end} of {year_end} is not a month (1-12)")
    start_year, start_month = divmod(year_end * 12 + month_end - 12, 12)   # 11 months before
    start_month += 1
    last = calendar.monthrange(year_end, month_end)[1]
    label = (f"{calendar.month_abbr[start_month]} {start_year}-"
             f"{calendar.month_abbr[month_end]} {year_end}")
    return Period(
        period_id=f"{year_end:04d}y{month_end:02d}",
        kind="rolling_year",
        label=label,
        start=date(start_year, start_month, 1),
        end=date(year_end, month_end, last),
        data_year=year_end,
    )


_ROLLING = re.compile(r"^([A-Za-z]{3,9})\s+(\d{4})\s*-\s*([A-Za-z]{3,9})\s+(\d{4})$")
_ROLLING_ID = re.compile(r"^(\d{4})y(\d{2})$")


def parse_rolling_year(text: str) -> Period:
    """A rolling year from Nomis's label (``Jan 2019-Dec 2019``), its id (``2019y12``) or the
    last month alone (``2019-12``, the API's ``date``). ValueError when the text is none of
    these or its months do not span twelve months."""
    raw = str(text).strip()
    if match := _ROLLING_ID.match(raw):
        return rolling_year(int(match.group(1)), int(match.group(2)))
    if match := _ROLLING.match(raw):
        first, last = match.group(1).lower(), match.group(3).lower()
        if first not in _MONTHS or last not in _MONTHS:
            raise ValueError(f"{text!r} is not a rolling year (expected e.g. Jan 2019-Dec 2019)")
        p = rolling_year(int(match.group(4)), _MONTHS[last])
        if (p.start.year, p.start.month) != (int(match.group(2)), _MONTHS[first]):
            raise ValueError(f"{text!r} does not span twelve months (expected e.g. Jan 2019-Dec 2019)")
        return p
    month_year = _month_and_year(raw)
    if month_year is None:
        raise ValueError(f"{text!r} is not a rolling year (expected e.g. Jan 2019-Dec 2019 or 2019-12)")
    return rolling_year(*month_year)


def normalise_kind(kind: str | None) -> PeriodKind | None:
    """A spec's ``kind``/``frequency`` as a period kind (``monthly`` → ``month``), or ValueError.

    >>> normalise_kind("monthly"), normalise_kind(None)
    ('month', None)
    """
    if kind is None:
        return None
    text = _KIND_ALIASES.get(str(kind).strip().lower(), str(kind).strip().lower())
    if text not in PERIOD_KINDS:
        raise ValueError(f"frequency {kind!r}: expected month, quarter, year or edition")
    return text  # type: ignore[return-value]


#: How often a kind of period comes: editions and years are both annual, so they may share a
#: series; months and quarters may not be mixed with anything else.
FREQUENCY = {"month": "monthly", "quarter": "quarterly", "year": "annual", "edition": "annual",
             "rolling_year": "rolling annual (published quarterly)"}


_ISO = re.compile(r"^(\d{4})[-/](\d{1,2})(?:[-/](\d{1,2}))?(?:[T ][\d:.]+)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})$")
_MONTH_ID = re.compile(r"^(\d{4})[mM](\d{1,2})$")
_MONTH_YEAR = re.compile(r"^([A-Za-z]+)[\s\-]+(\d{2}|\d{4})$")
_YEAR_MONTH = re.compile(r"^(\d{4})[\s\-]+([A-Za-z]+)$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str, kind: PeriodKind | None = None) -> Period:
    """Parse how DWP, Nomis and Stat-Xplore write periods into a :class:`Period`.

    Accepts ``2006-05``, ``2006-05-01``, ``2010/05/01``, ``200605``, ``May 2006``, ``May-06``,
    ``2006 May`` (quarters or months), ``2017m10`` (a month id) and ``2019`` (a year). ``kind``
    forces the reading (``"month"`` reads ``2017-11`` as November 2017, not the quarter ending
    then); without it a month-and-year is a DWP quarter (see the module doc). Raises
    ``ValueError`` with the reason when the text is not a period.
    """
    raw = text.strip()
    if kind == "rolling_year" or (kind is None and (_ROLLING.match(raw) or _ROLLING_ID.match(raw))):
        return parse_rolling_year(raw)
    if kind == "year" or (kind is None and _YEAR.match(raw)):
        match = _YEAR.match(raw) or _ISO.match(raw)
        if not match:
            raise ValueError(f"{text!r} is not a year (expected e.g. 2019)")
        return year(int(match.group(1)))
    if kind == "edition":
        raise ValueError(f"{text!r}: editions are named by the spec ([period] edition), not read")
    month_year = _month_and_year(raw)
    if month_year is None:
        raise ValueError(
            f"{text!r} is not a period (expected a quarter such as 2006-05 or May 2006, "
            "a month such as 2017-10, 2017-10-01 or Oct-17, or a year such as 2019)"
        )
    y, m = month_year
    if kind == "month" or (kind is None and _MONTH_ID.match(raw)):
        return month(y, m)
    return quarter(y, m)


def infer_kind(texts: Iterable[str]) -> PeriodKind | None:
    """The kind a file's period texts have when no spec forces one: ``month`` when they hold two
    different months that are not DWP quarter months, or only such months (a monthly series has
    Feb/May/Aug/Nov too), else None (each text read as a quarter, a year…).

    >>> infer_kind(["2017-09", "2017-10", "2017-11"]), infer_kind(["2006-05", "2006-08"])
    ('month', None)
    >>> infer_kind(["2006-03", "2006-05", "2006-08"]) is None   # a slip, refused when read
    True
    """
    odd_months, quarter_months = set(), set()
    for text in texts:
        if _MONTH_ID.match(str(text).strip()):
            return "month"
        try:
            p = parse_period(str(text), "month")
        except ValueError:
            continue
        (quarter_months if p.start.month in QUARTER_MONTHS else odd_months).add(p.period_id)
    # one odd month among quarters is more likely a slip in a quarterly file than a monthly
    # series (which has two other months for every quarter month): it is refused, not guessed
    if len(odd_months) >= 2 or (odd_months and not quarter_months):
        return "month"
    return None


def _month_and_year(raw: str) -> tuple[int, int] | None:
    for pattern in (_ISO, _COMPACT, _MONTH_ID):
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


# -- choosing periods of a series (baselines) ----------------------------------------------------

def next_period(p: Period) -> Period:
    """The period after ``p`` for months, quarters and rolling years (published quarterly);
    ValueError for years and editions."""
    if p.kind == "rolling_year":
        y, m = divmod(p.end.year * 12 + p.end.month - 1 + 3, 12)
        return rolling_year(y, m + 1)
    if p.kind == "month":
        y, m = divmod(p.start.year * 12 + p.start.month, 12)
        return month(y, m + 1)
    if p.kind == "quarter":
        y, m = divmod(p.end.year * 12 + p.end.month - 1 + 3, 12)
        return quarter(y, m + 1)
    raise ValueError(f"{p.label}: a {p.kind} has no next period")


def select_periods(text: str | Sequence[str], available: Sequence[Period]) -> tuple[str, ...]:
    """The period ids that ``text`` names in a series whose periods are ``available``.

    ``text`` is comma-separated (or a sequence of) period ids or texts, and ranges ``A..B``
    (inclusive). Each end is read in the series' own frequency, so ``2015-01..2015-12`` is the
    12 months of 2015 in a monthly series and ``2006-05..2007-02`` the four quarters May 2006 -
    February 2007 in a quarterly one. A range of months or quarters names every period between
    its ends, held or not (so a gap in the series shows as a missing baseline period); a range
    of years or editions the held ones between. Raises ``ValueError`` naming the item.

    >>> months = [month(2015, m) for m in range(1, 13)] + [month(2016, 1)]
    >>> select_periods("2015-01..2015-03", months)
    ('2015m01', '2015m02', '2015m03')
    >>> select_periods("2016-01", months)
    ('2016m01',)
    >>> select_periods(["2006-05..2007-02"], [quarter(2006, 5), quarter(2007, 2)])
    ('2006-05', '2006-08', '2006-11', '2007-02')
    """
    items = [text] if isinstance(text, str) else list(text)
    parts = [p.strip() for item in items for p in str(item).split(",") if p.strip()]
    kinds = {p.kind for p in available}
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    by_id = {p.period_id: p for p in available}
    chosen: list[str] = []
    for part in parts:
        if ".." in part:
            first_text, _, last_text = part.partition("..")
            first, last = (_one_period(t, kind, by_id, part) for t in (first_text, last_text))
            if last.start < first.start:
                raise ValueError(f"period range {part!r}: {last.label} is before {first.label}")
            if first.kind in ("month", "quarter", "rolling_year") and first.kind == last.kind:
                p = first
                while p.start <= last.start:
                    chosen.append(p.period_id)
                    p = next_period(p)
            else:
                chosen += [p.period_id for p in sorted(available, key=lambda p: p.start)
                           if first.start <= p.start <= last.start]
        else:
            chosen.append(_one_period(part, kind, by_id, part).period_id)
    if not chosen:
        raise ValueError(f"no periods in {', '.join(parts) or 'an empty list'}")
    return tuple(dict.fromkeys(chosen))


def _one_period(text: str, kind: str | None, by_id: dict[str, Period], item: str) -> Period:
    text = text.strip()
    if text in by_id:
        return by_id[text]
    if kind == "edition":
        raise ValueError(f"period {text!r} (in {item!r}) is not an edition of this series; "
                         f"editions: {', '.join(by_id)}")
    try:
        return parse_period(text, kind)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"period {text!r} (in {item!r}): {exc}") from None
