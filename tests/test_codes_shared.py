"""The district code history on the full real lookups (../shared/data): every code change of
2011-2019 is found from unchanged membership, and every seed partnership resolves on every
small-area edition the lookups reach. Needs only the lookups and the 2013 districts (~20 s)."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pytest

from geo_cs.district_codes import code_history
from geo_cs.ingest import ingest_boundaries, ingest_lookup
from geo_cs.partnerships import load_partnerships, resolve
from geo_cs.store import Store

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

PARTNERSHIPS = load_partnerships()
#: The recodes of 2011-2013 that no official list in the data records (ONS code history).
RECODED_2013 = {"E08000020": "E08000037", "E06000048": "E06000057", "E07000097": "E07000242",
                "E07000100": "E07000240", "E07000101": "E07000243", "E07000104": "E07000241"}
TO_2011 = {new: old for old, new in RECODED_2013.items()}


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Store:
    from conftest import SHARED_DATA as data

    store = Store.open(tmp_path_factory.mktemp("codes") / "codes.duckdb")
    ingest_boundaries(store, [data / "boundaries" / "lad13_gb.topojson"])
    for path in sorted((data / "lookups").glob("*.csv")):
        ingest_lookup(store, path)
    yield store
    store.close()


@cache
def rows(name: str) -> tuple[dict[str, str], ...]:
    from conftest import SHARED_DATA as data

    with open(data / "lookups" / name, encoding="utf-8-sig", newline="") as fh:
        return tuple(csv.DictReader(fh))


def test_every_2011_to_2013_recode_is_inferred_and_nothing_else(real: Store):
    history = code_history(real)
    inferred = history[history["basis"] == "inferred"]
    assert dict(zip(inferred["old_code"], inferred["new_code"], strict=True)) == RECODED_2013
    assert set(inferred["kind"]) == {"recode"} and (inferred["share_of_old"] == 1.0).all()
    # compared 2011 with 2019 (no small-area boundaries here); the 2013 codes date it
    assert set(zip(inferred["year_from"], inferred["year_to"], strict=True)) == {(2011, 2013)}
    assert inferred["evidence"].str.contains("dated by the codes of lad2013").all()
    # the shared members are every LSOA 2011 of the old code in the 2011 lookup, counted here
    gateshead = inferred.set_index("old_code").loc["E08000020"]
    assert gateshead["shared_members"] == sum(r["LAD11CD"] == "E08000020" for r in rows("lsoa01_lsoa11_ew.csv"))
    # and the 2019 mergers of the official list are confirmed by membership too
    confirmed = history[history["basis"] == "official+inferred"]
    assert {"E07000049", "E06000028", "E07000201"} <= set(confirmed["old_code"])


@pytest.mark.parametrize("pid", sorted(p for p, v in PARTNERSHIPS.items() if v.member_set == "lad2013"))
def test_every_district_partnership_on_every_lookup_edition(real: Store, pid: str):
    partnership = PARTNERSHIPS[pid]
    members = set(partnership.phase_at(None).members)
    if "Scotland" in partnership.nations:
        in_2020 = {"S12000046": "S12000049"}
        expected = {r["dz11_code"] for r in rows("dz11_iz11_lad20_scotland.csv")
                    if r["ltla20_code"] in {in_2020.get(m, m) for m in members}}
        assert set(resolve(real, partnership, "datazone2011").codes) == expected
        return
    in_2011 = {TO_2011.get(m, m) for m in members}
    lsoa01 = {r["LSOA01CD"] for r in rows("lsoa01_lsoa11_ew.csv") if r["LAD11CD"] in in_2011}
    lsoa21 = {r["LSOA21CD"] for r in rows("lsoa11_lsoa21_ew.csv") if r["LAD22CD"] in members}
    assert set(resolve(real, partnership, "lsoa2001").codes) == lsoa01
    assert set(resolve(real, partnership, "lsoa2021").codes) == lsoa21
    lsoa11 = max({r["LSOA11CD"] for r in rows("lsoa01_lsoa11_ew.csv") if r["LAD11CD"] in in_2011},
                 {r["LSOA11CD"] for r in rows("lsoa11_ward19_lad19_ew.csv") if r["LAD19CD"] in members},
                 key=len)
    assert set(resolve(real, partnership, "lsoa2011").codes) == lsoa11


def test_tyne_and_wear_lsoa_2001_count(real: Store):
    assert len(resolve(real, PARTNERSHIPS["tyne_and_wear"], "lsoa2001").codes) == 719


def test_shared_data_path(shared_data: Path):
    assert (shared_data / "lookups" / "lsoa01_lsoa11_ew.csv").exists()
