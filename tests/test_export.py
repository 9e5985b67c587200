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
import pandas as pd
import pytest
from matplotlib.testing.compare import compare_images
from PIL import Image

from geo_cs.export.maps import MapPanel, choropleth_figure, classify, palette, save_figure
from tests.conftest import grid_frame

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


def test_export_commands_write_maps_and_charts_with_csv(demo_db, tmp_path: Path):
    result = run("--db", str(demo_db), "-q", "export", "map", "-p", "glasgow", "-o", str(tmp_path / "g.png"),
                 "--dpi", "100")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "g.png") as image:
        assert round(image.info["dpi"][0]) == 100
    result = run("--db", str(demo_db), "-q", "export", "charts", "-p", "glasgow", "-o", str(tmp_path / "c"),
                 "--format", "svg")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == ["fig4_3_index_of_count.csv", "fig4_3_index_of_count.svg",
                     "fig4_5_rate_and_gap_with_gb.csv", "fig4_5_rate_and_gap_with_gb.svg",
                     "fig4_7_worst_vs_rest_glasgow.csv", "fig4_7_worst_vs_rest_glasgow.svg"]
    gap = pd.read_csv(tmp_path / "c" / "fig4_7_worst_vs_rest_glasgow.csv")
    assert list(gap["period_id"]) == ["simd2012", "simd2016", "simd2020"]
    assert (gap["gap_low"] <= gap["gap"]).all() and (gap["gap"] <= gap["gap_high"]).all()
    # the footer wraps to the chart's width, so its last words may be a text of their own
    assert "Contains National Statistics data © Crown copyright" in (tmp_path / "c" / "fig4_3_index_of_count.svg").read_text()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["map", "-p", "nope", "-o", "x.png"], 5, "unknown partnership nope"),
    (["map", "-p", "glasgow", "--period", "1999", "-o", "x.png"], 5, "valid: simd2012"),
    (["map", "-p", "glasgow", "-i", "nope", "-g", "datazone2011", "-o", "x.png"], 5, "employment_deprived"),
    (["charts", "-p", "glasgow", "-o", "/proc/geo-cs-charts"], 3, "cannot create"),
])
def test_export_errors_name_what_is_wrong(demo_db, tmp_path: Path, args, code, message):
    args = [str(tmp_path / a) if a.endswith(".png") else a for a in args]
    result = run("--db", str(demo_db), "-q", "export", *args)
    assert result.returncode == code and message in result.stderr, result.stderr


@pytest.mark.skipif(shutil.which("pdfinfo") is None, reason="poppler-utils (pdfinfo) not installed")
def test_partnership_report_pdf_and_html(demo_db, tmp_path: Path):
    import time

    started = time.monotonic()
    result = run("--db", str(demo_db), "-q", "export", "report", "-p", "glasgow", "-o", str(tmp_path))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    pdf, html = tmp_path / "glasgow.pdf", tmp_path / "glasgow.html"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    # cover, map, figures 4.3, 4.5 and 4.7, two tables, the cohort
    assert pages == 8
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for expected in ("Glasgow: partnership profile", "Definition", "Method", "Caveats",
                     "estimated through a", "simd2016.employment_deprived", "Worst-performing neighbourhoods",
                     "Open Government Licence"):
        assert expected in text, expected
    page = html.read_text()
    # self-contained: figures inline, nothing fetched (SVG namespaces are names, not fetches)
    assert page.count("<svg") == 4 and not re.search(r"""(?:src|href)=["']https?://""", page)
    assert "Open Government Licence v3.0" in page
    assert elapsed < 60  # the bench times it properly; this only catches a runaway


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
