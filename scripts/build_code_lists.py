"""Build the registry's lists of expected codes from the official lookups in ../shared/data.

Each list is every code of a complete boundary set, so an ingest can name the codes it lacks.
Run from the repository root:  python scripts/build_code_lists.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent

# set id -> (lookup file, column)
SOURCES = {
    "lsoa2001": ("lookups/lsoa01_lsoa11_ew.csv", "LSOA01CD"),
    "lsoa2011": ("lookups/lsoa11_lsoa21_ew.csv", "LSOA11CD"),
    "lsoa2021": ("lookups/lsoa11_lsoa21_ew.csv", "LSOA21CD"),
    "datazone2001": ("lookups/dz01_dz11.csv", "dz01_code"),
    "datazone2011": ("lookups/dz01_dz11.csv", "dz11_code"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    out_dir = ROOT / "boundaries" / "registry" / "codes"
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for set_id, (rel, column) in SOURCES.items():
        rel_path = args.shared / rel
        codes = [
            row[0]
            for row in con.execute(
                f'SELECT DISTINCT "{column}" FROM read_csv(?, all_varchar = true) ORDER BY 1',
                [str(rel_path)],
            ).fetchall()
        ]
        target = out_dir / f"{set_id}.txt.gz"
        # mtime=0 keeps the gzip bytes identical between runs, so git sees no spurious change
        with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(("\n".join(codes) + "\n").encode())
        print(f"{set_id}: {len(codes):,} codes -> {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
