"""Static exports, looked at: image size and DPI, legend and attribution in SVG and PDF text,
small multiples sharing one set of breaks, a reference image, and the charts with their CSV."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from matplotlib.testing.compare import compare_images
from PIL import Image

from geo_cs.export.maps import MapPanel, choropleth_figure, classify, palette, save_figure
from tests.conftest import grid_frame, run_cli

REFERENCE = Path(__file__).parent / "data" / "reference_grid_map.png"
ATTRIBUTION = "Open Government Licence v3.0"
GEO_CS = [sys.executable, "-m", "geo_cs.cli"]


def grid_panels() -> list[MapPanel]:
    """Two periods of the six-square grid, with a cohort and an estimated square."""
    squares = grid_frame().to_crs("EPSG:27700").rename(columns={"LSOA11CD": "code", "LSOA11NM": "name"})
    panels = []
    for label, values in (("2019", [5, 12, 18, 26, 33, None]), ("2022", [4, 10, 19, 22, 29, 41])):
        areas = squares.assign(value=values, worst=[False, False, False, True, True, True],
                               estimated_share=[0, 0, 0.4, 0, 0, 0])
        panels.append(MapPanel(label, gpd.GeoDataFrame(areas, geometry="geometry", crs="EPSG:27700")))
    return panels


def grid_figure():
    return choropleth_figure(grid_panels(), [10, 20, 30, 45], title="Testtown", subtitle="a test map",
                             unit="%", source="Source: test data")


def test_classes_are_the_first_break_a_value_does_not_exceed():
    assert classify(pd.Series([1, 10, 10.5, 45, 99, None]), [10, 20, 30, 45]).tolist() == [0, 0, 1, 3, 3, -1]
    assert palette(5)[0] == "#ffffcc" and palette(5)[-1] == "#800026"


def test_png_is_300_dpi_and_print_sized(tmp_path: Path):
    path = save_figure(grid_figure(), tmp_path / "map.png")
    with Image.open(path) as image:
        dpi = image.info["dpi"]
        assert round(dpi[0]) == 300 and round(dpi[1]) == 300
        assert image.width >= 2400 and image.height >= 1400


def test_svg_has_one_legend_for_both_periods_and_the_attribution(tmp_path: Path):
    svg = save_figure(grid_figure(), tmp_path / "map.svg").read_text()
    # matplotlib writes text as paths unless told otherwise; the labels are in its comments
    for text in ("Classes (all periods)", "No data", "Worst-performing", "Estimated through a",
                 "2019", "2022", "Testtown", ATTRIBUTION, "km"):
        assert text in svg, text
    assert svg.count("Classes (all periods)") == 1


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
def test_pdf_text_has_title_legend_and_attribution(tmp_path: Path):
    pdf = save_figure(grid_figure(), tmp_path / "map.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for expected in ("Testtown", "No data", "Worst-performing", ATTRIBUTION.split()[0], "10.0 – 20.0%"):
        assert expected in text, expected


def matches_reference(actual: Path, reference: Path) -> None:
    """Fail unless ``actual`` looks like the committed ``reference``. A missing reference is a
    failure, never written here: a test that wrote it would compare the drawing with itself.
    To make or renew references deliberately, run with GEO_CS_WRITE_REFERENCES=1, look at the
    images, and commit them."""
    if os.environ.get("GEO_CS_WRITE_REFERENCES") == "1":
        reference.parent.mkdir(exist_ok=True)
        shutil.copy(actual, reference)
        pytest.fail(f"wrote {reference}: look at it, commit it, and run again without GEO_CS_WRITE_REFERENCES")
    if not reference.exists():
        pytest.fail(f"reference image {reference} is missing; to make it deliberately: "
                    f"GEO_CS_WRITE_REFERENCES=1 pytest {Path(__file__).name}, then look at it and commit it")
    assert compare_images(str(reference), str(actual), tol=6) is None


def test_drawing_matches_the_reference_image(tmp_path: Path):
    actual = save_figure(grid_figure(), tmp_path / "actual.png", dpi=60)
    matches_reference(actual, REFERENCE)


def test_a_missing_reference_image_fails_instead_of_being_written(tmp_path: Path):
    actual = save_figure(grid_figure(), tmp_path / "actual.png", dpi=60)
    missing = tmp_path / "no_such_reference.png"
    with pytest.raises(pytest.fail.Exception, match="is missing; to make it deliberately"):
        matches_reference(actual, missing)
    assert not missing.exists()


def test_unknown_format_and_unwritable_path_are_clear_errors(tmp_path: Path):
    from geo_cs.errors import InputError

    with pytest.raises(InputError, match=r"expected a .png, .svg or .pdf"):
        save_figure(grid_figure(), tmp_path / "map.jpg")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        save_figure(grid_figure(), blocker / "map.png")


# -- on the demo database, through the command ------------------------------------------------

def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GEO_CS, *args], capture_output=True, text=True, timeout=300)


def test_partnership_map_small_multiples_share_breaks(demo_db, tmp_path: Path):
    from geo_cs.export.maps import partnership_map
    from geo_cs.store import Store

    with Store.open(demo_db, read_only=True) as store:
        figure = partnership_map(store, "glasgow", periods=["simd2012", "simd2016", "simd2020"])
    svg = save_figure(figure, tmp_path / "glasgow.svg").read_text()
    for label in ("SIMD 2012 (2010 data)", "SIMD 2016 (2014 data)", "SIMD 2020 (2017 data)"):
        assert label in svg
    assert svg.count("Classes (all periods)") == 1 and ATTRIBUTION in svg


@pytest.mark.slow  # two export commands in their own processes: ~14 s; .ci/run runs it
def test_export_commands_write_maps_and_charts_with_csv(demo_db, glasgow_from_raw, tmp_path: Path):
    result = run("--db", str(demo_db), "-q", "export", "map", "-p", "glasgow", "-o", str(tmp_path / "g.png"),
                 "--dpi", "100")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "g.png") as image:
        assert round(image.info["dpi"][0]) == 100
    result = run("--db", str(demo_db), "-q", "export", "charts", "-p", "glasgow", "-o", str(tmp_path / "c"),
                 "--format", "svg")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    # the demo carries the survey employment rate (issue 29): figures 4.1 and 4.2 come first
    assert names == ["fig4_1_employment_rate_glasgow_lad2020.csv",
                     "fig4_1_employment_rate_glasgow_lad2020.svg",
                     "fig4_2_employment_rate_partnerships_lad2020_2019y12.csv",
                     "fig4_2_employment_rate_partnerships_lad2020_2019y12.svg",
                     "fig4_3_index_of_count.csv", "fig4_3_index_of_count.svg",
                     "fig4_5_rate_and_gap_with_gb.csv", "fig4_5_rate_and_gap_with_gb.svg",
                     "fig4_7_worst_vs_rest_glasgow.csv", "fig4_7_worst_vs_rest_glasgow.svg"]
    gap = pd.read_csv(tmp_path / "c" / "fig4_7_worst_vs_rest_glasgow.csv")
    assert list(gap["period_id"]) == ["simd2012", "simd2016", "simd2020"]
    assert (gap["gap_low"] <= gap["gap"]).all() and (gap["gap"] <= gap["gap_high"]).all()
    # the chart's figures are those worked out from the raw files (to the CSV's decimals)
    for period, expected in glasgow_from_raw["gaps"].items():
        row = gap.set_index("period_id").loc[period]
        assert tuple(row[["gap", "gap_low", "gap_high"]]) == pytest.approx(expected, abs=0.01), period
    # the footer wraps to the chart's width, so its last words may be a text of their own
    assert "Contains National Statistics data © Crown copyright" in (tmp_path / "c" / "fig4_3_index_of_count.svg").read_text()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["map", "-p", "nope", "-o", "x.png"], 5, "unknown partnership nope"),
    (["map", "-p", "glasgow", "--period", "1999", "-o", "x.png"], 5, "valid: simd2012"),
    (["map", "-p", "glasgow", "-i", "nope", "-g", "datazone2011", "-o", "x.png"], 5, "employment_deprived"),
    (["charts", "-p", "glasgow", "-o", "/proc/geo-cs-charts"], 3, "cannot create"),
])
def test_export_errors_name_what_is_wrong(demo_db, tmp_path: Path, capsys, args, code, message):
    # in this process (as the entry point runs main): the command's own process is tested above
    args = [str(tmp_path / a) if a.endswith(".png") else a for a in args]
    result = run_cli(capsys, "--db", str(demo_db), "-q", "export", *args)
    assert result.code == code and message in result.stderr, result.stderr


needs_poppler = pytest.mark.skipif(
    shutil.which("pdfinfo") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdfinfo, pdftotext, pdftoppm) not installed")


@pytest.fixture(scope="module")
def glasgow_report(demo_db, tmp_path_factory) -> tuple[Path, float]:
    """Glasgow's report in every format, written once through the command; and its time."""
    import time

    out = tmp_path_factory.mktemp("report")
    started = time.monotonic()
    result = run("--db", str(demo_db), "-q", "export", "report", "-p", "glasgow", "--format",
                 "pdf,docx,odt,html", "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out, time.monotonic() - started


DEMO = Path(__file__).resolve().parents[1] / "boundaries" / "demo"


@pytest.fixture(scope="module")
def glasgow_from_raw() -> dict[str, object]:
    """Glasgow's worst-performing neighbourhoods on the 2011 data zones, worked out here from the
    demo bundle's files with pandas, geopandas and statsmodels (not geo-cs): the data zones of
    Glasgow City (S12000049) from the NRS lookup; SIMD 2012 (on the 2001 zones) carried to the
    2011 zones by the share of each 2001 zone's area in each 2011 zone it is linked to (area of
    overlap in the British National Grid); the cohort is the zones above 25% on SIMD 2012; the
    gap's interval is Newcombe's (statsmodels), the change's its half-widths in quadrature."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    d01 = gpd.read_parquet(DEMO / "boundaries" / "datazone2001.parquet").to_crs(27700).set_index("DZ_CODE").geometry
    d11 = gpd.read_parquet(DEMO / "boundaries" / "datazone2011.parquet").to_crs(27700).set_index("dz11_code").geometry
    links = pd.read_csv(DEMO / "lookups" / "dz01_dz11.csv").drop_duplicates()
    split = links.groupby("dz01_code")["dz11_code"].transform("size") > 1
    links["overlap"] = 1.0
    links.loc[split, "overlap"] = d01.reindex(links.loc[split, "dz01_code"]).intersection(
        d11.reindex(links.loc[split, "dz11_code"]), align=False).area.to_numpy()
    links["share"] = links["overlap"] / links.groupby("dz01_code")["overlap"].transform("sum")
    simd2012 = pd.read_csv(DEMO / "indicators" / "simd2012_scotland_dz01_indicators.csv").rename(columns={
        "number_of_employment_deprived_people_2012": "count",
        "best_fit_working_age_population_men_16_64_women_16_60_sape_2010": "denominator"})
    carried = links.merge(simd2012, on="dz01_code")
    carried[["count", "denominator"]] = carried[["count", "denominator"]].mul(carried["share"], axis=0)
    on_2011 = {"simd2012": carried.groupby("dz11_code")[["count", "denominator"]].sum()}
    simd2020 = pd.read_csv(DEMO / "indicators" / "simd2020_scotland_dz11_indicators.csv")
    on_2011["simd2020"] = simd2020.set_index("dz11_code").rename(
        columns={"Employment_count": "count", "Working_age_population": "denominator"})[["count", "denominator"]]
    lookup = pd.read_csv(DEMO / "lookups" / "dz11_iz11_lad20_scotland.csv")
    glasgow = lookup.loc[lookup["ltla20_code"] == "S12000049", "dz11_code"]
    base = on_2011["simd2012"].reindex(glasgow)
    worst = base.index[base["count"] / base["denominator"] * 100 > 25]
    gaps = {}
    for period, frame in on_2011.items():
        frame = frame.reindex(glasgow).dropna()
        frame = frame[frame["denominator"] > 0]
        cohort, rest = frame[frame.index.isin(worst)].sum(), frame[~frame.index.isin(worst)].sum()
        low, high = confint_proportions_2indep(cohort["count"], cohort["denominator"], rest["count"],
                                               rest["denominator"], method="newcomb", compare="diff")
        gap = 100 * (cohort["count"] / cohort["denominator"] - rest["count"] / rest["denominator"])
        gaps[period] = (gap, 100 * low, 100 * high)
    (g1, l1, h1), (g2, l2, h2) = gaps["simd2012"], gaps["simd2020"]
    return {"n_areas": len(glasgow), "n_cohort": len(worst), "cohort": set(worst), "gaps": gaps,
            "change": (g2 - g1, g2 - g1 - np.hypot(g2 - l2, h1 - g1), g2 - g1 + np.hypot(h2 - g2, g1 - l1)),
            "simd2020": on_2011["simd2020"]}


#: The map's answer in words for Glasgow, written out (its figures checked against the raw files
#: in test_glasgow_sentence_figures_come_from_the_raw_files).
GLASGOW_SENTENCE = (
    "The gap between the 267 worst-performing neighbourhoods and the rest of Glasgow narrowed from "
    "19.9 to 14.0 points between SIMD 2012 (2010 data) and SIMD 2020 (2017 data) — a real change "
    "(95% interval of the change -6.3 to -5.5 points). Threshold: a baseline rate above 25%; "
    "baseline: SIMD 2012 (2010 data).")


def test_glasgow_sentence_figures_come_from_the_raw_files(glasgow_from_raw):
    figures = glasgow_from_raw
    assert figures["n_areas"] == 746 and figures["n_cohort"] == 267
    (first, *_), (last, *_) = figures["gaps"]["simd2012"], figures["gaps"]["simd2020"]
    _, low, high = figures["change"]
    assert high < 0 and last - first < -0.1     # narrowed, beyond the 0.1-point tolerance: "real"
    numbers = re.findall(r"-?\d+\.\d+|\b\d{3}\b", GLASGOW_SENTENCE)
    assert numbers == ["267", f"{first:.1f}", f"{last:.1f}", f"{low:.1f}", f"{high:.1f}"]


@pytest.fixture(scope="module")
def glasgow_sentence() -> str:
    return GLASGOW_SENTENCE


def test_the_library_says_the_sentence(demo_db, glasgow_from_raw):
    """The library's gap table and sentence for Glasgow's default map: the literal sentence, and
    each period's gap and interval as worked out from the raw files."""
    from geo_cs.analysis import MethodParams
    from geo_cs.layers import area_values, partnership_gap, resolve_measure, store_view
    from geo_cs.narrative import gap_sentence
    from geo_cs.store import Store

    with Store.open(demo_db, read_only=True) as store:
        measure = resolve_measure(store, *store_view(store, "glasgow"))
        values = area_values(store, measure)
        gap = partnership_gap(store, measure, "glasgow")
    assert gap_sentence(gap, "Glasgow", MethodParams(threshold=values.threshold, baseline=values.baseline)) \
        == GLASGOW_SENTENCE
    rows = gap.set_index("period_id")
    for period, expected in glasgow_from_raw["gaps"].items():
        assert tuple(rows.loc[period, ["gap", "gap_low", "gap_high"]]) == pytest.approx(expected, abs=1e-6), period
    assert (rows["n_cohort"] == glasgow_from_raw["n_cohort"]).all()
def pdf_pages_text(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return text.split("\f")[:-1]


def blank_share(png: Path, bands: int = 24) -> float:
    """Share of a page's horizontal bands with no ink (the page as pdftoppm drew it)."""
    import numpy as np

    with Image.open(png) as image:
        pixels = np.asarray(image.convert("L"))
    rows = np.array_split(pixels, bands)
    return sum(1 for band in rows if (band < 200).sum() < 3) / bands


@needs_poppler
def test_report_pdf_uses_every_page_with_legible_tables(glasgow_report, glasgow_sentence, glasgow_from_raw,
                                                       tmp_path: Path):
    out, elapsed = glasgow_report
    pdf = out / "glasgow.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Title:           Glasgow: partnership profile" in info
    assert "A4" in info
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    # the language: in the XMP packet pdfinfo reads, and in the document catalog
    meta = subprocess.run(["pdfinfo", "-meta", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "<dc:language><rdf:Bag><rdf:li>en-GB</rdf:li>" in meta
    assert b"/Lang (en-GB)" in pdf.read_bytes()
    # no page more than half blank, but the last (the end of the notes)
    subprocess.run(["pdftoppm", "-r", "24", "-gray", "-png", str(pdf), str(tmp_path / "page")], check=True)
    images = sorted(tmp_path.glob("page-*.png"), key=lambda p: int(p.stem.split("-")[-1]))
    assert len(images) == pages
    shares = [blank_share(p) for p in images]
    assert all(share <= 0.5 for share in shares[:-1]), shares
    texts = pdf_pages_text(pdf)
    assert len(texts) == pages
    words = " ".join(texts[0].split())
    # page 1: title block, the same sentence as the map's, the key figures and the map
    assert "Glasgow: partnership profile" in words
    assert " ".join(glasgow_sentence.split()) in words
    assert "out-of-work benefit rate was" in words and "Classes (all periods)" in words
    # the cohort's table runs over pages, its header repeated on each
    cohort_pages = [t for t in texts if "highest baseline rate first" in t]
    assert len(cohort_pages) >= 2
    assert all("Code" in t and "Name" in t and "Baseline" in t for t in cohort_pages)
    assert sum("(continued)" in t for t in cohort_pages) == len(cohort_pages) - 1
    codes = [c for t in cohort_pages for c in re.findall(r"^\s*(S010\d{5})\s", t, re.M)]
    assert sorted(codes) == sorted(glasgow_from_raw["cohort"])   # every cohort neighbourhood, once
    # tables legible at 100%: their words are at least 8 pt high (pdftotext's boxes)
    boxes = subprocess.run(["pdftotext", "-bbox", "-f", str(texts.index(cohort_pages[0]) + 1), "-l",
                            str(texts.index(cohort_pages[0]) + 1), str(pdf), "-"],
                           capture_output=True, text=True, check=True).stdout
    heights = [float(y2) - float(y1) for y1, y2, word in re.findall(
        r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">(S010\d{5})<', boxes)]
    assert len(heights) > 30 and min(heights) >= 8.0, heights[:5]
    for expected in ("Definition", "Method", "Caveats", "estimated through a", "simd2016.employment_deprived",
                     "Worst-performing neighbourhoods", "Open Government Licence", "Okabe-Ito"):
        assert expected in " ".join(" ".join(texts).split()), expected
    # each figure's description is printed, as text, under it
    assert "Map of Glasgow's 746 areas" in words
    assert elapsed < 120  # the bench times it properly; this only catches a runaway


def test_report_docx_reads_back_with_headings_tables_and_alt_text(glasgow_report, glasgow_sentence,
                                                                  glasgow_from_raw):
    import docx
    from docx.oxml.ns import qn

    document = docx.Document(str(glasgow_report[0] / "glasgow.docx"))
    assert document.core_properties.title == "Glasgow: partnership profile"
    assert document.core_properties.language == "en-GB"
    headings = [(p.style.name, p.text) for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert ("Heading 1", "Worst-performing neighbourhoods and the rest") in headings
    assert ("Heading 1", "Out-of-work benefits") in headings
    assert ("Heading 2", "Method") in headings
    assert any(p.text == glasgow_sentence for p in document.paragraphs)
    captions = [p.text for p in document.paragraphs if p.style.name == "Caption"]
    # figures 4.1 and 4.2 (the survey employment rate) beside 4.3-4.7
    assert sum(c.startswith(("Figure", "Figures")) for c in captions) == 6
    # tables are Word tables, their header row repeated on every page
    gap = next(t for t in document.tables if t.rows[0].cells[0].text == "Period" and len(t.rows) == 4)
    assert [c.text for c in gap.rows[0].cells][:3] == ["Period", "Worst (%)", "Rest (%)"]
    assert gap.rows[1].cells[0].text == "SIMD 2012 (2010 data)" and float(gap.rows[1].cells[3].text) > 0
    assert all(t.rows[0]._tr.trPr.find(qn("w:tblHeader")) is not None for t in document.tables)
    cohort = document.tables[-1]
    assert cohort.rows[0].cells[0].text == "Code"
    assert sorted(row.cells[0].text for row in cohort.rows[1:]) == sorted(glasgow_from_raw["cohort"])
    # every figure is a picture with alternative text
    pictures = list(document.element.body.iter(qn("wp:docPr")))
    assert len(pictures) == 6 == len(document.inline_shapes)
    assert all(len(p.get("descr", "")) > 60 for p in pictures)
    assert pictures[0].get("descr").startswith("Map of Glasgow's 746 areas")


def test_report_odt_reads_back_with_headings_tables_and_alt_text(glasgow_report):
    from odf import dc, draw, svg, table, teletype, text
    from odf.opendocument import load

    document = load(str(glasgow_report[0] / "glasgow.odt"))
    assert [teletype.extractText(e) for e in document.meta.getElementsByType(dc.Language)] == ["en-GB"]
    headings = [(h.getAttribute("outlinelevel"), teletype.extractText(h))
                for h in document.getElementsByType(text.H)]
    assert ("1", "Out-of-work benefits") in headings and ("2", "Caveats") in headings
    tables = document.getElementsByType(table.Table)
    assert len(tables) == 4
    assert all(len(t.getElementsByType(table.TableHeaderRows)) == 1 for t in tables)
    first_cells = [teletype.extractText(c) for c in tables[-1].getElementsByType(table.TableCell)[:6]]
    assert first_cells[:2] == ["Code", "Name"] and re.fullmatch(r"S010\d{5}", first_cells[5])
    frames = document.getElementsByType(draw.Frame)
    assert len(frames) == 6
    for frame in frames:
        assert frame.getElementsByType(draw.Image)
        [desc] = frame.getElementsByType(svg.Desc)
        assert len(teletype.extractText(desc)) > 60
    assert len(document.Pictures) == 6


def test_report_html_is_self_contained_with_described_figures(glasgow_report):
    page = (glasgow_report[0] / "glasgow.html").read_text()
    # self-contained: figures inline, nothing fetched (SVG namespaces are names, not fetches)
    assert page.count("<svg") == 6 and not re.search(r"""(?:src|href)=["']https?://""", page)
    assert page.count('role="img" aria-label="') == 6 and '<html lang="en-GB">' in page
    assert "<caption>" in page and "Open Government Licence v3.0" in page


def test_report_batch_names_a_failure_and_writes_the_others(demo_db, tmp_path: Path):
    """--all over a registry of three partnerships: one is written, one fails (its file cannot be
    written), one is skipped (the store holds none of its areas); the exit code says one failed."""
    import yaml

    from geo_cs.config import boundaries_dir

    source = boundaries_dir()
    mine = tmp_path / "boundaries"
    mine.mkdir()
    for entry in source.iterdir():
        if entry.name != "partnerships":
            (mine / entry.name).symlink_to(entry)
    (mine / "partnerships").mkdir()
    defined = yaml.safe_load((source / "partnerships" / "city_strategy_partnerships.yaml").read_text())
    keep = [p for p in defined["partnerships"] if p["id"] in ("rhyl", "dundee")]
    keep.append({"id": "nowhere", "name": "Nowhere", "nation": "England", "confidence": "assumed",
                 "members": ["E06000999"]})
    (mine / "partnerships" / "test.yaml").write_text(yaml.safe_dump({"partnerships": keep}))
    out = tmp_path / "out"
    (out / "rhyl.html").mkdir(parents=True)          # rhyl's report cannot be written
    result = subprocess.run([*GEO_CS, "--db", str(demo_db), "export", "report", "--all", "--format", "html",
                             "-o", str(out)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "GEO_CS_BOUNDARIES_DIR": str(mine), "COLUMNS": "250"})
    assert result.returncode == 3, result.stderr
    assert (out / "dundee.html").read_text().count("<svg") >= 2
    summary = " ".join(result.stdout.split())
    assert re.search(r"dundee │ Dundee │ dundee.html │ [\d.]+ │ written", summary), summary
    assert "rhyl │ Rhyl │" in summary and "failed:" in summary
    assert "nowhere" in summary and "skipped" in summary
    assert "error: rhyl:" in result.stderr and "cannot write" in " ".join(result.stderr.split())


def test_report_needs_a_partnership_or_all(demo_db, tmp_path: Path, capsys):
    result = run_cli(capsys, "--db", str(demo_db), "-q", "export", "report", "-o", str(tmp_path))
    assert result.code == 2 and "--partnership (-p) or --all" in result.stderr
    result = run_cli(capsys, "--db", str(demo_db), "-q", "export", "report", "-p", "glasgow",
                     "--format", "rtf", "-o", str(tmp_path))
    assert result.code == 3 and "pdf, html, docx, odt" in result.stderr


# -- area profiles ------------------------------------------------------------------------------

def test_area_profiles_of_a_neighbourhood_a_ward_and_a_district(demo_db, glasgow_from_raw):
    from geo_cs.export.area import area_profile, area_sentence
    from geo_cs.layers import area_values, resolve_measure, store_view
    from geo_cs.partnerships import get_partnerships, resolve
    from geo_cs.store import Store

    with Store.open(demo_db, read_only=True) as store:
        hood = area_profile(store, "S01009841")          # Govan and Linthouse - 01
        ward = area_profile(store, "S13002645")          # Govan
        district = area_profile(store, "S12000046")      # Glasgow City (2013 code)
        values = area_values(store, resolve_measure(store, *store_view(store, "glasgow"))).frame
        codes = set(resolve(store, get_partnerships(["glasgow"])[0], "datazone2011").codes)
    assert (hood.kind, ward.kind, district.kind) == ("neighbourhood", "ward", "district")
    assert hood.partnership == ward.partnership == district.partnership == "glasgow"
    # the neighbourhood's rate and ranks, checked against the map's values
    latest = values[(values["period_id"] == "simd2020") & values["value"].notna()]
    row = hood.series.set_index("period_id").loc["simd2020"]
    mine = latest[latest["code"].isin(codes)]
    assert row["rate"] == pytest.approx(latest.loc[latest["code"] == "S01009841", "value"].iloc[0])
    raw = glasgow_from_raw["simd2020"].loc["S01009841"]            # SIMD 2020's own count and population
    assert row["rate"] == pytest.approx(100 * raw["count"] / raw["denominator"], rel=1e-9)
    assert row["rank_partnership"] == 1 + (mine["value"] > row["rate"]).sum()
    assert row["n_partnership"] == len(mine) and row["n_nation"] == len(latest)
    assert row["rate_low"] <= row["rate"] <= row["rate_high"]
    # Glasgow City is the whole partnership: no gap, first of one
    assert district.series["gap"].abs().max() < 0.2
    assert district.series["rank_partnership"].tolist() == [1, 1, 1]
    assert any("S12000049" in change for change in district.changes)       # recoded in 2019
    # the ward: summed over its data zones, its rate between theirs
    assert ward.members > 10 and (ward.series["n_partnership"] > 10).all()
    member_rates = latest[latest["code"].isin(set(store_members(demo_db, "S13002645")))]["value"]
    assert member_rates.min() < ward.series["rate"].iloc[-1] < member_rates.max()
    assert any("summed from" in change for change in ward.changes)
    assert any("datazone2001" in change for change in hood.changes)   # carried from the 2001 zones
    assert "ranked" in area_sentence(ward) and "Govan" in area_sentence(ward)


def store_members(db: Path, ward: str) -> list[str]:
    from geo_cs.crosswalk import small_area_membership
    from geo_cs.store import Store

    with Store.open(db, read_only=True) as store:
        found, _ = small_area_membership(store, "datazone2011", "ward2013")
    return found.loc[found["member"] == ward, "code"].tolist()


@needs_poppler
@pytest.mark.slow  # three area profiles as PDF and Word: ~10 s; .ci/run runs it
def test_area_profile_command_writes_pdf_and_docx(demo_db, tmp_path: Path):
    import docx
    from docx.oxml.ns import qn

    result = run("--db", str(demo_db), "-q", "export", "profile", "--area", "S13002645", "--format", "pdf,docx",
                 "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    texts = pdf_pages_text(tmp_path / "S13002645.pdf")
    words = " ".join(" ".join(texts).split())
    for expected in ("Govan (S13002645): area profile", "Rank in", "How its boundary changed",
                     "summed from the", "Open Government Licence"):
        assert expected in words, expected
    info = subprocess.run(["pdfinfo", str(tmp_path / "S13002645.pdf")], capture_output=True, text=True).stdout
    assert "Govan (S13002645): area profile" in info
    document = docx.Document(str(tmp_path / "S13002645.docx"))
    assert [p.text for p in document.paragraphs if p.style.name == "Heading 1"] == [
        "Its series, ranks and gap", "How its boundary changed"]
    series = document.tables[0]
    assert series.rows[0].cells[0].text == "Period" and series.rows[-1].cells[0].text == "SIMD 2020 (2017 data)"
    assert re.fullmatch(r"\d+ of \d+", series.rows[-1].cells[6].text)
    [picture] = document.element.body.iter(qn("wp:docPr"))
    assert picture.get("descr").startswith("Line chart: Govan's rate went from")
    result = run("--db", str(demo_db), "-q", "export", "profile", "--area", "X99999999", "-o", str(tmp_path))
    assert result.returncode == 5 and "no area with this code" in result.stderr


def test_pmtiles_archive_reads_back_with_metadata_and_decodable_tiles(demo_db, tmp_path: Path):
    import gzip as gz

    import mapbox_vector_tile
    from pmtiles.reader import MmapSource, Reader, all_tiles
    from pmtiles.tile import Compression, TileType

    from geo_cs.export.pmtiles import tile_addresses

    archive = tmp_path / "dz.pmtiles"
    result = run("--db", str(demo_db), "-q", "export", "pmtiles", "-l", "datazone2011", "-i", "employment_deprived",
                 "--period", "simd2016", "--minzoom", "7", "--maxzoom", "11", "-o", str(archive))
    assert result.returncode == 0, result.stderr
    with archive.open("rb") as f:
        reader = Reader(MmapSource(f))
        header, metadata = reader.header(), reader.metadata()
        tiles = list(all_tiles(reader.get_bytes))
    assert header["tile_type"] == TileType.MVT and header["tile_compression"] == Compression.GZIP
    assert (header["min_zoom"], header["max_zoom"]) == (7, 11)
    assert metadata["vector_layers"][0]["id"] == "datazone2011"
    assert set(metadata["vector_layers"][0]["fields"]) >= {"code", "value", "worst", "estimated_share"}
    assert "Open Government Licence" in metadata["attribution"] and len(metadata["bounds"]) == 4
    per_zoom: dict[int, int] = {}
    for (z, _x, _y), data in tiles:
        per_zoom[z] = per_zoom.get(z, 0) + 1
        layer = mapbox_vector_tile.decode(gz.decompress(data))["datazone2011"]
        assert layer["features"] and "value" in layer["features"][0]["properties"]
    from geo_cs.store import Store

    with Store.open(demo_db, read_only=True) as store:
        expected = tile_addresses(store, "datazone2011", 7, 11)
    # every tile an area touches, less those with nothing left after clipping
    assert sorted(per_zoom) == [7, 8, 9, 10, 11] and 0.9 * len(expected) <= sum(per_zoom.values()) <= len(expected)
    assert per_zoom[11] > per_zoom[9] > per_zoom[7]


def _chart_table() -> pd.DataFrame:
    """Two partnerships over four quarters, every column the charts read."""
    rows = []
    for name, base in (("Testtown", 20.0), ("Otherville", 14.0)):
        for i, label in enumerate(["May 2010", "Aug 2010", "Nov 2010", "Feb 2011"]):
            rate = base - i
            rows.append({"partnership": name, "period_id": f"p{i}", "period_label": label, "rate": rate,
                         "rate_low": rate - 0.4, "rate_high": rate + 0.4, "reference_rate": 12.0 - 0.2 * i,
                         "gap": rate - 12.0 + 0.2 * i, "gap_low": rate - 12.6 + 0.2 * i,
                         "gap_high": rate - 11.4 + 0.2 * i, "index": 100 - 4 * i, "index_low": 98 - 4 * i,
                         "index_high": 102 - 4 * i, "index_base": "p0", "reference": "gb",
                         "cohort_rate": 2 * rate, "cohort_rate_low": 2 * rate - 1, "cohort_rate_high": 2 * rate + 1,
                         "rest_rate": rate / 2, "rest_rate_low": rate / 2 - 0.3, "rest_rate_high": rate / 2 + 0.3})
    frame = pd.DataFrame(rows)
    return frame.assign(gap=frame["gap"])


@pytest.mark.parametrize("chart", ["index", "rate_gap", "gap"])
def test_charts_match_their_reference_images(tmp_path: Path, chart: str):
    from geo_cs.export.charts import gap_chart, index_chart, rate_gap_chart, save_chart

    table = _chart_table()
    figure = {"index": lambda: index_chart(table, "Index"),
              "rate_gap": lambda: rate_gap_chart(table, "Rate and gap"),
              "gap": lambda: gap_chart(table[table["partnership"] == "Testtown"].assign(
                  gap=lambda t: t["cohort_rate"] - t["rest_rate"],
                  gap_low=lambda t: t["cohort_rate"] - t["rest_rate"] - 1,
                  gap_high=lambda t: t["cohort_rate"] - t["rest_rate"] + 1), "Testtown", highlight="p2")}[chart]()
    [actual] = save_chart(figure, tmp_path / chart, formats=("png",), dpi=60)
    matches_reference(actual, REFERENCE.parent / f"reference_chart_{chart}.png")


def test_a_failed_pmtiles_build_leaves_the_earlier_archive_and_no_partial_file(
    demo_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import itertools
    import threading

    from geo_cs.export import pmtiles
    from geo_cs.store import Store

    archive = tmp_path / "dz.pmtiles"
    archive.write_bytes(b"the archive of last quarter")
    # the build dies at its 20th tile (a full disk, a killed worker): real tiles before that
    counter, lock = itertools.count(1), threading.Lock()
    real_render = pmtiles.render_tile

    def failing_render(*args, **kwargs):
        with lock:
            n = next(counter)
        if n == 20:
            raise OSError(28, "No space left on device")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(pmtiles, "render_tile", failing_render)
    with Store.open(demo_db, read_only=True) as store, pytest.raises(OSError, match="No space"):
        pmtiles.write_pmtiles(store, "datazone2011", archive, minzoom=7, maxzoom=11)
    assert archive.read_bytes() == b"the archive of last quarter"
    assert [p.name for p in tmp_path.iterdir()] == ["dz.pmtiles"]


@needs_poppler
def test_document_text_is_text_not_mathtext_and_a_long_table_splits(tmp_path: Path):
    """Names from data files are drawn as they are ($ is not TeX), and a table longer than a
    page goes on over pages with its header repeated."""
    from geo_cs.export.document import Document, Heading, Paragraph, TableBlock, write_pdf

    name = "Costs $5 & $6 _under_ {x}"
    frame = pd.DataFrame({"Code": [f"E0{i:07d}" for i in range(120)], "Area": [name] * 120,
                          "Value": [f"{i / 3:.1f}" for i in range(120)], "Other": ["x"] * 120})
    doc = Document(f"{name}: test", "subtitle", [Heading(name), Paragraph(name), TableBlock("Areas", frame)],
                   footer="Open Government Licence v3.0")
    pdf = write_pdf(doc, tmp_path / "t.pdf")
    texts = pdf_pages_text(pdf)
    assert len(texts) >= 3 and all(name in " ".join(t.split()) for t in texts)
    assert all("Code" in t and "Value" in t for t in texts)
    rows = [t.count(f" {name} ") for t in texts]
    assert sum(t.count("E0000") for t in texts) == 120 and min(rows) >= 3, rows


@needs_poppler
def test_a_report_of_a_partnership_with_no_worst_neighbourhoods_says_so_in_words(demo_db, tmp_path: Path):
    """East London has no worst-performing neighbourhood on its default measure: its profile is
    written all the same, the gap chart's place on the page saying why there is no gap (the
    report --all of the reports guide failed on it: a page's part has no width of its own)."""
    result = run("--db", str(demo_db), "-q", "export", "report", "-p", "east_london", "--format",
                 "pdf,docx", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = subprocess.run(["pdftotext", str(tmp_path / "east_london.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "No worst-performing" in " ".join(text.split())
    assert (tmp_path / "east_london.docx").stat().st_size > 10_000
