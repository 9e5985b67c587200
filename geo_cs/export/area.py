"""The profile of one area — a neighbourhood, a ward or a district — for a council report.

Its series on the partnership's small-area measure (the one the map shows, from
:func:`geo_cs.layers.store_view`), with 95% intervals; its rank in the partnership and in its
nation in every period; its gap with the partnership as a whole; and how its boundary changed
(the crosswalks its figures were carried through, the lookups' change flags, district code
changes). A ward or district is profiled from the small areas whose centre lies in it (or that
the lookups place in it): Σ counts / Σ denominators, as every rate in geo-cs.

On the map the same figures are the area's profile panel (value, rank, gap per period); here they
are gathered from the store and written with :mod:`geo_cs.export.document`.

Example
-------
A data zone of Govan on SIMD 2016 and 2020, from the demo bundle:

>>> import tempfile
>>> import textwrap
>>> from pathlib import Path
>>> from geo_cs import Store
>>> from geo_cs.config import boundaries_dir
>>> from geo_cs.export.document import write_document
>>> from geo_cs.ingest import ingest_boundaries, ingest_indicator, ingest_lookup, load_spec
>>> demo = boundaries_dir() / "demo"
>>> store = Store.open(":memory:")
>>> _ = ingest_boundaries(store, [demo / "boundaries" / "datazone2011.parquet"])
>>> for lookup in ("lad_changes_2014_2025.csv", "dz11_iz11_lad20_scotland.csv"):
...     _ = ingest_lookup(store, demo / "lookups" / lookup)
>>> for edition in ("simd2016", "simd2020"):
...     path = demo / "indicators" / f"{edition}_scotland_dz11_indicators.csv"
...     _ = ingest_indicator(store, path, load_spec(edition))
>>> profile = area_profile(store, "S01009841")
>>> print(textwrap.fill(area_sentence(profile), 96))
In SIMD 2020 (2017 data), Govan and Linthouse - 01 (S01009841) had a rate of 18.9% (95% interval
16.0 to 22.2), 5.6 points above Glasgow as a whole (13.3%). It ranked 232nd of 743 in Glasgow
and 307th of 1,532 in Scotland (1 = the highest rate). Its rate went from 24.4% in SIMD 2016
(2014 data) to 18.9%, and its gap with the partnership from +8.2 to +5.6 points.
>>> folder = tempfile.TemporaryDirectory()
>>> path = write_document(area_document(profile), Path(folder.name) / "S01009841.docx")
>>> path.name, path.stat().st_size > 10_000
('S01009841.docx', True)
>>> store.close(); folder.cleanup()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from matplotlib.figure import FigureBase

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import GeoCsError, InputError, NotFoundError
from geo_cs.export.document import Bullets, Document, FigureBlock, Heading, Paragraph, TableBlock
from geo_cs.store import Store

#: Which boundary sets count as what, in the order a code is looked for.
KINDS = {"datazone2011": "neighbourhood", "lsoa2011": "neighbourhood", "lsoa2021": "neighbourhood",
         "datazone2001": "neighbourhood", "lsoa2001": "neighbourhood",
         "ward2013": "ward", "ward2019": "ward", "ward2011": "ward",
         "lad2013": "district", "lad2022": "district", "lad2020": "district", "lad2019": "district",
         "lad2011": "district"}
NATIONS = {"E": "England", "W": "Wales", "S": "Scotland"}


@dataclass
class AreaProfile:
    code: str
    name: str
    set_id: str
    set_label: str
    kind: str                      # neighbourhood, ward or district
    partnership: str
    partnership_name: str
    measure: str
    small_set: str
    series: pd.DataFrame           # one row per period (see :func:`area_profile`)
    changes: list[str]
    members: int = 1               # small areas it is made of
    membership: str = ""           # how they were found (lookup, point-on-surface)
    notes: list[str] = field(default_factory=list)
    generated: str = field(default_factory=lambda: date.today().isoformat())


def locate(store: Store, code: str) -> tuple[str, str]:
    """(boundary set, name) of an area code: the first of :data:`KINDS` that holds it."""
    found = dict(store.sql("SELECT set_id, coalesce(name, code) FROM areas WHERE code = ?",
                           [code]).fetchall())
    for set_id in KINDS:
        if set_id in found:
            return set_id, found[set_id]
    if found:
        raise InputError(f"--area {code}: a code of {', '.join(sorted(found))}; an area profile is for a "
                         f"neighbourhood, ward or district ({', '.join(KINDS)})")
    raise NotFoundError(f"--area {code}: no area with this code in the store (search by name on the map, "
                        "or geo-cs info for the boundary sets held)")


def _membership(store: Store, small_set: str, set_id: str) -> tuple[pd.DataFrame, str]:
    """code (small area) -> unit (the area of ``set_id`` it is in)."""
    from geo_cs.crosswalk import small_area_membership

    if set_id == small_set:
        codes = store.sql("SELECT code FROM areas WHERE set_id = ?", [set_id]).df()
        return codes.assign(unit=codes["code"]), "itself"
    found, how = small_area_membership(store, small_set, set_id)
    return found.rename(columns={"member": "unit"}), how


def _partnership_for(store: Store, code: str, set_id: str, small_set: str,
                     membership: pd.DataFrame) -> str:
    from geo_cs.layers import store_view
    from geo_cs.partnerships import get_partnerships, resolve

    members = set(membership.loc[membership["unit"] == code, "code"])
    for p in get_partnerships():
        if code[0] not in "".join(p.nations):
            continue
        try:
            if store_view(store, p.id)[0] != small_set:
                continue
            if members & set(resolve(store, p, small_set).codes):
                return p.id
        except GeoCsError:
            continue
    raise NotFoundError(f"--area {code}: in no partnership the store can map on {small_set}; give one "
                        "with --partnership")


def _small_set(code: str, set_id: str) -> str:
    if KINDS.get(set_id) == "neighbourhood":
        return set_id
    return "datazone2011" if code.startswith("S") else "lsoa2011"


def area_profile(store: Store, code: str, *, partnership: str | None = None,
                 disclosure: DisclosureControl | None = None) -> AreaProfile:
    """Gather one area's profile. ``series`` columns: period_id, period_label, rate, rate_low,
    rate_high, partnership_rate, gap, rank_partnership, n_partnership, rank_nation, n_nation,
    nation_rate, estimated_share (rank 1 = the highest rate)."""
    from geo_cs.layers import area_values, resolve_measure, store_view
    from geo_cs.partnerships import get_partnerships, resolve
    from geo_cs.stats import wilson_interval

    code = code.strip()
    set_id, name = locate(store, code)
    kind = KINDS[set_id]
    small_set = _small_set(code, set_id)
    membership, how = _membership(store, small_set, set_id)
    if code not in set(membership["unit"]):
        raise NotFoundError(f"--area {code}: no {small_set} area is placed in it, so it has no figures")
    partnership = partnership or _partnership_for(store, code, set_id, small_set, membership)
    found = get_partnerships([partnership])[0]
    view = store_view(store, partnership)
    if view[0] != small_set:
        view = store_view(store, partnership, small_set)
    measure = resolve_measure(store, *view)
    if not measure.is_rate:
        raise InputError(f"{measure.name} on {small_set} is not a rate: an area profile ranks rates")
    values = area_values(store, measure, disclosure=disclosure)
    frame = values.frame.merge(membership, on="code")
    ok = frame["count"].notna() & (frame["denominator"] > 0)
    if kind == "neighbourhood":
        units = frame.rename(columns={"value": "rate", "value_low": "rate_low", "value_high": "rate_high"})
        units = units[["unit", "period_id", "rate", "rate_low", "rate_high", "estimated_share"]]
    else:
        if not ok.any():
            raise InputError(f"{measure.name} has rates without counts: a {kind} profile needs counts to sum")
        f = frame[ok].assign(weighted=lambda t: t["estimated_share"] * t["count"])
        units = f.groupby(["unit", "period_id"], as_index=False).agg(
            count=("count", "sum"), denominator=("denominator", "sum"), weighted=("weighted", "sum"))
        units["rate"] = 100 * units["count"] / units["denominator"]
        units["rate_low"], units["rate_high"] = wilson_interval(units["count"], units["denominator"])
        units["estimated_share"] = (units["weighted"] / units["count"].where(units["count"] > 0)).fillna(0)
    mine = set(resolve(store, found, small_set).codes)
    # a ward or district is the partnership's as the partnership's definition resolves it, else
    # when most of its small areas are
    try:
        in_partnership = set(resolve(store, found, set_id).codes) if set_id != small_set else mine
    except GeoCsError:
        share = membership.assign(inside=membership["code"].isin(mine)).groupby("unit")["inside"].mean()
        in_partnership = set(share[share >= 0.5].index)
    rows = []
    for period in values.periods.itertuples():
        at = units[(units["period_id"] == period.period_id) & units["rate"].notna()]
        here = at[at["unit"] == code]
        if here.empty:
            continue
        rate = float(here["rate"].iloc[0])
        nation = at[at["unit"].str[0] == code[0]]
        local = at[at["unit"].isin(in_partnership)]
        p_rows = frame[(frame["period_id"] == period.period_id) & frame["code"].isin(mine) & ok]
        p_rate = 100 * p_rows["count"].sum() / p_rows["denominator"].sum() if len(p_rows) else np.nan
        n_rows = frame[(frame["period_id"] == period.period_id) & (frame["code"].str[0] == code[0]) & ok]
        n_rate = 100 * n_rows["count"].sum() / n_rows["denominator"].sum() if len(n_rows) else np.nan
        rows.append({
            "period_id": period.period_id, "period_label": period.period_label, "rate": rate,
            "rate_low": float(here["rate_low"].iloc[0]), "rate_high": float(here["rate_high"].iloc[0]),
            "partnership_rate": p_rate, "gap": rate - p_rate, "nation_rate": n_rate,
            "rank_partnership": int((local["rate"] > rate).sum() + 1), "n_partnership": len(local),
            "rank_nation": int((nation["rate"] > rate).sum() + 1), "n_nation": len(nation),
            "estimated_share": float(here["estimated_share"].iloc[0] or 0),
        })
    if not rows:
        raise NotFoundError(f"--area {code}: {measure.name} has no value for it in any period")
    series = pd.DataFrame(rows)
    missing = [label for pid, label in zip(values.periods["period_id"], values.periods["period_label"],
                                           strict=True) if pid not in set(series["period_id"])]
    label = store.sql("SELECT label FROM geography_sets WHERE set_id = ?", [set_id]).fetchone()
    n_members = int((membership["unit"] == code).sum())
    changes = boundary_changes(store, code, set_id, small_set, series, how, n_members)
    notes = [f"Ranks: 1 is the highest rate; in {NATIONS.get(code[0], code[0])}, among the areas the store "
             "holds (the demo holds only the partnerships' districts)."]
    if missing:
        notes.append(f"No figure for it in {', '.join(missing)} (not published for this area).")
    if disclosure is not None:
        notes.append(disclosure.note)
    return AreaProfile(code, name, set_id, label[0] if label else set_id, kind, partnership,
                       found.phase_at(None).name, measure.label, small_set, series, changes, n_members, how,
                       notes)


def boundary_changes(store: Store, code: str, set_id: str, small_set: str, series: pd.DataFrame,
                     how: str, n_members: int) -> list[str]:
    """How the area's boundary changed, in sentences, from the crosswalks, the lookups' change
    flags and the district code history the store holds."""
    out: list[str] = []
    if set_id != small_set:
        out.append(f"Its figures are summed from the {n_members} {small_set} areas placed in it "
                   f"({'by the official lookups' if how == 'lookup' else 'by where each one’s centre lies'})"
                   ".")
    came = store.sql("SELECT from_set, from_code, weight, link_type, method FROM crosswalks "
                     "WHERE to_set = ? AND to_code = ? ORDER BY weight DESC", [set_id, code]).df()
    if not came.empty:
        parts = ", ".join(f"{r.from_code} ({r.weight:.0%} of it)" for r in came.head(6).itertuples())
        more = f" and {len(came) - 6} more" if len(came) > 6 else ""
        method = came["method"].iloc[0]
        how_split = ("unchanged, one to one" if method == "single" else f"split by {method}")
        out.append(f"Figures published on {came['from_set'].iloc[0]} were carried onto it from "
                   f"{parts}{more}: "
                   f"{how_split} (lookup change flag {', '.join(sorted(set(came['link_type'])))}).")
    went = store.sql("SELECT to_set, to_code, weight, link_type FROM crosswalks WHERE from_set = ? AND "
                     "from_code = ? ORDER BY weight DESC", [set_id, code]).df()
    if not went.empty:
        out.append(f"It was carried onto {went['to_set'].iloc[0]} as "
                   + ", ".join(f"{r.to_code} ({r.weight:.0%})" for r in went.head(6).itertuples()) + ".")
    flags = store.sql("SELECT from_set, from_code, to_set, to_code, change_ind FROM lookup_links WHERE "
                      "(from_code = ? OR to_code = ?) AND change_ind IS NOT NULL AND from_set <> 'lad' "
                      "AND from_set LIKE ? ", [code, code, set_id[:4] + "%"]).df()
    meaning = {"U": "unchanged", "S": "split", "M": "merged", "X": "redrawn"}
    for r in flags.head(6).itertuples():
        out.append(f"Lookup {r.from_set} → {r.to_set}: {r.from_code} → {r.to_code}, "
                   f"{meaning.get(r.change_ind, r.change_ind)} ({r.change_ind}).")
    if KINDS.get(set_id) == "district":
        codes = store.sql("SELECT old_code, old_name, new_code, new_name, kind, year_from, year_to, evidence "
                          "FROM district_code_changes WHERE (old_code = ? OR new_code = ?) AND NOT vetoed",
                          [code, code]).df()
        for r in codes.astype(object).where(codes.notna(), None).itertuples():
            since = f"between {r.year_from} and {r.year_to}" if r.year_from else f"by {r.year_to}"
            out.append(f"District code {r.old_code} ({r.old_name or ''}) became {r.new_code} "
                       f"({r.new_name or r.old_name or ''}) {since}: {r.kind}; evidence: {r.evidence}.")
    estimated = series[series["estimated_share"] > 0]
    for r in estimated.itertuples():
        out.append(f"{r.period_label}: {r.estimated_share:.0%} of its figure was estimated through a "
                   "boundary change (hatched on the map).")
    if not out:
        out.append("The store records no change to its boundary: its figures are as published.")
    return out


def _signed(value: float) -> str:
    return "0.0" if abs(value) < 0.05 else f"{value:+.1f}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def area_sentence(p: AreaProfile) -> str:
    """The area in words: its latest rate, ranks and gap, and the change since the first period."""
    first, last = p.series.iloc[0], p.series.iloc[-1]
    nation = NATIONS.get(p.code[0], "its nation")
    text = (f"In {last['period_label']}, {p.name} ({p.code}) had a rate of {last['rate']:.1f}% (95% interval "
            f"{last['rate_low']:.1f} to {last['rate_high']:.1f}), {abs(last['gap']):.1f} points "
            f"{'above' if last['gap'] >= 0 else 'below'} {p.partnership_name} as a whole "
            f"({last['partnership_rate']:.1f}%). It ranked {_ordinal(last['rank_partnership'])} of "
            f"{last['n_partnership']:,} in {p.partnership_name} and {_ordinal(last['rank_nation'])} of "
            f"{last['n_nation']:,} in {nation} (1 = the highest rate).")
    if len(p.series) > 1:
        text += (f" Its rate went from {first['rate']:.1f}% in {first['period_label']} to "
                 f"{last['rate']:.1f}%, and its gap with the partnership from {_signed(first['gap'])} to "
                 f"{_signed(last['gap'])} points.")
    return text


def area_chart(p: AreaProfile, fig: FigureBase | None = None) -> FigureBase:
    """The area's rate with its 95% interval against the partnership's and the nation's."""
    import matplotlib.pyplot as plt

    from geo_cs.export.charts import SERIES_COLOURS, _axes_for_periods, _footer

    fig = fig if fig is not None else plt.figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    s = p.series
    x = range(len(s))
    ax.plot(x, s["rate"], marker="o", color=SERIES_COLOURS[0], label=f"{p.name} ({p.code})")
    ax.fill_between(x, s["rate_low"], s["rate_high"], color=SERIES_COLOURS[0], alpha=0.2, linewidth=0)
    ax.plot(x, s["partnership_rate"], marker="s", color=SERIES_COLOURS[1], label=p.partnership_name)
    ax.plot(x, s["nation_rate"], marker="^", linestyle="--", color=SERIES_COLOURS[2],
            label=f"{NATIONS.get(p.code[0], 'Nation')} (areas held)")
    ax.set_ylabel("Rate (%)")
    ax.set_title(f"{p.name}: {p.measure}", fontsize=10, loc="left")
    ax.legend(fontsize=7, frameon=False)
    _axes_for_periods(ax, s["period_label"].astype(str).tolist())
    _footer(fig)
    return fig


def area_document(p: AreaProfile) -> Document:
    """The area profile's blocks: the area in words, its chart, its series, its boundary."""
    s = p.series
    first, last = s.iloc[0], s.iloc[-1]
    table = pd.DataFrame({
        "Period": s["period_label"], "Rate (%)": s["rate"].map("{:.1f}".format),
        "95% low": s["rate_low"].map("{:.1f}".format), "95% high": s["rate_high"].map("{:.1f}".format),
        f"{p.partnership_name}\n(%)": s["partnership_rate"].map("{:.1f}".format),
        "Gap\n(points)": s["gap"].map(_signed),
        "Rank in\npartnership": [f"{a} of {b}" for a, b in zip(s["rank_partnership"], s["n_partnership"],
                                                             strict=True)],
        f"Rank in\n{NATIONS.get(p.code[0], 'nation')}": [f"{a:,} of {b:,}" for a, b in zip(
            s["rank_nation"], s["n_nation"], strict=True)],
        "Estimated\n(%)": (100 * s["estimated_share"]).map("{:.0f}".format),
    })
    alt = (f"Line chart: {p.name}'s rate went from {first['rate']:.1f}% in {first['period_label']} to "
           f"{last['rate']:.1f}% in {last['period_label']} (95% interval shaded), against "
           f"{p.partnership_name}'s {first['partnership_rate']:.1f}% and {last['partnership_rate']:.1f}% and "
           f"{NATIONS.get(p.code[0], 'the nation')}'s {first['nation_rate']:.1f}% and "
           f"{last['nation_rate']:.1f}% (dashed).")
    what = {"neighbourhood": "Neighbourhood", "ward": "Ward", "district": "District"}[p.kind]
    blocks = [
        Paragraph(area_sentence(p), "lead"),
        Bullets([f"{what} of {p.set_label}; in partnership {p.partnership_name} ({p.partnership}).",
                 f"Measure: {p.measure}, on {p.small_set}"
                 + (f", summed over its {p.members} {p.small_set} areas." if p.kind != "neighbourhood"
                    else "."),
                 *p.notes]),
        FigureBlock(f"{p.name}, {p.partnership_name} and {NATIONS.get(p.code[0], 'the nation')}", alt,
                    lambda fig: area_chart(p, fig), height=3.4, min_height=2.8),
        Heading("Its series, ranks and gap"),
        TableBlock(f"{p.name} ({p.code}) in every period", table),
        Heading("How its boundary changed"),
        Bullets(p.changes),
    ]
    return Document(f"{p.name} ({p.code}): area profile",
                    f"{what} profile in {p.partnership_name}: {p.measure}. Made by geo-cs on {p.generated}.",
                    blocks, footer=f"geo-cs area profile. {OGL_ATTRIBUTION}", generated=p.generated)
