"""``analyse worst`` on a rate-only edition needs no denominator (issue 29, point 5).

Listing the areas whose own rate exceeds a threshold adds nothing up: an area's baseline rate is
its published rate, or the plain mean of its rates over the baseline periods. A denominator is
asked for only where rates are combined into a group's (partnerships, nations, the cohort
against the rest, a comparator), and the message says so and why. On a small fixture the tests
write (an IMD-2010-shaped file of fractions on six LSOAs), and on the real IMD 2010 file
(England: 1,054 LSOAs strictly above 25%, counted here from the file with pandas).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from conftest import GRID_CODES, SHARED_DATA, run_cli

from geo_cs.analysis import Panel, method_params, rate_source, worst_cohort, worst_table
from geo_cs.errors import InputError
from geo_cs.ingest import ingest_boundaries, ingest_indicator
from geo_cs.ingest.indicators import spec_from_dict
from geo_cs.store import Store

#: Employment scores (fractions, as IMD 2010 publishes them) of the six grid LSOAs: 0.25 is
#: exactly the threshold (not worst), 0.251 just over it.
SCORES = dict(zip(GRID_CODES, [0.10, 0.25, 0.26, 0.40, 0.05, 0.251], strict=True))
WORST = {c for c, s in SCORES.items() if s * 100 > 25}

SPEC = """\
id = "fx"
title = "A fixture shaped like the English Indices of Deprivation 2010"
publisher = "geo-cs tests"
licence = "Open Government Licence v3.0"
file = "fx_lsoa.csv"
layout = "wide"
geography = "lsoa2011"
code_column = "lsoa_code"

[period]
edition = "FX 2010"
data_year = 2008

[[measures]]
id = "employment_rate"
label = "Employment deprivation rate (% of working-age people)"
column = "Employment_score"
kind = "rate"
scale = 100
"""


def _rates_file(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "fx_lsoa.csv"
    data.write_text("lsoa_code,Employment_score\n"
                    + "".join(f"{c},{s}\n" for c, s in SCORES.items()), encoding="utf-8")
    spec = tmp_path / "fx.toml"
    spec.write_text(SPEC, encoding="utf-8")
    return data, spec


@pytest.fixture
def db(tmp_path: Path, grid, capsys) -> Path:
    """A database with the grid's boundaries and the rate-only edition (no denominators)."""
    path = tmp_path / "fx.duckdb"
    boundaries = tmp_path / "grid.geojson"
    grid.to_file(boundaries)
    data, spec = _rates_file(tmp_path)
    assert run_cli(capsys, "--db", str(path), "ingest", "boundaries", str(boundaries)).code == 0
    done = run_cli(capsys, "--db", str(path), "ingest", "indicator", str(data), "--spec", str(spec))
    assert done.code == 0, done.stderr
    return path


def test_worst_lists_a_rate_only_edition_with_no_denominator(db: Path, tmp_path: Path, capsys):
    out = tmp_path / "worst.csv"
    args = ["--db", str(db), "analyse", "worst", "-i", "fx.employment_rate", "--count-is-rate",
            "-g", "lsoa2011"]
    shown = run_cli(capsys, *args)
    assert shown.code == 0, shown.stderr
    assert "--denominator" not in shown.stderr
    assert f"{len(WORST)} areas of lsoa2011 exceed 25% over the baseline fx2010" in shown.stderr
    assert "no denominator is needed to list areas" in shown.stderr      # the note says why
    assert run_cli(capsys, *args, "-o", str(out)).code == 0
    with open(out, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["code"] for r in rows} == WORST
    for row in rows:
        assert float(row["baseline_rate"]) == pytest.approx(SCORES[row["code"]] * 100)
        assert row["worst"] == "true" and row["baseline_denominator"] == ""
        assert row["indicator"] == "fx.employment_rate (rates as published)"
    # worst first; the area at exactly 25% is listed with --all, and not worst
    assert [r["code"] for r in rows] == sorted(WORST, key=lambda c: -SCORES[c])
    every = tmp_path / "all.csv"
    assert run_cli(capsys, *args, "--all", "-o", str(every)).code == 0
    with open(every, encoding="utf-8") as fh:
        at_threshold = next(r for r in csv.DictReader(fh) if r["code"] == GRID_CODES[1])
    assert float(at_threshold["baseline_rate"]) == 25.0 and at_threshold["worst"] == "false"


@pytest.mark.parametrize("command", [
    ["rates"], ["ni153"], ["nations"], ["comparator", "--worst-n", "2"]])
def test_a_denominator_is_still_asked_for_where_rates_are_combined(db: Path, capsys, command):
    result = run_cli(capsys, "--db", str(db), "analyse", *command, "-i", "fx.employment_rate",
                     "--count-is-rate", "-g", "lsoa2011")
    assert result.code == 3, result.stderr
    message = " ".join(result.stderr.split())
    assert "holds rates (%) with no denominators" in message
    # why: a group's rate is Σ count / Σ denominator; and what needs none
    assert "combines areas into groups (Σ count / Σ denominator)" in message
    assert "--denominator" in message and "geo-cs analyse worst" in message


def test_a_rate_read_as_a_count_is_told_to_add_count_is_rate(db: Path, capsys):
    result = run_cli(capsys, "--db", str(db), "analyse", "worst", "-i", "fx.employment_rate",
                     "-g", "lsoa2011")
    assert result.code == 3
    assert "is a rate: add --count-is-rate" in " ".join(result.stderr.split())


def test_rate_source_takes_a_rate_as_published_only_where_nothing_is_combined(tmp_path: Path, grid):
    boundaries = tmp_path / "grid.geojson"
    grid.to_file(boundaries)
    data, _ = _rates_file(tmp_path)
    with Store.open(":memory:") as store:
        ingest_boundaries(store, [boundaries])
        ingest_indicator(store, data, spec_from_dict({
            "id": "fx", "layout": "wide", "geography": "lsoa2011", "code_column": "lsoa_code",
            "period": {"edition": "FX 2010", "data_year": 2008},
            "measures": [{"id": "employment_rate", "column": "Employment_score", "kind": "rate",
                          "scale": 100}]}))
        with pytest.raises(InputError, match="no denominators"):
            rate_source(store, "fx.employment_rate", "lsoa2011", count_is_rate=True)
        source, notes = rate_source(store, "fx.employment_rate", "lsoa2011", count_is_rate=True,
                                    combine=False)
        assert source.denominator is None and source.count_is_rate
        assert "no denominator is needed to list areas" in notes[0]
        panel = Panel(store, source)
        cohort = worst_cohort(panel)
        assert set(cohort.loc[cohort["worst"].fillna(False).astype(bool), "code"]) == WORST
        table = worst_table(store, panel, method_params(panel))
        assert set(table["code"]) == WORST


def test_a_baseline_of_several_periods_of_a_rate_is_the_plain_mean(tmp_path: Path, grid, capsys):
    """Monthly rates with no denominators: the baseline is each area's mean over the months,
    with no denominator, and exactly 25.0 on average is not worst."""
    db = tmp_path / "m.duckdb"
    boundaries = tmp_path / "grid.geojson"
    grid.to_file(boundaries)
    # per area: three months whose mean is 20, 25 (not worst), 30, 40, 10, 25.5
    means = dict(zip(GRID_CODES, [20.0, 25.0, 30.0, 40.0, 10.0, 25.5], strict=True))
    lines = ["date,lsoa11cd,measure,value"]
    for code, mean in means.items():
        for month, offset in (("2017-10-01", -3.0), ("2017-11-01", 0.0), ("2017-12-01", 3.0)):
            lines.append(f"{month},{code},rate,{mean + offset}")
    path = tmp_path / "monthly_rates.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run_cli(capsys, "--db", str(db), "ingest", "boundaries", str(boundaries)).code == 0
    done = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(path), "--layout", "long",
                   "--set", "lsoa2011", "--source-id", "mr", "--kind", "rate", "--frequency", "month")
    assert done.code == 0, done.stderr
    out = tmp_path / "w.csv"
    result = run_cli(capsys, "--db", str(db), "analyse", "worst", "-i", "mr.rate", "--count-is-rate",
                     "-g", "lsoa2011", "--baseline", "2017-10..2017-12", "-o", str(out))
    assert result.code == 0, result.stderr
    rows = pd.read_csv(out)
    assert set(rows["code"]) == {c for c, m in means.items() if m > 25}
    assert dict(zip(rows["code"], rows["baseline_rate"], strict=True)) == pytest.approx(
        {c: m for c, m in means.items() if m > 25})
    assert (rows["n_baseline"] == 3).all()


# -- the real IMD 2010 file ---------------------------------------------------------------------

@pytest.mark.shared_data
def test_real_imd2010_lsoas_strictly_above_25_percent_need_no_denominator(tmp_path: Path, capsys):
    imd = SHARED_DATA / "indicators" / "imd2010_england_lsoa01.csv"
    db = tmp_path / "imd.duckdb"
    # the 2001 LSOAs' codes come with the ONS lookup (IMD 2010 publishes no boundaries)
    assert run_cli(capsys, "--db", str(db), "ingest", "lookup",
                   str(SHARED_DATA / "lookups" / "lsoa01_lsoa11_ew.csv")).code == 0
    done = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(imd))
    assert done.code == 0, done.stderr
    out = tmp_path / "worst.csv"
    result = run_cli(capsys, "--db", str(db), "analyse", "worst", "-i", "imd2010.employment_rate",
                     "--count-is-rate", "-g", "lsoa2001", "-o", str(out))
    assert result.code == 0, result.stderr
    scores = pd.read_csv(imd)
    above = scores.loc[scores["Employment_score"] * 100 > 25, "lsoa01_code"]
    assert len(above) == 1_054                      # as the issue says; 230 more sit at exactly 25%
    assert (scores["Employment_score"] == 0.25).sum() > 0
    listed = pd.read_csv(out)
    assert len(listed) == len(above) and set(listed["code"]) == set(above)
    assert "1,054 areas of lsoa2001 exceed 25% over the baseline imd2010" in result.stderr
    # where groups are formed the denominator is still asked for, saying why
    rates = run_cli(capsys, "--db", str(db), "analyse", "rates", "-i", "imd2010.employment_rate",
                    "--count-is-rate", "-g", "lsoa2001")
    assert rates.code == 3 and "combines areas into groups" in " ".join(rates.stderr.split())
