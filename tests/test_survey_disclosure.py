"""Disclosure control over the survey employment rate's *aggregates* (issue 29): a partnership
made of one small district is withheld in every column of the table, on the map page and in
the charts' CSV, while larger groups keep the survey's own rate and interval with their people
rounded. Districts themselves are tested through the API in ``test_survey_cli_api.py``.

Leicester is a one-district partnership (E06000016); the fixture gives it 8 people in work of
20, under the minimum of 10.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_survey_cli_api import GM, squares, web_download

from geo_cs.api.app import create_app
from geo_cs.config import Settings
from geo_cs.disclosure import DisclosureControl
from geo_cs.export.survey_charts import survey_charts
from geo_cs.ingest import ingest_boundaries
from geo_cs.ingest.survey import ingest_survey
from geo_cs.store import Store
from geo_cs.survey import employment_rates

LEICESTER = ("E06000016", "Leicester", "8", "20", "40.0", "9.9")
ROWS = [*GM, LEICESTER, ("W06000001", "Isle of Anglesey", "30500", "39500", "77.1", "2.9"),
        ("S12000049", "Glasgow City", "291900", "433500", "67.3", "2.9")]
WITHHELD = ["rate", "rate_low", "rate_high", "half_width", "numerator", "denominator", "gap",
            "gap_low", "gap_high"]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("survey_disclosure")
    path = folder / "survey.duckdb"
    with Store.open(path) as store:
        ingest_boundaries(store, [squares(folder / "lad20.geojson", [r[:2] for r in ROWS],
                                          "LAD20CD", "LAD20NM")])
        ingest_survey(store, web_download(folder / "aps_web.csv", ROWS), set_edition=2020)
    return path


def test_a_small_partnership_is_withheld_in_every_column_and_the_others_keep_the_survey_rate(db):
    with Store.open(db, read_only=True) as store:
        exact = employment_rates(store, set_id="lad2020").set_index("group")
        published = employment_rates(store, set_id="lad2020",
                                     disclosure=DisclosureControl()).set_index("group")
    assert exact.loc["leicester", "rate"] == pytest.approx(40.0)     # the analyst's exact figure
    small = published.loc["leicester"]
    assert all(pd.isna(small[c]) for c in WITHHELD), small[WITHHELD]
    assert small["gap_real"] is None and "withheld" in small["note"]
    gm = published.loc["greater_manchester"]
    # the survey's own rate and interval, not recomputed from rounded people
    assert gm["rate"] == exact.loc["greater_manchester", "rate"]
    assert gm["half_width"] == exact.loc["greater_manchester", "half_width"]
    assert gm["numerator"] % 5 == 0 and gm["denominator"] % 5 == 0


def test_the_map_page_and_the_charts_never_give_the_withheld_rate(db, tmp_path):
    copy = tmp_path / "controlled.duckdb"
    shutil.copy(db, copy)
    with TestClient(create_app(Settings(db=copy, disclosure_control=True))) as client:
        page = client.get("/maps/leicester", params={"geography": "lad2020",
                                                     "indicator": "aps.employment_rate"})
    assert page.status_code == 200, page.text
    assert "40.0" not in page.text and "40%" not in page.text
    with Store.open(db, read_only=True) as store:
        written, _ = survey_charts(store, ["leicester"], tmp_path / "charts", formats=("svg",),
                                   disclosure=DisclosureControl())
    csvs = [p for p in written if p.suffix == ".csv"]
    assert csvs
    for path in csvs:
        table = pd.read_csv(path)
        rows = table[table["group"] == "leicester"]
        assert len(rows) and rows["rate"].isna().all() and rows["numerator"].isna().all()
        assert not any(math.isclose(v, 40.0) for v in table["rate"].dropna())
