"""CSV that is safe to open in a spreadsheet: no cell from data can become a formula.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@``
(and, in some versions, a tab or carriage return) as a formula, so an area or partnership name
such as ``=HYPERLINK("http://…","click")`` in an ingested file would become a live link — or
worse — in an officer's spreadsheet (OWASP "CSV injection"). Every CSV geo-cs writes passes its
text cells through :func:`neutralise`, which puts an apostrophe in front: spreadsheets show the
text as it was and do not evaluate it. Numbers (a negative rate, a gap of -1.5) are left alone.

>>> neutralise('=HYPERLINK("http://x","y")')
'\\'=HYPERLINK("http://x","y")'
>>> neutralise("-1.5"), neutralise(-1.5), neutralise("Glasgow 001")
('-1.5', -1.5, 'Glasgow 001')
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: What a spreadsheet reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralise(value: Any) -> Any:
    """``value`` with a leading apostrophe if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell neutralised (a copy; numeric columns untouched)."""
    text_columns = [c for c in frame.columns
                    if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    if not text_columns:
        return frame
    return frame.assign(**{c: frame[c].map(neutralise) for c in text_columns})


def write_csv(frame: pd.DataFrame, path) -> None:
    """``frame.to_csv(path, index=False)`` with its text cells neutralised."""
    safe_frame(frame).to_csv(path, index=False)
