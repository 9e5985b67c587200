from pathlib import Path

import pytest
from conftest import snapshot

from geo_cs.errors import InputError
from geo_cs.ingest import ingest_lookup
from geo_cs.store import Store

LSOA11_21 = (
    "\ufeffLSOA11CD,LSOA11NM,LSOA21CD,LSOA21NM,CHGIND,LAD22CD,LAD22NM,LAD22NMW,ObjectId\n"
    "E01000001,City 001A,E01000001,City 001A,U,E09000001,City of London,,1\n"
    "E01000002,City 001B,E01033001,City 001G,S,E09000001,City of London,,2\n"
    "E01000002,City 001B,E01033002,City 001H,S,E09000001,City of London,,3\n"
    "E01000003,City 001C,E01033003,City 001J,M,E09000001,City of London,,4\n"
    "E01000004,City 001D,E01033003,City 001J,M,E09000001,City of London,,5\n"
)


def ingest_lookup_made_up(store: Store, path: Path, **kwargs):
    """These lookups use made-up codes (E01033001…): the official lists are tested apart."""
    return ingest_lookup(store, path, allow_unlisted=True, **kwargs)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lsoa_lookup_with_byte_order_mark_and_change_indicators(tmp_path: Path, store: Store):
    report = ingest_lookup_made_up(store, _write(tmp_path, "lsoa11_lsoa21.csv", LSOA11_21))
    assert report.lookup_id == "lsoa2011_lsoa2021"
    assert report.change_indicators == {"U": 1, "S": 2, "M": 2}
    links = store.sql(
        "SELECT from_code, to_code, change_ind FROM lookup_links "
        "WHERE from_set = 'lsoa2011' ORDER BY 1, 2").fetchall()
    assert links[1:3] == [("E01000002", "E01033001", "S"), ("E01000002", "E01033002", "S")]
    # codes on both sides are registered (without geometry) so indicators can be checked
    assert store.sql(
        "SELECT name, geom_27700 IS NULL FROM areas WHERE set_id = 'lsoa2021' AND code = 'E01033003'"
    ).fetchone() == ("City 001J", True)
    assert store.sql("SELECT count(*) FROM areas WHERE set_id = 'lad2022'").fetchone()[0] == 1


def test_reingest_replaces_the_lookup(tmp_path: Path, store: Store):
    path = _write(tmp_path, "l.csv", LSOA11_21)
    ingest_lookup_made_up(store, path)
    ingest_lookup_made_up(store, path)
    assert store.sql("SELECT count(*) FROM lookup_links WHERE lookup_id = 'lsoa2011_lsoa2021' "
                     "AND from_set = 'lsoa2011'").fetchone()[0] == 5


def test_bad_change_indicator_names_row_column_and_value(tmp_path: Path, store: Store):
    bad = LSOA11_21.replace("E01033003,City 001J,M,E09000001,City of London,,5",
                            "E01033003,City 001J,Q,E09000001,City of London,,5")
    before = snapshot(store)
    with pytest.raises(InputError, match=r"l.csv, row 6, column 'CHGIND': change indicator 'Q', "
                                         r"expected one of U, S, M, X"):
        ingest_lookup_made_up(store, _write(tmp_path, "l.csv", bad))
    assert snapshot(store) == before


def test_empty_code_is_an_error(tmp_path: Path, store: Store):
    bad = LSOA11_21.replace("E01000003,City 001C,E01033003", "E01000003,City 001C,")
    with pytest.raises(InputError, match=r"row 5, column 'LSOA21CD': empty code"):
        ingest_lookup_made_up(store, _write(tmp_path, "l.csv", bad))


def test_unknown_layout_lists_the_known_ones(tmp_path: Path, store: Store):
    with pytest.raises(InputError, match=r"not a lookup layout geo-cs knows; its columns are a, b.*"
                                         r"lsoa2011_lsoa2021 \(LSOA11CD, LSOA21CD, CHGIND\)"):
        ingest_lookup_made_up(store, _write(tmp_path, "x.csv", "a,b\n1,2\n"))


def test_data_zone_pairs_many_to_many(tmp_path: Path, store: Store):
    text = '"dz01_code","dz11_code"\n"S01000001","S01006506"\n"S01000001","S01006507"\n' \
           '"S01000002","S01006507"\n'
    report = ingest_lookup_made_up(store, _write(tmp_path, "dz.csv", text))
    assert report.links == {"datazone2001->datazone2011": 3}
    assert store.sql("SELECT count(*) FROM lookup_links WHERE change_ind IS NULL").fetchone()[0] == 3


def test_district_changes_keep_type_year_and_terminations(tmp_path: Path, store: Store):
    text = ("\ufeffoldcd,oldnm,newcd,newnm,type,start\n"
            "E08000020,Gateshead,E08000037,Gateshead,new_code,2013\n"
            "E10000009,Dorset,,,termination,2019\n")
    ingest_lookup_made_up(store, _write(tmp_path, "lad_changes.csv", text))
    rows = store.sql("SELECT from_code, to_code, change_ind, change_year FROM lookup_links "
                     "ORDER BY 1").fetchall()
    assert rows == [("E08000020", "E08000037", "new_code", 2013),
                    ("E10000009", None, "termination", 2019)]


def test_optional_target_may_be_empty(tmp_path: Path, store: Store):
    text = ("FID,WD19CD,WD19NM,LAD19CD,LAD19NM,CTY19CD,CTY19NM,RGN19CD,RGN19NM,CTRY19CD,CTRY19NM\n"
            "1,E05012456,South Bank,E06000003,Redcar,,,E12000001,North East,E92000001,England\n"
            "2,W05000001,Aberdaron,W06000002,Gwynedd,,,,,W92000004,Wales\n")
    report = ingest_lookup_made_up(store, _write(tmp_path, "w.csv", text))
    assert report.without_target == {"lad2019->rgn2019": 1}
    assert store.sql("SELECT count(*) FROM lookup_links WHERE to_set = 'rgn2019'").fetchone()[0] == 1


def test_a_typo_code_never_becomes_an_area(tmp_path: Path, store: Store):
    bad = LSOA11_21.replace("E01000004,City 001D", "E0100004X,City 001D")
    with pytest.raises(InputError, match=r"row 6, column 'LSOA11CD': 'E0100004X' is not a GSS code"):
        ingest_lookup_made_up(store, _write(tmp_path, "l.csv", bad))
    assert store.sql("SELECT count(*) FROM areas").fetchone()[0] == 0


def test_codes_off_the_official_list_are_refused_naming_the_vintage_they_belong_to(
    tmp_path: Path, store: Store
):
    # an LSOA 2011 → 2021 lookup whose "2021" column holds a 2011-only code
    text = ("LSOA11CD,LSOA11NM,LSOA21CD,LSOA21NM,CHGIND,LAD22CD,LAD22NM,LAD22NMW,ObjectId\n"
            "E01000001,City 001A,E01000001,City 001A,U,E09000001,City of London,,1\n"
            "E01000010,Camden 001A,E01000010,Camden 001A,U,E09000007,Camden,,2\n")
    before = snapshot(store)
    with pytest.raises(InputError, match=r"l.csv, row 3, column 'LSOA21CD': 'E01000010' is not on the "
                                         r"official list of lsoa2021 codes \(a lsoa2001 / lsoa2011 code"):
        ingest_lookup(store, _write(tmp_path, "l.csv", text))
    assert snapshot(store) == before
    report = ingest_lookup(store, _write(tmp_path, "l.csv", text), allow_unlisted=True)
    assert report.links["lsoa2011->lsoa2021"] == 2

