"""The analyses on a hand-worked toy partnership: every expected number is written here.

Six LSOAs, all with 1,000 working-age people (so a count of 300 is a rate of 30%), over five
quarters. The partnership "toy" is A1-A5; A6 lies outside it. Baseline = the four quarters May
2006 - Feb 2007, threshold 25%.

    area  May06 Aug06 Nov06 Feb07  baseline  cohort?         Feb11
    A1      30    30    30    30      30.0   yes               26
    A2      26    24    26    24      25.0   no (not > 25)     20
    A3      28    27    26    27      27.0   yes               25
    A4      10    10    10    10      10.0   no                 9
    A5      12    12    12    12      12.0   no                12
    A6      40    40    40    40      40.0   yes (outside)     40
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from geo_cs.analysis import (
    MethodParams,
    Panel,
    RateSource,
    classify_changes,
    comparator_area,
    method_params,
    nation_comparison,
    ni153,
    ni153_series,
    partnership_rates,
    summarise_changes,
    worst_cohort,
    worst_table,
)
from geo_cs.errors import InputError, NotFoundError
from geo_cs.partnerships import load_partnerships
from geo_cs.store import Store

CODES = ["E01000001", "E01000002", "E01000003", "E01000010", "E01000005", "E01000006"]
PERIODS = ["2006-05", "2006-08", "2006-11", "2007-02", "2011-02"]
RATES = {
    "E01000001": [30, 30, 30, 30, 26],
    "E01000002": [26, 24, 26, 24, 20],
    "E01000003": [28, 27, 26, 27, 25],
    "E01000010": [10, 10, 10, 10, 9],
    "E01000005": [12, 12, 12, 12, 12],
    "E01000006": [40, 40, 40, 40, 40],
}
TOY_YAML = """
member_geography: lsoa2011
partnerships:
  - id: toy
    name: Toy partnership
    nation: England
    confidence: stated
    members: [E01000001, E01000002, E01000003, E01000010, E01000005]
"""


def load_panel_data(store: Store, rates: dict[str, list[float]], population: float = 1000,
                    periods: list[str] = PERIODS) -> None:
    """Write areas, periods and claimant observations straight into the store's tables."""
    from geo_cs.periods import parse_period

    store.sql("INSERT INTO geography_sets VALUES ('lsoa2011', 'lsoa', 2011, ['E', 'W'], 'LSOA', NULL) "
              "ON CONFLICT DO NOTHING")
    for code in rates:
        store.sql("INSERT INTO areas (set_id, code, name, geography, vintage, nation, source, ingest_id) "
                  "VALUES ('lsoa2011', ?, ?, 'lsoa', 2011, ?, 'test', 0)", [code, f"Area {code[-1]}", code[0]])
    for period_id in periods:
        p = parse_period(period_id)
        store.sql("INSERT INTO periods VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  [p.period_id, p.kind, p.label, p.start, p.end, p.data_year])
    rows = [("toy.claimants", "lsoa2011", code, period_id, rate / 100 * population, population, None, 0)
            for code, series in rates.items() for period_id, rate in zip(periods, series, strict=True)]
    store.con.executemany("INSERT INTO observations VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)", rows)


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_registry: Path) -> Store:
    (test_registry / "partnerships" / "city_strategy_partnerships.yaml").unlink()
    (test_registry / "partnerships" / "toy.yaml").write_text(TOY_YAML)
    store = Store.open(":memory:")
    load_panel_data(store, RATES)
    yield store
    store.close()


def _panel(store: Store) -> Panel:
    return Panel(store, RateSource("toy.claimants", "lsoa2011"))


def test_cohort_is_fixed_at_baseline_and_exactly_25_is_not_worst(toy: Store):
    cohort = worst_cohort(_panel(toy), MethodParams()).set_index("code")
    assert cohort["baseline_rate"].to_dict() == pytest.approx(
        {"E01000001": 30, "E01000002": 25, "E01000003": 27, "E01000010": 10, "E01000005": 12,
         "E01000006": 40})
    assert cohort["worst"].to_dict() == {
        "E01000001": True, "E01000002": False, "E01000003": True, "E01000010": False,
        "E01000005": False, "E01000006": True}


def test_ni153_cohort_rest_gap_and_share(toy: Store):
    table = ni153(toy, _panel(toy), params=MethodParams()).set_index("period_id")
    may06, feb11 = table.loc["2006-05"], table.loc["2011-02"]
    # May 2006: cohort A1+A3 = 580 / 2000; rest A2+A4+A5 = 480 / 3000
    assert (may06["cohort_rate"], may06["rest_rate"], may06["gap"]) == pytest.approx((29.0, 16.0, 13.0))
    assert (may06["n_cohort"], may06["n_rest"], may06["cohort_share"]) == (2, 3, pytest.approx(0.4))
    # Feb 2011: the same two areas (the cohort is fixed): 510 / 2000 and 410 / 3000
    assert (feb11["cohort_rate"], feb11["rest_rate"]) == pytest.approx((25.5, 410 / 30))
    assert feb11["gap"] == pytest.approx(25.5 - 410 / 30)
    assert may06["gap_low"] < 13.0 < may06["gap_high"]
    assert may06["cohort_small"] and may06["rest_small"]  # 2,000 and 3,000 people: Rhyl-sized
    assert may06["partnership_version"] == "Toy partnership (2007-04..2011-03); lookup"
    assert may06["geography"] == "lsoa2011" and "threshold" in may06["method"]


def test_a_change_within_noise_is_not_called_closed(toy: Store):
    params = MethodParams()
    table = ni153(toy, _panel(toy), params=params)
    changes = classify_changes(table, "2006-05", "2011-02", params).iloc[0]
    assert changes["gap_change"] == pytest.approx((25.5 - 410 / 30) - 13.0)  # -1.17 points
    assert changes["gap_direction"] == "unchanged" and changes["gap_change_within_noise"]
    assert summarise_changes(classify_changes(table, "2006-05", "2011-02", params)).startswith(
        "0 of 1 closed the gap, 1 unchanged, 0 widened")


def test_worst_table_lists_the_cohort_worst_first_with_what_decided_it(toy: Store):
    panel = _panel(toy)
    params = method_params(panel, threshold=25, baseline="2006-05..2007-02")
    table = worst_table(toy, panel, params)
    # A6 (40) before A1 (30) before A3 (27); A2's 25.0 is not over 25
    assert table["code"].tolist() == ["E01000006", "E01000001", "E01000003"]
    assert table["baseline"].unique().tolist() == ["2006-05,2006-08,2006-11,2007-02"]
    assert set(table["geography"]) == {"lsoa2011"} and set(table["threshold"]) == {25}
    assert len(worst_table(toy, panel, params, all_areas=True)) == 6


def test_ni153_series_is_the_table_and_its_change_between_first_and_last(toy: Store):
    series = ni153_series(toy, "toy.claimants", ["lsoa2011"])
    params = MethodParams()
    pd.testing.assert_frame_equal(series.table, ni153(toy, _panel(toy), params=params))
    assert (series.first, series.last) == ("2006-05", "2011-02")
    pd.testing.assert_frame_equal(series.changes,
                                  classify_changes(series.table, "2006-05", "2011-02", params))
    # a series of one period has no change to classify
    one = ni153_series(toy, "toy.claimants", ["lsoa2011"], from_period="2011-02", to_period="2011-02")
    assert one.changes is None and one.label("2011-02") == "February 2011"


def test_the_same_change_on_large_populations_closes_the_gap(toy: Store):
    big = Store.open(":memory:")
    load_panel_data(big, RATES, population=100_000)
    params = MethodParams()
    table = ni153(big, Panel(big, RateSource("toy.claimants", "lsoa2011")), params=params)
    changes = classify_changes(table, "2006-05", "2011-02", params)
    assert changes.loc[0, "gap_direction"] == "closed"
    assert changes.loc[0, "cohort_rate_direction"] == "reduced"  # 29.0 -> 25.5
    assert not changes.loc[0, "gap_change_within_noise"]
    assert summarise_changes(changes).startswith("1 of 1 closed the gap, 0 unchanged, 0 widened; "
                                                 "1 of 1 reduced")


def test_partnership_rate_index_and_gap_with_gb(toy: Store):
    rates = partnership_rates(toy, _panel(toy), reference="gb").set_index("period_id")
    # the partnership: 1,060 of 5,000 in May 2006; 920 in Feb 2011
    assert rates.loc["2006-05", "rate"] == pytest.approx(21.2)
    assert rates.loc["2011-02", "index"] == pytest.approx(920 / 1060 * 100)
    assert rates.loc["2006-05", "index"] == pytest.approx(100)
    # GB here = every area in the panel: 1,460 of 6,000
    assert rates.loc["2006-05", "reference_rate"] == pytest.approx(1460 / 60)
    assert rates.loc["2006-05", "gap"] == pytest.approx(21.2 - 1460 / 60)
    row = rates.loc["2006-05"]
    assert row["rate_low"] < row["rate"] < row["rate_high"]
    assert row["index_low"] <= row["index"] <= row["index_high"]


def test_nation_comparison_inside_and_outside(toy: Store):
    table = nation_comparison(toy, _panel(toy), params=MethodParams())
    may06 = table[table["period_id"] == "2006-05"].set_index("area")
    assert may06.loc["inside", "cohort_rate"] == pytest.approx(29.0)
    assert may06.loc["inside", "rest_rate"] == pytest.approx(16.0)
    assert may06.loc["outside", "cohort_rate"] == pytest.approx(40.0)
    assert pd.isna(may06.loc["outside", "rest_rate"])


def test_comparator_without_district_boundaries_is_refused(toy: Store):
    # the set is registered but holds no boundaries: the rule cannot pick districts, and says so
    # (the members a comparator reports are checked on real districts in test_analysis_real.py)
    toy.sql("INSERT INTO geography_sets VALUES ('lad2013', 'lad', 2013, ['E'], 'LAD', NULL)")
    with pytest.raises(InputError, match="no lad2013 boundaries"):
        comparator_area(toy, _panel(toy), worst_n=1)


def test_missing_baseline_period_is_named(toy: Store):
    with pytest.raises(NotFoundError, match=r"baseline period.* 2005-11 not in the toy.claimants / toy.claimants \(row denominators\) series"):
        worst_cohort(_panel(toy), MethodParams(baseline=("2005-11",)))


def test_unknown_indicator_lists_the_known_ones(toy: Store):
    with pytest.raises(NotFoundError, match="no observations of toy.nothing on lsoa2011; indicators "
                                            "on lsoa2011: toy.claimants"):
        Panel(toy, RateSource("toy.nothing", "lsoa2011"))


def test_shipped_partnerships_load_with_phases_and_flags():
    partnerships = load_partnerships()
    assert len(partnerships) == 17
    notts = partnerships["nottingham"]
    assert [p.name for p in notts.phases] == ["Nottingham", "Nottingham and Nottinghamshire"]
    assert notts.phase_at(pd.Timestamp("2008-06-01").date()).members == ("E06000018",)
    assert len(notts.phase_at().members) == 8
    assert partnerships["rhyl"].member_set == "ward2013"
    assert partnerships["tyne_and_wear"].confidence == "partial"
    assert partnerships["swansea_bay"].kind == "daf"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("partnerships:\n  - id: x\n    members: []\n", "partnership 'x': empty membership"),
        ("partnerships:\n  - id: x\n    members: [E0800001]\n", "E0800001 is not a GSS code"),
        ("partnerships:\n  - id: x\n    phases:\n      - {from: 2007-04, to: 2009-06, members: [E06000018]}\n"
         "      - {from: 2009-04, to: 2011-03, members: [E06000018, E07000170]}\n",
         "phases overlap"),
        ("partnerships:\n  - id: x\n    member_geography: lsoa1999\n    members: [E06000018]\n",
         "member_geography 'lsoa1999' is not a known geography set"),
    ],
)
def test_invalid_partnership_definitions(tmp_path: Path, yaml_text: str, message: str):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InputError, match=message):
        load_partnerships([path])


def test_unknown_member_code_is_named_at_resolution(toy: Store, test_registry: Path):
    from geo_cs.partnerships import parse_partnership, resolve

    p = parse_partnership({"id": "bad", "members": ["E01999999"]}, "lsoa2011", "mine.yaml")
    with pytest.raises(InputError, match="member E01999999 is not a lsoa2011 code in the store"):
        resolve(toy, p, "lsoa2011")


def test_panels_of_the_same_data_share_a_table_until_both_are_dropped(toy: Store):
    first, second = _panel(toy), _panel(toy)
    assert first.name == second.name  # built once, reused
    first.drop()
    assert len(second.area_rates()) == 30  # still there for the other user
    second.drop()
    third = _panel(toy)
    assert third.name != first.name and len(third.area_rates()) == 30


def _prepare(store: Store) -> None:
    from geo_cs.panels import prepare_panel

    with store.transaction():
        panel = Panel(store, RateSource("toy.claimants", "lsoa2011"), prepared=False)
        prepare_panel(store, panel)
        panel.drop()


def test_a_prepared_panel_gives_the_same_figures_for_any_threshold_and_baseline(toy: Store):
    """The analysis-ready panel (geo_cs.panels) computes on arrays what the panel's table gives."""
    import numpy as np

    # a missing value and a zero denominator: the rows the table's SQL treats as not usable
    toy.sql("UPDATE observations SET value = NULL WHERE code = 'E01000005' AND period_id = '2011-02'")
    toy.sql("UPDATE observations SET denominator = 0 WHERE code = 'E01000010' AND period_id = '2006-08'")
    before = _panel(toy)
    choices = [MethodParams(), MethodParams(threshold=11.0), MethodParams(baseline=("2011-02",)),
               MethodParams(threshold=26.0, baseline=("2006-05", "2006-08")), MethodParams(threshold=99.0)]
    expected = [(ni153(toy, before, params=p), worst_cohort(before, p)) for p in choices]
    rates = before.area_rates(with_estimated_share=True)
    groups = pd.DataFrame({"group": ["a", "a", "b"], "code": ["E01000001", "E01000010", "E01000005"]})
    aggregated = before.aggregate(groups)
    before.drop()
    _prepare(toy)
    panel = _panel(toy)
    assert panel.dense is not None and panel.period_ids() == PERIODS
    for params, (table, cohort) in zip(choices, expected, strict=True):
        pd.testing.assert_frame_equal(ni153(toy, panel, params=params), table, check_dtype=False)
        pd.testing.assert_frame_equal(worst_cohort(panel, params), cohort, check_dtype=False)
    keys = ["code", "period_id"]
    pd.testing.assert_frame_equal(panel.area_rates(with_estimated_share=True).sort_values(keys).reset_index(drop=True),
                                  rates.sort_values(keys).reset_index(drop=True), check_dtype=False)
    keys = ["group", "period_id"]
    pd.testing.assert_frame_equal(panel.aggregate(groups).sort_values(keys).reset_index(drop=True),
                                  aggregated.sort_values(keys).reset_index(drop=True), check_dtype=False)
    assert np.isnan(panel.dense.count[panel.dense.row_of.get_loc("E01000005"), -1])


def test_an_ingest_of_the_set_drops_its_prepared_panel(toy: Store, tmp_path: Path):
    from geo_cs.ingest.indicators import ingest_indicator, spec_from_dict
    from geo_cs.panels import panel_key, prepared_token

    _prepare(toy)
    key = panel_key("lsoa2011", ["toy.claimants"], None, False)
    assert prepared_token(toy, key) is not None and _panel(toy).dense is not None
    spec = spec_from_dict({"id": "toy", "layout": "long", "geography": "lsoa2011",
                           "denominator_column": "denominator",
                           "measures": [{"id": "claimants", "kind": "count"}]})
    source = tmp_path / "feb2011.csv"
    source.write_text("area_code,period,measure,value,denominator\nE01000001,2011-02,claimants,900,1000\n")
    ingest_indicator(toy, source, spec)
    # a stale panel would keep the old figure: it is dropped, and built from the observations again
    assert prepared_token(toy, key) is None
    panel = _panel(toy)
    assert panel.dense is None
    rates = panel.area_rates().set_index(["code", "period_id"])["rate"]
    assert rates[("E01000001", "2011-02")] == pytest.approx(90.0)
