"""Ingest of official geography lookups (ONS/NRS CSVs), recognised by their header.

LSOA 2001→2011 and 2011→2021 with change indicators (U unchanged, S split, M merged,
X irregular), Data Zone 2001↔2011 pairs, LSOA→ward→district, and district changes. The codes on
both sides are registered in the store (without geometry where no boundaries are loaded), so
indicators on, say, LSOA 2001 can be checked against the codes that exist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from geo_cs.district_codes import refresh_code_history
from geo_cs.errors import InputError
from geo_cs.geography import LookupFormat, is_listed, registry
from geo_cs.ingest.csvfile import file_row, read_csv_text, recoding_note
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store

CHANGE_INDICATORS = {"U", "S", "M", "X"}


@dataclass
class LookupReport:
    lookup_id: str
    source: str
    rows_read: int = 0
    links: dict[str, int] = field(default_factory=dict)          # "from->to" -> link count
    change_indicators: dict[str, int] = field(default_factory=dict)
    codes_registered: dict[str, int] = field(default_factory=dict)  # set -> new codes
    without_target: dict[str, int] = field(default_factory=dict)    # optional links left empty
    recoded_lines: int = 0
    ingest_id: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"{self.lookup_id}: {self.rows_read:,} rows read from {self.source}"]
        for pair, count in self.links.items():
            out.append(f"  {pair}: {count:,} links")
            if self.without_target.get(pair):
                out.append(f"    {self.without_target[pair]:,} rows have no target code (allowed)")
        if self.change_indicators:
            detail = ", ".join(f"{k} {v:,}" for k, v in sorted(self.change_indicators.items()))
            out.append(f"  change indicators: {detail}")
        for set_id, count in self.codes_registered.items():
            if count:
                out.append(f"  {count:,} {set_id} codes registered without boundaries")
        if note := recoding_note(self.recoded_lines):
            out.append(f"  {note}")
        return out


GSS_CODE = r"^[EWSNK]\d{8}$"


def _require_codes(frame: pd.DataFrame, column: str, path: Path) -> None:
    """Every cell of ``column`` is a GSS code (a typo must not become an area)."""
    codes = frame[column].str.strip()
    bad = (codes != "") & ~codes.str.match(GSS_CODE)
    if bad.any():
        position = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{path}, row {file_row(frame.index[position])}, column {column!r}: "
            f"{frame[column].iloc[position]!r} is not a GSS code (a letter and 8 digits)"
        )
    blank = codes == ""
    if blank.any():
        position = int(blank.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{path}, row {file_row(frame.index[position])}, column {column!r}: empty code"
        )


def _require_listed(frame: pd.DataFrame, column: str, set_id: str, path: Path) -> None:
    """Every code of ``column`` is on ``set_id``'s official list, when it has one: a lookup of
    another vintage must not register its codes in this one."""
    expected = registry().get(set_id).expected_codes()
    if not expected:
        return
    codes = frame[column].str.strip()
    unlisted = (codes != "").to_numpy() & ~is_listed(codes, expected)
    if unlisted.any():
        position = int(unlisted.nonzero()[0][0])
        code = codes.iloc[position]
        count = codes[unlisted].nunique()
        others = registry().sets_listing(code, besides=set_id)
        hint = f" (a {' / '.join(others)} code: a lookup between other vintages?)" if others else ""
        raise InputError(
            f"{path}, row {file_row(frame.index[position])}, column {column!r}: {code!r} is not on "
            f"the official list of {set_id} codes{hint}; {count:,} code{'s' if count != 1 else ''} "
            "not listed (--allow-unlisted-codes accepts them)"
        )


def detect_format(path: Path, columns: list[str], lookup_id: str | None) -> LookupFormat:
    reg = registry()
    if lookup_id is not None:
        for fmt in reg.lookups:
            if fmt.lookup_id == lookup_id:
                missing = [c for c in fmt.requires if c not in columns]
                if missing:
                    raise InputError(
                        f"{path}: a {lookup_id} lookup needs columns {', '.join(missing)}; "
                        f"the file has {', '.join(columns)}"
                    )
                return fmt
        raise InputError(
            f"unknown lookup kind {lookup_id!r}; known: {', '.join(f.lookup_id for f in reg.lookups)}"
        )
    fmt = reg.lookup_format(columns)
    if fmt is None:
        known = "; ".join(f"{f.lookup_id} ({', '.join(f.requires)})" for f in reg.lookups)
        raise InputError(
            f"{path}: not a lookup layout geo-cs knows; its columns are {', '.join(columns)}. "
            f"Known layouts: {known}"
        )
    return fmt


def ingest_lookup(
    store: Store,
    path: str | Path,
    *,
    lookup_id: str | None = None,
    allow_unlisted: bool = False,
    progress: Progress | None = None,
    refresh_codes: bool = True,
) -> LookupReport:
    """Read one lookup CSV and store its links as one transaction (replacing an earlier copy).

    A code missing from its set's official list is refused unless ``allow_unlisted``. The
    district code-history registry is rebuilt in the same transaction unless ``refresh_codes``
    is false (a caller ingesting many lookups rebuilds it once at the end)."""
    progress = progress or SilentProgress()
    path = Path(path)
    frame = read_csv_text(path)
    columns = list(frame.columns)
    fmt = detect_format(path, columns, lookup_id)
    report = LookupReport(lookup_id=fmt.lookup_id, source=str(path), rows_read=len(frame),
                          recoded_lines=frame.attrs["recoded_lines"])

    link_tables: list[pd.DataFrame] = []
    names: dict[str, pd.DataFrame] = {}
    for link in fmt.links:
        rows = frame
        _require_codes(rows, link.from_col, path)
        if link.optional:
            has_target = rows[link.to_col].str.strip() != ""
            report.without_target[f"{link.from_set}->{link.to_set}"] = int((~has_target).sum())
            rows = rows[has_target]
        else:
            _require_codes(rows, link.to_col, path)
        change = rows[link.change_col].str.strip().str.upper() if link.change_col else None
        if change is not None:
            bad = ~change.isin(CHANGE_INDICATORS)
            if bad.any():
                position = int(bad.to_numpy().nonzero()[0][0])
                raise InputError(
                    f"{path}, row {file_row(rows.index[position])}, column {link.change_col!r}: "
                    f"change indicator {rows[link.change_col].iloc[position]!r}, "
                    "expected one of U, S, M, X"
                )
            report.change_indicators = change.value_counts().to_dict()
        links = pd.DataFrame(
            {
                "from_code": rows[link.from_col].str.strip(),
                "to_code": rows[link.to_col].str.strip(),
                "change_ind": change if change is not None else None,
            }
        ).drop_duplicates()
        links.insert(0, "to_set", link.to_set)
        links.insert(0, "from_set", link.from_set)
        link_tables.append(links)
        report.links[f"{link.from_set}->{link.to_set}"] = len(links)
        for set_id, code_col, name_col in (
            (link.from_set, link.from_col, link.from_name),
            (link.to_set, link.to_col, link.to_name),
        ):
            if not allow_unlisted:
                _require_listed(rows, code_col, set_id, path)
            named = pd.DataFrame(
                {"code": rows[code_col].str.strip(),
                 "name": rows[name_col].str.strip() if name_col else None}
            ).drop_duplicates("code")
            if set_id in names:
                named = pd.concat([names[set_id], named]).drop_duplicates("code")
            names[set_id] = named

    if fmt.district_changes:
        spec = fmt.district_changes
        _require_codes(frame, spec["old_col"], path)
        years = pd.to_numeric(frame[spec["year_col"]], errors="coerce")
        if years.isna().any():
            index = int(years.isna().to_numpy().nonzero()[0][0])
            raise InputError(
                f"{path}, row {file_row(index)}, column {spec['year_col']!r}: "
                f"{frame[spec['year_col']].iloc[index]!r} is not a year"
            )
        changes = pd.DataFrame(
            {
                "from_set": "lad",
                "to_set": "lad",
                "from_code": frame[spec["old_col"]].str.strip(),
                "to_code": frame[spec["new_col"]].str.strip().replace("", None),
                "change_ind": frame[spec["type_col"]].str.strip(),
                "change_year": years.astype("int32"),
            }
        )
        link_tables.append(changes)
        report.links["lad->lad (changes)"] = len(changes)
        report.change_indicators = changes["change_ind"].value_counts().to_dict()

    all_links = pd.concat(link_tables, ignore_index=True)
    if "change_year" not in all_links:
        all_links["change_year"] = None
    all_links = all_links.astype({"change_year": "Int32"})

    progress.note(f"writing {len(all_links):,} links")
    reg = registry()
    with store.transaction():
        ingest_id = store.start_ingest("lookup", [str(path)])
        store.sql("DELETE FROM lookup_links WHERE lookup_id = ?", [fmt.lookup_id])
        table = pa.Table.from_pandas(
            all_links[["from_set", "from_code", "to_set", "to_code", "change_ind", "change_year"]],
            preserve_index=False,
        )
        store.con.register("new_links", table)
        try:
            store.sql(
                "INSERT INTO lookup_links SELECT ?, from_set, from_code, to_set, to_code, "
                "change_ind, change_year, ? FROM new_links",
                [fmt.lookup_id, ingest_id],
            )
        finally:
            store.con.unregister("new_links")
        for set_id, named in names.items():
            report.codes_registered[set_id] = store.register_codes(
                reg.get(set_id), named["code"].tolist(), named["name"].tolist(), str(path), ingest_id
            )
        report.ingest_id = ingest_id
        if refresh_codes:
            progress.note("rebuilding the district code history")
            refresh_code_history(store)
        store.finish_ingest(ingest_id, report.to_dict())
    return report
