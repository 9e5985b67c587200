"""Ingest of area statistics: long tables, Nomis bulk CSVs, Stat-Xplore tables and wide files.

Each source is described by a small declarative spec (TOML, in ``boundaries/sources/``) that
maps its columns to measures; every layout is first turned into one long table of text cells
with their file row and column, and then validated the same way: suppression markers become NULL
and are counted; negative counts, rates out of range, unknown area codes and duplicate
(area, period, measure) rows are errors that name the file, row, column and value. The write is
one transaction, so a failed ingest leaves the store exactly as it was.

Example
-------
>>> from geo_cs.store import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest import ingest_indicator, ingest_lookup, load_spec
>>> demo = boundaries_dir() / "demo"
>>> store = Store.open(":memory:")
>>> _ = ingest_lookup(store, demo / "lookups" / "dz11_iz11_lad20_scotland.csv")   # the zones' codes
>>> spec = load_spec("simd2016")
>>> report = ingest_indicator(store, demo / "indicators" / "simd2016_scotland_dz11_indicators.csv", spec)
>>> print("\\n".join(report.lines()[1:]))
  simd2016.employment_deprived: 1,535
  simd2016.employment_rate: 1,535
  simd2016.working_age_population: 1,535
  suppressed or missing values stored as NULL: 2 (empty 2)
  periods: annual
>>> store.close()
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from geo_cs.config import boundaries_dir
from geo_cs.errors import InputError, NotFoundError
from geo_cs.geography import is_listed, registry
from geo_cs.ingest.csvfile import (
    file_row,
    read_csv_header,
    read_csv_rows,
    read_csv_text,
    recoding_note,
)
from geo_cs.ingest.survey import ingest_survey, survey_shape
from geo_cs.ingest.ward_editions import match_ward_editions
from geo_cs.panels import drop_prepared
from geo_cs.periods import (
    FREQUENCY,
    Period,
    PeriodKind,
    edition,
    infer_kind,
    normalise_kind,
    parse_period,
    year,
)
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store

Layout = Literal["wide", "long", "nomis", "statxplore"]
#: What an area missing from a long/Nomis/Stat-Xplore file in one of its periods means:
#: ``unknown`` (no observation stored; analysis counts the area as missing) or ``zero`` (a count
#: of 0: many downloads leave out areas with no claimants). See :func:`_fill_absent`.
Absent = Literal["unknown", "zero"]
MeasureKind = Literal["count", "rate", "score", "rank", "decile"]
DEFAULT_MARKERS = ("*", "-", "..", "!", "")
#: Valid ranges by kind; a spec may narrow or replace them.
KIND_RANGES: dict[str, tuple[float | None, float | None]] = {
    "count": (0, None),
    "rate": (0, 100),
    "score": (None, None),
    "rank": (1, None),
    "decile": (1, 10),
}
GSS_CODE = re.compile(r"\b([EWSNK]\d{8})\b")


# -- specs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeasureSpec:
    """One measure of a source: where its values are and what kind of number they are."""

    measure: str
    kind: MeasureKind
    label: str
    column: str | None = None                   # wide: the column holding the value
    sum_columns: tuple[str, str] | None = None  # wide: sum the columns from..to (inclusive)
    denominator: str | None = None              # wide: a column holding its denominator
    denominator_from_rate: str | None = None    # implied denominator = value / (rate %/100): wide:
    #                                             a column; long/nomis: a rate measure of the file
    rate_rounding: float = 0.1                  # step the published rate is rounded to (points)
    scale: float = 1.0                          # multiply published values (fraction -> %)
    unit: str | None = None
    value_range: tuple[float | None, float | None] | None = None
    match: dict[str, str] = field(default_factory=dict)  # long/nomis: rows this measure takes
    set_id: str | None = None                   # a geography other than the source's own
    code_column: str | None = None
    name_column: str | None = None
    register_codes: bool = False                # reference areas whose codes come from the file
    repeated: bool = False                      # value repeats on every row (e.g. a region's)

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        return self.value_range or KIND_RANGES[self.kind]


@dataclass(frozen=True)
class IndicatorSpec:
    """How to read one statistical source (see ``boundaries/sources/*.toml``)."""

    source_id: str
    title: str
    layout: Layout
    set_id: str
    measures: tuple[MeasureSpec, ...]
    code_column: str = "area_code"
    name_column: str | None = None
    file: str | None = None
    publisher: str | None = None
    licence: str | None = None
    fixed_period: Period | None = None
    period_column: str | None = None
    period_kind: PeriodKind | None = None
    measure_column: str = "measure"
    value_column: str = "value"
    denominator_column: str | None = None
    filters: dict[str, str] = field(default_factory=dict)        # keep rows where column == value
    exclude: dict[str, tuple[str, ...]] = field(default_factory=dict)  # drop rows, counted
    suppression_markers: tuple[str, ...] = DEFAULT_MARKERS
    default_kind: MeasureKind | None = None     # long: measures not listed take this kind
    spec_path: str | None = None
    #: columns the spec or command line named (the others may be recognised from usual names)
    given_columns: frozenset[str] = frozenset()
    absent: Absent = "unknown"


def _period_from_spec(raw: dict[str, Any], where: str) -> tuple[Period | None, str | None, Any]:
    if "edition" in raw:
        if "data_year" not in raw:
            raise InputError(f"{where}: [period] with edition needs data_year")
        return edition(raw["edition"], int(raw["data_year"])), None, None
    if "year" in raw:
        return year(int(raw["year"])), None, None
    if "quarter" in raw:
        return parse_period(str(raw["quarter"]), "quarter"), None, None
    try:
        kind = normalise_kind(raw.get("frequency", raw.get("kind")))
    except ValueError as exc:
        raise InputError(f"{where}: [period] {exc}") from None
    if "month" in raw:
        return parse_period(str(raw["month"]), "month"), None, None
    if "column" in raw or kind is not None:
        return None, raw.get("column"), kind
    raise InputError(f"{where}: [period] needs edition+data_year, year, quarter, month, column "
                     "or frequency")


def spec_from_dict(raw: dict[str, Any], where: str = "spec") -> IndicatorSpec:
    """Build a spec from parsed TOML (or a dict built by the CLI), checking its fields."""
    try:
        layout = raw.get("layout", "wide")
        if layout not in ("wide", "long", "nomis", "statxplore"):
            raise InputError(f"{where}: layout {layout!r}; expected wide, long, nomis or statxplore")
        set_id = raw["geography"]
        registry().get(set_id)
        period_raw = raw.get("period", {})
        if not period_raw and layout != "wide":
            # long/Nomis tables carry a period column; Stat-Xplore has periods across its header
            fixed, period_column, period_kind = None, None, None
        else:
            fixed, period_column, period_kind = _period_from_spec(period_raw, where)
        given = {key for key in ("code_column", "value_column", "measure_column") if key in raw}
        if period_column:
            given.add("period_column")
        if layout == "nomis":
            period_column = period_column or "DATE"
        if layout == "long":
            period_column = period_column or "period"
        absent = raw.get("absent", "unknown")
        if absent not in ("unknown", "zero"):
            raise InputError(f"{where}: absent {absent!r}; expected unknown or zero")
        measures = []
        for i, m in enumerate(raw.get("measures", [])):
            kind = m.get("kind", "count")
            if kind not in KIND_RANGES:
                raise InputError(
                    f"{where}: measures[{i}] kind {kind!r}; expected one of {', '.join(KIND_RANGES)}"
                )
            if m.get("set") is not None:
                registry().get(m["set"])
            value_range = m.get("range")
            measures.append(
                MeasureSpec(
                    measure=m["id"],
                    kind=kind,
                    label=m.get("label", m["id"].replace("_", " ")),
                    column=m.get("column"),
                    sum_columns=tuple(m["sum_columns"]) if "sum_columns" in m else None,
                    denominator=m.get("denominator"),
                    denominator_from_rate=m.get("denominator_from_rate"),
                    rate_rounding=float(m.get("rate_rounding", 0.1)),
                    scale=float(m.get("scale", 1.0)),
                    unit=m.get("unit", "%" if kind == "rate" else None),
                    value_range=tuple(value_range) if value_range else None,
                    match=dict(m.get("match", {})),
                    set_id=m.get("set"),
                    code_column=m.get("code_column"),
                    name_column=m.get("name_column"),
                    register_codes=bool(m.get("register_codes", False)),
                    repeated=bool(m.get("repeated", False)),
                )
            )
        default_kind = raw.get("default_kind")
        if default_kind is not None and default_kind not in KIND_RANGES:
            raise InputError(
                f"{where}: kind {default_kind!r}; expected one of {', '.join(KIND_RANGES)}")
        if layout in ("wide", "statxplore") and not measures:
            raise InputError(f"{where}: a {layout} spec needs at least one [[measures]]")
        for m in measures:
            if layout == "wide" and not (m.column or m.sum_columns):
                raise InputError(f"{where}: measure {m.measure!r} needs column or sum_columns")
        return IndicatorSpec(
            source_id=raw["id"],
            title=raw.get("title", raw["id"]),
            layout=layout,
            set_id=set_id,
            measures=tuple(measures),
            code_column=raw.get("code_column", _default_code_column(layout)),
            name_column=raw.get("name_column"),
            file=raw.get("file"),
            publisher=raw.get("publisher"),
            licence=raw.get("licence"),
            fixed_period=fixed,
            period_column=period_column,
            period_kind=period_kind,
            measure_column=raw.get("measure_column", "MEASURES_NAME" if layout == "nomis" else "measure"),
            value_column=raw.get("value_column", "OBS_VALUE" if layout == "nomis" else "value"),
            denominator_column=raw.get("denominator_column"),
            filters={k: str(v) for k, v in raw.get("filter", {}).items()},
            exclude={k: tuple(map(str, v if isinstance(v, list) else [v]))
                     for k, v in raw.get("exclude", {}).items()},
            suppression_markers=tuple(raw.get("suppression_markers", DEFAULT_MARKERS)),
            default_kind=raw.get("default_kind"),
            spec_path=where,
            given_columns=frozenset(given),
            absent=absent,
        )
    except KeyError as exc:
        raise InputError(f"{where}: missing required field {exc.args[0]!r}") from exc


def _default_code_column(layout: str) -> str:
    return {"nomis": "GEOGRAPHY_CODE", "long": "area_code"}.get(layout, "area_code")


def spec_from_options(
    path: Path, layout: str, set_id: str, *, source_id: str | None = None,
    measure: str | None = None, kinds: list[str] | None = None,
    frequency: str | None = None, columns: dict[str, str] | None = None,
    absent: str | None = None, derive: list[str] | None = None,
) -> IndicatorSpec:
    """A spec for a long, Nomis or Stat-Xplore file described on the command line.

    ``kinds`` are ``KIND`` (every measure) or ``MEASURE=KIND`` (one measure), so a long file with
    claimants and a claimant rate is read as ``--kind claimants=count --kind claimant_rate=rate``.
    A long file's ``denominator`` column is used when present. ``frequency`` forces the periods'
    kind (``month``); ``columns`` names the code/period/value/measure columns
    (``{"code_column": "lsoa11cd"}``; otherwise recognised from usual names); ``absent`` is
    ``unknown`` or ``zero``; ``derive`` are ``COUNT=RATE`` measure pairs whose denominator is
    derived as count / rate × 100.
    """
    default_kind = "count"
    per_measure: dict[str, str] = {}
    for item in kinds or []:
        name, _, kind = item.rpartition("=")
        if name:
            per_measure[name] = kind
        else:
            default_kind = kind
    raw: dict[str, Any] = {"id": source_id or path.stem, "layout": layout, "geography": set_id}
    raw.update({k: v for k, v in (columns or {}).items() if v and k != "period_column"})
    period: dict[str, Any] = {}
    if columns and columns.get("period_column"):
        period["column"] = columns["period_column"]
    if frequency:
        period["frequency"] = frequency
    if period:
        raw["period"] = period
    if absent:
        raw["absent"] = absent
    derived: dict[str, str] = {}
    for item in derive or []:
        count, sep, rate = item.partition("=")
        if not sep or not count or not rate:
            raise InputError(f"--denominator-from-rate {item!r}: expected COUNT=RATE (measure names)")
        derived[count.strip()] = rate.strip()
    if layout == "long":
        header = read_csv_header(path) if path.is_file() else []
        if "denominator" in header:
            raw["denominator_column"] = "denominator"
        raw["default_kind"] = default_kind
        # listed measures take their kind; the others the default
        raw["measures"] = [{"id": m, "kind": k} for m, k in per_measure.items()]
        for rate in derived.values():
            per_measure.setdefault(rate, "rate")
        listed = {m["id"] for m in raw["measures"]}
        raw["measures"] += [{"id": m, "kind": per_measure.get(m, default_kind)}
                            for m in [*derived, *derived.values()] if m not in listed]
        for m in raw["measures"]:
            if m["id"] in derived:
                m["denominator_from_rate"] = derived[m["id"]]
            if m["id"] in derived.values():
                m["kind"] = "rate"
    elif layout == "nomis":
        if measure:
            name = re.sub(r"[^a-z0-9]+", "_", measure.lower()).strip("_")
            raw["measures"] = [{"id": name, "kind": per_measure.get(name, default_kind),
                                "match": {"MEASURES_NAME": measure}}]
        else:
            raw["default_kind"] = default_kind
            raw["measures"] = [{"id": m, "kind": k, "match": {"MEASURES_NAME": m}}
                               for m, k in per_measure.items()]
    elif layout == "statxplore":
        name = re.sub(r"[^a-z0-9]+", "_", (measure or "value").lower()).strip("_")
        raw["measures"] = [{"id": name, "kind": per_measure.get(name, default_kind)}]
    else:
        raise InputError(f"--layout {layout!r}: expected long, nomis or statxplore (wide needs a spec)")
    return spec_from_dict(raw, "command line")


def specs_dir() -> Path:
    return boundaries_dir() / "sources"


def load_spec(name_or_path: str | Path) -> IndicatorSpec:
    """A spec by path, or by the id of one shipped in ``boundaries/sources/``."""
    path = Path(name_or_path)
    if not path.exists():
        path = specs_dir() / f"{name_or_path}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in specs_dir().glob("*.toml")))
        raise NotFoundError(f"no indicator spec {str(name_or_path)!r}; shipped specs: {known}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    return spec_from_dict(raw, str(path))


def spec_for_file(path: str | Path) -> IndicatorSpec:
    """The shipped spec whose ``file`` is this file's name (how the CLI picks one by default)."""
    name = Path(path).name
    for candidate in sorted(specs_dir().glob("*.toml")):
        raw = tomllib.loads(candidate.read_text(encoding="utf-8"))
        if raw.get("file") == name:
            return spec_from_dict(raw, str(candidate))
    raise NotFoundError(
        f"{path}: no shipped spec is written for a file of this name, and it is not a Nomis "
        "download of the Annual Population Survey; pass --spec FILE.toml (see "
        "boundaries/sources/ for examples) or --layout long|nomis|statxplore with --set"
    )


# -- report -------------------------------------------------------------------------------------

@dataclass
class IndicatorReport:
    source_id: str
    source: str
    layout: str
    rows_read: int = 0
    observations: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)   # marker -> count
    skipped_rows: int = 0
    excluded_rows: int = 0
    recoded_lines: int = 0
    #: notes on the geography the codes were matched to (geo_cs.ingest.ward_editions)
    geography_notes: list[str] = field(default_factory=list)
    measures: dict[str, int] = field(default_factory=dict)
    periods: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    ingest_id: int | None = None
    frequency: str | None = None                # monthly, quarterly, annual
    frequency_note: str | None = None           # how it was decided
    columns: dict[str, str] = field(default_factory=dict)   # role -> column used
    recognised_columns: list[str] = field(default_factory=list)  # roles found by usual names
    derived_denominators: dict[str, str] = field(default_factory=dict)  # indicator -> how
    absent: str = "unknown"
    absent_filled: int = 0                      # zeros written for absent rows (absent = zero)
    absent_rows: int = 0                        # area-periods absent (absent = unknown)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        periods = (
            ", ".join(self.periods) if len(self.periods) <= 6
            else f"{self.periods[0]} … {self.periods[-1]} ({len(self.periods)} periods)"
        )
        out = [
            f"{self.source_id}: {self.rows_read:,} rows read from {self.source} ({self.layout}); "
            f"{self.observations:,} observations written for {periods}",
        ]
        for measure, count in self.measures.items():
            out.append(f"  {measure}: {count:,}")
        total = sum(self.suppressed.values())
        if total:
            detail = ", ".join(
                f"{'empty' if k == '' else repr(k)} {v:,}" for k, v in sorted(self.suppressed.items())
            )
            out.append(f"  suppressed or missing values stored as NULL: {total:,} ({detail})")
        else:
            out.append("  suppressed or missing values: 0")
        if self.excluded_rows:
            out.append(f"  rows dropped by the spec's [exclude] rules: {self.excluded_rows:,}")
        if self.skipped_rows:
            out.append(f"  rows matching no measure of the spec, skipped: {self.skipped_rows:,}")
        if note := recoding_note(self.recoded_lines):
            out.append(f"  {note}")
        out += [f"  {note}" for note in self.geography_notes]
        if self.frequency:
            out.append(f"  periods: {self.frequency}" + (f" ({self.frequency_note})"
                                                        if self.frequency_note else ""))
        if self.recognised_columns:
            picked = ", ".join(f"{role} = {self.columns[role]!r}" for role in self.recognised_columns)
            out.append(f"  columns recognised by their usual names: {picked} "
                       "(override with the spec or --code-col/--period-col/--value-col)")
        for indicator, how in self.derived_denominators.items():
            out.append(f"  {indicator}: denominator derived, {how}")
        if self.absent_filled:
            out.append(f"  absent area-periods stored as 0 (absent = zero): {self.absent_filled:,}")
        elif self.absent_rows:
            out.append(f"  absent area-periods left unknown (absent = unknown; no row stored): "
                       f"{self.absent_rows:,}")
        return out


# -- layouts -> one long table of text cells ----------------------------------------------------
# Columns: set_id, code, name, period (text) or period_id, measure, value, denominator, row, column

def _require_columns(frame: pd.DataFrame, columns: list[str | None], path: Path) -> None:
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"the file has {', '.join(frame.columns[:30])}"
        )


#: Usual names of the columns of long and Nomis tables, tried (case, spaces and underscores
#: aside) when the spec or command line did not name the column and the default is absent.
#: Code columns are also recognised from every set's ``code_columns`` in the registry.
USUAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "code_column": ("area_code", "GEOGRAPHY_CODE", "geography code", "geography_code", "geogcode",
                    "area code", "areacd", "code", "DataZone", "datazone_code", "data_zone"),
    "period_column": ("period", "DATE", "date", "date_code", "month", "quarter", "time",
                      "DATE_NAME"),
    "value_column": ("value", "OBS_VALUE", "obs_value", "count"),
    "measure_column": ("measure", "MEASURES_NAME", "measures_name", "measure_name"),
}
_CODE_PATTERN = re.compile(r"^(lsoa|msoa|wd|ward|lad|dz|datazone|iz|pcon|wpc)\d{2,4}_?(cd|code)$")


def _norm(column: str) -> str:
    return re.sub(r"[\s_]+", "_", column.strip().lower())


def recognise_columns(
    columns: list[str], spec: IndicatorSpec, report: IndicatorReport | None = None
) -> IndicatorSpec:
    """``spec`` with its code, period, value and measure columns found in ``columns``.

    A column the spec (or command line) named is used as named. Otherwise the default name is
    used when the file has it, else the first usual name present (:data:`USUAL_COLUMNS`, any
    set's code columns in the registry, ``lsoa11cd``-like names), and the report says which.

    >>> spec = spec_from_dict({"id": "cc", "layout": "long", "geography": "lsoa2011"})
    >>> picked = recognise_columns(["date", "LSOA11CD", "measure", "value"], spec)
    >>> picked.code_column, picked.period_column
    ('LSOA11CD', 'date')
    """
    if spec.layout not in ("long", "nomis"):
        return spec
    by_norm = {_norm(c): c for c in columns}
    changes: dict[str, str] = {}
    for role, usual in USUAL_COLUMNS.items():
        current = getattr(spec, role)
        if role == "period_column" and spec.fixed_period is not None:
            continue
        if role == "measure_column" and spec.measures and all(m.match for m in spec.measures):
            continue
        if role in spec.given_columns or current in columns:
            if report is not None and current in columns:
                report.columns[role.removesuffix("_column")] = current
            continue
        candidates = list(usual)
        if role == "code_column":
            own = registry().get(spec.set_id).code_columns
            candidates = [*own, *candidates,
                          *[c for s in registry().sets.values() for c in s.code_columns]]
        found = next((by_norm[_norm(c)] for c in candidates if _norm(c) in by_norm), None)
        if found is None and role == "code_column":
            found = next((c for c in columns if _CODE_PATTERN.match(_norm(c))), None)
        if found is not None:
            changes[role] = found
            if report is not None:
                report.columns[role.removesuffix("_column")] = found
                report.recognised_columns.append(role.removesuffix("_column"))
    return replace(spec, **changes) if changes else spec


def _apply_filters(
    frame: pd.DataFrame, spec: IndicatorSpec, path: Path, report: IndicatorReport
) -> pd.DataFrame:
    _require_columns(frame, [*spec.filters, *spec.exclude], path)
    for column, wanted in spec.filters.items():
        frame = frame[frame[column].str.strip() == wanted]
    for column, values in spec.exclude.items():
        drop = frame[column].str.strip().isin(values)
        report.excluded_rows += int(drop.sum())
        frame = frame[~drop]
    return frame


def _period_texts(frame: pd.DataFrame, spec: IndicatorSpec) -> pd.Series:
    if spec.fixed_period is not None:
        return pd.Series(spec.fixed_period.period_id, index=frame.index)
    return frame[spec.period_column].str.strip()


def _cells_wide(
    frame: pd.DataFrame, spec: IndicatorSpec, path: Path, report: IndicatorReport
) -> pd.DataFrame:
    frame = _apply_filters(frame, spec, path, report)
    _require_columns(frame, [spec.code_column, spec.name_column, spec.period_column], path)
    parts = []
    columns = list(frame.columns)
    for m in spec.measures:
        code_column = m.code_column or spec.code_column
        name_column = m.name_column or (spec.name_column if m.code_column is None else None)
        _require_columns(frame, [code_column, name_column, m.column, m.denominator,
                                 m.denominator_from_rate], path)
        if m.sum_columns is not None:
            first, last = m.sum_columns
            _require_columns(frame, [first, last], path)
            block = columns[columns.index(first): columns.index(last) + 1]
            numbers = _parse_block(frame[block], path)
            value = numbers.sum(axis=1).map(lambda v: repr(float(v)))
            source_column = f"{first}..{last}"
        else:
            value = frame[m.column]
            source_column = m.column
        parts.append(
            pd.DataFrame(
                {
                    "set_id": m.set_id or spec.set_id,
                    "code": frame[code_column].str.strip(),
                    "name": frame[name_column].str.strip() if name_column else None,
                    "period": _period_texts(frame, spec),
                    "measure": m.measure,
                    "value": value,
                    "denominator": (frame[m.denominator] if m.denominator
                                    else _implied_denominator(value, frame[m.denominator_from_rate])
                                    if m.denominator_from_rate else None),
                    "row": [file_row(i) for i in frame.index],
                    "column": source_column,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _implied_denominator(count: pd.Series, rate: pd.Series) -> pd.Series:
    """The denominator a published count and rate (%) imply: count / (rate / 100).

    Used where a source publishes levels and rates but not the population behind them (the DWP
    constituency tables). With rates rounded to 0.1 points the implied denominator carries a
    relative error of up to 0.05 / rate (0.5% at a 10% rate); cells where either is missing
    stay empty.
    """
    c = pd.to_numeric(count.str.replace(",", "", regex=False), errors="coerce")
    r = pd.to_numeric(rate.str.replace(",", "", regex=False), errors="coerce")
    implied = (c * 100 / r.where(r > 0)).round(0)
    return implied.map(lambda v: "" if pd.isna(v) else repr(float(v)))


def _parse_block(block: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Numbers of a block of columns that must all be present (e.g. ages 16..64 to sum)."""
    numbers = block.apply(lambda s: pd.to_numeric(s.str.replace(",", ""), errors="coerce"))
    bad = numbers.isna()
    if bad.to_numpy().any():
        i, j = map(int, np.argwhere(bad.to_numpy())[0])
        raise InputError(
            f"{path}, row {file_row(block.index[i])}, column {block.columns[j]!r}: "
            f"{block.iat[i, j]!r} is not a number (every column summed must have one)"
        )
    return numbers


def _match_measures(frame: pd.DataFrame, spec: IndicatorSpec, path: Path) -> tuple[pd.Series, int]:
    """Which measure each row of a long/Nomis table belongs to; rows matching none are skipped."""
    if not spec.measures:
        if spec.default_kind is None:
            raise InputError(f"{spec.spec_path}: list [[measures]] or give default_kind")
        return frame[spec.measure_column].map(measure_id), 0
    measure = pd.Series(None, index=frame.index, dtype=object)
    for m in spec.measures:
        match = m.match or {spec.measure_column: m.measure}
        _require_columns(frame, list(match), path)
        hit = np.ones(len(frame), dtype=bool)
        for column, wanted in match.items():
            hit &= (frame[column].str.strip() == wanted).to_numpy()
        clash = hit & measure.notna().to_numpy()
        if clash.any():
            index = frame.index[int(np.flatnonzero(clash)[0])]
            raise InputError(
                f"{path}, row {file_row(index)}: matches two measures "
                f"({measure[index]} and {m.measure}); make the spec's match rules exclusive"
            )
        measure[hit] = m.measure
    if spec.default_kind is not None and spec.measure_column in frame:
        # measures the spec does not list keep their own name and take the default kind
        unmatched = measure.isna()
        measure[unmatched] = frame.loc[unmatched, spec.measure_column].map(measure_id)
    return measure, int(measure.isna().sum())


def measure_id(name: str) -> str:
    """A measure name as published, as an indicator id part: kept when it is already an
    identifier, else lower-cased with runs of other characters as ``_``.

    >>> measure_id("claimants"), measure_id("Claimant count"), measure_id("JSA")
    ('claimants', 'claimant_count', 'JSA')
    """
    name = str(name).strip()
    if re.fullmatch(r"[A-Za-z0-9_]+", name):
        return name
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or name


def _cells_long(
    frame: pd.DataFrame, spec: IndicatorSpec, path: Path, report: IndicatorReport
) -> tuple[pd.DataFrame, int]:
    frame = _apply_filters(frame, spec, path, report)
    _require_columns(
        frame,
        [spec.code_column, spec.value_column, spec.period_column, spec.denominator_column,
         spec.name_column] + ([] if spec.measures else [spec.measure_column]),
        path,
    )
    measure, skipped = _match_measures(frame, spec, path)
    cells = pd.DataFrame(
        {
            "set_id": spec.set_id,
            "code": frame[spec.code_column].str.strip(),
            "name": frame[spec.name_column].str.strip() if spec.name_column else None,
            "period": _period_texts(frame, spec),
            "measure": measure,
            "value": frame[spec.value_column],
            "denominator": frame[spec.denominator_column] if spec.denominator_column else None,
            "row": [file_row(i) for i in frame.index],
            "column": spec.value_column,
        }
    )
    return cells[cells["measure"].notna()].reset_index(drop=True), skipped


def _cells_statxplore(path: Path, spec: IndicatorSpec) -> pd.DataFrame:
    """A Stat-Xplore table export: title lines, a header of periods, one row per area.

    Area labels carry the GSS code (``E01000001 : City of London 001A``); a Total row and the
    footnotes after the table are ignored.
    """
    rows, recoded = read_csv_rows(path)
    header_at, period_cols = None, {}
    for n, row in enumerate(rows):
        found = {}
        for j, cell in enumerate(row):
            try:
                # read as months to find the header; the file's frequency is decided below
                found[j] = parse_period(cell, spec.period_kind or "month") if cell.strip() else None
            except ValueError:
                continue
        found = {j: p for j, p in found.items() if p is not None}
        if len(found) >= 1 and len(found) >= (len([c for c in row if c.strip()]) - 2):
            header_at, period_cols = n, found
            break
    if header_at is None:
        raise InputError(
            f"{path}: no header row of periods found (expected a Stat-Xplore table with "
            "quarters such as 'May-06' or 'May 2006' across the top)"
        )
    texts = [rows[header_at][j] for j in period_cols]
    kind = spec.period_kind or infer_kind(texts)
    try:
        period_cols = {j: parse_period(rows[header_at][j], kind) for j in period_cols}
    except ValueError as exc:
        raise InputError(f"{path}, line {header_at + 1}: {exc}") from None
    m = spec.measures[0]
    records = []
    for n in range(header_at + 1, len(rows)):
        row = rows[n]
        label = next((c.strip() for c in row if c.strip()), "")
        if not label:
            if records:
                break  # the blank line that ends the table; footnotes follow
            continue
        if label.lower().startswith("total"):
            continue
        code = GSS_CODE.search(label)
        if code is None:
            if records:
                break
            continue  # field-name rows between the header and the first area
        name = label.split(":", 1)[1].strip() if ":" in label else None
        for j, period in period_cols.items():
            records.append(
                (m.set_id or spec.set_id, code.group(1), name, period.period_id, m.measure,
                 row[j] if j < len(row) else "", None, n + 1, period.label)
            )
    if not records:
        raise InputError(f"{path}: no area rows with a GSS code under the header at line {header_at + 1}")
    cells = pd.DataFrame(
        records,
        columns=["set_id", "code", "name", "period", "measure", "value", "denominator", "row", "column"],
    )
    cells.attrs["recoded_lines"] = recoded
    cells.attrs["period_kind"] = kind
    return cells


# -- validation ---------------------------------------------------------------------------------

def _numbers(cells: pd.DataFrame, column: str, spec: IndicatorSpec, path: Path,
             report: IndicatorReport | None) -> np.ndarray:
    text = cells[column].astype("string").fillna("").str.strip()
    marker = text.isin(spec.suppression_markers)
    if report is not None:
        for value, count in text[marker].value_counts().items():
            report.suppressed[value] = report.suppressed.get(value, 0) + int(count)
    numbers = pd.to_numeric(text.str.replace(",", "", regex=False).where(~marker), errors="coerce")
    # "inf" parses as a float; no published count or rate is infinite
    bad = ~np.isfinite(numbers.to_numpy(dtype=float)) & ~marker.to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where_col = cells["column"].iat[i] if column == "value" else f"{cells['column'].iat[i]} denominator"
        raise InputError(
            f"{path}, row {cells['row'].iat[i]}, column {where_col!r}: {text.iat[i]!r} is not a "
            f"number or a suppression marker ({', '.join(repr(m) for m in spec.suppression_markers)})"
        )
    return numbers.to_numpy(dtype=float)


def _check_ranges(cells: pd.DataFrame, values: np.ndarray, spec: IndicatorSpec, path: Path) -> None:
    by_measure = {m.measure: m for m in spec.measures}
    for measure, index in cells.groupby("measure").indices.items():
        m = by_measure.get(measure)
        kind = m.kind if m else spec.default_kind
        low, high = m.bounds if m else KIND_RANGES[kind]
        vals = values[index]
        bad = np.zeros(len(index), dtype=bool)
        if low is not None:
            bad |= vals < low
        if high is not None:
            bad |= vals > high
        if bad.any():
            i = index[int(np.flatnonzero(bad)[0])]
            expected = {
                "count": "a count cannot be negative",
                "rate": f"a rate must be between {low} and {high} (%)",
            }.get(kind, f"expected between {low} and {high}")
            scale = f" after scaling by {m.scale:g}" if m and m.scale != 1 else ""
            raise InputError(
                f"{path}, row {cells['row'].iat[i]}, column {cells['column'].iat[i]!r}: "
                f"value {values[i]:g}{scale} is out of range for {measure} ({kind}): {expected}"
            )


def _collapse_repeated(cells: pd.DataFrame, spec: IndicatorSpec, path: Path) -> pd.DataFrame:
    """Rows that repeat a reference area's value (a region on every constituency row) collapse."""
    repeated = {m.measure for m in spec.measures if m.repeated}
    if not repeated:
        return cells
    is_rep = cells["measure"].isin(repeated) & (cells["set_id"] != spec.set_id)
    rep = cells[is_rep]
    key = ["set_id", "code", "period_id", "measure"]
    distinct = rep.drop_duplicates([*key, "value_num", "den_num"])
    conflict = distinct.duplicated(key, keep=False)
    if conflict.any():
        first = distinct[conflict].iloc[0]
        rows = rep[(rep[key] == first[key]).all(axis=1)]["row"].tolist()[:5]
        raise InputError(
            f"{path}, rows {', '.join(map(str, rows))}, column {first['column']!r}: "
            f"{first['code']} {first['period_id']} has different values on different rows"
        )
    return pd.concat([cells[~is_rep], distinct.drop_duplicates(key)], ignore_index=True)


def _check_duplicates(cells: pd.DataFrame, path: Path) -> None:
    key = ["set_id", "code", "period_id", "measure"]
    dup = cells.duplicated(key, keep=False)
    if dup.any():
        first = cells[dup].iloc[0]
        same = cells[dup & (cells[key] == first[key]).all(axis=1)]
        raise InputError(
            f"{path}, rows {', '.join(map(str, same['row'].tolist()[:5]))}, column "
            f"{first['column']!r}: duplicate value for area {first['code']}, period "
            f"{first['period_id']}, measure {first['measure']}"
        )


def _check_codes(store: Store, cells: pd.DataFrame, spec: IndicatorSpec, path: Path) -> None:
    registering = {m.set_id for m in spec.measures if m.register_codes}
    for set_id, index in cells.groupby("set_id").indices.items():
        if set_id in registering:
            continue
        known = {r[0] for r in store.sql("SELECT code FROM areas WHERE set_id = ?", [set_id]).fetchall()}
        official = registry().get(set_id).expected_codes() or frozenset()
        if known and official:
            # a code of the official list is valid even when its boundary is missing (5 of the
            # 6,505 Data Zones 2001 have none in the published files): register it, no geometry
            codes_here = set(cells["code"].iloc[index])
            ingest_id = store.sql("SELECT max(ingest_id) FROM ingests").fetchone()[0]
            store.register_codes(registry().get(set_id), sorted((codes_here & official) - known),
                                 None, str(path), ingest_id)
            known |= codes_here & official
        if not known:
            raise InputError(
                f"{path}: no areas of {set_id} are in the store; ingest its boundaries "
                f"(geo-cs ingest boundaries) or a lookup that lists its codes first"
            )
        codes = cells["code"].iloc[index]
        unknown = ~is_listed(codes, known)  # a hash look-up; np.isin on strings is quadratic
        if unknown.any():
            i = index[int(np.flatnonzero(unknown)[0])]
            first_codes = list(dict.fromkeys(codes[unknown]))
            count = len(first_codes)
            raise InputError(
                f"{path}, row {cells['row'].iat[i]}, column {spec.code_column!r}: area code "
                f"{cells['code'].iat[i]!r} is not a {set_id} code in the store "
                f"({count:,} unknown code{'s' if count != 1 else ''} in all); the first: "
                f"{', '.join(first_codes[:5])}{' …' if count > 5 else ''}"
                + _belongs_hint(store, first_codes[:20], set_id)
            )


#: GSS entity codes (the first three characters) of the geographies users bring most.
GSS_ENTITIES = {
    "E00": "output area", "W00": "output area", "E01": "LSOA", "W01": "LSOA", "E02": "MSOA",
    "W02": "MSOA", "S00": "output area", "S01": "data zone", "S02": "intermediate zone",
    "E05": "electoral ward", "W05": "electoral ward", "S13": "electoral ward",
    "E06": "unitary authority", "E07": "non-metropolitan district", "E08": "metropolitan district",
    "E09": "London borough", "W06": "unitary authority", "S12": "council area",
    "E14": "Westminster constituency", "W07": "Westminster constituency",
    "S14": "Westminster constituency", "E12": "region", "E92": "country", "W92": "country",
    "S92": "country", "K03": "Great Britain", "K04": "England and Wales",
}


def _belongs_hint(store: Store, codes: list[str], set_id: str) -> str:
    """Where refused codes belong: the official lists of the registry, then the sets in the store,
    then the kind of GSS code (a ward code given for LSOAs) — the usual cause is a wrong --set."""
    reg = registry()
    for code in codes:
        listed = reg.sets_listing(code, besides=set_id)
        if listed:
            return (f"; {code} is on the official list of {', '.join(listed)}: the file's codes "
                    f"belong to another set (use --set {listed[0]} or that spec's geography)")
    held = store.sql(
        "SELECT set_id, count(*) FROM areas WHERE list_contains(?, code) AND set_id <> ? "
        "GROUP BY 1 ORDER BY 2 DESC", [codes, set_id]).fetchall()
    if held:
        return (f"; these codes are {held[0][0]} codes in the store ({held[0][1]} of the first "
                f"{len(codes)}): use --set {held[0][0]}")
    entities = {GSS_ENTITIES.get(c[:3]) for c in codes} - {None}
    official = reg.get(set_id).expected_codes() or ()
    expected = {GSS_ENTITIES.get(c[:3]) for c in {c[:3] for c in official}}
    if entities and not (entities & expected):
        return (f"; they are {' and '.join(sorted(entities))} codes ({codes[0][:3]}…), not "
                f"{reg.get(set_id).label} codes: the file belongs to another geography set")
    return ""


def _parse_periods(cells: pd.DataFrame, spec: IndicatorSpec, path: Path) -> dict[str, Period]:
    if spec.fixed_period is not None:
        cells["period_id"] = spec.fixed_period.period_id
        return {spec.fixed_period.period_id: spec.fixed_period}
    parsed: dict[str, Period] = {}
    texts = cells["period"].unique()
    # a monthly file holds Feb/May/Aug/Nov too: one month outside those makes the file monthly
    kind = spec.period_kind or infer_kind(texts)
    for text in texts:
        try:
            parsed[text] = parse_period(text, kind)
        except ValueError as exc:
            i = int(np.flatnonzero((cells["period"] == text).to_numpy())[0])
            raise InputError(
                f"{path}, row {cells['row'].iat[i]}, column {spec.period_column or 'period'!r}: {exc}"
            ) from None
    cells["period_id"] = cells["period"].map(lambda t: parsed[t].period_id)
    return {p.period_id: p for p in parsed.values()}


# -- the ingest ---------------------------------------------------------------------------------

def read_indicator_cells(
    path: Path, spec: IndicatorSpec, report: IndicatorReport
) -> tuple[pd.DataFrame, dict[str, Period], IndicatorSpec]:
    """Read and validate a file into long cells with numeric ``value``/``denominator``; the spec
    is returned with the columns it recognised (:func:`recognise_columns`)."""
    if spec.layout == "statxplore":
        cells = _cells_statxplore(path, spec)
        report.rows_read = int(cells["row"].nunique())
        report.recoded_lines = cells.attrs["recoded_lines"]
    else:
        frame = read_csv_text(path)
        report.rows_read = len(frame)
        report.recoded_lines = frame.attrs["recoded_lines"]
        spec = recognise_columns(list(frame.columns), spec, report)
        if spec.layout == "wide":
            cells = _cells_wide(frame, spec, path, report)
        else:
            cells, report.skipped_rows = _cells_long(frame, spec, path, report)
    if cells.empty:
        raise InputError(f"{path}: no data rows to ingest (after the spec's filters)")
    blank = cells["code"].fillna("") == ""
    if blank.any():
        i = int(np.flatnonzero(blank.to_numpy())[0])
        raise InputError(f"{path}, row {cells['row'].iat[i]}: empty area code")
    periods = _parse_periods(cells, spec, path)
    _note_frequency(periods, spec, report)
    cells["value_num"] = _numbers(cells, "value", spec, path, report)
    has_den = cells["denominator"].notna().any()
    cells["den_num"] = _numbers(cells, "denominator", spec, path, None) if has_den else np.nan
    scale = {m.measure: m.scale for m in spec.measures}
    cells["value_num"] *= cells["measure"].map(scale).fillna(1.0).to_numpy()
    _check_ranges(cells, cells["value_num"].to_numpy(), spec, path)
    if has_den:
        den = cells["den_num"].to_numpy()
        negative = den < 0
        if negative.any():
            i = int(np.flatnonzero(negative)[0])
            raise InputError(
                f"{path}, row {cells['row'].iat[i]}: denominator {den[i]:g} is negative"
            )
    cells = _collapse_repeated(cells, spec, path)
    _check_duplicates(cells, path)
    cells = _derive_denominators(cells, spec, path, report)
    cells = _fill_absent(cells, spec, report)
    return cells, periods, spec


def _note_frequency(periods: dict[str, Period], spec: IndicatorSpec, report: IndicatorReport) -> None:
    kinds = {p.kind for p in periods.values()}
    report.frequency = ", ".join(sorted({FREQUENCY[k] for k in kinds}))
    if spec.period_kind is not None:
        report.frequency_note = f"the spec's frequency = {spec.period_kind!r}"
    elif "month" in kinds:
        report.frequency_note = ("inferred: the file has months other than February, May, August "
                                 "and November, so every period is read as a month")


def _derive_denominators(cells: pd.DataFrame, spec: IndicatorSpec, path: Path,
                         report: IndicatorReport) -> pd.DataFrame:
    """Long/Nomis/Stat-Xplore files: a count measure's denominator from a rate measure of the
    same file, area and period (``denominator_from_rate``): count / rate × 100.

    Where the rate is 0 or missing the denominator stays unknown. Wide files derive it while
    reading (:func:`_implied_denominator`); both are recorded as derived, with the rate's rounding
    step, so analysis can widen intervals for it (see ``README`` method notes).
    """
    cells["den_derived"] = False
    for m in spec.measures:
        if not m.denominator_from_rate:
            continue
        indicator = f"{spec.source_id}.{m.measure}"
        if spec.layout == "wide":
            set_id = m.set_id or spec.set_id
            cells.loc[(cells["measure"] == m.measure) & (cells["set_id"] == set_id), "den_derived"] = True
            report.derived_denominators[f"{indicator} on {set_id}"] = (
                f"count / {m.denominator_from_rate} × 100 (the rate rounded to "
                f"{m.rate_rounding:g}; intervals widened for it)")
            continue
        key = ["set_id", "code", "period_id"]
        rates = cells.loc[cells["measure"] == m.denominator_from_rate, [*key, "value_num"]]
        if rates.empty:
            raise InputError(
                f"{path}: measure {m.measure!r} takes its denominator from rate measure "
                f"{m.denominator_from_rate!r}, which has no rows in the file; measures found: "
                f"{', '.join(sorted(cells['measure'].unique()))}")
        is_count = (cells["measure"] == m.measure).to_numpy()
        matched = cells.loc[is_count, key].merge(
            rates.rename(columns={"value_num": "rate"}), on=key, how="left")["rate"].to_numpy()
        count = cells.loc[is_count, "value_num"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            den = np.where(matched > 0, count * 100 / matched, np.nan)
        cells.loc[is_count, "den_num"] = den
        cells.loc[is_count, "den_derived"] = True
        report.derived_denominators[indicator] = (
            f"count / {m.denominator_from_rate} × 100 (the rate rounded to {m.rate_rounding:g}; "
            f"intervals widened for it); {int(np.isfinite(den).sum()):,} of {len(den):,} derived, "
            "the others have no rate above 0")
    return cells


def _fill_absent(cells: pd.DataFrame, spec: IndicatorSpec, report: IndicatorReport) -> pd.DataFrame:
    """Areas the file lists in some period but not in another: with ``absent = "zero"`` each
    such count measure gets a 0 there (downloads that leave out areas with no claimants);
    with ``absent = "unknown"`` (the default) nothing is stored and the report counts them.

    Only areas the file lists at least once are filled: an area never in the file may lie
    outside the download's coverage, and stays unknown either way.
    """
    if spec.layout == "wide" or cells["period_id"].nunique() < 2:
        return cells
    by_measure = {m.measure: m for m in spec.measures}
    own = cells[cells["set_id"] == spec.set_id]
    present = own[["code", "period_id", "measure"]].drop_duplicates()
    fills = []
    for measure, rows in present.groupby("measure"):
        m = by_measure.get(measure)
        kind = m.kind if m else spec.default_kind
        grid = pd.MultiIndex.from_product([rows["code"].unique(), rows["period_id"].unique()],
                                          names=["code", "period_id"])
        missing = grid.difference(pd.MultiIndex.from_frame(rows[["code", "period_id"]]))
        if not len(missing):
            continue
        report.absent_rows += len(missing)
        if spec.absent == "zero" and kind == "count":
            fills.append(pd.DataFrame({
                "set_id": spec.set_id, "code": missing.get_level_values(0),
                "name": None, "period": None, "period_id": missing.get_level_values(1),
                "measure": measure, "value": "0", "denominator": None, "row": 0,
                "column": "(absent: zero)", "value_num": 0.0, "den_num": np.nan,
                "den_derived": False}))
    report.absent = spec.absent
    if not fills:
        return cells
    filled = pd.concat(fills, ignore_index=True)
    report.absent_filled = len(filled)
    return pd.concat([cells, filled], ignore_index=True)


def ingest_indicator(
    store: Store,
    path: str | Path,
    spec: IndicatorSpec | None = None,
    *,
    progress: Progress | None = None,
) -> IndicatorReport:
    """Validate one statistics file against its spec and store it as one transaction.

    Observations already stored for the same indicator, geography and period are replaced.
    Without a spec, a Nomis download of the Annual Population Survey (web or API shape) is
    recognised by its content and stored as survey estimates (:mod:`geo_cs.ingest.survey`,
    which returns its own report); any other file needs the shipped spec of its name.
    """
    progress = progress or SilentProgress()
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if spec is None and (shape := survey_shape(path)) is not None:
        return ingest_survey(store, path, shape=shape, progress=progress)  # type: ignore[return-value]
    spec = spec or spec_for_file(path)
    report = IndicatorReport(source_id=spec.source_id, source=str(path), layout=spec.layout)
    progress.note(f"reading {path.name} with spec {spec.source_id}")
    cells, periods, spec = read_indicator_cells(path, spec, report)
    report.geography_notes = match_ward_editions(store, cells, spec.code_column, path)
    by_measure = {m.measure: m for m in spec.measures}
    reg = registry()

    with store.transaction():
        ingest_id = store.start_ingest("indicator", [str(path)])
        for set_id in sorted(cells["set_id"].unique()):
            store.register_set(reg.get(set_id))
        _register_reference_codes(store, cells, spec, str(path), ingest_id)
        _check_codes(store, cells, spec, path)
        for p in periods.values():
            store.sql(
                "INSERT INTO periods VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [p.period_id, p.kind, p.label, p.start, p.end, p.data_year],
            )
        cells["indicator_id"] = spec.source_id + "." + cells["measure"]
        for (measure, set_id), _ in cells.groupby(["measure", "set_id"]):
            m = by_measure.get(measure)
            store.sql(
                """
                INSERT OR REPLACE INTO indicators VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [f"{spec.source_id}.{measure}", spec.source_id, measure,
                 m.kind if m else spec.default_kind, m.unit if m else None,
                 m.label if m else measure.replace("_", " "), set_id, spec.title,
                 spec.publisher, spec.licence, path.name, m.scale if m else 1.0],
            )
        table = pa.table(
            {
                "indicator_id": pa.array(cells["indicator_id"].tolist(), pa.string()),
                "set_id": pa.array(cells["set_id"].tolist(), pa.string()),
                "code": pa.array(cells["code"].tolist(), pa.string()),
                "period_id": pa.array(cells["period_id"].tolist(), pa.string()),
                "value": pa.array(cells["value_num"].to_numpy(), pa.float64(), from_pandas=True),
                "denominator": pa.array(cells["den_num"].to_numpy(dtype=float), pa.float64(),
                                        from_pandas=True),
                "status": pa.array(
                    np.where(cells["value_num"].isna(), cells["value"].fillna("").astype(str), None).tolist(),
                    pa.string(),
                ),
            }
        )
        store.con.register("new_obs", table)
        try:
            store.sql(
                """
                DELETE FROM observations o
                USING (SELECT DISTINCT indicator_id, set_id, period_id FROM new_obs) n
                WHERE o.indicator_id = n.indicator_id AND o.set_id = n.set_id
                  AND o.period_id = n.period_id
                """
            )
            store.sql("INSERT INTO observations SELECT *, ?, NULL FROM new_obs", [ingest_id])
            # analysis-ready panels of these sets are out of date (geo_cs.panels)
            for (set_id,) in store.sql("SELECT DISTINCT set_id FROM new_obs").fetchall():
                drop_prepared(store, set_id)
        finally:
            store.con.unregister("new_obs")
        by_measure_set = {(m.measure, m.set_id or spec.set_id): m for m in spec.measures}
        for measure, set_id in cells.loc[cells["den_derived"], ["measure", "set_id"]].drop_duplicates(
                ).itertuples(index=False):
            m = by_measure_set[(measure, set_id)]
            store.sql("INSERT OR REPLACE INTO derived_denominators VALUES (?, ?, ?, ?, ?, ?)",
                      [f"{spec.source_id}.{measure}", set_id,
                       f"count / {m.denominator_from_rate} × 100", m.denominator_from_rate,
                       m.rate_rounding, ingest_id])
        report.observations = len(cells)
        counts = cells["indicator_id"].value_counts().sort_index()
        report.measures = {str(k): int(v) for k, v in counts.items()}
        report.periods = sorted(periods)
        report.sets = sorted(cells["set_id"].unique().tolist())
        report.ingest_id = ingest_id
        store.finish_ingest(ingest_id, report.to_dict())
    return report


def _register_reference_codes(
    store: Store, cells: pd.DataFrame, spec: IndicatorSpec, source: str, ingest_id: int
) -> None:
    """Reference areas (a region, GB) that a spec says to take from the file itself."""
    reg = registry()
    for m in spec.measures:
        if not m.register_codes:
            continue
        set_id = m.set_id or spec.set_id
        geo_set = reg.get(set_id)
        sub = cells[(cells["measure"] == m.measure) & (cells["set_id"] == set_id)]
        named = sub.drop_duplicates("code")
        store.register_codes(geo_set, named["code"].tolist(), named["name"].tolist(), source, ingest_id)
