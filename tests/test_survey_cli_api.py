"""The survey employment rate from the CLI (``geo-cs analyse employment``) and through the
features API on the district collections (issue 29, point 4).

On fixtures the tests write, in the shapes Nomis gives them: a web download (preamble, header,
each unitary authority twice, ``*`` and ``-`` markers, footer) on the 2020 districts, with a
fictional district whose numerator is under the disclosure minimum, and an API long-form extract
(no intervals, denominators derived) on the 2021 districts. Expected figures are computed here
from the fixture's rows. Then on the real 2019 file (skipped without ../shared/data).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED_DATA, run_cli
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.ingest import ingest_boundaries
from geo_cs.ingest.survey import ingest_survey
from geo_cs.store import Store

#: code, name, numerator, denominator, rate, Conf, as the web download writes them.
GM = [
    ("E08000001", "Bolton", "126300", "180400", "70.0", "3.1"),
    ("E08000002", "Bury", "88700", "116800", "75.9", "3.2"),
    ("E08000003", "Manchester", "265600", "383200", "69.3", "2.6"),
    ("E08000004", "Oldham", "95400", "140200", "68.0", "3.3"),
    ("E08000005", "Rochdale", "95000", "137000", "69.3", "3.5"),
    ("E08000006", "Salford", "118800", "165400", "71.8", "3.2"),
    ("E08000007", "Stockport", "136700", "178700", "76.5", "2.9"),
    ("E08000008", "Tameside", "100800", "140500", "71.7", "3.2"),
    ("E08000009", "Trafford", "113000", "146700", "77.0", "3.0"),
    ("E08000010", "Wigan", "153300", "202600", "75.7", "2.9"),
]
SMALL = "E06000999"     # fictional: 8 of 20 people, under the disclosure minimum of 10
ROUNDED = "E06000998"   # fictional: figures that disclosure control rounds to 5s
OTHERS = [
    ("E09000001", "City of London", "7400", "8500", "87.2", '"*"'),
    ("E06000053", "Isles of Scilly", "-", "-", "-", "-"),
    (SMALL, "Testshire", "8", "20", "40.0", "9.9"),
    (ROUNDED, "Roundshire", "1237", "2003", "61.8", "9.0"),
    ("W06000001", "Isle of Anglesey", "30500", "39500", "77.1", "2.9"),
    ("S12000049", "Glasgow City", "291900", "433500", "67.3", "2.9"),
]
WEB_ROWS = GM + OTHERS
NUMBERS = ("value", "value_low", "value_high", "count", "denominator", "half_width")

#: The API extract: (code, name) and per period (rate, numerator); None is a blank.
API_AREAS = [("E06000001", "Hartlepool"), ("E06000002", "Middlesbrough"),
             ("E06000003", "Redcar and Cleveland")]
API_VALUES = {
    ("2018-12", "E06000001"): (63.0, 35200), ("2018-12", "E06000002"): (65.5, 58000),
    ("2018-12", "E06000003"): (None, None),
    ("2019-12", "E06000001"): (64.1, 35900), ("2019-12", "E06000002"): (62.0, 55000),
    ("2019-12", "E06000003"): (70.2, 57500),
}


def web_download(path: Path, rows=WEB_ROWS) -> Path:
    """The Nomis web download: preamble, header, a blank line, rows (unitary authorities under
    both ``lacu:`` and ``ladu:``), blank lines and the footer explaining the markers."""
    lines = ["", '"annual population survey"',
             '"ONS Crown Copyright Reserved [from Nomis on 12 June 2020]"',
             '"Analysis   :","variable"',
             '"Confidence :","95% confidence interval of percent figure (+/-)"',
             '"Date       :","Jan 2019-Dec 2019"', "",
             '"Area","mnemonic","Numerator","Denominator","Employment rate - aged 16-64","Conf"', ""]
    for prefix in ("lacu", "ladu"):
        for code, name, n, d, r, c in rows:
            if prefix == "ladu" or not code.startswith("E08"):
                lines.append(f'"{prefix}:{name}","{code}",{n},{d},{r},{c}')
    lines += ["", "", "", '"*","Estimate and confidence interval unreliable since the group sample size is"',
              '"","small (3-9)"', "", '"-","These figures are missing."', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def api_extract(path: Path) -> Path:
    """The Nomis API's long form (NM_17_5): Variable and Numerator rows, blanks for none."""
    head = ("theme,date,date_name,geography_code,geography_name,geography_type,variable_code,"
            "variable_name,measures_code,measures_name,value")
    lines = [head]
    kind = "local authorities: county / unitary (as of April 2021)"
    for date, label in (("2018-12-01", "Jan 2018-Dec 2018"), ("2019-12-01", "Jan 2019-Dec 2019")):
        for code, name in API_AREAS:
            rate, numerator = API_VALUES[(date[:7], code)]
            for measure_code, measure, value in (("20599", "Variable", rate), ("21001", "Numerator", numerator)):
                lines.append(f"employment,{date},{label},{code},{name},{kind},45,"
                             f"Employment rate - aged 16-64,{measure_code},{measure},"
                             f"{'' if value is None else value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def squares(path: Path, areas: list[tuple[str, str]], code_col: str, name_col: str) -> Path:
    features = [{"type": "Feature", "properties": {code_col: code, name_col: name},
                 "geometry": mapping(box(-3 + 0.1 * i, 53.0, -2.95 + 0.1 * i, 53.05))}
                for i, (code, name) in enumerate(areas)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("survey")
    path = folder / "survey.duckdb"
    with Store.open(path) as store:
        ingest_boundaries(store, [squares(folder / "lad20.geojson", [r[:2] for r in WEB_ROWS],
                                          "LAD20CD", "LAD20NM")])
        ingest_boundaries(store, [squares(folder / "lad21.geojson", API_AREAS, "LAD21CD", "LAD21NM")])
        # no district code history in this store: the edition is given, as --district-edition does
        ingest_survey(store, web_download(folder / "aps_web.csv"), set_edition=2020)
        ingest_survey(store, api_extract(folder / "aps_api.csv"))
    return path


def _numbers(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["code", "name", "n", "d", "r", "c"])
    for col in ("n", "d", "r", "c"):
        frame[col] = pd.to_numeric(frame[col].str.strip('"'), errors="coerce")
    return frame


def _rate_and_half_width(rows: pd.DataFrame) -> tuple[float, float]:
    """Σ numerators / Σ denominators, and √Σ (wᵢ·cᵢ)² over the districts with an interval."""
    usable = rows.dropna(subset=["n", "d", "r"])
    w = usable["d"] / usable["d"].sum()
    known = usable["c"].notna()
    return 100 * usable["n"].sum() / usable["d"].sum(), math.sqrt(((w * usable["c"])[known] ** 2).sum())


def _gap_half_width(part: pd.DataFrame, whole: pd.DataFrame) -> float:
    """√Σ ((wᵢᴾ − wᵢᴮ)·cᵢ)²: each district once, the partnership being part of the benchmark."""
    part, whole = part.dropna(subset=["n", "d", "r"]), whole.dropna(subset=["n", "d", "r"])
    wp = dict(zip(part["code"], part["d"] / part["d"].sum(), strict=True))
    wb = dict(zip(whole["code"], whole["d"] / whole["d"].sum(), strict=True))
    c = dict(zip(whole["code"], whole["c"], strict=True))
    return math.sqrt(sum(((wp.get(k, 0) - wb[k]) * c[k]) ** 2 for k in wb if not math.isnan(c[k])))


# -- the CLI --------------------------------------------------------------------------------------

def test_employment_per_partnership_as_analyse_rates_names_it(db: Path, tmp_path: Path, capsys):
    out = tmp_path / "employment.csv"
    args = ["--db", str(db), "analyse", "employment", "-g", "lad2020", "-p", "greater_manchester"]
    shown = run_cli(capsys, *args)
    assert shown.code == 0, shown.stderr
    assert "Greater Manchester" in shown.stdout and "Great Britain" in shown.stdout
    assert "gap with Great Britain" in shown.stdout
    # the markers, said in words, with what they do to the benchmark's figure
    said = " ".join(shown.stderr.split())
    assert "Isles of Scilly (E06000053) is missing" in said
    assert "City of London (E09000001) is unreliable" in said
    assert run_cli(capsys, *args, "-o", str(out)).code == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert {"partnership", "period_id", "period_label", "rate", "rate_low", "rate_high", "gap",
            "gap_low", "gap_high", "count", "denominator", "n_areas", "reference", "reference_rate",
            "unreliable", "missing", "note"} <= set(table.columns)
    assert table["group_kind"].tolist() == ["partnership", "benchmark"]    # by default
    gm, gb = table.iloc[0], table.iloc[1]
    assert (gm["partnership"], gm["period_id"], gm["period_label"]) == (
        "greater_manchester", "2019y12", "Jan 2019-Dec 2019")
    assert pd.isna(gb["partnership"]) and gb["name"] == gb["reference"] == "Great Britain"
    rows = _numbers(WEB_ROWS)
    rate, hw = _rate_and_half_width(rows[rows["code"].isin([r[0] for r in GM])])
    assert gm["rate"] == pytest.approx(rate) and gm["n_areas"] == 10
    assert (gm["rate_low"], gm["rate_high"]) == pytest.approx((rate - hw, rate + hw))
    assert gm["count"] == sum(int(r[2]) for r in GM) and gm["denominator"] == sum(int(r[3]) for r in GM)
    gb_rate, gb_hw = _rate_and_half_width(rows)
    assert gb["rate"] == pytest.approx(gb_rate)
    assert (gb["rate_low"], gb["rate_high"]) == pytest.approx((gb_rate - gb_hw, gb_rate + gb_hw))
    assert gb["n_areas"] == len(WEB_ROWS) - 1                    # the Isles of Scilly are missing
    assert gb["unreliable"] == "City of London (E09000001)"
    assert gb["missing"] == "Isles of Scilly (E06000053)"
    gap_hw = _gap_half_width(rows[rows["code"].isin([r[0] for r in GM])], rows)
    assert gm["gap"] == pytest.approx(rate - gb_rate) and gm["reference_rate"] == pytest.approx(gb_rate)
    assert (gm["gap_low"], gm["gap_high"]) == pytest.approx((rate - gb_rate - gap_hw, rate - gb_rate + gap_hw))


def test_all_groups_and_every_output_format(db: Path, tmp_path: Path, capsys):
    base = ["--db", str(db), "analyse", "employment", "-g", "lad2020", "-p", "greater_manchester",
            "--all-groups", "--comparator-size", "2"]
    frames = {}
    for ext in ("csv", "parquet", "arrow", "json"):
        out = tmp_path / f"e.{ext}"
        result = run_cli(capsys, *base, "-o", str(out))
        assert result.code == 0, result.stderr
        frames[ext] = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": pd.read_json,
                       "arrow": lambda p: pd.read_feather(p)}[ext](out)
    kinds = frames["csv"].groupby("group_kind", sort=False)["group"].apply(list).to_dict()
    assert kinds["nation"] == ["E", "S", "W"]
    assert kinds["comparator"] == ["comparator"]
    comparator = frames["csv"][frames["csv"]["group_kind"] == "comparator"].iloc[0]
    assert comparator["n_areas"] == 2 and "lowest rates" in comparator["name"]
    for ext, frame in frames.items():
        assert len(frame) == len(frames["csv"]), ext
        assert frame["rate"].tolist() == pytest.approx(frames["csv"]["rate"].tolist()), ext


def test_periods_by_id_label_and_range_and_the_api_extract(db: Path, tmp_path: Path, capsys):
    out = tmp_path / "api.csv"
    # default edition: the one with most periods (the API extract's 2021 districts)
    result = run_cli(capsys, "--db", str(db), "analyse", "employment", "-o", str(out))
    assert result.code == 0, result.stderr
    table = pd.read_csv(out)
    assert set(table["geography"]) == {"lad2021"} and table["period_id"].tolist() == ["2018y12", "2019y12"]
    bench = table.set_index("period_id")
    # Redcar's 2018 blank leaves it out; its figure is Σ numerators / Σ derived denominators
    derived = {k: n / r * 100 for k, (r, n) in API_VALUES.items() if r is not None}
    for year in ("2018", "2019"):
        num = sum(n for (p, _), (_, n) in API_VALUES.items() if p == f"{year}-12" and n is not None)
        den = sum(d for (p, _), d in derived.items() if p == f"{year}-12")
        assert bench.loc[f"{year}y12", "rate"] == pytest.approx(100 * num / den)
    assert table["rate_low"].isna().all() and set(table["interval"]) == {"no interval published"}
    said = " ".join(result.stderr.split())
    assert "no interval published" in said and "denominators derived" in said
    assert "not all of Great Britain" in said       # the benchmark is what the file holds
    for period in (["2019y12"], ["Jan 2019-Dec 2019"], ["2019-12"], ["2018y12,2019y12"],
                   ["2018y12", "2019y12"], ["2018-12..2019-12"]):
        args = [a for p in period for a in ("--period", p)]
        result = run_cli(capsys, "--db", str(db), "analyse", "employment", *args, "-o", str(out))
        assert result.code == 0, (period, result.stderr)
        wanted = {"2019y12"} if len(period) == 1 and "," not in period[0] and ".." not in period[0] \
            else {"2018y12", "2019y12"}
        assert set(pd.read_csv(out)["period_id"]) == wanted, period


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--period", "2017y12"], 5, "period 2017y12 not in aps.employment_rate"),
    (["--period", "soon"], 3, "--period 'soon'"),
    (["--period", "2030-12..2031-12"], 3, "no period of aps.employment_rate"),
    (["-p", "nowhere"], 5, "unknown partnership nowhere"),
    (["-g", "lsoa2011"], 5, "no survey estimates on lsoa2011"),
    (["-i", "aps.nothing"], 5, "no survey estimates of 'aps.nothing'"),
])
def test_employment_errors_exit_as_the_rest_of_the_cli(db: Path, capsys, args, code, words):
    result = run_cli(capsys, "--db", str(db), "analyse", "employment", *args)
    assert result.code == code, result.stderr
    assert words in " ".join(result.stderr.split())


@pytest.mark.parametrize("command", [["rates"], ["worst", "--count-is-rate"], ["ni153"], ["nations"]])
def test_claimant_analyses_refuse_a_survey_indicator_naming_analyse_employment(db: Path, capsys, command):
    result = run_cli(capsys, "--db", str(db), "analyse", *command, "-i", "aps.employment_rate",
                     "-g", "lad2020")
    assert result.code == 3, result.stderr
    said = " ".join(result.stderr.split())
    assert "aps.employment_rate is a survey estimate" in said
    assert "geo-cs analyse employment -i aps.employment_rate -g lad2020" in said


# -- the features API -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(db: Path):
    with TestClient(create_app(Settings(db=db))) as c:
        yield c


@pytest.fixture(scope="module")
def controlled(db: Path, tmp_path_factory):
    copy = tmp_path_factory.mktemp("controlled") / "survey.duckdb"   # one configuration per file
    shutil.copy(db, copy)
    with TestClient(create_app(Settings(db=copy, disclosure_control=True))) as c:
        yield c


def _items(client, collection: str, **params) -> dict[str, dict]:
    response = client.get(f"/collections/{collection}/items", params=params)
    assert response.status_code == 200, response.text
    return {f["id"]: f["properties"] for f in response.json()["features"]}


def test_items_of_the_survey_measure_carry_the_published_figures(client):
    by_code = _items(client, "lad2020", indicator="aps.employment_rate")
    measure = _items(client, "lad2020_employment_rate")      # the same, as a collection of its own
    assert {c: {**p, "indicator": None} for c, p in by_code.items()} == {
        c: {**p, "indicator": None} for c, p in measure.items()}
    assert len(by_code) == len(WEB_ROWS)
    for code, _name, n, d, r, c in WEB_ROWS:
        for props in (by_code[code], measure[code]):
            assert props["period"] == "2019y12"
            if code == "E06000053":       # "-": missing, and every number null, never 0
                assert props["reliability"] == "missing"
                assert all(props[k] is None for k in NUMBERS), props
            elif code == "E09000001":     # "*": the estimate stands, with no interval
                assert props["reliability"] == "unreliable"
                assert (props["value"], props["count"], props["denominator"]) == (87.2, 7400, 8500)
                assert props["value_low"] is props["value_high"] is props["half_width"] is None
            else:
                assert props["reliability"] is None
                assert props["value"] == float(r) and props["half_width"] == float(c)
                assert props["value_low"] == pytest.approx(float(r) - float(c))
                assert props["value_high"] == pytest.approx(float(r) + float(c))
                assert (props["count"], props["denominator"]) == (int(n), int(d))
    one = client.get(f"/collections/lad2020_employment_rate/items/{'E08000001'}").json()["properties"]
    assert (one["value"], one["half_width"], one["reliability"]) == (70.0, 3.1, None)


def test_items_of_the_api_extract_on_the_2021_districts(client):
    latest = _items(client, "lad2021", indicator="aps.employment_rate")
    earlier = _items(client, "lad2021_employment_rate", period="2018y12")
    hartlepool = latest["E06000001"]
    assert (hartlepool["value"], hartlepool["count"]) == (64.1, 35900)
    assert hartlepool["denominator"] == pytest.approx(35900 / 64.1 * 100, abs=1e-3)
    # no interval published: none is made up
    assert hartlepool["value_low"] is hartlepool["value_high"] is hartlepool["half_width"] is None
    assert hartlepool["reliability"] is None
    redcar = earlier["E06000003"]
    assert redcar["reliability"] == "missing" and all(redcar[k] is None for k in NUMBERS)


def test_queryables_filter_sortby_and_csv_know_the_survey_properties(client):
    schema = client.get("/collections/lad2020_employment_rate/queryables").json()
    props = schema["properties"]
    assert props["half_width"]["type"] == "number" and props["reliability"]["type"] == "string"
    assert list(props)[-3:] == ["half_width", "reliability", "geometry"]
    also = client.get("/collections/lad2020/queryables", params={"indicator": "aps.employment_rate"}).json()
    assert {"half_width", "reliability"} <= set(also["properties"])
    bare = client.get("/collections/lad2020/queryables").json()
    assert "reliability" not in bare["properties"] and "value" not in bare["properties"]
    assert set(_items(client, "lad2020_employment_rate", filter="reliability = 'unreliable'")) == {"E09000001"}
    assert set(_items(client, "lad2020_employment_rate", filter="reliability IS NULL AND half_width > 3.2")) == {
        code for code, *_, c in WEB_ROWS if c not in ('"*"', "-") and float(c) > 3.2}
    ranked = client.get("/collections/lad2020_employment_rate/items",
                        params={"sortby": "-half_width", "limit": 2}).json()["features"]
    assert [f["id"] for f in ranked] == [SMALL, ROUNDED]        # 9.9 then 9.0
    text = client.get("/collections/lad2020_employment_rate/items", params={"f": "csv"}).text
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(text))}
    assert {"half_width", "reliability"} <= set(next(iter(rows.values())))
    assert rows["E06000053"]["reliability"] == "missing"
    assert all(rows["E06000053"][k] == "" for k in NUMBERS)          # empty, not 0
    assert rows["E09000001"]["reliability"] == "unreliable" and rows["E09000001"]["value_low"] == ""
    assert float(rows["E08000003"]["half_width"]) == 2.6
    picked = client.get("/collections/lad2020_employment_rate/items",
                        params={"properties": "code,value,half_width,reliability", "limit": 1}).json()
    assert set(picked["features"][0]["properties"]) == {"code", "value", "half_width", "reliability"}


def test_disclosure_control_withholds_a_small_area_in_every_role(controlled):
    """A numerator (or denominator) under the minimum publishes no number: not the rate, its
    interval, the numerator nor the denominator, over GeoJSON, CSV, one item or a filter."""
    for collection, params in (("lad2020", {"indicator": "aps.employment_rate"}),
                               ("lad2020_employment_rate", {})):
        props = _items(controlled, collection, **params)
        small = props[SMALL]
        assert small["suppressed"] is True and all(small[k] is None for k in NUMBERS), small
        one = controlled.get(f"/collections/{collection}/items/{SMALL}", params=params).json()["properties"]
        assert all(one[k] is None for k in NUMBERS), one
        text = controlled.get(f"/collections/{collection}/items", params={**params, "f": "csv"}).text
        row = next(r for r in csv.DictReader(io.StringIO(text)) if r["code"] == SMALL)
        assert all(row[k] == "" for k in NUMBERS) and row["suppressed"] == "true"
        # others: numerator and denominator rounded to 5s; the published rate and interval kept
        rounded = props[ROUNDED]
        assert (rounded["count"], rounded["denominator"]) == (1235, 2005)
        assert (rounded["value"], rounded["value_low"], rounded["half_width"]) == (61.8, pytest.approx(52.8), 9.0)
        assert props["E08000001"]["count"] == 126300 and props["E08000001"]["suppressed"] is False
    # a filter cannot find the withheld area by its figures
    for text in ("value > 39 AND value < 41", "count < 10", "half_width > 9.5", "denominator < 100"):
        found = _items(controlled, "lad2020_employment_rate", filter=text)
        assert SMALL not in found, text


# -- the real 2019 file ---------------------------------------------------------------------------

GM_2020 = [f"E080000{i:02d}" for i in range(1, 11)]


@pytest.fixture(scope="module")
def real_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("real_survey") / "real.duckdb"
    with Store.open(path) as store:
        from geo_cs.ingest import ingest_indicator, ingest_lookup

        ingest_lookup(store, SHARED_DATA / "lookups" / "lad_changes_2014_2025.csv")
        ingest_lookup(store, SHARED_DATA / "lookups" / "ward19_lad19_rgn19.csv")
        ingest_boundaries(store, [SHARED_DATA / "boundaries" / "uk_admin_2014_2025.topojson"],
                          layer="ltla", set_id="lad2020", code_col="areacd", name_col="areanm",
                          alive_in=2020)
        ingest_indicator(store, SHARED_DATA / "indicators" / "aps_employment_rate_la_2019.csv")
    return path


def _real_district_rows() -> pd.DataFrame:
    """The file's own district rows (``ladu:``), read here with the csv module."""
    path = SHARED_DATA / "indicators" / "aps_employment_rate_la_2019.csv"
    with open(path, encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and r[0].startswith("ladu:")]
    return _numbers([(r[1], r[0][5:], *r[2:6]) for r in rows])


@pytest.mark.shared_data
def test_real_greater_manchester_from_the_cli_as_nomis_gives_it(real_db: Path, tmp_path: Path, capsys):
    out = tmp_path / "gm.csv"
    result = run_cli(capsys, "--db", str(real_db), "analyse", "employment", "-g", "lad2020",
                     "-p", "greater_manchester", "-o", str(out))
    assert result.code == 0, result.stderr
    gm, gb = pd.read_csv(out).itertuples(index=False)
    rows = _real_district_rows()
    assert len(rows) == 368
    rate, hw = _rate_and_half_width(rows[rows["code"].isin(GM_2020)])
    assert (gm.rate, gm.rate_low, gm.rate_high) == pytest.approx((rate, rate - hw, rate + hw))
    assert round(gm.rate, 2) == 72.69 and round(hw, 2) == 1.04
    gb_rate, _ = _rate_and_half_width(rows)
    gap_hw = _gap_half_width(rows[rows["code"].isin(GM_2020)], rows)
    assert gb.name == "Great Britain" and gb.rate == pytest.approx(gb_rate) and round(gb_rate, 2) == 75.76
    assert (gm.gap, gm.gap_low, gm.gap_high) == pytest.approx(
        (rate - gb_rate, rate - gb_rate - gap_hw, rate - gb_rate + gap_hw))
    assert gm.gap_real and gm.n_areas == 10
    assert gb.unreliable == "City of London (E09000001)" and gb.missing == "Isles of Scilly (E06000053)"


@pytest.mark.shared_data
def test_real_districts_through_the_features_api(real_db: Path):
    with TestClient(create_app(Settings(db=real_db))) as client:
        response = client.get("/collections/lad2020_employment_rate/items", params={"f": "csv"})
        assert response.status_code == 200
        rows = {r["code"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert len(rows) == 368
    glasgow = rows["S12000049"]                 # "ladu:Glasgow City","S12000049",291900,433500,67.3,2.9
    assert (float(glasgow["value"]), float(glasgow["value_low"]), float(glasgow["value_high"])) == (
        67.3, pytest.approx(64.4), pytest.approx(70.2))
    assert (float(glasgow["count"]), float(glasgow["denominator"]), float(glasgow["half_width"])) == (
        291900, 433500, 2.9)
    assert rows["E09000001"]["reliability"] == "unreliable" and rows["E09000001"]["value_low"] == ""
    assert rows["E06000053"]["reliability"] == "missing" and rows["E06000053"]["value"] == ""
    published = _real_district_rows().set_index("code")
    for code, row in rows.items():
        if row["value"]:
            assert float(row["value"]) == published.loc[code, "r"], code
