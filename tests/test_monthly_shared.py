"""Issue 15 on real third-party files (../shared/data): inputs in the shapes users download —
a Nomis bulk CSV, a Stat-Xplore table and a long file with monthly dates, with missing rows and
suppressed cells, and a ward file with a count and a rate rounded to 0.1 — built from the real
IoD 2019/2025 and mid-2019 population files on real LSOA and ward codes.

No real monthly small-area claimant series is available on these machines (see
../shared/data/README.md), so the monthly *values* are the real IoD employment-deprived counts
repeated over the months with a fixed, documented adjustment (month m adds m people to every
area); the codes, names, layouts, markers and gaps are what the real downloads carry.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED_DATA

from geo_cs.errors import InputError
from geo_cs.ingest import ingest_indicator, ingest_lookup
from geo_cs.ingest.indicators import spec_from_options
from geo_cs.store import Store

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

MONTHS = [(2019, m) for m in range(1, 13)]
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"]


@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    """A store with the real LSOA 2011 -> 2021 and LSOA 2011 -> ward 2019 lookups (their codes)."""
    path = tmp_path_factory.mktemp("real") / "real.duckdb"
    with Store.open(path) as store:
        ingest_lookup(store, SHARED_DATA / "lookups" / "lsoa11_lsoa21_ew.csv")
        ingest_lookup(store, SHARED_DATA / "lookups" / "lsoa11_ward19_lad19_ew.csv")
    return path


@pytest.fixture
def store(real_store, tmp_path):
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(real_store.read_bytes())
    with Store.open(copy) as s:
        yield s


def iod(shared_data: Path, name: str, code_col: str, n: int) -> pd.DataFrame:
    frame = pd.read_csv(shared_data / "indicators" / name, dtype={code_col: str})
    frame = frame[frame["employment_domain_numerator"].notna()]  # a few areas publish none
    return frame[[code_col, "employment_domain_numerator"]].head(n).rename(
        columns={code_col: "code", "employment_domain_numerator": "count"})


def test_nomis_bulk_monthly_with_suppressed_cells_and_missing_rows(shared_data, store, tmp_path):
    areas = iod(shared_data, "imd2025_england_lsoa21_indicators.csv", "lsoa21_code", 400)
    names = pd.read_csv(shared_data / "lookups" / "lsoa11_lsoa21_ew.csv", encoding="utf-8-sig",
                        dtype=str).drop_duplicates("LSOA21CD").set_index("LSOA21CD")["LSOA21NM"]
    path = tmp_path / "nomis_bulk.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["DATE", "DATE_NAME", "DATE_CODE", "DATE_TYPE", "GEOGRAPHY", "GEOGRAPHY_NAME",
                    "GEOGRAPHY_CODE", "GEOGRAPHY_TYPE", "GENDER_NAME", "AGE_NAME", "MEASURE_NAME",
                    "MEASURES_NAME", "OBS_VALUE", "OBS_STATUS", "OBS_STATUS_NAME", "RECORD_OFFSET"])
        for i, (y, m) in enumerate(MONTHS):
            for j, (code, count) in enumerate(areas.itertuples(index=False)):
                if j % 97 == i:          # absent rows: some areas missing in some months
                    continue
                value, status = (str(int(count) + m), "A") if j % 53 != 0 else ("..", "Q")
                w.writerow([f"{y}-{m:02d}", f"{MONTH_NAMES[m - 1]} {y}", f"{y}-{m:02d}", "date",
                            1000 + j, names.get(code, code), code, "2021 super output areas - lower layer",
                            "Total", "All categories: Age 16+", "Claimant count", "Value", value,
                            status, "Normal Value", i * 400 + j])
    report = ingest_indicator(store, path, spec_from_options(
        path, "nomis", "lsoa2021", source_id="cc_lsoa21", measure="Value"))
    lines = "\n".join(report.lines())
    assert report.periods == [f"2019m{m:02d}" for m in range(1, 13)]
    assert "periods: monthly (inferred" in lines
    assert report.suppressed[".."] == 12 * 8 - sum(1 for i in range(12) for j in range(0, 400, 53) if j % 97 == i)
    assert report.absent_rows == sum(1 for i in range(12) for j in range(400) if j % 97 == i)
    code, count = areas.iloc[1]
    stored = store.sql("SELECT value FROM observations WHERE code = ? AND period_id = '2019m10'",
                       [code]).fetchone()[0]
    assert stored == count + 10
    labels = store.sql("SELECT label FROM periods WHERE period_id = '2019m11'").fetchone()
    assert labels == ("November 2019",)


def test_statxplore_monthly_table_from_real_lsoa_codes(shared_data, store, tmp_path):
    areas = iod(shared_data, "imd2019_england_lsoa11_indicators.csv", "lsoa11_code", 300)
    path = tmp_path / "statxplore.csv"
    months = [f"{MONTH_NAMES[m - 1][:3]}-{y % 100:02d}" for y, m in MONTHS]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Dataset: People on Universal Credit"])
        w.writerow([])
        w.writerow(["", "Month"] + [""] * 11)
        w.writerow(["National - Regional - LA - OAs", *months])
        for j, (code, count) in enumerate(areas.itertuples(index=False)):
            w.writerow([f"{code} : somewhere {j:03d}",
                        *[(str(int(count) + m) if (j + m) % 41 else "*") for _, m in MONTHS]])
        w.writerow(["Total", *["0"] * 12])
        w.writerow([])
        w.writerow(["* Figures are rounded; small values are suppressed"])
    report = ingest_indicator(store, path, spec_from_options(
        path, "statxplore", "lsoa2011", source_id="uc", measure="people"))
    assert report.periods == [f"2019m{m:02d}" for m in range(1, 13)]
    assert report.observations == 300 * 12
    assert report.suppressed["*"] == sum(1 for j in range(300) for m in range(1, 13) if (j + m) % 41 == 0)


def test_long_monthly_file_and_ward_codes_given_as_lsoas(shared_data, store, tmp_path):
    areas = iod(shared_data, "imd2019_england_lsoa11_indicators.csv", "lsoa11_code", 200)
    path = tmp_path / "long.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["date", "lsoa11cd", "lsoa11nm", "measure", "value"])
        for y, m in MONTHS[:3]:
            for code, count in areas.itertuples(index=False):
                w.writerow([f"{y}-{m:02d}-01", code, "x", "claimants", int(count)])
    report = ingest_indicator(store, path, spec_from_options(path, "long", "lsoa2011", source_id="cl"))
    assert report.columns == {"code": "lsoa11cd", "period": "date", "value": "value", "measure": "measure"}
    assert set(report.recognised_columns) == {"code", "period"}
    # the same shape with ward codes, declared as LSOAs
    wards = pd.read_csv(shared_data / "lookups" / "lsoa11_ward19_lad19_ew.csv", dtype=str)["WD19CD"].unique()[:5]
    bad = tmp_path / "wards_as_lsoa.csv"
    bad.write_text("date,wd19cd,measure,value\n" + "".join(f"2019-01-01,{c},claimants,5\n" for c in wards))
    with pytest.raises(InputError) as exc:
        ingest_indicator(store, bad, spec_from_options(bad, "long", "lsoa2011"))
    message = str(exc.value)
    assert f"row 2, column 'wd19cd': area code '{wards[0]}' is not a lsoa2011 code" in message
    assert "these codes are ward2019 codes in the store" in message and ", ".join(wards[:5]) in message


def test_ward_file_with_count_and_rounded_rate_derives_denominators_within_the_rounding(
        shared_data, store, tmp_path):
    """A ward claimant file publishes the count and the rate per 100 residents aged 16-64 rounded
    to 0.1. Built from real figures — IoD 2019 employment-deprived people and the mid-2019
    working-age population, summed from LSOAs to 2019 wards — the derived denominator must lie
    within the range the rounding allows of the true population, for every ward."""
    lookup = pd.read_csv(shared_data / "lookups" / "lsoa11_ward19_lad19_ew.csv", dtype=str)
    pop = pd.read_csv(shared_data / "indicators" / "population2019_lsoa11_ew.csv", dtype={"lsoa11_code": str})
    pop["wap"] = pop[[str(a) for a in range(16, 65)]].sum(axis=1)
    counts = iod(shared_data, "imd2019_england_lsoa11_indicators.csv", "lsoa11_code", 10 ** 6)
    merged = (lookup.merge(counts, left_on="LSOA11CD", right_on="code")
              .merge(pop[["lsoa11_code", "wap"]], left_on="LSOA11CD", right_on="lsoa11_code"))
    wards = merged.groupby("WD19CD")[["count", "wap"]].sum().head(1500)
    wards["rate"] = (100 * wards["count"] / wards["wap"]).round(1)
    path = tmp_path / "ward_claimants.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["date", "wd19cd", "measure", "value"])
        for code, row in wards.iterrows():
            w.writerow(["2019-10", code, "claimants", int(row["count"])])
            w.writerow(["2019-10", code, "claimant_rate", f"{row['rate']:.1f}"])
    report = ingest_indicator(store, path, spec_from_options(
        path, "long", "ward2019", source_id="wd", derive=["claimants=claimant_rate"], frequency="month"))
    assert "denominator derived" in "\n".join(report.lines())
    # what the store holds: each ward's count and the denominator it derived
    stored = store.sql("SELECT code, value, denominator FROM observations "
                       "WHERE indicator_id = 'wd.claimants' AND period_id = '2019m10'").df().set_index("code")
    assert len(stored) == len(wards) and (stored["value"] == wards["count"].reindex(stored.index)).all()
    joined = stored.join(wards[["rate", "wap"]])
    ok = joined["rate"] > 0
    assert ok.sum() > 1400, ok.sum()
    # a ward whose rate reads 0.0 has no denominator to derive: it stays unknown, not 0 or inf
    assert joined.loc[~ok, "denominator"].isna().all()
    derived, true = joined.loc[ok, "denominator"], joined.loc[ok, "wap"]
    # the stored denominator is the count over the rate as published (count / rate × 100) ...
    assert derived.to_numpy() == pytest.approx((100 * joined.loc[ok, "value"] / joined.loc[ok, "rate"]).to_numpy(),
                                               rel=1e-9)
    # ... and so lies, for every ward, within what the rate's rounding to 0.1 allows of the true
    # working-age population summed from the real mid-2019 file: a rate r stands for [r - 0.05,
    # r + 0.05), so the true population is between count / (r + 0.05) and count / (r - 0.05) × 100
    c, r = joined.loc[ok, "value"], joined.loc[ok, "rate"]
    low, high = 100 * c / (r + 0.05), 100 * c / (r - 0.05)
    assert ((derived >= low) & (derived <= high)).all()
    gap = (derived - true).abs()
    worst = (gap / (high - low)).idxmax()
    assert (gap <= high - low + 1e-6).all(), joined.loc[worst]
    # the summed denominator of many wards is close to the truth (rounding errors average out)
    assert derived.sum() == pytest.approx(true.sum(), rel=2e-3)
    # and the store records how it was derived, for the intervals to be widened
    how = store.sql("SELECT set_id, method, rate_source, rate_rounding FROM derived_denominators "
                    "WHERE indicator_id = 'wd.claimants'").fetchall()
    assert how == [("ward2019", "count / claimant_rate × 100", "claimant_rate", 0.1)]
