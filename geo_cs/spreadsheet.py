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

import numpy as np
import pandas as pd

#: What a spreadsheet reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: How every CSV geo-cs writes spells a yes/no cell: as JSON and GeoJSON do (issue 28: the items
#: CSV wrote "True" and the page's table "true"). Spreadsheets read both words as booleans.
TRUE, FALSE = "true", "false"


def neutralise(value: Any) -> Any:
    """``value`` with a leading apostrophe if it is text a spreadsheet would run as a formula;
    a boolean as :data:`TRUE` or :data:`FALSE`, the one form every CSV of geo-cs uses.

    >>> neutralise(True), neutralise(False)
    ('true', 'false')
    """
    if isinstance(value, (bool, np.bool_)):
        return TRUE if value else FALSE
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _is_boolean(column: pd.Series) -> bool:
    """Whether ``column`` holds yes/no values (a bool or nullable boolean dtype, or Python bools)."""
    if pd.api.types.is_bool_dtype(column):
        return True
    if column.dtype != object:
        return False
    present = column.dropna()
    return not present.empty and bool(present.map(lambda v: isinstance(v, (bool, np.bool_))).all())


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell neutralised and every boolean written as true/false (a
    copy; numeric columns untouched)."""
    changed = {}
    for c in frame.columns:
        column = frame[c]
        if _is_boolean(column):
            changed[c] = column.map(lambda v: "" if v is None or v is pd.NA else neutralise(bool(v)),
                                    na_action="ignore").astype(object)
        elif column.dtype == object or pd.api.types.is_string_dtype(column):
            changed[c] = column.map(neutralise)
    return frame.assign(**changed) if changed else frame


def about_columns(frame: pd.DataFrame, about: dict[str, str]) -> pd.DataFrame:
    """``frame`` with ``about`` (source, threshold, baseline, attribution…) as columns of their
    own, the same on every row: the figures keep where they come from and the settings they
    were made with wherever the file is copied, and the file stays one plain table that
    spreadsheets, pandas and GIS tools read with no rows to skip.

    >>> list(about_columns(pd.DataFrame({"gap": [1.0]}), {"source": "SIMD"}).columns)
    ['gap', 'source']
    """
    return frame.assign(**{k: v for k, v in about.items() if k not in frame.columns})


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text (no index), text neutralised and booleans true/false."""
    return safe_frame(frame).to_csv(index=False)


def write_csv(frame: pd.DataFrame, path, about: dict[str, str] | None = None) -> None:
    """``frame.to_csv(path, index=False)`` with its text cells neutralised, booleans as
    true/false and, with ``about``, where its figures come from (:func:`about_columns`)."""
    safe_frame(about_columns(frame, about) if about else frame).to_csv(path, index=False)
