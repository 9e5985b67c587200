"""The district code history's pure functions (geo_cs.codehistory), on hand-made memberships."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from geo_cs.codehistory import (
    Membership,
    apply_overrides,
    combine,
    equivalent_codes,
    infer_changes,
    load_overrides,
    official_changes,
    parse_overrides,
    related_changes,
    years_label,
)
from geo_cs.errors import InputError


def membership(district_set: str, vintage: int, small_set: str, pairs: dict[str, str]) -> Membership:
    members = pd.DataFrame({"code": list(pairs), "district": list(pairs.values())})
    members["name"] = "name of " + members["district"]
    return Membership(district_set, vintage, small_set, "lookup", members)


def lsoas(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


# Gateshead (3 LSOAs) recoded in 2013; Newcastle (2) unchanged.
OLD = membership("lad2011", 2011, "lsoa2011", {
    **dict.fromkeys(lsoas("G", 3), "E08000020"), **dict.fromkeys(lsoas("N", 2), "E08000021")})
NEW = membership("lad2013", 2013, "lsoa2011", {
    **dict.fromkeys(lsoas("G", 3), "E08000037"), **dict.fromkeys(lsoas("N", 2), "E08000021")})


def test_a_recode_on_the_same_small_areas_with_its_evidence():
    changes = infer_changes(OLD, NEW, small_area_m2=pd.Series(1.0, index=lsoas("G", 3) + lsoas("N", 2)))
    assert len(changes) == 1
    row = changes.iloc[0]
    assert (row.old_code, row.new_code, row.kind, row.year_from, row.year_to) == (
        "E08000020", "E08000037", "recode", 2011, 2013)
    assert row.shared_members == 3 and row.share_of_old == 1.0 and row.share_of_new == 1.0
    assert row.area_change == 0.0
    assert row.old_name == "name of E08000020" and row.basis == "inferred"
    assert "lad2011 on lsoa2011" in row.evidence and "lad2013 on lsoa2011" in row.evidence


def test_through_the_unchanged_rows_of_a_small_area_lookup():
    # district 2011 on LSOA 2001, district 2019 on LSOA 2011: only U rows are compared
    old = membership("lad2011", 2011, "lsoa2001", {"a1": "E07000097", "a2": "E07000097", "a3": "E07000097",
                                                   "b1": "E07000098"})
    new = membership("lad2019", 2019, "lsoa2011", {"A1": "E07000242", "A2": "E07000242", "X": "E07000242",
                                                   "B1": "E07000098"})
    unchanged = pd.DataFrame({"from_code": ["a1", "a2", "b1"], "to_code": ["A1", "A2", "B1"]})  # a3 split
    changes = infer_changes(old, new, unchanged, through="lsoa2001_lsoa2011")
    assert changes[["old_code", "new_code", "shared_members"]].values.tolist() == [["E07000097", "E07000242", 2]]
    assert "unchanged links of lsoa2001_lsoa2011" in changes.iloc[0].evidence
    with pytest.raises(ValueError, match="different small areas"):
        infer_changes(old, new)


def test_a_merger_and_a_split_and_no_change_where_the_code_stays():
    old = membership("a", 2015, "s", {"1": "E07000001", "2": "E07000002", "3": "E07000003",
                                      "4": "E07000003", "5": "E07000004"})
    new = membership("b", 2020, "s", {"1": "E06000099", "2": "E06000099", "3": "E06000097",
                                      "4": "E06000098", "5": "E07000004"})
    changes = infer_changes(old, new).set_index("old_code")
    assert changes.loc["E07000001", "kind"] == "merger" and changes.loc["E07000001", "share_of_new"] == 0.5
    assert changes.loc["E07000002", "new_code"] == "E06000099"
    split = changes.loc["E07000003"]
    assert list(split["kind"]) == ["split", "split"] and sorted(split["new_code"]) == ["E06000097", "E06000098"]
    assert "E07000004" not in changes.index


def test_a_few_small_areas_next_door_do_not_make_a_change():
    # 19 of 20 in the renamed district (95% >= 90%), one landed in a neighbour by best fit
    old = membership("a", 2011, "s", dict.fromkeys(lsoas("x", 20), "E08000020"))
    new_pairs = dict.fromkeys(lsoas("x", 19), "E08000037") | {"x019": "E08000021"}
    changes = infer_changes(old, membership("b", 2013, "s", new_pairs))
    assert changes[["new_code", "kind"]].values.tolist() == [["E08000037", "recode"]]
    assert changes.iloc[0].share_of_old == pytest.approx(0.95)


def test_official_changes_keep_district_changes_only():
    rows = pd.DataFrame({
        "old_code": ["S12000046", "E08000021", "E10000009", "E07000049", "E08000016"],
        "new_code": ["S12000049", "E47000011", None, "E06000059", "E08000038"],
        "type": ["new_geo", "new_geo", "termination", "merger", "new_code"],
        "year": [2019, 2018, 2019, 2019, 2025]})
    changes = official_changes(rows, "lad_changes_2014_2025.csv")
    assert changes[["old_code", "new_code", "kind", "year_to"]].values.tolist() == [
        ["E07000049", "E06000059", "merger", 2019], ["S12000046", "S12000049", "recode", 2019],
        ["E08000016", "E08000038", "recode", 2025]]
    assert changes["year_from"].isna().all() and set(changes["basis"]) == {"official"}


def test_combine_keeps_the_narrowest_window_and_marks_official_and_inferred():
    wide = infer_changes(OLD, membership("lad2019", 2019, "lsoa2011", {
        **dict.fromkeys(lsoas("G", 3), "E08000037"), **dict.fromkeys(lsoas("N", 2), "E08000021")}))
    narrow = infer_changes(OLD, NEW)
    official = official_changes(pd.DataFrame({"old_code": ["E08000020"], "new_code": ["E08000037"],
                                              "type": ["new_code"], "year": [2013]}))
    alone = combine([wide, narrow])
    assert alone[["year_from", "year_to"]].values.tolist() == [[2011, 2013]]
    both = combine([wide, narrow], official)
    row = both.iloc[0]
    assert len(both) == 1 and row.basis == "official+inferred" and row.year_to == 2013
    assert pd.isna(row.year_from) and row.shared_members == 3
    assert row.evidence.startswith("official") and "inferred" in row.evidence
    assert years_label(row.year_from, row.year_to) == "2013" and years_label(2011, 2013) == "2011–2013"


def test_equivalent_codes_forward_backward_through_chains_and_vetoes():
    registry = combine([], official_changes(pd.DataFrame({
        "old_code": ["E07000001", "E07000002", "S12000046"], "new_code": ["E06000099", "E06000099", "S12000049"],
        "type": ["merger", "merger", "new_geo"], "year": [2019, 2019, 2019]})))
    registry = pd.concat([registry, infer_changes(OLD, NEW)], ignore_index=True)
    assert equivalent_codes(registry, ["E08000037", "E08000021"], 2013, 2011) == {
        "E08000037": ["E08000020"], "E08000021": ["E08000021"]}
    assert equivalent_codes(registry, ["E08000020"], 2011, 2022) == {"E08000020": ["E08000037"]}
    assert equivalent_codes(registry, ["E06000099"], 2020, 2013) == {"E06000099": ["E07000001", "E07000002"]}
    assert equivalent_codes(registry, ["S12000046"], 2013, 2018) == {"S12000046": ["S12000046"]}
    assert equivalent_codes(registry, ["S12000046"], 2013, 2020) == {"S12000046": ["S12000049"]}
    vetoed = registry.assign(vetoed=registry["old_code"] == "S12000046")
    assert equivalent_codes(vetoed, ["S12000046"], 2013, 2020) == {"S12000046": ["S12000046"]}


def test_related_changes_follow_the_chain_both_ways():
    registry = pd.DataFrame({"old_code": ["A", "B", "C", "X"], "new_code": ["B", "C", "D", "Y"]})
    assert related_changes(registry, ["C"])["old_code"].tolist() == ["A", "B", "C"]
    assert related_changes(registry, ["Z"]).empty


def test_overrides_add_and_veto(tmp_path: Path):
    path = tmp_path / "code_changes.yaml"
    path.write_text(
        "add:\n  - {old: S12000043, new: S12000046, year: 2011, note: before any lookup}\n"
        "veto:\n  - {old: E08000020, new: E08000037, note: testing}\n", encoding="utf-8")
    overrides = load_overrides(path)
    registry = apply_overrides(infer_changes(OLD, NEW), overrides)
    assert registry.set_index("old_code").loc["S12000043", "basis"] == "user"
    vetoed = registry.set_index("old_code").loc["E08000020"]
    assert bool(vetoed["vetoed"]) and vetoed["note"] == "testing"
    assert equivalent_codes(registry, ["E08000037"], 2013, 2011) == {"E08000037": ["E08000037"]}
    assert equivalent_codes(registry, ["S12000046"], 2013, 2010) == {"S12000046": ["S12000043"]}
    assert load_overrides(tmp_path / "absent.yaml").add.empty


@pytest.mark.parametrize("text, message", [
    ("add:\n  - {old: E0800002, new: E08000037, year: 2013}\n",
     r"code_changes.yaml, add entry 1, field 'old': 'E0800002' is not a GSS code"),
    ("add:\n  - {old: E08000020, new: E08000037}\n", r"add entry 1: field 'year' is missing"),
    ("add:\n  - {old: E08000020, new: E08000037, year: 2013}\n  - {old: E08000020, new: E08000037, "
     "year: twenty}\n", r"add entry 2, field 'year': 'twenty' is not a year"),
    ("add:\n  - {old: E08000020, new: E08000037, year: 2013, kind: split}\n",
     r"add entry 1, field 'kind': 'split', expected recode or merger"),
    ("veto:\n  - {old: E08000020}\n", r"veto entry 1: field 'new' is missing"),
    ("adds: []\n", r"unknown section 'adds'"),
    ("add: [\n", r"not valid YAML"),
])
def test_bad_overrides_name_the_file_entry_field_and_value(tmp_path: Path, text: str, message: str):
    path = tmp_path / "code_changes.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_overrides(path)


def test_vetoing_a_change_the_history_lacks_is_an_error():
    overrides = parse_overrides({"veto": [{"old": "E08000020", "new": "E08000099"}]}, "mine.yaml")
    with pytest.raises(InputError, match=r"mine.yaml, veto entry 1: no change E08000020 -> E08000099 .*"
                                         r"recorded as changing to E08000037"):
        apply_overrides(infer_changes(OLD, NEW), overrides)
