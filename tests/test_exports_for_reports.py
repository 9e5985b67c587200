"""Downloads a report writer takes from the staff map (issue 28, points 6 and 13): the gap chart
legible at the panel's width with honest axes, an empty state in words and PNG/SVG/CSV
downloads; the map PNG with human titles, the sentence and sources by name; CSVs that say where
their figures come from, spell booleans one way and are named for their settings.

Files are read as a person's tools would: PDF text with pdftotext, images with PIL, CSV with the
csv module.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.maps.page import MapRequest, read_page_config
from geo_cs.store import Store
from tests.test_map_page import SIMD, SIMD_LABELS, glasgow_gap_by_hand

GLASGOW = {"geography": "datazone2011", "indicator": "employment_deprived"}
EAST_LONDON = {"geography": "lsoa2011", "indicator": "employment_deprived",
               "denominator": "population2019_lsoa11.working_age_population"}
#: Internal ids that must not appear where a person reads (titles, subtitles, sources).
INTERNAL = ("datazone2011", "lsoa2011", "simd2012.", "employment_deprived", "; geo-cs", "quantiles")
ABOUT = ("measure", "threshold_pct", "baseline", "source", "attribution")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


@pytest.fixture(scope="module")
def client(demo_db):
    with TestClient(create_app(Settings(db=demo_db))) as c:
        yield c


def page(client, partnership: str = "glasgow", **params) -> dict:
    response = client.get(f"/maps/{partnership}", params=params)
    assert response.status_code == 200, response.text[:300]
    return read_page_config(response.text)


def svg_text_sizes(svg: str) -> list[tuple[float, str]]:
    """(font size, text) of every text element of a matplotlib SVG written with words as text."""
    return [(float(size), re.sub(r"<[^>]+>", "", body))
            for size, body in re.findall(r'<text style="font-size: ([\d.]+)px[^"]*"[^>]*>(.*?)</text>', svg, re.S)]


# -- point 6: the gap chart ---------------------------------------------------------------------------

def test_the_panels_chart_leaves_the_source_line_to_the_page(client):
    """Point 12: printed, the page showed its source line and the chart's; the panel's chart is
    drawn without one (the page carries it), the downloaded chart with it."""
    cfg = page(client)
    panel = client.get(cfg["chart"])
    download = client.get(cfg["chartDownloads"]["svg"]["url"])
    assert panel.status_code == download.status_code == 200
    assert "Open Government Licence" not in panel.text and "Worst-performing" in panel.text
    assert "Open Government Licence" in download.text
    assert "Open Government Licence" in client.get("/maps/glasgow").text


def test_the_gap_chart_is_legible_at_the_panels_width_and_scales(client):
    cfg = page(client)
    response = client.get(cfg["chartDownloads"]["svg"]["url"])   # the panel's, with its source line
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    svg = response.text
    root = re.search(r"<svg[^>]*>", svg).group(0)
    width = float(re.search(r'viewBox="0 0 ([\d.]+) [\d.]+"', root).group(1))   # it scales by its viewBox
    assert "<title>" in svg                                                         # an accessible name
    sizes = svg_text_sizes(svg)
    assert sizes, "the words are text, not outlines"
    shown = 340 / width                        # CSS pixels per unit at the panel's width
    # the small print: the attribution and, above it, the source line (wrapped over lines that
    # need not name either), all at the attribution's size
    attribution = [s for s, t in sizes if "Crown" in t or "Licence" in t]
    words = [s for s, t in sizes if s not in set(attribution)]
    assert min(words) * shown >= 11, (min(words), width)     # labels, ticks, key, title: 11 px or more
    assert min(attribution) * shown >= 9                      # the small print still readable
    assert "Source: Scottish Index of Multiple Deprivation" in " ".join(" ".join(t for _, t in sizes).split())
    assert any("Worst-performing neighbourhoods" in t for _, t in sizes)


def test_the_gap_charts_axes_start_at_zero(demo_db):
    """Nottingham's rates (about 13%) are drawn from zero, not on a 12.6-13.4 axis that makes
    noise look like a trend; the gap's axis includes zero too."""
    import matplotlib.pyplot as plt

    from geo_cs.export.charts import gap_chart
    from geo_cs.layers import partnership_gap, resolve_measure

    with Store.open(demo_db, read_only=True) as store:
        measure = resolve_measure(store, EAST_LONDON["geography"], EAST_LONDON["indicator"],
                                  EAST_LONDON["denominator"])
        table = partnership_gap(store, measure, "nottingham")
    for web in (True, False):
        fig = gap_chart(table, "Nottingham", web=web)
        top, bottom = [ax for ax in fig.axes if ax.get_ylabel()]
        assert top.get_ylim()[0] <= 0 < top.get_ylim()[1]
        low, high = bottom.get_ylim()
        assert low <= 0 <= high
        plt.close(fig)


def test_a_chart_with_no_worst_areas_says_so_in_words(client):
    cfg = page(client, "east_london")
    assert cfg["hasGap"] and not cfg["hasWorst"] and cfg["chart"]
    svg = client.get(cfg["chart"]).text
    text = " ".join(t for _, t in svg_text_sizes(svg))
    assert "No worst-performing neighbourhoods" in text and "above 25%" in text
    assert "Gap (points)" not in text and "Rate (%)" not in text     # no empty axes


def test_the_chart_downloads_are_png_svg_and_csv_named_for_their_settings(client, demo_db):
    cfg = page(client, threshold=20)
    downloads = cfg["chartDownloads"]
    assert set(downloads) == {"png", "svg", "csv"}
    for fmt, expected in (("png", "image/png"), ("svg", "image/svg+xml"), ("csv", "text/csv")):
        response = client.get(downloads[fmt]["url"])
        assert response.status_code == 200 and response.headers["content-type"].startswith(expected), fmt
        name = downloads[fmt]["name"]
        assert name == f"glasgow_employment_deprived_gap_threshold-20.{fmt}"
        assert f'filename="{name}"' in response.headers["content-disposition"]
        if fmt == "png":
            with Image.open(io.BytesIO(response.content)) as image:
                assert image.width >= 600       # sharp on a slide or a page
        if fmt == "csv":
            check_gap_csv(response.text, glasgow_gap_by_hand(demo_db, threshold=20.0))


def check_gap_csv(text: str, expected) -> None:
    """The gap CSV's figures (2 decimals) are Glasgow's worked out by hand at a threshold of 20%:
    rates, gap, the areas counted, the worst areas' share of the people, and 95% intervals within
    0.02 points of Wald's (the product's Wilson and Newcombe intervals differ from Wald's by
    thousandths of a point for tens of thousands of people)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["period_code"] for r in rows] == list(SIMD)
    assert [r["period"] for r in rows] == [SIMD_LABELS[p] for p in SIMD]
    assert all(r["threshold_pct"] == "20" and r["baseline"] == "SIMD 2012 (2010 data)" for r in rows)
    assert "Scottish Government" in rows[0]["source"] and "Open Government Licence" in rows[0]["attribution"]
    assert {r["worst_performing_small_numbers"] for r in rows} == {r["rest_small_numbers"] for r in rows} == {"false"}
    for row in rows:
        at = row["period_code"]
        assert (int(row["worst_performing_areas"]), int(row["other_areas"])) == expected.n_counted[at]
        assert float(row["worst_performing_share_of_working_age_people_pct"]) == pytest.approx(
            expected.cohort_share[at], abs=0.0051)
        for prefix, low, high, figure, key in (
                ("worst_performing_rate_pct", "worst_performing_rate_low_95", "worst_performing_rate_high_95",
                 expected.cohort_rate, "cohort"),
                ("rest_of_partnership_rate_pct", "rest_rate_low_95", "rest_rate_high_95", expected.rest_rate, "rest"),
                ("gap_points", "gap_low_95", "gap_high_95", expected.gap, "gap")):
            assert float(row[prefix]) == pytest.approx(figure[at], abs=0.0051), (at, prefix)
            half = expected.half_width[key][at]
            assert float(row[low]) == pytest.approx(figure[at] - half, abs=0.02), (at, low)
            assert float(row[high]) == pytest.approx(figure[at] + half, abs=0.02), (at, high)


# -- point 13: the map PNG and the CSVs ---------------------------------------------------------------

@needs_poppler
def test_the_print_map_has_human_titles_the_sentence_and_named_sources(demo_db, tmp_path: Path):
    from geo_cs.export.maps import partnership_map, partnership_map_inputs, save_figure

    with Store.open(demo_db, read_only=True) as store:
        inputs = partnership_map_inputs(store, "glasgow")
        pdf = save_figure(partnership_map(store, "glasgow"), tmp_path / "glasgow.pdf")
        rhyl = partnership_map_inputs(store, "rhyl")
    for field in ("title", "subtitle", "source"):
        assert not [i for i in INTERNAL if i in inputs[field]], (field, inputs[field])
    assert "Scottish Data Zones, 2011" in inputs["subtitle"]
    # the editions of the periods drawn (the first and the latest), by name and publisher
    assert inputs["source"].startswith("Source: Scottish Index of Multiple Deprivation 2012 and 2020 "
                                       "(Scottish Government)")
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    # the answer in words, as the figures worked out by hand say it, printed with the map
    assert glasgow_gap_by_hand(demo_db).sentence_start() in text, text
    assert "Scottish Government" in text and "Open Government Licence" in text
    assert not [i for i in INTERNAL if i in text], text
    # a Welsh map names the Welsh index only, and says why it has no gap
    assert "Welsh Index of Multiple Deprivation 2019" in rhyl["source"] and "English" not in rhyl["source"]
    assert "cannot pick out worst-performing neighbourhoods" in rhyl["sentence"]


def test_the_map_png_is_named_for_its_settings(client):
    response = client.get("/maps/glasgow/map.png", params={"threshold": 20, "baseline": "simd2016"})
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert 'filename="glasgow_employment_deprived_threshold-20_baseline-simd2016.png"' in disposition
    default = client.get("/maps/glasgow/map.png").headers["content-disposition"]
    assert 'filename="glasgow_employment_deprived.png"' in default


def test_the_pages_downloads_are_named_for_their_settings(client):
    default = page(client)["periods"][-1]
    chosen = page(client, threshold=20)["periods"][-1]
    assert default["csvName"] == "glasgow_simd2020_employment_deprived.csv"
    assert chosen["csvName"] == "glasgow_simd2020_employment_deprived_threshold-20.csv"
    assert chosen["geojsonName"] == "glasgow_simd2020_employment_deprived_threshold-20.geojson"
    assert page(client, threshold=20)["settings"] == ["threshold-20"]


def test_csvs_write_booleans_one_way(client, demo_db):
    """The areas' CSV (the page's CSV link) writes true/false, as GeoJSON and the page's table do:
    true for exactly the worst-performing data zones (by hand: a SIMD 2012 rate above 25%)."""
    from tests.test_map_page import glasgow_rows

    cfg = page(client)
    rows = list(csv.DictReader(io.StringIO(client.get(cfg["periods"][-1]["csv"]).text)))
    assert {r["worst"] for r in rows} <= {"true", "false", ""}   # "": no baseline
    baseline = glasgow_rows(demo_db).query("period_id == 'simd2012'").set_index("code")["rate"]
    assert {r["code"] for r in rows if r["worst"] == "true"} == set(baseline.index[baseline > 25])
    assert {r["suppressed"] for r in rows} <= {"true", "false", ""}


def test_the_report_charts_csvs_say_where_their_figures_come_from(demo_db, tmp_path: Path):
    from geo_cs.export.charts import partnership_charts

    with Store.open(demo_db, read_only=True) as store:
        partnership_charts(store, ["glasgow"], tmp_path, formats=("svg",))
    for name in ("fig4_3_index_of_count.csv", "fig4_5_rate_and_gap_with_gb.csv", "fig4_7_worst_vs_rest_glasgow.csv"):
        rows = list(csv.DictReader((tmp_path / name).open(encoding="utf-8")))
        assert rows and "source" in rows[0] and "attribution" in rows[0], name
        assert all("Open Government Licence" in r["attribution"] for r in rows)
        booleans = {v for r in rows for k, v in r.items() if k.endswith("small") or k == "small"}
        assert booleans <= {"true", "false", ""}, (name, booleans)
    gap = list(csv.DictReader((tmp_path / "fig4_7_worst_vs_rest_glasgow.csv").open(encoding="utf-8")))
    assert gap[0]["threshold_pct"] == "25" and gap[0]["baseline"] == "SIMD 2012 (2010 data)"
    assert "Scottish Index of Multiple Deprivation" in gap[0]["source"]


def test_a_static_site_carries_the_help_the_chart_downloads_and_a_readme(demo_db, tmp_path: Path):
    from geo_cs.maps.site import export_site

    with Store.open(demo_db, read_only=True) as store:
        export_site(store, MapRequest("glasgow"), tmp_path / "site", maxzoom=9)
    site = tmp_path / "site"
    cfg = read_page_config((site / "index.html").read_text())
    assert cfg["helpUrl"] == "help.html" and "Where the data come from" in (site / "help.html").read_text()
    for fmt in ("png", "svg", "csv"):
        assert (site / cfg["chartDownloads"][fmt]["url"]).exists(), fmt
    readme = (site / "data" / "README.txt").read_text()
    assert "Scottish Index of Multiple Deprivation" in readme and "above 25%" in readme
    assert "Open Government Licence" in readme
    rows = list(csv.DictReader((site / "data" / "simd2020.csv").open(encoding="utf-8")))
    assert {"true", "false"} <= {r["worst"] for r in rows} <= {"true", "false", ""}
