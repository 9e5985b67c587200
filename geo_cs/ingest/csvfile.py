"""Reading the CSV files public bodies publish: byte-order marks, Windows encodings, blanks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geo_cs.errors import InputError, NotFoundError

#: Row numbers in messages are file line numbers: the header is line 1.
HEADER_LINES = 1


def read_csv_text(path: str | Path, *, skiprows: int = 0) -> pd.DataFrame:
    """Read a CSV with every cell as text (no type guessing; blanks stay '').

    A UTF-8 byte-order mark (as in ONS lookups) is stripped from the first header; files that
    are not UTF-8 are read as Windows-1252, which is what Excel writes on council PCs.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    last_error: Exception | None = None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, encoding=encoding, skiprows=skiprows
            )
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"{path}: not a readable CSV file: {exc}") from exc
        frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
        return frame
    raise InputError(f"{path}: not readable as UTF-8 or Windows-1252 text: {last_error}")


def file_row(index: int, skiprows: int = 0) -> int:
    """The file line number of data row ``index`` (0-based), for error messages."""
    return index + HEADER_LINES + 1 + skiprows
