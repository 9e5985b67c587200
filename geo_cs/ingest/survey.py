"""Ingest of survey estimates: the Annual Population Survey as Nomis gives it, with no spec.

Two shapes are recognised by their content, whatever the file is called:

``nomis_web``
    Nomis's web download ("annual population survey"): a preamble of ``Key :, value`` lines (the
    ``Date`` is the period, ``Jan 2019-Dec 2019``), a header ``Area, mnemonic, Numerator,
    Denominator, <the rate's name>, Conf``, one row per area, and a footer that explains the
    markers. Areas are written ``lacu:Darlington`` (counties and unitary authorities) and
    ``ladu:Darlington`` (districts and unitary authorities), so every unitary authority comes
    twice: identical rows are kept once, differing ones refused naming both lines.
``nomis_api``
    The Nomis API's long form (dataset NM_17_5, as the R client and the CSV download give it):
    ``date``, ``date_name``, ``geography_code``, ``variable_name``, ``measures_name`` (Variable =
    the rate, Numerator, and where asked for Denominator and Confidence) and ``value``.
    Column names are matched whatever their case (``OBS_VALUE`` for ``value``).

Each (area, period, variable) becomes a *survey estimate*: the rate (the observation's value), its
denominator (the observation's denominator; derived as Numerator ÷ Variable × 100 when the file
has none, and said so), the numerator and the published 95% half-width (``survey_estimates``).
The markers are kept as words and never turned into numbers: ``*`` in ``Conf`` (sample 3-9) keeps
the estimate, flagged *unreliable*, with no interval; ``-`` (or a blank) is *missing*; ``!``
(sample 0-2, not published) is *withheld*. Periods are rolling years (:mod:`geo_cs.periods`).

District codes are stored on the edition they are of (``lad2020``, ``lad2021``): stated by the
API's ``geography_type`` ("as of April 2021"), otherwise the first edition in which all of them
are in use by the district code history (:func:`geo_cs.district_codes.district_edition`).
Counties (E10) go to the county set of that edition, regions (E12) to ``rgn2019``.

Example
-------
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.ingest.survey import survey_shape
>>> survey_shape(boundaries_dir() / "demo" / "indicators" / "aps_employment_rate_la_2019.csv")
'nomis_web'
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from geo_cs.district_codes import district_edition
from geo_cs.errors import InputError, NotFoundError
from geo_cs.geography import registry
from geo_cs.ingest.csvfile import read_csv_header, read_csv_text, read_text, recoding_note
from geo_cs.panels import drop_prepared
from geo_cs.periods import Period, parse_rolling_year
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store

SurveyShape = Literal["nomis_web", "nomis_api"]

#: The id every Annual Population Survey file is stored under: a new download of other periods
#: extends the same series (observations of a period are replaced, as for any indicator).
SOURCE_ID = "aps"
SOURCE_TITLE = "Annual Population Survey (Office for National Statistics, via Nomis)"
PUBLISHER = "Office for National Statistics"
LICENCE = "Open Government Licence v3.0"

#: The APS variables geo-cs names; any other is named from its label (:func:`_measure_name`).
KNOWN_VARIABLES = {
    "employment rate": "employment_rate",
    "unemployment rate": "unemployment_rate",
    "% who are economically inactive": "inactivity_rate",
    "economic inactivity rate": "inactivity_rate",
}

#: What Nomis's markers mean (its footers say the same); reliability words stored and shown.
MARKERS = {
    "*": "unreliable",   # estimate and interval unreliable: group sample size 3-9
    "-": "missing",      # these figures are missing
    "": "missing",
    "!": "withheld",     # not available: sample size zero or disclosive (0-2)
    "~": "withheld",
    "#": "withheld",
}
MARKER_WORDS = {
    "unreliable": "unreliable (survey sample of 3 to 9 people)",
    "missing": "missing (not published)",
    "withheld": "withheld by ONS (sample of 0 to 2 people)",
}

#: API measures_name -> the estimate's part.
API_MEASURES = {"variable": "rate", "numerator": "numerator", "denominator": "denominator",
                "confidence": "half_width"}

_GSS = re.compile(r"^[EWSNK]\d{8}$")
_AS_OF = re.compile(r"as of \w+ (\d{4})", re.IGNORECASE)
_LOOK_AHEAD = 40   # lines of a web download searched for its header


# -- recognising the shape ------------------------------------------------------------------

def survey_shape(path: str | Path) -> SurveyShape | None:
    """``nomis_web`` or ``nomis_api`` when the file has one of the two shapes, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    header = {c.strip().lower() for c in read_csv_header(path)}
    if {"date", "geography_code", "measures_name"} <= header and header & {"value", "obs_value"}:
        return "nomis_api"
    with open(path, "rb") as fh:
        head = fh.read(16384).decode("utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(head)))[:_LOOK_AHEAD]
    if any(len(r) >= 2 and r[0].strip().lower() == "area" and r[1].strip().lower() == "mnemonic"
           for r in rows):
        return "nomis_web"
    return None


# -- the long table of estimates ------------------------------------------------------------

#: Columns of the table both readers return (one row per area, period and variable).
ESTIMATE_COLUMNS = ["code", "name", "area_type", "period_id", "measure", "label", "rate",
                    "numerator", "denominator", "half_width", "reliability", "marker",
                    "denominator_derived", "line"]


@dataclass
class SurveyReport:
    source_id: str
    source: str
    shape: str
    rows_read: int = 0
    estimates: int = 0
    measures: dict[str, int] = field(default_factory=dict)
    periods: list[str] = field(default_factory=list)
    period_labels: list[str] = field(default_factory=list)
    sets: dict[str, int] = field(default_factory=dict)      # set -> areas
    edition: str = ""                                       # which districts, and why
    duplicates_dropped: int = 0
    duplicates_note: str = ""
    reliability: dict[str, int] = field(default_factory=dict)  # unreliable/missing/withheld -> n
    markers: dict[str, str] = field(default_factory=dict)  # marker -> the footer's words
    intervals: str = ""                                     # published or not
    denominators: str = ""                                  # published or derived
    notes: list[str] = field(default_factory=list)
    recoded_lines: int = 0
    ingest_id: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        periods = (", ".join(self.period_labels) if len(self.period_labels) <= 4 else
                   f"{self.period_labels[0]} … {self.period_labels[-1]} ({len(self.periods)} rolling years)")
        out = [f"{self.source_id}: {self.rows_read:,} rows read from {self.source} "
               f"({'Nomis web download' if self.shape == 'nomis_web' else 'Nomis API, long form'}); "
               f"{self.estimates:,} survey estimates written for {periods}"]
        out += [f"  {m}: {n:,}" for m, n in self.measures.items()]
        out.append("  areas: " + ", ".join(f"{n:,} in {s}" for s, n in self.sets.items()))
        if self.edition:
            out.append(f"  district codes: the {self.edition}")
        if self.duplicates_dropped:
            out.append(f"  {self.duplicates_note}")
        if self.reliability:
            out.append("  kept as words, not numbers: " + ", ".join(
                f"{n:,} {MARKER_WORDS.get(k, k)}" for k, n in sorted(self.reliability.items())))
        for marker, words in self.markers.items():
            out.append(f"  the file's footer: {marker!r} = {words}")
        out.append(f"  intervals: {self.intervals}")
        out.append(f"  denominators: {self.denominators}")
        out += [f"  {note}" for note in self.notes]
        if note := recoding_note(self.recoded_lines):
            out.append(f"  {note}")
        return out


def _measure_name(label: str) -> str:
    text = label.strip().lower()
    for start, name in KNOWN_VARIABLES.items():
        if text.startswith(start):
            return name
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "estimate"


def _number(text: str, path: Path, line: int, column: str) -> tuple[float | None, str | None]:
    """A cell as a number, or (None, marker) for one of Nomis's markers; InputError otherwise."""
    raw = text.strip().replace(",", "")
    if raw in MARKERS:
        return None, raw
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise InputError(
            f"{path}, line {line}, column {column!r}: {text!r} is not a number nor one of the "
            f"survey's markers ({', '.join(repr(m) for m in MARKERS if m)})")
    return value, None


def _estimate(path: Path, line: int, rate: tuple[float | None, str | None],
              numerator: tuple[float | None, str | None], denominator: tuple[float | None, str | None],
              half_width: tuple[float | None, str | None] | None) -> dict:
    """One estimate's numbers and reliability from its cells (see the module doc)."""
    markers = [m for m in (rate[1], numerator[1], denominator[1]) if m is not None]
    if rate[0] is None:
        # no rate: missing or withheld, whatever else the row holds
        word = MARKERS[markers[0]] if markers else "missing"
        return {"rate": None, "numerator": None, "denominator": None, "half_width": None,
                "reliability": word, "marker": rate[1] if rate[1] is not None else markers[0]}
    if rate[0] > 100:
        raise InputError(f"{path}, line {line}: the rate {rate[0]} is over 100%")
    reliability, marker, hw = None, None, None
    if half_width is not None:
        hw, hw_marker = half_width
        if hw_marker is not None:
            reliability, marker = MARKERS[hw_marker], hw_marker
            if reliability == "missing":   # a rate without its interval: no interval published
                reliability, marker = None, None
    num, den = numerator[0], denominator[0]
    if num is not None and den is not None and num > den:
        raise InputError(f"{path}, line {line}: the numerator {num:,.0f} is larger than the "
                         f"denominator {den:,.0f}")
    return {"rate": rate[0], "numerator": num, "denominator": den, "half_width": hw,
            "reliability": reliability, "marker": marker}


def read_nomis_web(path: Path, report: SurveyReport) -> pd.DataFrame:
    """The estimates of a Nomis web download (one or more ``Date`` blocks)."""
    source = read_text(path)
    report.recoded_lines = source.recoded_lines
    reader = csv.reader(io.StringIO(source.text, newline=""))
    rows: list[dict] = []
    period: Period | None = None
    header: list[str] | None = None
    columns: dict[str, int] = {}
    label = ""
    in_footer = False
    block_rows = 0
    try:
        for record in reader:
            line = reader.line_num
            cells = [c.strip() for c in record]
            if not any(cells):
                # a blank line under the header comes before the areas; one after them ends
                # the block (then the footer, or the next Date)
                if header is not None and block_rows:
                    in_footer, header = True, None
                continue
            first = cells[0]
            if first.rstrip(": ").lower() == "date" or first.lower().startswith("date "):
                text = cells[1] if len(cells) > 1 else ""
                try:
                    period = parse_rolling_year(text)
                except ValueError as exc:
                    raise InputError(f"{path}, line {line}: the Date {text!r} is not a rolling year "
                                     f"as the Annual Population Survey publishes ({exc})") from None
                in_footer = False
                continue
            if first.lower() == "area" and len(cells) > 1 and cells[1].lower() == "mnemonic":
                header, block_rows = cells, 0
                columns, label = _web_columns(cells, path, line)
                in_footer = False
                continue
            if header is None or in_footer:
                if in_footer and first in MARKERS and first and len(cells) > 1:
                    report.markers[first] = " ".join(c for c in cells[1:] if c)
                elif in_footer and not first and report.markers and len(cells) > 1:
                    last = list(report.markers)[-1]   # a note continued on the next line
                    report.markers[last] += " " + " ".join(c for c in cells[1:] if c)
                continue
            if period is None:
                raise InputError(f"{path}, line {line}: an area before any 'Date :' line; is this "
                                 "a Nomis download of the Annual Population Survey?")
            if len(cells) != len(header):
                raise InputError(f"{path}, line {line}: {len(cells)} fields where the header has "
                                 f"{len(header)} (is the file cut short?)")
            area_type, _, name = first.rpartition(":")
            code = cells[columns["code"]]
            if not _GSS.match(code):
                raise InputError(f"{path}, line {line}, column 'mnemonic': {code!r} is not an "
                                 "area code (expected a GSS code such as E08000003)")
            hw = (_number(cells[columns["conf"]], path, line, "Conf") if "conf" in columns else None)
            est = _estimate(
                path, line, _number(cells[columns["rate"]], path, line, label),
                _number(cells[columns["numerator"]], path, line, "Numerator") if "numerator" in columns
                else (None, None),
                _number(cells[columns["denominator"]], path, line, "Denominator") if "denominator" in columns
                else (None, None),
                hw)
            rows.append({"code": code, "name": name.strip(), "area_type": area_type.strip(),
                         "period_id": period.period_id, "period": period,
                         "measure": _measure_name(label), "label": label,
                         "denominator_derived": False, "line": line, **est})
            block_rows += 1
    except csv.Error as exc:
        raise InputError(f"{path}, line {reader.line_num}: not a readable CSV file: {exc}") from None
    if not rows:
        raise InputError(f"{path}: a Nomis web download with no area rows under its header")
    report.rows_read = len(rows)
    report.intervals = ("the published 95% confidence intervals (Conf)" if "conf" in columns
                        else "none in this download: figures say 'no interval published'")
    report.denominators = "as published (Denominator)"
    return pd.DataFrame(rows)


def _web_columns(header: list[str], path: Path, line: int) -> tuple[dict[str, int], str]:
    lower = [h.lower() for h in header]
    columns = {"code": 1}
    for name in ("numerator", "denominator", "conf"):
        if lower.count(name) > 1:
            raise InputError(f"{path}, line {line}: more than one {header[lower.index(name)]!r} "
                             "column: download one variable per file")
        if name in lower:
            columns[name] = lower.index(name)
    values = [i for i, h in enumerate(lower) if h and h not in ("area", "mnemonic", "numerator",
                                                                "denominator", "conf")]
    if len(values) != 1:
        raise InputError(
            f"{path}, line {line}: expected one rate column beside Area, mnemonic, Numerator, "
            f"Denominator and Conf, found {len(values)} ({', '.join(header[i] for i in values) or 'none'}):"
            " download one variable per file")
    columns["rate"] = values[0]
    return columns, header[values[0]]


def _api_column(columns: dict[str, str], path: Path, *names: str, required: bool = True) -> str | None:
    for name in names:
        if name in columns:
            return columns[name]
    if required:
        raise InputError(f"{path}: no {names[0]!r} column (the Nomis API's long form has "
                         "date, geography_code, variable_name, measures_name and value)")
    return None


def read_nomis_api(path: Path, report: SurveyReport) -> tuple[pd.DataFrame, int | None]:
    """The estimates of a Nomis API long table, and the district edition it states (if any)."""
    frame = read_csv_text(path)
    report.recoded_lines = int(frame.attrs.get("recoded_lines", 0))
    report.rows_read = len(frame)
    cols = {c.lower(): c for c in frame.columns}
    date_col = _api_column(cols, path, "date")
    date_name = _api_column(cols, path, "date_name", required=False)
    code_col = _api_column(cols, path, "geography_code")
    name_col = _api_column(cols, path, "geography_name", required=False)
    type_col = _api_column(cols, path, "geography_type", required=False)
    var_col = _api_column(cols, path, "variable_name")
    meas_col = _api_column(cols, path, "measures_name")
    value_col = _api_column(cols, path, "value", "obs_value")
    lines = np.arange(len(frame)) + 2
    parts = frame[meas_col].str.strip().str.lower().map(API_MEASURES)
    unknown = frame.loc[parts.isna(), meas_col].unique().tolist()
    if unknown:
        report.notes.append(f"rows of measures {', '.join(map(repr, unknown))} skipped (geo-cs reads "
                            "Variable, Numerator, Denominator and Confidence)")
    if "rate" not in set(parts.dropna()):
        raise InputError(f"{path}: no rows with measures_name 'Variable' (the rate)")
    bad = ~frame[code_col].str.strip().str.match(_GSS.pattern)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}, line {lines[i]}, column {code_col!r}: {frame[code_col].iloc[i]!r} "
                         "is not an area code (expected a GSS code such as E08000003)")
    periods: dict[tuple[str, str], Period] = {}
    date_cols = [date_col] + ([date_name] if date_name else [])
    for key in frame[date_cols].drop_duplicates().itertuples(index=False):
        date_text, name_text = key[0], (key[1] if date_name else "")
        try:
            p = parse_rolling_year(str(date_text).strip()[:7])
            if name_text and parse_rolling_year(name_text) != p:
                raise ValueError(f"date {date_text!r} and date_name {name_text!r} disagree")
        except ValueError as exc:
            raise InputError(f"{path}, column {date_col!r}: {exc}") from None
        periods[(date_text, name_text)] = p
    keyed = frame.assign(
        period=[periods[(d, n if date_name else "")] for d, n in
                zip(frame[date_col], frame[date_name] if date_name else frame[date_col], strict=True)],
        part=parts, line=lines)
    keyed = keyed[keyed["part"].notna()]
    key_cols = [code_col, "period", var_col, "part"]
    dup = keyed.duplicated(key_cols, keep=False)
    if dup.any():
        first_dup = keyed[dup].sort_values("line")
        conflicting = first_dup.groupby(key_cols, sort=False)[value_col].nunique()
        if (conflicting > 1).any():
            k = conflicting[conflicting > 1].index[0]
            rows_of = first_dup[(first_dup[code_col] == k[0]) & (first_dup[var_col] == k[2])
                                & (first_dup["part"] == k[3])]
            raise InputError(f"{path}, lines {', '.join(map(str, rows_of['line'].head(2)))}: "
                             f"{k[0]} has two different {k[3]} values for {k[1].label}")
        report.duplicates_dropped = int(dup.sum() - keyed[dup].drop_duplicates(key_cols).shape[0])
        report.duplicates_note = (f"{report.duplicates_dropped:,} repeated rows with the same values "
                                  "kept once")
        keyed = keyed.drop_duplicates(key_cols)
    wide = keyed.pivot(index=[code_col, "period", var_col], columns="part", values=value_col)
    first_line = keyed.groupby([code_col, "period", var_col])["line"].min().to_dict()
    first_rows = keyed.drop_duplicates(code_col)
    names = dict(zip(first_rows[code_col], first_rows[name_col] if name_col else first_rows[code_col],
                     strict=True))
    types = dict(zip(first_rows[code_col], first_rows[type_col] if type_col else [""] * len(first_rows),
                     strict=True))
    rows = []
    for key, cells in zip(wide.index, wide.to_dict("records"), strict=True):
        code, period, variable = key
        line = int(first_line[key])

        def cell(part: str, column: str, _cells=cells, _line=line) -> tuple[float | None, str | None]:
            text = _cells.get(part)
            if text is None or (isinstance(text, float) and np.isnan(text)):
                return None, None
            return _number(str(text), path, _line, column)

        rate, num = cell("rate", "value (Variable)"), cell("numerator", "value (Numerator)")
        den = cell("denominator", "value (Denominator)")
        derived = False
        if den[0] is None and num[0] is not None and rate[0]:
            den, derived = (num[0] / rate[0] * 100, None), True
        if rate[0] is None and rate[1] is None:
            rate = (None, "")          # a blank value: missing
        hw = cell("half_width", "value (Confidence)") if "half_width" in wide.columns else None
        est = _estimate(path, line, rate, num, den, hw)
        rows.append({"code": code.strip(), "name": names[code], "area_type": types[code],
                     "period_id": period.period_id, "period": period,
                     "measure": _measure_name(variable), "label": variable.strip(),
                     "denominator_derived": derived and est["rate"] is not None, "line": line, **est})
    out = pd.DataFrame(rows)
    has_conf = "half_width" in wide.columns
    report.intervals = ("the published 95% confidence intervals (Confidence)" if has_conf else
                        "none in this extract (no Confidence rows): figures say 'no interval published'")
    has_den = "denominator" in wide.columns
    report.denominators = (
        "as published (Denominator)" if has_den else
        "derived as Numerator ÷ Variable × 100 (the extract has no Denominator rows); the rate is "
        "published to 0.1 points and the numerator to the nearest 100, so a derived denominator "
        "is approximate")
    stated = None
    if type_col:
        years = {int(m.group(1)) for t in frame[type_col].unique() if (m := _AS_OF.search(str(t)))}
        if len(years) > 1:
            raise InputError(f"{path}, column {type_col!r}: areas of more than one edition "
                             f"({', '.join(map(str, sorted(years)))})")
        stated = next(iter(years), None)
    return out, stated


# -- sets and the write ---------------------------------------------------------------------

def _set_of(code: str, edition: int) -> str | None:
    """The set a survey area's code belongs to: districts and counties of the edition,
    regions; None for other areas (countries, GB), which the report lists."""
    prefix = code[:3]
    if prefix in ("E06", "E07", "E08", "E09", "W06", "S12"):
        return f"lad{edition}"
    if prefix == "E10":
        return f"cty{edition}"
    if prefix == "E12":
        return "rgn2019"
    return None


def _dedupe_areas(estimates: pd.DataFrame, path: Path, report: SurveyReport) -> pd.DataFrame:
    """A unitary authority listed as ``lacu:`` and ``ladu:`` is kept once; differing rows are
    refused naming both lines."""
    key = ["code", "period_id", "measure"]
    values = ["rate", "numerator", "denominator", "half_width", "reliability"]
    dup = estimates.duplicated(key, keep=False)
    if not dup.any():
        return estimates
    rows = estimates[dup].copy()
    signature = rows[values].astype(object).fillna("").astype(str).agg("|".join, axis=1)
    differs = rows.assign(sig=signature).groupby(key)["sig"].nunique()
    if (differs > 1).any():
        code, period_id, _ = differs[differs > 1].index[0]
        both = rows[(rows["code"] == code) & (rows["period_id"] == period_id)]
        raise InputError(
            f"{path}, lines {' and '.join(str(x) for x in both['line'].head(2))}: {code} "
            f"({both['name'].iloc[0]}) is listed twice with different figures")
    kept = estimates.drop_duplicates(key, keep="last")   # the ladu: row names the district
    dropped = len(estimates) - len(kept)
    types = sorted({t for t in rows["area_type"] if t})
    report.duplicates_dropped = dropped
    report.duplicates_note = (
        f"{dropped:,} areas listed twice ({' and '.join(t + ':' for t in types) or 'twice'}, the "
        "unitary authorities) with the same figures, kept once")
    return kept.sort_values(["measure", "period_id", "code"]).reset_index(drop=True)


def read_survey(store: Store, path: str | Path, shape: SurveyShape | None = None,
                set_edition: int | None = None) -> tuple[pd.DataFrame, SurveyReport]:
    """The estimates of a survey file (ESTIMATE_COLUMNS plus ``set_id``), validated, and the
    report so far; nothing is written. ``set_edition`` forces the district edition."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    shape = shape or survey_shape(path)
    if shape is None:
        raise InputError(f"{path}: not a Nomis download of the Annual Population Survey (neither "
                         "the web download's 'Area, mnemonic' header nor the API's long form)")
    report = SurveyReport(source_id=SOURCE_ID, source=str(path), shape=shape)
    stated = None
    if shape == "nomis_web":
        estimates = read_nomis_web(path, report)
    else:
        estimates, stated = read_nomis_api(path, report)
    estimates = _dedupe_areas(estimates, path, report)
    districts = sorted({c for c in estimates["code"] if _set_of(c, 0) == "lad0"})
    data_year = max(p.data_year for p in estimates["period"])
    if set_edition is not None:
        edition_year, why = set_edition, "as asked (--district-edition)"
    else:
        try:
            found = district_edition(store, districts, stated=stated, data_year=data_year)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        edition_year, why = found.year, found.why
    report.edition = f"{edition_year} edition: {why}"
    estimates["set_id"] = [_set_of(c, edition_year) for c in estimates["code"]]
    other = estimates[estimates["set_id"].isna()]
    if len(other):
        report.notes.append(
            f"{other['code'].nunique():,} areas of other types not stored (no geography set for "
            f"them): {', '.join(sorted(other['code'].unique())[:8])}")
        estimates = estimates[estimates["set_id"].notna()]
    reg = registry()
    unknown = sorted(set(estimates["set_id"]) - set(reg.sets))
    if unknown:
        raise InputError(f"{path}: geo-cs has no geography set {', '.join(unknown)} for these codes; "
                         "add it to boundaries/registry.yaml")
    return estimates.reset_index(drop=True), report


def ingest_survey(store: Store, path: str | Path, *, shape: SurveyShape | None = None,
                  set_edition: int | None = None, progress: Progress | None = None) -> SurveyReport:
    """Read a survey file (:func:`read_survey`) and store it as one transaction.

    Estimates already stored for the same indicator, set and period are replaced; the sets'
    prepared analysis panels are dropped. On any error nothing is written.
    """
    progress = progress or SilentProgress()
    path = Path(path)
    progress.note(f"reading {path.name} as survey estimates")
    estimates, report = read_survey(store, path, shape, set_edition)
    reg = registry()
    estimates["indicator_id"] = SOURCE_ID + "." + estimates["measure"]
    with store.transaction():
        ingest_id = store.start_ingest("indicator", [str(path)])
        for set_id in sorted(estimates["set_id"].unique()):
            store.register_set(reg.get(set_id))
            areas = estimates[estimates["set_id"] == set_id].drop_duplicates("code")
            store.register_codes(reg.get(set_id), areas["code"].tolist(), areas["name"].tolist(),
                                 str(path), ingest_id)
            report.sets[set_id] = len(areas)
        for p in {p.period_id: p for p in estimates["period"]}.values():
            store.sql("INSERT INTO periods VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                      [p.period_id, p.kind, p.label, p.start, p.end, p.data_year])
        labels = estimates.drop_duplicates(["indicator_id", "set_id"])
        for row in labels.itertuples(index=False):
            store.sql("INSERT OR REPLACE INTO indicators VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [row.indicator_id, SOURCE_ID, row.measure, "survey", "%", row.label,
                       row.set_id, SOURCE_TITLE, PUBLISHER, LICENCE, path.name, 1.0])

        def column(name: str, kind: pa.DataType) -> pa.Array:
            return pa.array(estimates[name].tolist(), kind, from_pandas=True)

        table = pa.table({
            "indicator_id": column("indicator_id", pa.string()),
            "set_id": column("set_id", pa.string()),
            "code": column("code", pa.string()),
            "period_id": column("period_id", pa.string()),
            "value": column("rate", pa.float64()),
            "denominator": column("denominator", pa.float64()),
            "status": column("marker", pa.string()),
            "numerator": column("numerator", pa.float64()),
            "half_width": column("half_width", pa.float64()),
            "reliability": column("reliability", pa.string()),
            "denominator_derived": column("denominator_derived", pa.bool_()),
        })
        store.con.register("new_survey", table)
        try:
            for target in ("observations", "survey_estimates"):
                # the table name is one of two literals, never input
                store.sql(f"""
                    DELETE FROM {target} o
                    USING (SELECT DISTINCT indicator_id, set_id, period_id FROM new_survey) n
                    WHERE o.indicator_id = n.indicator_id AND o.set_id = n.set_id
                      AND o.period_id = n.period_id""")
            store.sql("""INSERT INTO observations SELECT indicator_id, set_id, code, period_id,
                         value, denominator, status, ?, NULL FROM new_survey""", [ingest_id])
            store.sql("""INSERT INTO survey_estimates SELECT indicator_id, set_id, code, period_id,
                         numerator, half_width, reliability, denominator_derived, ?
                         FROM new_survey""", [ingest_id])
        finally:
            store.con.unregister("new_survey")
        for set_id in report.sets:
            drop_prepared(store, set_id)
        report.estimates = len(estimates)
        counts = estimates["indicator_id"].value_counts().sort_index()
        report.measures = {k: int(v) for k, v in counts.items()}
        periods = sorted({p for p in estimates["period"]}, key=lambda p: p.start)
        report.periods = [p.period_id for p in periods]
        report.period_labels = [p.label for p in periods]
        report.reliability = {k: int(v) for k, v in estimates["reliability"].dropna().value_counts().items()}
        report.ingest_id = ingest_id
        store.finish_ingest(ingest_id, report.to_dict())
    return report
