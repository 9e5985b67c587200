"""Build the embedded demo bundle (boundaries/demo/) from the real data in ../shared/data.

The bundle holds, for the districts of the City Strategy and DAF partnerships, real boundaries
(LSOA 2011 and 2021, Data Zone 2001 and 2011, wards 2013), every employment-deprivation index
available for them, the lookups they need, the real quarterly constituency out-of-work benefit
series with constituency and district boundaries, the two Annual Population Survey downloads
(employment rate of every GB district in 2019; rolling years 2004-2023 of 72 northern districts)
with the UK district boundaries 2014-2025 they are mapped on, and the partnership definitions. Files keep
their published formats and quirks (TopoJSON without a CRS, byte-order marks, suppressed cells)
so that `geo-cs demo` goes through the same readers as users' own files; CSVs are cut to the
bundle's areas line by line, never rewritten.

One file is *made*, not cut: ``indicators/synthetic_claimants_monthly_wpc10.csv``, a SYNTHETIC
monthly series (May 2010 - February 2012) interpolated from the real DWP quarterly constituency
series, so the map's period slider has months to show (see :func:`synthetic_monthly`). It is
labelled synthetic in its spec, its title and PROVENANCE.tsv; it is not published data.

    python scripts/build_demo_bundle.py [--shared ../shared/data]
    python scripts/build_demo_bundle.py --monthly-only    # (re)write just the synthetic series
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "boundaries" / "demo"
ATTRIBUTION = (
    "Contains National Statistics data © Crown copyright and database right. "
    "Contains OS data © Crown copyright and database right. "
    "Contains NRS data © Crown copyright. Open Government Licence v3.0."
)


def partnership_districts(path: Path, shared: Path) -> tuple[set[str], set[str]]:
    """2013 district codes of every partnership member (wards resolved to their district)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    districts: set[str] = set()
    wards: set[str] = set()
    for p in data["partnerships"]:
        members = list(p.get("members", []))
        for phase in p.get("phases", []):
            members += phase.get("members", [])
        if p.get("member_geography", "").startswith("ward"):
            wards.update(members)
        else:
            districts.update(members)
    for ward_file in sorted((shared / "boundaries" / "wards13_topo_by_lad").glob("*.json")):
        text = ward_file.read_text(encoding="utf-8")
        if any(w in text for w in wards):
            districts.add(ward_file.stem)
    return districts, wards


def filter_csv(
    src: Path, dst: Path, column: str, keep: set[str], columns: list[str] | None = None
) -> set[str]:
    """Copy the header and the lines whose ``column`` is in ``keep``.

    Lines are copied byte for byte (byte-order mark, quoting, blanks and all) unless
    ``columns`` is given, when only those columns are kept (cell text unchanged).
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, encoding="utf-8", newline="") as fh:
        lines = fh.read().splitlines(keepends=True)
    header = next(csv.reader([lines[0].lstrip("\ufeff")]))
    index = header.index(column)
    kept = [lines[0]]
    for line in lines[1:]:
        row = next(csv.reader([line]))
        if row and row[index] in keep:
            kept.append(line)
    if columns is not None:
        positions = [header.index(c) for c in header if c in columns]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in csv.reader(kept):
            writer.writerow([row[i] for i in positions])
        prefix = "\ufeff" if lines[0].startswith("\ufeff") else ""
        dst.write_text(prefix + buffer.getvalue().lstrip("\ufeff"), encoding="utf-8", newline="")
    else:
        dst.write_text("".join(kept), encoding="utf-8", newline="")
    print(f"  {dst.relative_to(ROOT)}: {len(kept) - 1:,} of {len(lines) - 1:,} rows")
    return {next(csv.reader([line]))[index] for line in kept[1:]}


def lsoa11_files_for(districts: list[str], shared: Path) -> list[Path]:
    """The per-district LSOA 2011 files covering ``districts`` (2013 codes).

    The files are named by 2011 district codes, so a district whose code changed in 2013
    (Gateshead E08000020 -> E08000037) is found through the LSOA 2011 -> district 2019 lookup.
    """
    folder = shared / "boundaries" / "lsoa11_bgc_topo_by_lad"
    files = {d: folder / f"{d}.json" for d in districts if (folder / f"{d}.json").exists()}
    missing = [d for d in districts if d not in files]
    if missing:
        lsoas = column_values(shared / "lookups" / "lsoa11_ward19_lad19_ew.csv", "LSOA11CD",
                              "LAD19CD", missing)
        by_lad11: dict[str, set[str]] = {}
        with open(shared / "lookups" / "lsoa01_lsoa11_ew.csv", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                if row["LSOA11CD"] in lsoas:
                    by_lad11.setdefault(row["LAD11CD"], set()).add(row["LSOA11CD"])
        for lad11 in by_lad11:
            files[lad11] = folder / f"{lad11}.json"
        print(f"  districts found through the 2019 lookup: {', '.join(missing)} -> "
              f"{', '.join(sorted(by_lad11))}")
    return sorted(set(files.values()))


def spec_columns(file_name: str) -> list[str]:
    """Every column the shipped spec for ``file_name`` reads (codes, names, values, filters)."""
    from geo_cs.ingest.indicators import spec_for_file

    spec = spec_for_file(file_name)
    header_source = None
    columns = {spec.code_column, spec.name_column, spec.period_column, *spec.filters,
               *spec.exclude}
    for m in spec.measures:
        columns |= {m.column, m.denominator, m.code_column, m.name_column}
        if m.sum_columns:
            header_source = m.sum_columns
    if header_source:  # a range of age columns: keep every column between the two
        columns |= {str(age) for age in range(int(header_source[0]), int(header_source[1]) + 1)}
    return sorted(c for c in columns if c)


def column_values(path: Path, column: str, where_col: str, keep: Iterable[str]) -> set[str]:
    keep = set(keep)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {row[column] for row in csv.DictReader(fh) if row[where_col] in keep}


def cut_topojson(src: Path, dst: Path, layer: str, code_property: str, keep: set[str]) -> int:
    """Write a valid TopoJSON holding only ``layer``'s geometries whose ``code_property`` is in
    ``keep`` (properties unchanged) and the arcs they use (renumbered; arcs themselves, the
    quantisation and the transform unchanged). Returns the number of geometries kept."""
    topology = json.loads(src.read_text(encoding="utf-8"))
    geometries = [g for g in topology["objects"][layer]["geometries"]
                  if g.get("properties", {}).get(code_property) in keep]
    used: dict[int, int] = {}

    def collect(arcs: list | int) -> None:
        if isinstance(arcs, list):
            for a in arcs:
                collect(a)
        else:
            used.setdefault(arcs if arcs >= 0 else ~arcs, len(used))

    def renumber(arcs: list | int) -> list | int:
        if isinstance(arcs, list):
            return [renumber(a) for a in arcs]
        return used[arcs] if arcs >= 0 else ~used[~arcs]

    for g in geometries:
        collect(g.get("arcs", []))
    out = {key: value for key, value in topology.items() if key not in ("arcs", "objects")}
    out["arcs"] = [topology["arcs"][old] for old in sorted(used, key=used.__getitem__)]
    out["objects"] = {layer: {**{k: v for k, v in topology["objects"][layer].items()
                                 if k != "geometries"},
                              "geometries": [{**g, "arcs": renumber(g["arcs"])} if "arcs" in g else g
                                             for g in geometries]}}
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(out, separators=(",", ":")), encoding="utf-8")
    return len(geometries)


def copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


SYNTHETIC_MONTHLY = "synthetic_claimants_monthly_wpc10.csv"
#: The two Annual Population Survey downloads (issue 29), copied whole.
SURVEY_FILES = ("aps_employment_rate_la_2019.csv", "aps_lad_north_2004_2023.csv")
#: Every UK district 2014-2025 with start/end years: the survey sets' boundaries.
DISTRICTS_ALL_YEARS = "uk_admin_2014_2025.topojson"
#: The API extract's districts only (72, "as of April 2021"), cut from DISTRICTS_ALL_YEARS.
NORTH_DISTRICTS = "uk_admin_2014_2025_ltla_north.topojson"
#: The district editions of the survey files and the boundaries they are mapped on: the 2019
#: web download's codes are those of 2020 (Buckinghamshire E06000060), every GB district; the
#: API extract's are "as of April 2021", the 72 northern districts it holds. Only those: the
#: demo's small areas cover the partnerships alone, and the district code history, inferring
#: changes from a district edition with boundaries (points on surface of the small areas) and
#: the 2022 districts of the LSOA 2021 lookup (the bundle's districts only), would otherwise take
#: a district outside the bundle with a few border LSOAs for a district merged into its
#: neighbour (South Staffordshire into Dudley, 2022), which is not so.
SURVEY_DISTRICT_SETS = (("lad2020", 2020, DISTRICTS_ALL_YEARS), ("lad2021", 2021, NORTH_DISTRICTS))
SYNTHETIC_HOW = ("SYNTHETIC, not published: monthly values linearly interpolated between the real "
                 "DWP quarters (ConstLevel, and the denominator ConstLevel / ConstRate × 100), "
                 "counts rounded to 5; quarter months keep the real figures")


def synthetic_monthly(src: Path, dst: Path) -> int:
    """Write the synthetic monthly claimant series of every GB constituency from the real
    quarterly one (deterministic): the quarters' months (Feb, May, Aug, Nov) keep the real
    level and implied working-age denominator; the two months between are interpolated
    linearly, counts rounded to 5 as DWP rounds them. A suppressed quarter leaves its
    neighbouring months blank. Returns the number of rows written.

    >>> # python scripts/build_demo_bundle.py --monthly-only   # doctest: +SKIP
    """
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    frame = frame[frame["RegionID"] != "N92000002"]
    frame["when"] = pd.to_datetime(frame["Date"], format="%Y/%m/%d")
    level = pd.to_numeric(frame["ConstLevel"], errors="coerce")
    rate = pd.to_numeric(frame["ConstRate"], errors="coerce")
    frame["level"], frame["den"] = level, level * 100 / rate.where(rate > 0)
    rows = []
    for code, g in frame.sort_values("when").groupby("ONSConstID", sort=True):
        g = g.reset_index(drop=True)
        for i in range(len(g)):
            steps = 1 if i == len(g) - 1 else 3
            for k in range(steps):
                when = g.at[i, "when"] + pd.DateOffset(months=k)
                if k == 0:
                    count, den = g.at[i, "level"], g.at[i, "den"]
                else:
                    w = k / 3
                    count = (1 - w) * g.at[i, "level"] + w * g.at[i + 1, "level"]
                    den = (1 - w) * g.at[i, "den"] + w * g.at[i + 1, "den"]
                    count = 5 * round(count / 5) if pd.notna(count) else count
                rows.append((f"{when:%Y-%m}", code,
                             "" if pd.isna(count) else f"{count:.0f}",
                             "" if pd.isna(den) else f"{den:.0f}"))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["date", "ONSConstID", "claimants", "working_age_population"])
        writer.writerows(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--monthly-only", action="store_true",
                        help="Only (re)write the synthetic monthly series into the bundle.")
    args = parser.parse_args()
    shared: Path = args.shared
    quarterly = shared / "indicators" / "out_of_work_benefits_wpc10_2010q2_2012q1.csv"
    if args.monthly_only:
        n = synthetic_monthly(quarterly, OUT / "indicators" / SYNTHETIC_MONTHLY)
        print(f"{SYNTHETIC_MONTHLY}: {n:,} rows")
        return
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    provenance: list[tuple[str, str, str]] = []

    def record(dst: Path, src: Path, how: str) -> None:
        provenance.append((str(dst.relative_to(OUT)), str(src.relative_to(shared)), how))

    partnerships_src = shared / "partnerships" / "city_strategy_partnerships.yaml"
    districts, _ = partnership_districts(partnerships_src, shared)
    print(f"{len(districts)} partnership districts")
    ew = sorted(d for d in districts if d[0] in "EW")
    scot = sorted(d for d in districts if d[0] == "S")

    # -- boundaries, as published ------------------------------------------------------------
    for src in lsoa11_files_for(ew, shared):
        dst = OUT / "boundaries" / "lsoa2011" / src.name
        copy(src, dst)
        record(dst, src, "copied")
    # Data Zone 2001 GeoJSON is verbose (5 MB for three councils): stored as GeoParquet
    # (geometry and attributes unchanged) to keep the bundle under 25 MB.
    dz01_frames = []
    for lad in scot:
        src = shared / "boundaries" / "dz01_by_lad" / f"{lad}.json"
        dz01_frames.append(gpd.read_file(src))
        record(OUT / "boundaries" / "datazone2001.parquet", src, "as GeoParquet")
    dst = OUT / "boundaries" / "datazone2001.parquet"
    dst.parent.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame(pd.concat(dz01_frames, ignore_index=True)).to_parquet(
        dst, compression="zstd", index=False
    )
    # 2013 wards of every partnership district (England too, ~0.7 MB), so that every
    # partnership resolves on ward2013 as well as on the small areas
    for lad in sorted(districts):
        src = shared / "boundaries" / "wards13_topo_by_lad" / f"{lad}.json"
        if src.exists():
            dst = OUT / "boundaries" / "ward2013" / f"{lad}.json"
            copy(src, dst)
            record(dst, src, "copied")
    # every UK district 2014-2025 (each feature with its start/end years; layer ltla), whole:
    # 0.7 MB, and cutting it to its ltla object would save only 0.1 MB. The demo ingests it twice
    # with --alive-in, as the districts of 2020 and of 2021, for the survey estimates' maps.
    for name in ("lad13_gb.topojson", "wpc_eng.topojson", "wpc_wal.topojson", "wpc_sco.topojson",
                 DISTRICTS_ALL_YEARS):
        src = shared / "boundaries" / name
        dst = OUT / "boundaries" / name
        copy(src, dst)
        record(dst, src, "copied")

    lsoa11 = set()
    for f in (OUT / "boundaries" / "lsoa2011").glob("*.json"):
        lsoa11 |= set(gpd.read_file(f)["LSOA11CD"])
    dz01 = set(gpd.read_parquet(OUT / "boundaries" / "datazone2001.parquet")["DZ_CODE"])
    lookups = shared / "lookups"
    lsoa21 = column_values(lookups / "lsoa11_lsoa21_ew.csv", "LSOA21CD", "LSOA11CD", lsoa11)
    lsoa01 = column_values(lookups / "lsoa01_lsoa11_ew.csv", "LSOA01CD", "LSOA11CD", lsoa11)
    dz11 = column_values(lookups / "dz01_dz11.csv", "dz11_code", "dz01_code", dz01)
    print(f"LSOA 2001/2011/2021: {len(lsoa01):,}/{len(lsoa11):,}/{len(lsoa21):,}; "
          f"DZ 2001/2011: {len(dz01):,}/{len(dz11):,}")

    # One-file national layers are cut to the bundle's areas and stored as GeoParquet, which
    # also exercises that reader (geometry and attributes unchanged).
    for src_name, code_col, keep, dst_name in (
        ("lsoa21_ew.geojson", "lsoa21_code", lsoa21, "lsoa2021.parquet"),
        ("dz11_scotland.geojson", "dz11_code", dz11, "datazone2011.parquet"),
    ):
        src = shared / "boundaries" / src_name
        frame = gpd.read_file(src)
        frame = frame[frame[code_col].isin(keep)]
        dst = OUT / "boundaries" / dst_name
        frame.to_parquet(dst, compression="zstd", index=False)
        record(dst, src, f"rows whose {code_col} is in the bundle, as GeoParquet")
        print(f"  {dst.relative_to(ROOT)}: {len(frame):,} areas")

    # -- lookups, cut line by line ------------------------------------------------------------
    def cut(sub: str, name: str, column: str, keep: set[str]) -> set[str]:
        src = shared / sub / name
        dst = OUT / sub / name
        columns = spec_columns(name) if sub == "indicators" else None
        kept = filter_csv(src, dst, column, keep, columns)
        how = f"lines whose {column} is in the bundle"
        if columns is not None:
            how += "; only the columns its spec reads"
        record(dst, src, how)
        return kept

    cut("lookups", "lsoa01_lsoa11_ew.csv", "LSOA11CD", lsoa11)
    cut("lookups", "lsoa11_lsoa21_ew.csv", "LSOA11CD", lsoa11)
    cut("lookups", "dz01_dz11.csv", "dz01_code", dz01)
    cut("lookups", "dz11_iz11_lad20_scotland.csv", "dz11_code", dz11)
    cut("lookups", "lsoa11_ward19_lad19_ew.csv", "LSOA11CD", lsoa11)
    # whole (0.9 MB): the survey estimates' regions (North East, ...) are made of every district
    # of the region, and a district's region is read from its wards here
    src = lookups / "ward19_lad19_rgn19.csv"
    copy(src, OUT / "lookups" / src.name)
    record(OUT / "lookups" / src.name, src, "copied")
    ward11 = column_values(lookups / "lsoa01_ward11_ew.csv", "WD11CD", "LSOA01CD", lsoa01)
    cut("lookups", "lsoa01_ward11_ew.csv", "LSOA01CD", lsoa01)
    cut("lookups", "ward11_lad11_ew.csv", "WD11CD", ward11)
    src = lookups / "lad_changes_2014_2025.csv"
    copy(src, OUT / "lookups" / src.name)
    record(OUT / "lookups" / src.name, src, "copied")

    # -- indicators ---------------------------------------------------------------------------
    cut("indicators", "imd2010_england_lsoa01.csv", "lsoa01_code", lsoa01)
    cut("indicators", "imd2019_england_lsoa11.csv", "lsoa11_code", lsoa11)
    cut("indicators", "imd2019_england_lsoa11_indicators.csv", "lsoa11_code", lsoa11)
    cut("indicators", "imd2025_england_lsoa21.csv", "lsoa21_code", lsoa21)
    cut("indicators", "imd2025_england_lsoa21_indicators.csv", "lsoa21_code", lsoa21)
    cut("indicators", "wimd2019_wales_lsoa11.csv", "lsoa11_code", lsoa11)
    cut("indicators", "simd2012_scotland_dz01_indicators.csv", "dz01_code", dz01)
    cut("indicators", "simd2016_scotland_dz11_indicators.csv", "dz11_code", dz11)
    cut("indicators", "simd2020_scotland_dz11_indicators.csv", "dz11_code", dz11)
    cut("indicators", "population2019_lsoa11_ew.csv", "lsoa11_code", lsoa11)
    cut("indicators", "population2020_dz11_scotland.csv", "dz11_code", dz11)
    dst = OUT / "indicators" / "population2020_dz11_scotland.csv"
    # one line per sex category: only "All" is used, and the real file's layout is kept
    filter_csv(dst, dst, "sex", {"All"})
    for name in ("out_of_work_benefits_wpc10_2010q2_2012q1.csv", "population_wpc10_2002_2010.csv"):
        src = shared / "indicators" / name
        copy(src, OUT / "indicators" / name)
        record(OUT / "indicators" / name, src, "copied")
    # the Annual Population Survey as Nomis gives it, whole (every GB district in 2019; 72
    # northern districts' rolling years 2004-2023), read with no spec (geo_cs.ingest.survey)
    for name in SURVEY_FILES:
        src = shared / "indicators" / name
        copy(src, OUT / "indicators" / name)
        record(OUT / "indicators" / name, src, "copied")
    north = column_values(shared / "indicators" / SURVEY_FILES[1], "geography_code",
                          "measures_name", {"Variable"})
    src, dst = shared / "boundaries" / DISTRICTS_ALL_YEARS, OUT / "boundaries" / NORTH_DISTRICTS
    kept = cut_topojson(src, dst, "ltla", "areacd", north)
    record(dst, src, f"the ltla object's {kept} districts of {SURVEY_FILES[1]} only, with the arcs "
                     "they use (renumbered; coordinates, properties and transform unchanged)")
    print(f"  {dst.relative_to(ROOT)}: {kept} districts, {dst.stat().st_size / 1e3:.0f} kB")
    synthetic_monthly(quarterly, OUT / "indicators" / SYNTHETIC_MONTHLY)
    record(OUT / "indicators" / SYNTHETIC_MONTHLY, quarterly, SYNTHETIC_HOW)

    dst = OUT / "partnerships" / partnerships_src.name
    copy(partnerships_src, dst)
    record(dst, partnerships_src, "copied")

    write_manifest(ew, scot)
    upstream = {}
    with open(shared / "PROVENANCE.tsv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            upstream[row["file"]] = (row["source_repo"], row["commit"], row["source_path"])
    with open(OUT / "PROVENANCE.tsv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["file", "from_shared_file", "how", "source_repo", "commit", "source_path"])
        for file, src_rel, how in sorted(provenance):
            writer.writerow([file, src_rel, how, *upstream.get(src_rel, ("", "", ""))])
    (OUT / "ATTRIBUTION.txt").write_text(ATTRIBUTION + "\n", encoding="utf-8")
    licence = shared / "boundaries" / "LICENCE-martinjc.txt"
    if licence.exists():
        copy(licence, OUT / "boundaries" / licence.name)
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"bundle: {size / 1e6:.1f} MB in {OUT.relative_to(ROOT)}")


def write_manifest(ew: list[str], scot: list[str]) -> None:
    steps = [
        ("boundaries", "paths = [\"boundaries/lsoa2011\"]"),
        ("boundaries", "paths = [\"boundaries/lsoa2021.parquet\"]"),
        ("boundaries", "paths = [\"boundaries/datazone2001.parquet\"]"),
        ("boundaries", "paths = [\"boundaries/datazone2011.parquet\"]"),
        ("boundaries", "paths = [\"boundaries/ward2013\"]"),
        ("boundaries", "paths = [\"boundaries/lad13_gb.topojson\"]"),
        ("boundaries", "paths = [\"boundaries/wpc_eng.topojson\", \"boundaries/wpc_wal.topojson\", "
                       "\"boundaries/wpc_sco.topojson\"]"),
    ]
    for name in ("lsoa01_lsoa11_ew.csv", "lsoa11_lsoa21_ew.csv", "dz01_dz11.csv",
                 "dz11_iz11_lad20_scotland.csv", "lsoa11_ward19_lad19_ew.csv", "ward19_lad19_rgn19.csv",
                 "lsoa01_ward11_ew.csv", "ward11_lad11_ew.csv", "lad_changes_2014_2025.csv"):
        steps.append(("lookup", f'path = "lookups/{name}"'))
    # after the district changes lookup, so a district recoded by then is stored under its code
    # of that year (Glasgow City S12000046 -> S12000049)
    for set_id, year, file_name in SURVEY_DISTRICT_SETS:
        steps.append(("boundaries", f'paths = ["boundaries/{file_name}"]\n'
                                    f'layer = "ltla"\nset = "{set_id}"\ncode_col = "areacd"\n'
                                    f'name_col = "areanm"\nalive_in = {year}'))
    for name in ("imd2010_england_lsoa01.csv", "imd2019_england_lsoa11.csv",
                 "imd2019_england_lsoa11_indicators.csv", "imd2025_england_lsoa21.csv",
                 "imd2025_england_lsoa21_indicators.csv", "wimd2019_wales_lsoa11.csv",
                 "simd2012_scotland_dz01_indicators.csv", "simd2016_scotland_dz11_indicators.csv",
                 "simd2020_scotland_dz11_indicators.csv", "population2019_lsoa11_ew.csv",
                 "population2020_dz11_scotland.csv", "out_of_work_benefits_wpc10_2010q2_2012q1.csv",
                 "population_wpc10_2002_2010.csv", SYNTHETIC_MONTHLY, *SURVEY_FILES):
        # the survey files after the lookups: their district edition is decided from the code
        # history (lad_changes_2014_2025.csv)
        steps.append(("indicator", f'path = "indicators/{name}"'))
    # Series across boundary changes, so the web map's period slider has more than one edition:
    # SIMD 2012 carried from 2001 onto 2011 data zones, IMD 2025 from LSOA 2021 onto LSOA 2011.
    steps += [
        ("crosswalk", 'from = "datazone2001"\nto = "datazone2011"'),
        ("harmonise", 'indicator = "simd2012.employment_deprived"\nto = "datazone2011"'),
        ("harmonise", 'indicator = "simd2012.working_age_population"\nto = "datazone2011"'),
        ("crosswalk", 'from = "lsoa2021"\nto = "lsoa2011"\n'
                      'population = "population2019_lsoa11.working_age_population"'),
        ("harmonise", 'indicator = "imd2025_indicators.employment_deprived"\nto = "lsoa2011"'),
    ]
    lines = [
        "# The demo bundle's ingest steps, run in order by `geo-cs demo` (geo_cs/demo.py).",
        "# Written by scripts/build_demo_bundle.py; indicator specs are found by file name.",
        "[bundle]",
        'title = "geo-cs demo: the City Strategy and DAF partnership areas (real data)"',
        f'attribution = "{ATTRIBUTION}"',
        f"districts_england_wales = {len(ew)}",
        f"councils_scotland = {len(scot)}",
        "",
    ]
    for kind, body in steps:
        lines += ["[[steps]]", f'kind = "{kind}"', body, ""]
    (OUT / "manifest.toml").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
