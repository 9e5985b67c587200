"""The district code history in the store, and every seed partnership on every geography edition
of its nation, against the demo database (real data) — each checked against the bundle's own
lookup and boundary files, read here independently of geo-cs."""

from __future__ import annotations

import csv
import json
import shutil
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, run_cli

from geo_cs.district_codes import code_history, infer_from_store, stored_registry
from geo_cs.errors import InputError, NotFoundError
from geo_cs.partnerships import load_partnerships, resolve
from geo_cs.store import Store

BUNDLE = REPO / "boundaries" / "demo"
LOOKUPS = BUNDLE / "lookups"
#: The published code changes of the seed partnerships' districts between their 2013 codes and
#: the lookups' editions (ONS code history): Gateshead until 2013, Glasgow City from 2019.
TO_2011 = {"E08000037": "E08000020"}
TO_2020 = {"S12000046": "S12000049"}
VINTAGES = {"England": ["lsoa2001", "lsoa2011", "lsoa2021", "ward2013"],
            "Wales": ["lsoa2001", "lsoa2011", "lsoa2021", "ward2013"],
            "Scotland": ["datazone2001", "datazone2011", "ward2013"]}
PARTNERSHIPS = load_partnerships()
CASES = [(pid, set_id) for pid, p in PARTNERSHIPS.items() for nation in p.nations
         for set_id in VINTAGES[nation]]


@cache
def rows(name: str) -> tuple[dict[str, str], ...]:
    with open(LOOKUPS / name, encoding="utf-8-sig", newline="") as fh:
        return tuple(csv.DictReader(fh))


def where(name: str, column: str, values: set[str], wanted: str) -> set[str]:
    return {r[wanted] for r in rows(name) if r[column] in values}


@cache
def ward_files() -> dict[str, set[str]]:
    """The 2013 wards of each district, from the bundle's per-district TopoJSON files."""
    result = {}
    for path in (BUNDLE / "boundaries" / "ward2013").glob("*.json"):
        topo = json.loads(path.read_text(encoding="utf-8"))
        (layer,) = topo["objects"].values()
        result[path.stem] = {g["properties"]["WD13CD"] for g in layer["geometries"]}
    return result


def expected_areas(pid: str, set_id: str) -> tuple[set[str], str]:
    """The partnership's areas of ``set_id`` as the bundle's files say, and how exact that is:
    ``equal``; ``within`` (resolved by geometry: at least 95% of the lookup's areas, no other);
    ``near`` (by geometry against a best-fit lookup: at most 5% different)."""
    p = PARTNERSHIPS[pid]
    members = set(p.phase_at(None).members)
    if p.member_set == "ward2013":  # Rhyl: five wards
        if set_id == "ward2013":
            return members, "equal"
        if set_id == "lsoa2001":
            return where("lsoa01_ward11_ew.csv", "WD11CD", members, "LSOA01CD"), "equal"
        if set_id == "lsoa2011":
            return where("lsoa11_ward19_lad19_ew.csv", "WD19CD", members, "LSOA11CD"), "equal"
        # by geometry (no lookup links LSOA 2021 to wards): the successors of its LSOAs 2011,
        # give or take an LSOA whose point-on-surface and best-fit ward disagree
        lsoa11 = where("lsoa11_ward19_lad19_ew.csv", "WD19CD", members, "LSOA11CD")
        return where("lsoa11_lsoa21_ew.csv", "LSOA11CD", lsoa11, "LSOA21CD"), "near"
    in_2011 = {TO_2011.get(m, m) for m in members}
    if set_id == "lsoa2001":
        wards = where("ward11_lad11_ew.csv", "LAD11CD", in_2011, "WD11CD")
        return (where("lsoa01_lsoa11_ew.csv", "LAD11CD", in_2011, "LSOA01CD")
                | where("lsoa01_ward11_ew.csv", "WD11CD", wards, "LSOA01CD")), "equal"
    if set_id == "lsoa2011":
        # two lookups reach districts from LSOA 2011 (2011 and 2019 codes); the ONS 2001->2011
        # file lacks a few 2011 LSOAs, so the one reaching more areas is used
        by_2011 = where("lsoa01_lsoa11_ew.csv", "LAD11CD", in_2011, "LSOA11CD")
        by_2019 = where("lsoa11_ward19_lad19_ew.csv", "LAD19CD", members, "LSOA11CD")
        return max(by_2011, by_2019, key=len), "equal"
    if set_id == "lsoa2021":
        return where("lsoa11_lsoa21_ew.csv", "LAD22CD", members, "LSOA21CD"), "equal"
    if set_id == "ward2013":
        return set().union(*(ward_files()[m] for m in members)), "equal"
    dz11 = where("dz11_iz11_lad20_scotland.csv", "ltla20_code", {TO_2020.get(m, m) for m in members},
                 "dz11_code")
    if set_id == "datazone2011":
        return dz11, "equal"
    assert set_id == "datazone2001"
    return where("dz01_dz11.csv", "dz11_code", dz11, "dz01_code"), "within"


@pytest.fixture(scope="module")
def demo(demo_db: Path) -> Store:
    with Store.open(demo_db, read_only=True) as store:
        yield store


@pytest.mark.parametrize("pid, set_id", CASES, ids=[f"{p}-{s}" for p, s in CASES])
def test_every_partnership_resolves_on_every_edition_of_its_nation(demo: Store, pid: str, set_id: str):
    resolution = resolve(demo, PARTNERSHIPS[pid], set_id)
    got = set(resolution.codes)
    expected, how = expected_areas(pid, set_id)
    assert got, f"{pid} has no {set_id} areas"
    if how == "equal":
        assert got == expected
    elif how == "within":
        assert got <= expected and len(got) >= 0.95 * len(expected)
    else:
        assert len(got ^ expected) <= max(1, 0.05 * len(expected)), sorted(got ^ expected)


def test_tyne_and_wear_on_lsoa_2001_goes_through_gateshead_s_2011_code(demo: Store):
    resolution = resolve(demo, PARTNERSHIPS["tyne_and_wear"], "lsoa2001")
    assert resolution.method == "lookup" and resolution.lookup_set == "lad2011"
    assert resolution.renamed == {"E08000037": ["E08000020"]}
    # the lookup file, counted here: LSOAs 2001 of the five districts' 2011 codes
    tw_2011 = {"E08000020", "E08000021", "E08000022", "E08000023", "E08000024"}
    expected = {r["LSOA01CD"] for r in rows("lsoa01_lsoa11_ew.csv") if r["LAD11CD"] in tw_2011}
    assert len(resolution.codes) == len(expected) == 719
    gateshead = resolution.areas[resolution.areas["member"] == "E08000037"]
    assert len(gateshead) == len({r["LSOA01CD"] for r in rows("lsoa01_lsoa11_ew.csv")
                                  if r["LAD11CD"] == "E08000020"})


def test_the_registry_is_stored_with_its_evidence(demo: Store):
    stored = stored_registry(demo)
    assert stored is not None, "the demo stores the registry it built"
    inferred, _ = infer_from_store(demo)
    assert len(stored) == len(inferred)
    gateshead = stored.set_index("old_code").loc["E08000020"]
    # every LSOA 2011 of Gateshead's 2011 code (lsoa01_lsoa11_ew.csv) sits in E08000037 (2013)
    lsoas = {r["LSOA11CD"] for r in rows("lsoa01_lsoa11_ew.csv") if r["LAD11CD"] == "E08000020"}
    assert (gateshead["new_code"], gateshead["kind"], gateshead["basis"]) == ("E08000037", "recode", "inferred")
    assert (gateshead["year_from"], gateshead["year_to"]) == (2011, 2013)
    assert gateshead["shared_members"] == len(lsoas) == 126
    assert gateshead["share_of_old"] == 1.0 and gateshead["share_of_new"] == 1.0
    assert gateshead["area_change"] == pytest.approx(0.0)
    glasgow = stored.set_index("old_code").loc["S12000046"]
    assert glasgow["new_code"] == "S12000049" and glasgow["basis"] == "official+inferred"
    assert glasgow["year_to"] == 2019 and glasgow["share_of_old"] == 1.0
    official = [r for r in rows("lad_changes_2014_2025.csv")
                if r["type"] in ("merger", "new_code", "new_geo") and r["newcd"][:3] in ("E06", "E07", "E08", "S12")]
    assert set(zip(stored["old_code"], stored["new_code"], strict=True)) >= {
        (r["oldcd"], r["newcd"]) for r in official}


def _copy(demo_db: Path, tmp_path: Path) -> Path:
    db = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, db)
    return db


def test_cli_lists_filters_and_prints_json(demo_db: Path, capsys):
    result = run_cli(capsys, "--db", str(demo_db), "crosswalk", "codes")
    assert result.code == 0
    assert "E08000020" in result.stdout and "2011–2013" in result.stdout and "inferred" in result.stdout
    one = run_cli(capsys, "--db", str(demo_db), "crosswalk", "codes", "--district", "E08000037", "--json")
    records = json.loads(one.stdout)
    assert [(r["old_code"], r["new_code"], r["years"], r["shared_members"]) for r in records] == [
        ("E08000020", "E08000037", "2011–2013", 126)]
    none = run_cli(capsys, "--db", str(demo_db), "crosswalk", "codes", "--district", "E09000001")
    assert none.code == 3 and "no code change recorded" in none.stderr


def test_a_veto_in_yaml_stops_the_translation(demo_db: Path, tmp_path: Path, capsys, monkeypatch):
    veto = tmp_path / "veto.yaml"
    veto.write_text("veto:\n  - {old: E08000020, new: E08000037, note: checking}\n", encoding="utf-8")
    # recorded so that it is undone afterwards (--code-changes sets it for the process)
    monkeypatch.setenv("GEO_CS_CODE_CHANGES", str(veto))
    listed = run_cli(capsys, "--db", str(demo_db), "--code-changes", str(veto), "crosswalk", "codes",
                     "-d", "E08000020")
    assert listed.code == 0 and "vetoed" in listed.stdout and "checking" in listed.stdout
    with Store.open(demo_db, read_only=True) as store:
        with pytest.raises(InputError, match="no lookup links lsoa2001 to lad2013"):
            resolve(store, PARTNERSHIPS["tyne_and_wear"], "lsoa2001")
        monkeypatch.delenv("GEO_CS_CODE_CHANGES")
        assert len(resolve(store, PARTNERSHIPS["tyne_and_wear"], "lsoa2001").codes) == 719


def test_an_addition_in_yaml_is_used(demo_db: Path, tmp_path: Path, monkeypatch):
    # a partnership defined with an older code that no held lookup knows resolves once the
    # user records the change
    path = tmp_path / "add.yaml"
    path.write_text("add:\n  - {old: S12000043, new: S12000046, year: 2011, old_name: Glasgow City}\n",
                    encoding="utf-8")
    monkeypatch.setenv("GEO_CS_CODE_CHANGES", str(path))
    with Store.open(demo_db, read_only=True) as store:
        history = code_history(store)
        assert history.set_index("old_code").loc["S12000043", "basis"] == "user"
        from geo_cs.district_codes import codes_in_edition
        assert codes_in_edition(store, ["S12000043"], 2010, 2020) == {"S12000043": ["S12000049"]}
    monkeypatch.setenv("GEO_CS_CODE_CHANGES", str(tmp_path / "absent.yaml"))
    with Store.open(demo_db, read_only=True) as store, pytest.raises(
            NotFoundError, match="absent.yaml, which does not exist"):
        code_history(store)


@pytest.mark.slow
def test_a_lookup_ingest_rebuilds_the_registry_and_a_failed_one_keeps_it(demo_db: Path, tmp_path: Path):
    from conftest import snapshot

    from geo_cs.ingest import ingest_lookup

    db = _copy(demo_db, tmp_path)
    bad = tmp_path / "lad_changes_bad.csv"
    bad.write_text("oldcd,oldnm,newcd,newnm,type,start\nE08000037,Gateshead,E08000099,G,new_code,20x\n",
                   encoding="utf-8")
    extra = tmp_path / "lad_changes_extra.csv"
    extra.write_text("oldcd,oldnm,newcd,newnm,type,start\nE08000021,Newcastle,E08000098,N,new_code,2030\n",
                     encoding="utf-8")
    with Store.open(db) as store:
        before = snapshot(store)
        with pytest.raises(InputError, match=r"lad_changes_bad.csv, row 2, column 'start': '20x' is not a year"):
            ingest_lookup(store, bad)
        assert snapshot(store) == before
        # the official changes lookup is replaced whole: the extra file stands for it now
        ingest_lookup(store, extra)
        stored = stored_registry(store)
        assert stored is not None
        assert ("E08000021", "E08000098") in set(zip(stored["old_code"], stored["new_code"], strict=True))
        assert "E08000020" in set(stored["old_code"])  # the inferred change stays


def test_the_full_registry_matches_between_store_and_in_memory(demo: Store):
    history = code_history(demo)
    assert not history["vetoed"].any()
    assert set(history["basis"]) <= {"inferred", "official", "official+inferred"}
    assert pd.Series(history["years"]).str.match(r"^\d{4}(–\d{4})?$").all()
