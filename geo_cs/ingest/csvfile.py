"""Reading the CSV files public bodies publish: byte-order marks, Windows encodings, blanks.

Documented repairs (each is counted in the ingest report):

- a UTF-8 byte-order mark (ONS lookups have one) is dropped;
- a file that is not UTF-8 is read line by line: lines that are UTF-8 stay so, the others are
  read as Windows-1252 (what Excel writes on council PCs). A file pasted together from both
  therefore keeps every accent, where reading it whole in either encoding would garble some.

Refused with the file and line named: an empty file, a binary file (a workbook, zip or gzip
file saved with a ``.csv`` name is called what it is; others by their NUL bytes), and a row
whose number of fields differs from the header's — a file cut short mid-record, or an unquoted
thousands separator (``1,200``) that pandas would otherwise silently shift into the next column.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo_cs.config import sniff_binary
from geo_cs.errors import InputError, NotFoundError

#: Row numbers in messages are file line numbers: the header is line 1.
HEADER_LINES = 1

#: Bytes looked at to tell what a binary file given for a CSV is (:func:`geo_cs.config.sniff_binary`).
SNIFF_BYTES = 4096


@dataclass(frozen=True)
class CsvText:
    """A CSV file's text and how it was decoded."""

    path: Path
    text: str
    recoded_lines: int  # lines read as Windows-1252 because they were not UTF-8


def recoding_note(lines: int) -> str | None:
    """The report line for a file that was (partly) read as Windows-1252."""
    if not lines:
        return None
    were = "line was" if lines == 1 else "lines were"
    return f"{lines:,} {were} not UTF-8 and {'was' if lines == 1 else 'were'} read as Windows-1252"


def decode_text(data: bytes) -> tuple[str, int]:
    """``data`` as text, and how many lines had to be read as Windows-1252 (see module doc)."""
    try:
        return data.decode("utf-8-sig"), 0
    except UnicodeDecodeError:
        pass
    parts, recoded = [], 0
    for line in data.splitlines(keepends=True):
        try:
            parts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            # 5 bytes are undefined in Windows-1252; they become U+FFFD, never a crash
            parts.append(line.decode("cp1252", errors="replace"))
            recoded += 1
    return "".join(parts).removeprefix("\ufeff"), recoded


def read_text(path: str | Path) -> CsvText:
    """The decoded text of a CSV file, refusing missing, empty and binary files."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: not a readable CSV file: the file is empty")
    _refuse_binary(path, data)
    text, recoded = decode_text(data)
    return CsvText(path, text, recoded)


def _refuse_binary(path: Path, data: bytes) -> None:
    """Refuse a binary file given for a CSV, saying what it is (a zip archive, a gzip file, an
    Excel workbook…) or, for an unknown one, where its first NUL byte is. ``data`` is the file,
    or its first bytes."""
    sniffed = sniff_binary(data[:SNIFF_BYTES])
    if sniffed is not None:
        raise InputError(f"{path} is {sniffed.what}, not a CSV text file: {sniffed.advice}")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(
            f"{path}, line {line}: not a readable CSV file: it holds NUL bytes (a binary file, "
            "or a UTF-16 export: save it as CSV UTF-8)"
        )


def check_field_counts(source: CsvText, *, skiprows: int = 0) -> None:
    """Every non-blank record has as many fields as the header (see module doc)."""
    reader = csv.reader(io.StringIO(source.text, newline=""))
    try:
        for _ in range(skiprows):
            next(reader, None)
        header = next(reader, None)
        if not header:
            raise InputError(f"{source.path}: not a readable CSV file: no header line")
        ragged = next((record for record in reader
                       if len(record) != len(header) and any(f.strip() for f in record)), None)
    except csv.Error as exc:  # e.g. a quote opened and never closed, in a file cut short
        raise InputError(
            f"{source.path}, line {reader.line_num}: not a readable CSV file: {exc}") from None
    if ragged is None:
        return
    if len(ragged) > len(header):
        why = "an unquoted comma in a value, such as a thousands separator in 1,200?"
    else:
        why = "is the file cut short, or a value missing?"
    raise InputError(
        f"{source.path}, line {reader.line_num}: {len(ragged)} fields where the header has "
        f"{len(header)} ({why})"
    )


def read_csv_text(path: str | Path, *, skiprows: int = 0) -> pd.DataFrame:
    """Read a CSV with every cell as text (no type guessing; blanks stay '').

    ``frame.attrs["recoded_lines"]`` counts the lines read as Windows-1252.
    """
    source = read_text(path)
    check_field_counts(source, skiprows=skiprows)
    try:
        frame = pd.read_csv(io.StringIO(source.text), dtype=str, keep_default_na=False,
                            skiprows=skiprows, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{source.path}: not a readable CSV file: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs["recoded_lines"] = source.recoded_lines
    return frame


def read_csv_rows(path: str | Path) -> tuple[list[list[str]], int]:
    """Every record of a CSV as a list of fields (ragged tables such as Stat-Xplore exports),
    and the number of lines read as Windows-1252."""
    source = read_text(path)
    reader = csv.reader(io.StringIO(source.text, newline=""))
    try:
        return list(reader), source.recoded_lines
    except csv.Error as exc:
        raise InputError(f"{source.path}, line {reader.line_num}: not a readable CSV file: {exc}") from None


def read_csv_header(path: str | Path) -> list[str]:
    """The column names of a CSV, reading only its first line."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
        fh.seek(0)
        first = fh.readline(1 << 20)
    # before parsing: a zip's first "line" is binary, read as a header it gave a newline error
    # or a header of garbage
    _refuse_binary(path, head)
    text, _ = decode_text(first)
    try:
        return [c.strip() for c in next(csv.reader([text.rstrip("\r\n")]), [])]
    except csv.Error as exc:
        raise InputError(f"{path}, line 1: not a readable CSV header: {exc}") from None


def file_row(index: int, skiprows: int = 0) -> int:
    """The file line number of data row ``index`` (0-based), for error messages."""
    return index + HEADER_LINES + 1 + skiprows
