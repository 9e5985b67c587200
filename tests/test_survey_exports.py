"""Figures 4.1 and 4.2 (the employment rate from the Annual Population Survey) in ``geo-cs export
charts`` and in the partnership report (issue 29, point 3).

The fast tests build a store from small files in the two shapes Nomis gives (a web download with
its preamble, duplicated areas, markers and footer; the API's long form, without intervals), made
here from rows of the real files, so they run without ``../shared``. The tests marked
``shared_data`` use the real files and are skipped when they are absent.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SHARED_DATA, run_cli

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.store import Store

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="poppler-utils (pdftotext) not installed")

#: Greater Manchester's ten districts, Jan-Dec 2019, as the real web download gives them.
GM_2019 = [
    ("Bolton", "E08000001", 122100, 177200, 68.9, "3.1"),
    ("Bury", "E08000002", 84600, 114300, 74.0, "2.9"),
    ("Manchester", "E08000003", 259400, 388400, 66.8, "3.1"),
    ("Oldham", "E08000004", 101200, 143400, 70.5, "3.0"),
    ("Rochdale", "E08000005", 93200, 132800, 70.2, "2.9"),
    ("Salford", "E08000006", 125700, 164100, 76.6, "2.9"),
    ("Stockport", "E08000007", 134700, 175600, 76.7, "3.2"),
    ("Tameside", "E08000008", 105100, 140100, 75.0, "2.9"),
    ("Trafford", "E08000009", 114700, 145900, 78.6, "2.8"),
    ("Wigan", "E08000010", 156900, 203200, 77.2, "2.9"),
]
#: Others of the same file: England, Wales and Scotland (so the benchmark is Great Britain), a
#: district of 2020 (so the file is on the districts of 2020, as the real one), a district
#: marked unreliable and one marked missing.
OTHERS_2019 = [
    ("Buckinghamshire", "E06000060", 259100, 326700, 79.3, "2.7"),
    ("Liverpool", "E08000012", 224600, 333800, 67.3, "3.1"),
    ("Leeds", "E08000035", 384800, 515500, 74.6, "2.5"),
    ("Cardiff", "W06000015", 187400, 246700, 76.0, "2.9"),
    ("City of Edinburgh", "S12000036", 267700, 356300, 75.1, "3.0"),
    ("City of London", "E09000001", 7400, 8500, 87.2, "*"),
    ("Isles of Scilly", "E06000053", "-", "-", "-", "-"),
]


def write_web_download(path: Path, rows=GM_2019 + OTHERS_2019) -> Path:
    """A Nomis web download: preamble, header, each area twice (lacu: and ladu:), footer."""
    def line(prefix: str, row) -> str:
        name, code, num, den, rate, conf = row
        conf = f'"{conf}"' if conf in ("*", "-") else conf
        return f'"{prefix}:{name}","{code}",{num},{den},{rate},{conf}'

    text = "\n".join([
        "", '"annual population survey"', '"ONS Crown Copyright Reserved [from Nomis on 12 June 2020]"',
        '"Analysis   :","variable"', '"Confidence :","95% confidence interval of percent figure (+/-)"',
        '"Date       :","Jan 2019-Dec 2019"', "",
        '"Area","mnemonic","Numerator","Denominator","Employment rate - aged 16-64","Conf"', "",
        *[line("lacu", r) for r in rows], *[line("ladu", r) for r in rows], "", "", "",
        '"*","Estimate and confidence interval unreliable since the group sample size is"', '"","small (3-9)"',
        "", '"-","These figures are missing."', ""])
    path.write_text(text, encoding="utf-8")
    return path


#: Two rolling years of the API's long form (no intervals): (date, label, code, name, rate, numerator).
API_ROWS = [
    ("2018-12-01", "Jan 2018-Dec 2018", "E08000001", "Bolton", 69.8, 122700),
    ("2018-12-01", "Jan 2018-Dec 2018", "E08000003", "Manchester", 67.5, 255900),
    ("2018-12-01", "Jan 2018-Dec 2018", "E08000012", "Liverpool", 68.2, 226900),
    ("2019-12-01", "Jan 2019-Dec 2019", "E08000001", "Bolton", 68.9, 122100),
    ("2019-12-01", "Jan 2019-Dec 2019", "E08000003", "Manchester", 66.8, 259400),
    ("2019-12-01", "Jan 2019-Dec 2019", "E08000012", "Liverpool", 67.3, 224600),
]


def write_api_extract(path: Path) -> Path:
    """The Nomis API's long form (dataset NM_17_5): Variable and Numerator rows, no Confidence."""
    head = ("theme,date,date_name,geography_code,geography_name,geography_type,variable_code,variable_name,"
            "measures_code,measures_name,value")
    kind = "local authorities: county / unitary (as of April 2021)"
    lines = [head]
    for date, label, code, name, rate, numerator in API_ROWS:
        for measure, mcode, value in (("Variable", 20599, rate), ("Numerator", 21001, numerator)):
            lines.append(f"employment,{date},{label},{code},{name},{kind},45,Employment rate - aged 16-64,"
                         f"{mcode},{measure},{value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: The demo bundle's district code history and regions (in the repository, not ../shared).
DEMO_LOOKUPS = REPO / "boundaries" / "demo" / "lookups"


def ingest_small(store: Store, folder: Path, lookups: bool = False) -> tuple[Path, Path]:
    """The two small survey files (and first, with ``lookups``, the demo's district code history
    and regions, so the 2019 file is on the districts of 2020 as the real one is)."""
    from geo_cs.ingest import ingest_indicator, ingest_lookup

    if lookups:
        ingest_lookup(store, DEMO_LOOKUPS / "lad_changes_2014_2025.csv")
        ingest_lookup(store, DEMO_LOOKUPS / "ward19_lad19_rgn19.csv")
    web = write_web_download(folder / "aps_small_2019.csv")
    api = write_api_extract(folder / "aps_small_api.csv")
    ingest_indicator(store, web)
    ingest_indicator(store, api)
    return web, api


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> Path:
    """A store of the two small survey files and nothing else."""
    folder = tmp_path_factory.mktemp("survey_small")
    path = folder / "small.duckdb"
    with Store.open(path) as store:
        ingest_small(store, folder, lookups=True)
    return path


def svg_text(path: Path) -> str:
    """The words of a matplotlib SVG (drawn as paths, each text's words kept in a comment)."""
    import re

    return "\n".join(re.findall(r"<!-- (.*?) -->", path.read_text(encoding="utf-8"), flags=re.S))


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def docx_text(path: Path) -> str:
    import docx

    document = docx.Document(str(path))
    words = [p.text for p in document.paragraphs]
    words += [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join(words)


def odt_text(path: Path) -> str:
    import re

    with zipfile.ZipFile(path) as archive:
        xml = archive.read("content.xml").decode("utf-8")
    return re.sub(r"<[^>]+>", " ", xml)


def assert_csv_is_the_table(csv: Path, table: pd.DataFrame) -> None:
    """Every figure of the CSV is the table's (rates, intervals, gaps, verdicts), row for row."""
    written = pd.read_csv(csv, dtype={"period_id": str})
    assert len(written) == len(table) and len(written)
    assert list(written["group"]) == list(table["group"])
    assert list(written["period_id"]) == list(table["period_id"].astype(str))
    for column in ("rate", "rate_low", "rate_high", "half_width", "benchmark_rate", "gap", "gap_low",
                   "gap_high", "numerator", "denominator"):
        np.testing.assert_allclose(written[column].to_numpy(float), table[column].to_numpy(float),
                                   rtol=1e-12, equal_nan=True, err_msg=column)
    verdicts = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(bool(v)).lower()
                for v in table["gap_real"]]
    assert ["" if pd.isna(v) else str(v).lower() for v in written["gap_real"]] == verdicts
    assert (written["attribution"] == OGL_ATTRIBUTION).all()
    assert written["source"].str.startswith("Annual Population Survey, ONS via Nomis (").all()


# -- the charts ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_charts(small_db, tmp_path_factory) -> tuple[Path, list[Path]]:
    from geo_cs.export.survey_charts import survey_charts

    out = tmp_path_factory.mktemp("survey_charts")
    with Store.open(small_db, read_only=True) as store:
        written, notes = survey_charts(store, ["greater_manchester"], out, formats=("png", "svg"))
    assert notes == []
    return out, written


def test_figures_4_1_and_4_2_are_written_as_png_svg_and_csv_per_edition(small_charts):
    out, written = small_charts
    names = sorted(p.name for p in written)
    assert names == sorted(f"{stem}.{ext}" for stem in (
        "fig4_1_employment_rate_greater_manchester_lad2020",
        "fig4_1_employment_rate_greater_manchester_lad2021",
        "fig4_2_employment_rate_partnerships_lad2020_2019y12",
        "fig4_2_employment_rate_partnerships_lad2021_2019y12") for ext in ("png", "svg", "csv"))
    for path in written:
        assert path.exists() and path.stat().st_size > 500, path
    assert (out / "fig4_1_employment_rate_greater_manchester_lad2020.png").read_bytes()[:4] == b"\x89PNG"


def test_the_csvs_carry_employment_rates_figures_unchanged(small_db, small_charts):
    from geo_cs.export.survey_charts import partnerships_in_period, series_rows
    from geo_cs.survey import employment_rates

    out, _ = small_charts
    with Store.open(small_db, read_only=True) as store:
        web = employment_rates(store, set_id="lad2020")
        api = employment_rates(store, set_id="lad2021")
    assert_csv_is_the_table(out / "fig4_1_employment_rate_greater_manchester_lad2020.csv",
                            series_rows(web, "greater_manchester"))
    assert_csv_is_the_table(out / "fig4_1_employment_rate_greater_manchester_lad2021.csv",
                            series_rows(api, "greater_manchester"))
    assert_csv_is_the_table(out / "fig4_2_employment_rate_partnerships_lad2020_2019y12.csv",
                            partnerships_in_period(web, "2019y12"))
    # Greater Manchester's 2019 figure, by hand from the file's own rows: Σ numerators / Σ denominators
    gm = pd.read_csv(out / "fig4_1_employment_rate_greater_manchester_lad2020.csv")
    gm = gm[gm["group"] == "greater_manchester"].iloc[0]
    numerators = [r[2] for r in GM_2019]
    denominators = [r[3] for r in GM_2019]
    assert gm["rate"] == pytest.approx(100 * sum(numerators) / sum(denominators))
    weights = np.array(denominators) / sum(denominators)
    half = np.sqrt(np.sum((weights * np.array([float(r[5]) for r in GM_2019])) ** 2))
    assert gm["half_width"] == pytest.approx(half)
    assert f"{gm['rate']:.1f}" == "72.7"
    # figure 4.2 is sorted by rate, the benchmark's row last
    fig42 = pd.read_csv(out / "fig4_2_employment_rate_partnerships_lad2020_2019y12.csv")
    parts = fig42[fig42["group_kind"] == "partnership"]
    assert list(parts["rate"]) == sorted(parts["rate"]) and fig42["group_kind"].iloc[-1] == "benchmark"


def test_the_svgs_name_the_partnership_benchmark_source_and_licence(small_charts):
    out, _ = small_charts
    web = svg_text(out / "fig4_1_employment_rate_greater_manchester_lad2020.svg")
    for words in ("Greater Manchester", "Great Britain", "95% intervals as whiskers",
                  "Source: Annual Population Survey, ONS via Nomis (aps_small_2019.csv).",
                  "Contains National Statistics data © Crown copyright", "Open Government Licence v3.0.",
                  # the marked districts of the benchmark, in words
                  "Isles of Scilly (E06000053) is missing", "City of London (E09000001) is unreliable"):
        assert words in web, words
    api = svg_text(out / "fig4_1_employment_rate_greater_manchester_lad2021.svg")
    for words in ("Greater Manchester", "no interval published",
                  "Source: Annual Population Survey, ONS via Nomis (aps_small_api.csv).",
                  "Contains National Statistics data © Crown copyright", "Open Government Licence v3.0.",
                  "each district's is derived as its numerator"):
        assert words in api, words
    bars = svg_text(out / "fig4_2_employment_rate_partnerships_lad2020_2019y12.svg")
    for words in ("Greater Manchester", "Merseyside / Liverpool City Region", "Great Britain:",
                  "Filled bar: a real difference from Great Britain",
                  "Source: Annual Population Survey, ONS via Nomis (aps_small_2019.csv).",
                  "Open Government Licence v3.0."):
        assert words in bars, words
    hatched = svg_text(out / "fig4_2_employment_rate_partnerships_lad2021_2019y12.svg")
    assert "Hatched bar: no interval published" in hatched and "Filled bar" not in hatched


def test_the_charts_draw_only_what_the_table_holds():
    """No arithmetic in the chart: it draws the table's own numbers, and says when there is none."""
    from geo_cs.export.charts import figure_svg
    from geo_cs.export.survey_charts import employment_partnerships_chart, employment_series_chart

    base = {"group_kind": "partnership", "group": "p", "name": "Testtown", "period_id": "2019y12",
            "period_label": "Jan 2019-Dec 2019", "rate": 61.25, "rate_low": np.nan, "rate_high": np.nan,
            "half_width": np.nan, "interval": "no interval published", "benchmark_rate": 70.0, "gap": -8.75,
            "gap_low": np.nan, "gap_high": np.nan, "gap_real": None, "note": ""}
    bench = {**base, "group_kind": "benchmark", "group": "gb", "name": "Great Britain", "rate": 70.0,
             "gap": np.nan}
    table = pd.DataFrame([base, bench])
    table.attrs["benchmark"] = "Great Britain"
    svg = figure_svg(employment_series_chart(table, "p"))
    assert "no interval published" in svg and "61.2%" in svg
    svg = figure_svg(employment_partnerships_chart(table))
    assert "61.2%" in svg and "Hatched bar: no interval published" in svg
    svg = figure_svg(employment_series_chart(table, "elsewhere"))
    assert "No survey figure for elsewhere" in svg


def test_export_charts_draws_the_survey_figures_from_a_store_of_survey_estimates_only(
        small_db, tmp_path: Path, capsys):
    result = run_cli(capsys, "--db", str(small_db), "-q", "export", "charts", "-p", "greater_manchester",
                     "-o", str(tmp_path / "c"), "--format", "svg", "--survey-geography", "lad2020")
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "fig4_1_employment_rate_greater_manchester_lad2020.csv",
        "fig4_1_employment_rate_greater_manchester_lad2020.svg",
        "fig4_2_employment_rate_partnerships_lad2020_2019y12.csv",
        "fig4_2_employment_rate_partnerships_lad2020_2019y12.svg"]
    # the store has no claimant series: figures 4.3-4.7 are named as not drawn, not an error
    assert "figures 4.3-4.7 not drawn" in result.stderr
    result = run_cli(capsys, "--db", str(small_db), "-q", "export", "charts", "-p", "greater_manchester",
                     "-o", str(tmp_path / "d"), "--format", "svg", "--survey-period", "1999y12")
    assert result.code == 5 and "period 1999y12 not in the survey estimates" in result.stderr
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
    result = run_cli(capsys, "--db", str(small_db), "-q", "export", "charts", "-p", "greater_manchester",
                     "-o", str(tmp_path / "e"), "--survey-geography", "lad2099")
    assert result.code == 5 and "lad2099" in result.stderr
    # asked for a claimant series the store lacks: still an error
    result = run_cli(capsys, "--db", str(small_db), "-q", "export", "charts", "-p", "greater_manchester",
                     "-o", str(tmp_path / "f"), "-i", "claimants", "--no-survey")
    assert result.code == 5 and "claimants" in result.stderr


# -- the report -----------------------------------------------------------------------------------

def test_no_survey_estimates_no_section(store, small_db):
    from geo_cs.export.report import Chart, Profile, profile_document
    from geo_cs.export.survey_charts import SECTION_TITLE, survey_report_blocks

    def profile(survey: list) -> Profile:
        sources = pd.DataFrame(columns=["indicator", "label", "source", "publisher", "licence", "periods"])
        return Profile("greater_manchester", "Greater Manchester", ["its districts"],
                       Chart("map", "a map", lambda fig: fig), [], [], pd.DataFrame(), sources, survey=survey)

    assert survey_report_blocks(store, "greater_manchester") == []     # an empty store: no error
    assert SECTION_TITLE not in profile_document(profile([])).headings()
    with Store.open(small_db, read_only=True) as small:
        blocks = survey_report_blocks(small, "greater_manchester")
    headings = profile_document(profile(blocks)).headings()
    assert headings.index(SECTION_TITLE) < headings.index("What the figures rest on")
    assert "Notes on the survey figures" in headings


def test_the_section_says_why_a_partnership_of_wards_has_no_figure(small_db):
    from geo_cs.export.document import Heading, Paragraph
    from geo_cs.export.survey_charts import SECTION_TITLE, survey_report_blocks

    with Store.open(small_db, read_only=True) as store:
        blocks = survey_report_blocks(store, "rhyl")
    assert isinstance(blocks[0], Heading) and blocks[0].text == SECTION_TITLE
    assert isinstance(blocks[1], Paragraph) and "published for districts" in blocks[1].text


@pytest.fixture(scope="module")
def small_report(demo_db, tmp_path_factory) -> Path:
    """Greater Manchester's report in every format, from the demo with the small survey files
    (or the demo as it is, when its bundle carries the real ones)."""
    from geo_cs.export.report import write_reports
    from geo_cs.survey import survey_sets

    folder = tmp_path_factory.mktemp("survey_report")
    db = folder / "demo_survey.duckdb"
    shutil.copyfile(demo_db, db)
    with Store.open(db) as store:
        if not survey_sets(store):
            ingest_small(store, folder)

    with Store.open(db, read_only=True) as store:
        [result] = write_reports(store, ["greater_manchester"], folder / "out",
                                 formats=("pdf", "docx", "odt", "html"))
    assert result.ok, result.error
    return folder / "out"


@needs_poppler
def test_the_report_pdf_has_the_section_the_figures_and_the_method(small_report):
    text = pdf_text(small_report / "greater_manchester.pdf")
    flat = " ".join(text.split())
    assert "Employment rate (Annual Population Survey)" in flat
    assert "Figure 4.1" in flat and "Figure 4.2" in flat
    assert "72.7%" in flat and "71.7% to 73.7%" in flat            # Greater Manchester, Jan-Dec 2019
    assert "a real difference" in flat
    assert "no interval published" in flat                        # the API file's series
    assert "√Σ(wᵢ·cᵢ)²" in flat and "independent" in flat         # the method in words
    assert "Isles of Scilly (E06000053)" in flat                   # the benchmark's coverage


def test_the_report_docx_odt_and_html_have_the_section(small_report):
    for text in (docx_text(small_report / "greater_manchester.docx"),
                 odt_text(small_report / "greater_manchester.odt"),
                 (small_report / "greater_manchester.html").read_text(encoding="utf-8")):
        assert "Employment rate (Annual Population Survey)" in text
        assert "Figure 4.1" in text and "Figure 4.2" in text
        assert "72.7%" in text and "no interval published" in text


# -- the real files ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_db(demo_db, tmp_path_factory) -> Path:
    """The demo with both real survey files (the demo holds the lookups they need)."""
    from geo_cs.ingest import ingest_indicator

    db = tmp_path_factory.mktemp("survey_real") / "demo_aps.duckdb"
    shutil.copyfile(demo_db, db)
    with Store.open(db) as store:
        ingest_indicator(store, SHARED_DATA / "indicators" / "aps_employment_rate_la_2019.csv")
        ingest_indicator(store, SHARED_DATA / "indicators" / "aps_lad_north_2004_2023.csv")
    return db


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_files_export_charts_for_greater_manchester(real_db, tmp_path: Path, capsys):
    from geo_cs.export.survey_charts import series_rows
    from geo_cs.survey import employment_rates

    result = run_cli(capsys, "--db", str(real_db), "-q", "export", "charts", "-p", "greater_manchester",
                     "-o", str(tmp_path), "--format", "png,svg")
    assert result.code == 0, result.stderr
    for stem in ("fig4_1_employment_rate_greater_manchester_lad2020",
                 "fig4_1_employment_rate_greater_manchester_lad2021",
                 "fig4_2_employment_rate_partnerships_lad2020_2019y12",
                 "fig4_2_employment_rate_partnerships_lad2021_2023y12",
                 "fig4_3_index_of_count", "fig4_5_rate_and_gap_with_gb"):
        for ext in ("png", "svg", "csv"):
            assert (tmp_path / f"{stem}.{ext}").exists(), f"{stem}.{ext}"
    with Store.open(real_db, read_only=True) as store:
        web = employment_rates(store, set_id="lad2020")
        api = employment_rates(store, set_id="lad2021")
    assert_csv_is_the_table(tmp_path / "fig4_1_employment_rate_greater_manchester_lad2020.csv",
                            series_rows(web, "greater_manchester"))
    assert_csv_is_the_table(tmp_path / "fig4_1_employment_rate_greater_manchester_lad2021.csv",
                            series_rows(api, "greater_manchester"))
    gm = web[(web["group"] == "greater_manchester")].iloc[0]
    assert round(gm["rate"], 1) == 72.7 and round(gm["rate_low"], 1) == 71.7 and round(gm["rate_high"], 1) == 73.7
    series = svg_text(tmp_path / "fig4_1_employment_rate_greater_manchester_lad2021.svg")
    for words in ("Greater Manchester", "All 72 districts of North East, North West and",
                  "no interval published", "Jan 2004-Dec 2004",
                  "Source: Annual Population Survey, ONS via Nomis (aps_lad_north_2004_2023.csv).",
                  "Open Government Licence v3.0."):
        assert words in series, words
    bars = svg_text(tmp_path / "fig4_2_employment_rate_partnerships_lad2020_2019y12.svg")
    for words in ("Greater Manchester", "Glasgow", "Great Britain: 75.8%",
                  "Source: Annual Population Survey, ONS via Nomis (aps_employment_rate_la_2019.csv).",
                  "Contains National Statistics data © Crown copyright"):
        assert words in bars, words


@needs_poppler
@pytest.mark.shared_data
@pytest.mark.slow
def test_real_files_report_for_greater_manchester(real_db, tmp_path: Path, capsys):
    result = run_cli(capsys, "--db", str(real_db), "-q", "export", "report", "-p", "greater_manchester",
                     "--format", "pdf,docx,odt,html", "-o", str(tmp_path))
    assert result.code == 0, result.stderr
    flat = " ".join(pdf_text(tmp_path / "greater_manchester.pdf").split())
    assert "Employment rate (Annual Population Survey)" in flat
    assert "72.7% (95% interval 71.7% to 73.7%)" in flat
    assert "-3.1 points (95% interval -4.1 to -2.0), a real difference" in flat
    assert "no interval published" in flat                                   # the API file's series
    assert "Jan 2004-Dec 2004 to Jan 2023-Dec 2023 (aps_lad_north_2004_2023.csv)" in flat
    assert "The file publishes no denominators" in flat
    for text in (docx_text(tmp_path / "greater_manchester.docx"), odt_text(tmp_path / "greater_manchester.odt"),
                 (tmp_path / "greater_manchester.html").read_text(encoding="utf-8")):
        assert "Employment rate (Annual Population Survey)" in text and "72.7%" in text
