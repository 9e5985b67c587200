"""Monthly periods, recognised columns, derived denominators and absent rows (issue 15), on
fixtures the tests build: a 3x2 grid of LSOA 2011 squares and files in the shapes Nomis,
Stat-Xplore and the long layout publish."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import GRID_CODES, run_cli, snapshot
from fastapi.testclient import TestClient
from statsmodels.stats.proportion import proportion_confint

from geo_cs.analysis import MethodParams, Panel, RateSource, group_rates, resolve_baseline, worst_cohort
from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.errors import InputError
from geo_cs.ingest import ingest_boundaries, ingest_indicator
from geo_cs.ingest.indicators import spec_from_dict, spec_from_options
from geo_cs.layers import area_values, resolve_measure
from geo_cs.periods import infer_kind, month, parse_period, quarter, select_periods
from geo_cs.store import Store


@pytest.fixture
def grid_store(tmp_path: Path, store: Store, grid) -> Store:
    path = tmp_path / "grid.geojson"
    grid.to_file(path)
    ingest_boundaries(store, [path])
    return store


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _months(first: tuple[int, int], n: int) -> list[tuple[int, int]]:
    y, m = first
    out = []
    for _ in range(n):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def nomis_long(months: list[tuple[int, int]], *, skip: set[tuple[str, int, int]] = frozenset(),
               date_form: str = "{y}-{m:02d}-01") -> str:
    """A Nomis-style long file: ``date,lsoa11cd,lsoa11nm,measure,value`` (claimant count)."""
    lines = ["date,lsoa11cd,lsoa11nm,measure,value"]
    for i, (y, m) in enumerate(months):
        for j, code in enumerate(GRID_CODES):
            if (code, y, m) in skip:
                continue
            lines.append(f"{date_form.format(y=y, m=m)},{code},Testtown {j:03d}A,Claimant count,"
                         f"{10 + 7 * j + i}")
    return "\n".join(lines) + "\n"


# -- periods ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["2017-10", "2017-10-01", "October 2017", "Oct-17", "2017m10",
                                  "2017/10/01", "201710", "2017 Oct", "2017-10-12T00:00:00"])
def test_every_usual_way_of_writing_a_month(text):
    p = parse_period(text, "month")
    assert (p.period_id, p.kind, p.label, p.start, p.end) == (
        "2017m10", "month", "October 2017", date(2017, 10, 1), date(2017, 10, 31))


def test_a_quarter_month_is_a_month_when_the_frequency_says_so():
    assert parse_period("2017-11", "month").period_id == "2017m11"
    assert parse_period("2017-11").period_id == "2017-11"          # the DWP quarter, as before
    assert parse_period("2017m11").kind == "month"                   # a month id is always a month


def test_frequency_is_inferred_per_file_not_per_value():
    # a monthly series has Feb/May/Aug/Nov too: the odd months make the whole file monthly
    assert infer_kind(["2017-10", "2017-11", "2017-12"]) == "month"
    assert infer_kind(["2017-10"]) == "month"
    assert infer_kind(["2006-05", "2006-08", "2006-11"]) is None
    assert infer_kind(["2006-03", "2006-05", "2006-08"]) is None     # a slip in a quarterly file


def test_period_ranges_in_the_series_own_frequency():
    months = [month(y, m) for y, m in _months((2015, 1), 15)]
    assert select_periods("2015-01..2015-12", months) == tuple(f"2015m{m:02d}" for m in range(1, 13))
    assert select_periods("2015-11..2016-02", months) == ("2015m11", "2015m12", "2016m01", "2016m02")
    assert select_periods("2015-03,2015m04", months) == ("2015m03", "2015m04")
    quarters = [quarter(2006, 5), quarter(2006, 8), quarter(2006, 11), quarter(2007, 2)]
    assert select_periods("2006-05..2007-02", quarters) == ("2006-05", "2006-08", "2006-11", "2007-02")
    with pytest.raises(ValueError, match="before"):
        select_periods("2015-12..2015-01", months)
    with pytest.raises(ValueError, match="'spring'"):
        select_periods("spring..2015-02", months)


# -- monthly ingest in every layout -------------------------------------------------------------

def test_nomis_style_long_file_with_monthly_dates(tmp_path: Path, grid_store: Store):
    """The issue's file: date = 2017-10-01, with a spec naming the date column and nothing
    about frequency: it is monthly (it has October), labelled and ordered as months."""
    path = _csv(tmp_path, "cc.csv", nomis_long(_months((2017, 10), 14)))
    spec = spec_from_dict({"id": "cc", "layout": "long", "geography": "lsoa2011",
                           "period": {"column": "date"}, "default_kind": "count"})
    report = ingest_indicator(grid_store, path, spec)
    text = "\n".join(report.lines())
    assert report.observations == 14 * 6
    assert "periods: monthly (inferred" in text
    assert "code = 'lsoa11cd'" in text                    # recognised, and said so
    periods = grid_store.sql("SELECT period_id, kind, label FROM periods ORDER BY start_date").fetchall()
    assert periods[0] == ("2017m10", "month", "October 2017")
    assert periods[1] == ("2017m11", "month", "November 2017")   # not the quarter 2017-11
    assert periods[-1] == ("2018m11", "month", "November 2018")


@pytest.mark.parametrize(("header", "code_col", "period_col"), [
    ("date,lsoa11cd,measure,value", "lsoa11cd", "date"),
    ("DATE,LSOA11CD,measure,value", "LSOA11CD", "DATE"),
    ("period,GEOGRAPHY_CODE,measure,value", "GEOGRAPHY_CODE", "period"),
    ("period,geography code,measure,value", "geography code", "period"),
    ("date,area_code,measure,value", "area_code", "date"),
])
def test_long_layout_recognises_the_usual_columns(tmp_path, grid_store, header, code_col, period_col):
    rows = [f"2017-{m:02d}-01,{code},claimants,{m}" for m in (9, 10) for code in GRID_CODES]
    path = _csv(tmp_path, "x.csv", header + "\n" + "\n".join(rows) + "\n")
    report = ingest_indicator(grid_store, path, spec_from_options(path, "long", "lsoa2011"))
    assert report.columns["code"] == code_col and report.columns["period"] == period_col
    assert report.periods == ["2017m09", "2017m10"]


def test_columns_given_on_the_command_line_win(tmp_path, grid_store):
    text = "month,when,area_code,lsoa11cd,measure,value\n" + "".join(
        f"x,2017-0{m}-01,{code},E99999999,claimants,1\n" for m in (3, 4) for code in GRID_CODES)
    path = _csv(tmp_path, "x.csv", text)
    report = ingest_indicator(grid_store, path, spec_from_options(
        path, "long", "lsoa2011", columns={"period_column": "when", "code_column": "area_code"}))
    assert report.recognised_columns == [] and report.periods == ["2017m03", "2017m04"]


def test_nomis_bulk_monthly_with_only_quarter_months_needs_the_frequency(tmp_path, grid_store):
    header = "DATE,DATE_NAME,GEOGRAPHY_CODE,GEOGRAPHY_NAME,MEASURES_NAME,OBS_VALUE,OBS_STATUS\n"
    rows = "".join(f"2018-{m:02d},{name} 2018,{code},x,Value,{5 + m},A\n"
                   for m, name in ((2, "February"), (5, "May")) for code in GRID_CODES)
    path = _csv(tmp_path, "nomis.csv", header + rows)
    quarterly = ingest_indicator(grid_store, path, spec_from_options(
        path, "nomis", "lsoa2011", source_id="ccq", measure="Value"))
    assert quarterly.periods == ["2018-02", "2018-05"]             # read as the DWP quarters
    monthly = ingest_indicator(grid_store, path, spec_from_options(
        path, "nomis", "lsoa2011", source_id="ccm", measure="Value", frequency="month"))
    assert monthly.periods == ["2018m02", "2018m05"]
    assert "the spec's frequency = 'month'" in "\n".join(monthly.lines())


def test_statxplore_table_with_months_across(tmp_path, grid_store):
    text = ('"Universal Credit: People on Universal Credit"\n"Month"\n'
            '"","Oct-17","Nov-17","Dec-17"\n"National - Regional - LA - OAs"\n'
            + "".join(f'"{code} : Testtown","{i}","{i + 1}",".."\n' for i, code in enumerate(GRID_CODES))
            + '"Total","1","2","3"\n\n"Statistical Disclosure Control"\n')
    path = _csv(tmp_path, "sx.csv", text)
    report = ingest_indicator(grid_store, path, spec_from_options(
        path, "statxplore", "lsoa2011", source_id="uc", measure="people"))
    assert report.periods == ["2017m10", "2017m11", "2017m12"]
    assert report.suppressed == {"..": 6}
    labels = grid_store.sql("SELECT label FROM periods WHERE kind = 'month' ORDER BY start_date").fetchall()
    assert [r[0] for r in labels] == ["October 2017", "November 2017", "December 2017"]


# -- wrong set, absent rows, suppression --------------------------------------------------------

def test_ward_codes_into_lsoa2011_are_refused_naming_the_set_they_belong_to(tmp_path, grid_store):
    text = "date,wd15cd,measure,value\n" + "".join(
        f"2017-10-01,E0500{i:04d},claimants,5\n" for i in range(1, 8))
    path = _csv(tmp_path, "wards.csv", text)
    before = snapshot(grid_store)
    with pytest.raises(InputError) as exc:
        ingest_indicator(grid_store, path, spec_from_options(path, "long", "lsoa2011"))
    message = str(exc.value)
    assert "wards.csv, row 2, column 'wd15cd'" in message
    assert "'E05000001' is not a lsoa2011 code" in message
    assert "E05000001, E05000002, E05000003, E05000004, E05000005 …" in message
    assert "electoral ward codes (E05…)" in message
    assert snapshot(grid_store) == before


def test_lsoa2021_codes_into_lsoa2011_name_the_official_list_that_holds_them(tmp_path, grid_store):
    path = _csv(tmp_path, "x.csv", "period,area_code,measure,value\n2017-10,E01035000,claimants,5\n")
    with pytest.raises(InputError, match="E01035000 is on the official list of lsoa2021"):
        ingest_indicator(grid_store, path, spec_from_options(path, "long", "lsoa2011"))


@pytest.mark.parametrize(("absent", "stored"), [("unknown", None), ("zero", 0.0)])
def test_absent_rows_are_unknown_by_default_or_zero_when_the_spec_says(tmp_path, grid_store, absent, stored):
    gone = {(GRID_CODES[0], 2017, 11)}   # no claimants that month: left out of the download
    path = _csv(tmp_path, "cc.csv", nomis_long(_months((2017, 10), 3), skip=gone))
    report = ingest_indicator(grid_store, path, spec_from_options(path, "long", "lsoa2011",
                                                                 source_id="cc", absent=absent))
    value = grid_store.sql("SELECT value FROM observations WHERE code = ? AND period_id = '2017m11'",
                           [GRID_CODES[0]]).fetchone()
    assert (value[0] if value else None) == stored
    assert report.absent_rows == 1
    assert ("stored as 0" if absent == "zero" else "left unknown") in "\n".join(report.lines())


def test_suppressed_cells_in_a_monthly_file(tmp_path, grid_store):
    text = "date,lsoa11cd,measure,value\n" + "".join(
        f"2017-10-01,{code},claimants,{marker}\n" for code, marker in zip(GRID_CODES, ["..", "*", "-", "4", "5", "6"], strict=True))
    path = _csv(tmp_path, "x.csv", text)
    report = ingest_indicator(grid_store, path, spec_from_options(path, "long", "lsoa2011"))
    assert report.suppressed == {"..": 1, "*": 1, "-": 1}


def test_a_bad_month_names_file_row_column_and_value(tmp_path, grid_store):
    text = "date,lsoa11cd,measure,value\n2017-10-01,E01000001,claimants,1\n2017-13-01,E01000002,claimants,1\n"
    path = _csv(tmp_path, "x.csv", text)
    with pytest.raises(InputError, match=r"x.csv, row 3, column 'date': '2017-13-01' is not a period"):
        ingest_indicator(grid_store, path, spec_from_options(path, "long", "lsoa2011"))


# -- derived denominators -------------------------------------------------------------------------

def ward_style(tmp_path: Path, exact: bool) -> Path:
    """Counts with a rate per 100 rounded to 0.1 (a ward claimant file) — or the exact
    denominator, to compare with."""
    den = [812, 1490, 950, 2210, 1333, 640]
    lines = ["date,area_code,measure,value" + (",denominator" if exact else "")]
    for i, code in enumerate(GRID_CODES):
        count = 40 + 30 * i
        if exact:
            lines.append(f"2017-10-01,{code},claimants,{count},{den[i]}")
        else:
            lines.append(f"2017-10-01,{code},claimants,{count}")
            lines.append(f"2017-10-01,{code},claimant_rate,{round(100 * count / den[i], 1)}")
    return _csv(tmp_path, f"ward_{exact}.csv", "\n".join(lines) + "\n")


def test_denominator_derived_from_a_rounded_rate_is_marked_and_widens_the_interval(tmp_path, grid_store):
    derived_path = ward_style(tmp_path, exact=False)
    report = ingest_indicator(grid_store, derived_path, spec_from_options(
        derived_path, "long", "lsoa2011", source_id="wd", derive=["claimants=claimant_rate"]))
    assert "wd.claimants: denominator derived, count / claimant_rate × 100" in "\n".join(report.lines())
    assert grid_store.sql("SELECT rate_rounding FROM derived_denominators WHERE indicator_id = 'wd.claimants'"
                          ).fetchone() == (0.1,)
    den = grid_store.sql("SELECT denominator FROM observations WHERE indicator_id = 'wd.claimants' "
                         "AND code = ?", [GRID_CODES[0]]).fetchone()[0]
    assert den == pytest.approx(40 * 100 / 4.9)          # 40 / 812 = 4.93% published as 4.9
    exact_path = ward_style(tmp_path, exact=True)
    ingest_indicator(grid_store, exact_path, spec_from_options(exact_path, "long", "lsoa2011", source_id="ex"))
    groups = pd.DataFrame({"group": "all", "code": GRID_CODES})
    derived = group_rates(Panel(grid_store, RateSource("wd.claimants", "lsoa2011")), groups).iloc[0]
    exact = group_rates(Panel(grid_store, RateSource("ex.claimants", "lsoa2011")), groups).iloc[0]
    assert "derived at ingest" in derived["denominator_source"]
    assert derived["denominator_sd"] > 0 and "denominator_sd" not in exact
    # the rate agrees to the rounding, and its interval is wider than sampling alone gives it
    assert derived["rate"] == pytest.approx(exact["rate"], abs=0.05)
    assert derived["rate_high"] - derived["rate_low"] > exact["rate_high"] - exact["rate_low"]
    # by hand: each area's D = 100·C/r with r published to 0.1, so r is off by U(±0.05) (SD
    # 0.1/√12) and D by |dD/dr| = 100·C/r² times that; the areas' errors are independent
    counts = np.array([40 + 30 * i for i in range(6)])
    published = np.round(100 * counts / np.array([812, 1490, 950, 2210, 1333, 640]), 1)
    implied = 100 * counts / published
    sd = np.sqrt(np.sum((100 * counts / published**2 * 0.1 / np.sqrt(12)) ** 2))
    assert derived["denominator"] == pytest.approx(implied.sum(), rel=1e-12)
    assert derived["denominator_sd"] == pytest.approx(sd, rel=1e-3)
    # the exact group's interval is Wilson's (statsmodels); the derived one adds z·R·SD(D)/D to
    # each of Wilson's half-widths in quadrature
    low, high = proportion_confint(690, 7435, alpha=0.05, method="wilson")
    assert (exact["rate_low"], exact["rate_high"]) == pytest.approx((100 * low, 100 * high), abs=1e-9)
    rate = 100 * 690 / implied.sum()
    low, high = proportion_confint(690, implied.sum(), alpha=0.05, method="wilson")
    extra = 1.959964 * rate * sd / implied.sum()
    assert derived["rate_low"] == pytest.approx(rate - np.hypot(rate - 100 * low, extra), abs=1e-4)
    assert derived["rate_high"] == pytest.approx(rate + np.hypot(100 * high - rate, extra), abs=1e-4)
    # the denominator's half-range from ±0.05 points covers the true denominators
    true_total = 812 + 1490 + 950 + 2210 + 1333 + 640
    assert abs(derived["denominator"] - true_total) < 3 * derived["denominator_sd"] * np.sqrt(3)
    # each area's interval (the map's tooltips, tiles and items) is widened the same way: wider
    # than sampling alone gives the same count and denominator
    # (sampling alone: Wilson's interval from statsmodels, not from geo-cs)
    area = area_values(grid_store, resolve_measure(grid_store, "lsoa2011", "wd.claimants")).frame
    low, high = proportion_confint(area["count"], area["denominator"], alpha=0.05, method="wilson")
    assert ((area["value_high"] - area["value_low"]) > 100 * (high - low) + 1e-6).all()
    exact_area = area_values(grid_store, resolve_measure(grid_store, "lsoa2011", "ex.claimants")).frame
    low, high = proportion_confint(exact_area["count"], exact_area["denominator"], alpha=0.05, method="wilson")
    assert np.allclose(exact_area["value_low"], 100 * low) and np.allclose(exact_area["value_high"], 100 * high)
    assert (area["value_low"] <= area["value"]).all() and (area["value"] <= area["value_high"]).all()


def test_a_count_and_a_rate_in_separate_indicators_make_a_rate(tmp_path, grid_store):
    """IoD 2025's shape: counts in one file, the rate in another, no denominator anywhere."""
    counts = _csv(tmp_path, "n.csv", "code,n\n" + "".join(f"{c},{10 * (i + 1)}\n" for i, c in enumerate(GRID_CODES)))
    rates = _csv(tmp_path, "r.csv", "code,score\n" + "".join(f"{c},{0.05 * (i + 1):.3f}\n" for i, c in enumerate(GRID_CODES)))
    for path, measure, column, kind, scale in ((counts, "deprived", "n", "count", 1), (rates, "rate", "score", "rate", 100)):
        ingest_indicator(grid_store, path, spec_from_dict({
            "id": f"iod_{measure}", "layout": "wide", "geography": "lsoa2011", "code_column": "code",
            "period": {"edition": "IoD X", "data_year": 2022},
            "measures": [{"id": f"employment_{measure}", "column": column, "kind": kind, "scale": scale}]}))
    from geo_cs.analysis import rate_source
    source, notes = rate_source(grid_store, "iod_deprived.employment_deprived", "lsoa2011")
    assert source.denominator == "iod_rate.employment_rate" and "derived" in notes[0]
    panel = Panel(grid_store, source)
    rates_out = panel.area_rates()
    assert rates_out["denominator"].round(6).tolist() == [200.0] * 6   # 10 / 5% etc.
    # --count-is-rate on the rate alone no longer gives 0 rows: it takes the counts
    source, _ = rate_source(grid_store, "iod_rate.employment_rate", "lsoa2011", count_is_rate=True)
    assert source.counts == ["iod_deprived.employment_deprived"]
    groups = pd.DataFrame({"group": "all", "code": GRID_CODES})
    assert len(group_rates(Panel(grid_store, source), groups)) == 1


def test_a_rate_without_any_denominator_is_a_clear_error(tmp_path, grid_store):
    path = _csv(tmp_path, "r.csv", "code,score\n" + "".join(f"{c},0.1\n" for c in GRID_CODES))
    ingest_indicator(grid_store, path, spec_from_dict({
        "id": "lone", "layout": "wide", "geography": "lsoa2011", "code_column": "code",
        "period": {"year": 2020}, "measures": [{"id": "x_rate", "column": "score", "kind": "rate", "scale": 100}]}))
    from geo_cs.analysis import rate_source
    with pytest.raises(InputError, match="holds rates .* with no denominators.*--denominator"):
        rate_source(grid_store, "lone.x_rate", "lsoa2011", count_is_rate=True)


# -- analysis on monthly series -------------------------------------------------------------------

@pytest.fixture
def mixed_store(tmp_path: Path, grid_store: Store) -> Store:
    """The same measure monthly (Oct 2017 - Nov 2018) and quarterly, side by side."""
    text = "date,lsoa11cd,measure,value,denominator\n" + "".join(
        f"{y}-{m:02d}-01,{code},claimants,{(30 if j < 2 else 5) + i},100\n"
        for i, (y, m) in enumerate(_months((2017, 10), 14)) for j, code in enumerate(GRID_CODES))
    monthly = _csv(tmp_path, "m.csv", text)
    ingest_indicator(grid_store, monthly, spec_from_options(monthly, "long", "lsoa2011", source_id="ccm"))
    quarterly = _csv(tmp_path, "q.csv", "period,area_code,measure,value,denominator\n" + "".join(
        f"2017-11,{code},claimants,10,100\n2018-02,{code},claimants,11,100\n" for code in GRID_CODES))
    ingest_indicator(grid_store, quarterly, spec_from_options(quarterly, "long", "lsoa2011", source_id="ccq"))
    return grid_store


def test_monthly_default_baseline_is_the_first_12_months(mixed_store):
    panel = Panel(mixed_store, RateSource("ccm.claimants", "lsoa2011"))
    assert panel.kind == "month"
    chosen = resolve_baseline(panel, None)
    assert chosen == tuple(f"2017m{m}" for m in ("10", "11", "12")) + tuple(f"2018m{m:02d}" for m in range(1, 10))
    assert resolve_baseline(panel, "2018-01..2018-03") == ("2018m01", "2018m02", "2018m03")
    cohort = worst_cohort(panel, MethodParams(baseline=chosen))
    assert sorted(cohort.loc[cohort["worst"].astype(bool), "code"]) == sorted(GRID_CODES[:2])
    rates = group_rates(panel, pd.DataFrame({"group": "all", "code": GRID_CODES}))
    assert rates["period_label"].tolist()[:3] == ["October 2017", "November 2017", "December 2017"]
    assert set(rates["period_kind"]) == {"month"}
    quarterly = Panel(mixed_store, RateSource("ccq.claimants", "lsoa2011"))
    assert quarterly.kind == "quarter" and resolve_baseline(quarterly, None) == ("2017-11",)  # as before: <4 quarters, the first


def test_analysis_never_mixes_frequencies(mixed_store):
    with pytest.raises(InputError, match="mixes frequencies.*ccm.claimants: monthly.*ccq.claimants: quarterly"):
        Panel(mixed_store, RateSource(("ccm.claimants", "ccq.claimants"), "lsoa2011"))
    with pytest.raises(InputError, match="mixes frequencies"):
        area_values(mixed_store, resolve_measure(mixed_store, "lsoa2011", "claimants"))


def test_a_bad_baseline_names_the_parameter_and_value(mixed_store):
    panel = Panel(mixed_store, RateSource("ccm.claimants", "lsoa2011"))
    with pytest.raises(InputError, match="baseline '2018-01..soon'"):
        resolve_baseline(panel, "2018-01..soon")


def test_cli_tables_and_baseline_ranges_on_a_monthly_series(tmp_path, capsys, grid):
    db = tmp_path / "m.duckdb"
    boundaries = tmp_path / "grid.geojson"
    grid.to_file(boundaries)
    path = _csv(tmp_path, "cc.csv", nomis_long(_months((2017, 10), 14)))
    assert run_cli(capsys, "--db", str(db), "ingest", "boundaries", str(boundaries)).code == 0
    done = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(path), "--layout", "long",
                   "--set", "lsoa2011", "--source-id", "cc")
    assert done.code == 0, done.stderr
    assert "periods: monthly" in done.stdout and "code = 'lsoa11cd'" in done.stdout
    # counts without denominators: a clear error, not an analysis of no rows
    worst = run_cli(capsys, "--db", str(db), "analyse", "worst", "-i", "cc.claimant_count",
                    "-g", "lsoa2011", "--baseline", "2017-10..2018-09")
    assert worst.code == 3 and "no denominators" in worst.stderr
    with_den = _csv(tmp_path, "den.csv", "date,lsoa11cd,measure,value,denominator\n" + "".join(
        f"{y}-{m:02d}-01,{code},claimants,{30 if j < 2 else 5},100\n"
        for y, m in _months((2017, 10), 14) for j, code in enumerate(GRID_CODES)))
    assert run_cli(capsys, "--db", str(db), "ingest", "indicator", str(with_den), "--layout", "long",
                   "--set", "lsoa2011", "--source-id", "cd").code == 0
    worst = run_cli(capsys, "--db", str(db), "analyse", "worst", "-i", "cd.claimants",
                    "-g", "lsoa2011", "--baseline", "2017-10..2018-09")
    assert worst.code == 0, worst.stderr
    assert "2 areas of lsoa2011 exceed 25% over the baseline 2017m10, 2017m11" in worst.stderr
    default = run_cli(capsys, "--db", str(db), "analyse", "worst", "-i", "cd.claimants", "-g", "lsoa2011")
    assert "2018m09" in default.stderr and "2018m10" not in default.stderr   # the first 12 months


def test_api_items_take_months_as_users_write_them(tmp_path, mixed_store):
    db = tmp_path / "api.duckdb"
    mixed_store.sql(f"ATTACH '{db}' AS target")
    mixed_store.sql("COPY FROM DATABASE memory TO target")
    mixed_store.sql("DETACH target")
    with TestClient(create_app(Settings(db=db))) as client:
        one = client.get("/collections/lsoa2011/items", params={
            "indicator": "ccm.claimants", "period": "2018-02", "baseline": "2017-10..2018-09"})
        assert one.status_code == 200, one.text
        props = one.json()["features"][0]["properties"]
        assert props["period"] == "2018m02"
        same = client.get("/collections/lsoa2011/items", params={
            "indicator": "ccm.claimants", "period": "2018m02"}).json()
        assert same["features"][0]["properties"]["value"] == props["value"]
        worst = {f["properties"]["code"]: f["properties"]["worst"] for f in one.json()["features"]}
        assert {c for c, w in worst.items() if w} == set(GRID_CODES[:2])
        bad = client.get("/collections/lsoa2011/items", params={
            "indicator": "ccm.claimants", "baseline": "2018-01..soon"})
        assert bad.status_code == 400 and "baseline" in bad.json()["detail"]


def test_a_population_file_is_matched_by_the_nearest_mid_year_estimate(tmp_path, grid_store):
    counts = _csv(tmp_path, "cc.csv", nomis_long(_months((2017, 10), 6)))
    ingest_indicator(grid_store, counts, spec_from_options(counts, "long", "lsoa2011", source_id="cc"))
    # one indicator holding both years
    both = _csv(tmp_path, "pop.csv", "year,code,pop\n" + "".join(
        f"{y},{c},{n}\n" for y, n in ((2017, 1000), (2018, 2000)) for c in GRID_CODES))
    ingest_indicator(grid_store, both, spec_from_dict({
        "id": "mye", "layout": "wide", "geography": "lsoa2011", "code_column": "code",
        "period": {"column": "year", "kind": "year"},
        "measures": [{"id": "working_age", "column": "pop"}]}))
    panel = Panel(grid_store, RateSource("cc.claimant_count", "lsoa2011", "mye.working_age"))
    dens = panel.area_rates().groupby("period_id")["denominator"].first().to_dict()
    assert dens == {"2017m10": 1000, "2017m11": 1000, "2017m12": 1000,
                    "2018m01": 2000, "2018m02": 2000, "2018m03": 2000}
    assert panel.denominator_note == (
        "mye.working_age, the estimate nearest each period (mid-year estimates refer to 30 June): "
        "2017 for October 2017 – December 2017; 2018 for January 2018 – March 2018")


def test_nomis_ward_spec_of_the_readme_count_rate_and_absent_zero(tmp_path, store):
    """boundaries/README.md's example: a Nomis claimant count by ward with the count and the
    rate per 100 residents aged 16-64 as two MEASURE_NAMEs, monthly, absent meaning zero."""
    from geo_cs.geography import registry

    wards = ["E05001577", "E05001578", "E05001579"]
    store.register_set(registry().get("ward2019"))
    store.register_codes(registry().get("ward2019"), wards, None, "test", 0)
    header = "DATE,DATE_NAME,GEOGRAPHY_CODE,GEOGRAPHY_NAME,MEASURE_NAME,MEASURES_NAME,OBS_VALUE\n"
    rows = []
    for m in (10, 11, 12):
        for i, code in enumerate(wards):
            if (i, m) == (2, 11):
                continue          # no claimants in November: absent from the download
            rows.append(f"2017-{m:02d},October 2017,{code},x,Claimant count,Value,{20 + i}\n")
            rows.append(f"2017-{m:02d},October 2017,{code},x,Claimants as a proportion of "
                        f"residents aged 16-64,Value,{round(100 * (20 + i) / 1000, 1)}\n")
    path = _csv(tmp_path, "nomis_wards.csv", header + "".join(rows))
    spec = spec_from_dict({
        "id": "cc_wards", "layout": "nomis", "geography": "ward2019", "absent": "zero",
        "period": {"frequency": "month"},
        "measures": [
            {"id": "claimants", "kind": "count", "denominator_from_rate": "claimant_rate",
             "rate_rounding": 0.1, "match": {"MEASURES_NAME": "Value", "MEASURE_NAME": "Claimant count"}},
            {"id": "claimant_rate", "kind": "rate", "match": {
                "MEASURES_NAME": "Value",
                "MEASURE_NAME": "Claimants as a proportion of residents aged 16-64"}}]})
    report = ingest_indicator(store, path, spec)
    assert report.periods == ["2017m10", "2017m11", "2017m12"]
    assert report.absent_filled == 1                      # the count only: a rate is not filled
    rows = store.sql("SELECT code, period_id, value, denominator FROM observations "
                     "WHERE indicator_id = 'cc_wards.claimants' ORDER BY 1, 2").fetchall()
    assert (wards[2], "2017m11", 0.0, None) in rows
    assert rows[0] == (wards[0], "2017m10", 20.0, pytest.approx(1000.0))
