"""Writing tidy tables: Arrow IPC, Parquet, CSV or JSON, chosen by the file's extension."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from geo_cs.errors import InputError
from geo_cs.spreadsheet import write_csv

FORMATS = {".csv": "CSV", ".parquet": "Parquet", ".arrow": "Arrow IPC", ".feather": "Arrow IPC",
           ".json": "JSON (records)"}


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` in the format its extension names; return the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"--out {path}: unknown format {suffix!r}; use one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        write_csv(frame, path)   # text cells that a spreadsheet would run are neutralised
    elif suffix == ".json":
        frame.to_json(path, orient="records", indent=1, date_format="iso")
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if suffix == ".parquet":
            pq.write_table(table, path)
        else:
            feather.write_feather(table, path)
    return path
