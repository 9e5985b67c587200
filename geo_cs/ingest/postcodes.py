"""Postcode districts from a postcode directory (ONSPD, NSPL, or any postcode → area CSV), so the
web map's search finds "G51" or "NG7" offline.

What is kept is small: for each postcode district (the outward code, ``G51`` of ``G51 4TP``) and
each geography set the store holds, which of its areas hold the district's live postcodes and
how many (table ``postcode_districts``). A full directory (2.7 million rows, some 40 columns) is
read by DuckDB straight from the file, never whole into Python.

How the file is read:

- the postcode column is recognised by name (``pcds``, ``pcd``, ``pcd2``, ``pcd7``, ``pcd8``,
  ``postcode``; any case), or given;
- terminated postcodes (a ``doterm`` date) are left out, so a district is where people live
  today; ``--include-terminated`` keeps them;
- area columns are found by their codes, not their names: every column whose first rows hold
  codes of a set the store holds is used, for each set its codes belong to (NSPL's ``lsoa11``
  holds both LSOA 2011 and Data Zone 2011 codes). Codes of sets the store does not hold are
  counted, not refused.

Re-ingesting replaces the districts whole, in one transaction: a failed ingest leaves the store
as it was.

The districts are searched by :func:`geo_cs.places.search_areas`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from geo_cs.errors import InputError, NotFoundError
from geo_cs.ingest.csvfile import read_csv_header
from geo_cs.progress import Progress, SilentProgress
from geo_cs.store import Store

#: Postcode columns of the ONS directories and of hand-made lookups, in order of preference
#: (``pcds`` has the one space of the written form; ``pcd``/``pcd7`` pad the outward code).
POSTCODE_COLUMNS = ("pcds", "pcd", "pcd2", "pcd7", "pcd8", "postcode", "post_code", "postcodes")
#: The directories' date of termination: empty for a live postcode.
TERMINATED_COLUMNS = ("doterm",)
#: Rows looked at to tell which columns hold area codes.
SAMPLE_ROWS = 20_000
@dataclass
class PostcodeReport:
    source: str
    postcode_column: str
    rows_read: int = 0
    postcodes_used: int = 0
    terminated_left_out: int = 0
    not_postcodes: int = 0
    districts: int = 0
    links: dict[str, int] = field(default_factory=dict)          # "column -> set" -> areas linked
    codes_not_held: dict[str, int] = field(default_factory=dict)  # column -> distinct codes unknown
    ingest_id: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"postcodes: {self.rows_read:,} rows read from {self.source} "
               f"(postcodes in column {self.postcode_column!r})",
               f"  {self.postcodes_used:,} live postcodes in areas of this store, in "
               f"{self.districts:,} postcode districts"]
        if self.terminated_left_out:
            out.append(f"  {self.terminated_left_out:,} terminated postcode(s) left out (doterm set)")
        if self.not_postcodes:
            out.append(f"  {self.not_postcodes:,} rows without a valid postcode skipped")
        for link, count in self.links.items():
            out.append(f"  {link}: {count:,} district-area links")
        for column, count in self.codes_not_held.items():
            if count:
                out.append(f"  {column}: {count:,} codes of areas this store does not hold (skipped)")
        return out


def _pick(header: list[str], wanted: tuple[str, ...], given: str | None, path: Path,
          what: str) -> str | None:
    lower = {name.lower(): name for name in header}
    if given is not None:
        if given not in header:
            raise InputError(f"{path}: no column {given!r} for {what}; the header has: "
                             f"{', '.join(header[:40])}")
        return given
    return next((lower[name] for name in wanted if name in lower), None)


# The file, every field as text; ``r`` is the row as a struct, so a column is ``r[$name]`` with
# its name bound as a parameter (names come from the user's file: never SQL text).
_FILE = "read_csv($path, header = true, all_varchar = true) r"


def _area_columns(store: Store, path: Path, candidates: list[str]) -> list[tuple[str, str]]:
    """(column, set_id) pairs: the columns whose first rows hold codes of a held set."""
    store.sql(f"CREATE OR REPLACE TEMP TABLE postcode_sample AS SELECT r FROM {_FILE} LIMIT $rows",
              {"path": str(path), "rows": SAMPLE_ROWS})
    found = []
    for column in candidates:
        sets = store.sql(
            "SELECT DISTINCT a.set_id FROM postcode_sample s JOIN areas a ON a.code = trim(s.r[$column]) "
            "ORDER BY 1", {"column": column}).fetchall()
        found += [(column, set_id) for (set_id,) in sets]
    store.sql("DROP TABLE postcode_sample")
    return found


def ingest_postcodes(
    store: Store, path: str | Path, *, postcode_col: str | None = None,
    include_terminated: bool = False, progress: Progress | None = None,
) -> PostcodeReport:
    """Load the postcode districts of a postcode directory CSV into ``postcode_districts``.

    Raises NotFoundError for a missing file, InputError (naming the file and what was expected)
    for a file with no postcode column or whose columns hold no codes of the store's areas.

    Four postcodes of a directory (a tiny NSPL: the postcode, its date of termination and its
    2013 ward), against Glasgow's wards from the demo bundle:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from geo_cs.config import boundaries_dir
    >>> from geo_cs.ingest import ingest_boundaries
    >>> from geo_cs.places import search_areas
    >>> store = Store.open(":memory:")
    >>> wards = boundaries_dir() / "demo" / "boundaries" / "ward2013" / "S12000046.json"
    >>> _ = ingest_boundaries(store, [wards])
    >>> folder = tempfile.TemporaryDirectory()
    >>> nspl = Path(folder.name) / "NSPL_NOV_2025_UK.csv"
    >>> _ = nspl.write_text("pcds,doterm,osward\\n"
    ...                     "G51 4TP,,S13002645\\nG51 3BA,,S13002645\\nG51 2XX,199906,S13002645\\n"
    ...                     "G41 1AA,,S13002646\\n")
    >>> report = ingest_postcodes(store, nspl)
    >>> print("\\n".join(report.lines()[1:]))
      3 live postcodes in areas of this store, in 2 postcode districts
      1 terminated postcode(s) left out (doterm set)
      osward -> ward2013: 2 district-area links
    >>> search_areas(store, "G51 4TP")[["set_id", "code", "codes"]].values.tolist()
    [['postcode_district', 'G51', ['S13002645']]]
    >>> store.close(); folder.cleanup()
    """
    progress = progress or SilentProgress()
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    header = read_csv_header(path)
    postcode = _pick(header, POSTCODE_COLUMNS, postcode_col, path, "the postcode")
    if postcode is None:
        raise InputError(f"{path}: no postcode column: expected one of {', '.join(POSTCODE_COLUMNS)} "
                         f"(or name it with --postcode-col); the header has: {', '.join(header[:40])}")
    terminated = None if include_terminated else _pick(header, TERMINATED_COLUMNS, None, path, "")
    candidates = [name for name in header if name not in (postcode, terminated)]
    progress.note(f"looking for area codes in the first {SAMPLE_ROWS:,} rows of {path.name}")
    pairs = _area_columns(store, path, candidates)
    columns = sorted({column for column, _ in pairs}, key=header.index)
    if not columns:
        raise InputError(f"{path}: no column holds codes of the areas this store holds (looked at "
                         f"the first {SAMPLE_ROWS:,} rows of {len(candidates)} columns); ingest the "
                         "boundaries first, or check that the file is a postcode directory")
    report = PostcodeReport(source=str(path), postcode_column=postcode)
    params: dict[str, object] = {"path": str(path), "postcode": postcode}
    params.update({f"c{i}": column for i, column in enumerate(columns)})
    if terminated:
        params["terminated"] = terminated
    codes = ", ".join(f"trim(r[$c{i}])" for i in range(len(columns)))   # placeholders only
    with store.transaction():
        ingest_id = store.start_ingest("postcodes", [str(path)])
        progress.note(f"reading {path.name}")
        store.sql(
            "CREATE OR REPLACE TEMP TABLE postcode_rows AS "
            "SELECT upper(replace(trim(r[$postcode]), ' ', '')) AS pc, "
            f"{'nullif(trim(r[$terminated]), $empty)' if terminated else 'NULL'} AS term, "
            f"[{codes}] AS codes FROM {_FILE}",
            params | ({"empty": ""} if terminated else {}))
        report.rows_read, report.terminated_left_out, report.not_postcodes = store.sql(
            "SELECT count(*), count(term), count(*) FILTER (WHERE NOT regexp_full_match(pc, $live)) "
            "FROM postcode_rows", {"live": LIVE_POSTCODE}).fetchone()
        store.sql("DELETE FROM postcode_districts")
        for column, set_id in progress.track(pairs, len(pairs), "linking postcode districts"):
            # RETURNING: the links this column added (not those another column gave the set)
            report.links[f"{column} -> {set_id}"] = len(store.sql(_INSERT_SQL, {
                "i": columns.index(column) + 1, "set_id": set_id, "live": LIVE_POSTCODE,
                "ingest_id": ingest_id}).fetchall())
        for i, column in enumerate(columns, start=1):
            report.codes_not_held[column] = int(store.sql(_NOT_HELD_SQL, {"i": i}).fetchone()[0])
        # postcodes used: live ones in at least one area the store holds
        report.postcodes_used, report.districts = store.sql(
            "SELECT count(*), count(DISTINCT left(pc, length(pc) - 3)) FROM postcode_rows r "
            "WHERE term IS NULL AND regexp_full_match(pc, $live) AND EXISTS "
            "(SELECT 1 FROM areas a WHERE list_contains(r.codes, a.code))",
            {"live": LIVE_POSTCODE}).fetchone()
        store.sql("DROP TABLE postcode_rows")
        report.ingest_id = ingest_id
        store.finish_ingest(ingest_id, report.to_dict())
    return report


#: A postcode written without spaces, as ``postcode_rows`` holds it.
LIVE_POSTCODE = r"[A-Z]{1,2}[0-9][0-9A-Z]?[0-9][A-Z]{2}"

# The districts and the areas of one set their live postcodes are in, from area column $i. Two
# columns may link the same district to the same area (lsoa11 and a ward column do not, but a
# file may repeat a column): the counts are not added twice.
_INSERT_SQL = """
INSERT INTO postcode_districts
SELECT left(r.pc, length(r.pc) - 3) AS district, a.set_id, a.code, count(*) AS postcodes,
       $ingest_id AS ingest_id
FROM postcode_rows r JOIN areas a ON a.code = r.codes[$i] AND a.set_id = $set_id
WHERE r.term IS NULL AND regexp_full_match(r.pc, $live)
GROUP BY ALL
ON CONFLICT DO NOTHING
RETURNING district
"""

# Distinct codes in area column $i that are no area the store holds (another nation's, an older
# edition's, or a pseudo code such as L99999999 for the Channel Islands).
_NOT_HELD_SQL = """
SELECT count(DISTINCT r.codes[$i]) FROM postcode_rows r
WHERE r.codes[$i] IS NOT NULL AND r.codes[$i] <> ''
  AND NOT EXISTS (SELECT 1 FROM areas a WHERE a.code = r.codes[$i])
"""
