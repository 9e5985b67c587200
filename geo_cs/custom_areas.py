"""Custom areas: an estate, a regeneration zone, a Jobcentre catchment, made of small areas.

A custom area is a set of small areas of one boundary set (data zones, LSOAs), a name, and
optionally the partnership it was made in. It lives entirely in its id — no state is kept on
the server, so a link to it can be emailed — and every route that takes a partnership id
takes it: ``get_partnerships(["area-…"])`` decodes it into a
:class:`geo_cs.partnerships.Partnership` whose members are the small areas themselves.

The id is ``area-`` and a base64url token of a small binary record (version 1)::

    version (1) · flags (bit 0: compare with the rest of the surrounding partnership)
    · set id · name (UTF-8) · surrounding partnership id      (each: a length, then bytes)
    · the number of code prefixes, then per prefix (``S01``, ``E01``, ``W01``):
      the prefix, the number of runs, and per run the step from the end of the previous run
      and the run's length less one (unsigned LEB128 integers)

Codes of a neighbourhood are numbered along the council's areas, so an estate picked on the
map is a few runs of consecutive codes: 40 Glasgow data zones take about 60 characters.
``maps/static/geo-cs/map.js`` (``encodeArea``) writes the same token in the browser; a test
checks both give the same id for the same area.

Example
-------
>>> area = CustomArea("datazone2011", ("S01010206", "S01010207", "S01010208", "S01010300"),
...                   name="Govan estate", within="glasgow")
>>> token = area_id(area.set_id, area.codes, name=area.name, within=area.within)
>>> token
'area-AQAMZGF0YXpvbmUyMDExDEdvdmFuIGVzdGF0ZQdnbGFzZ293AVMwMQLeTwJbAA'
>>> parse_area_id(token) == area
True
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from geo_cs.errors import InputError

PREFIX = "area-"
GSS = re.compile(r"^[EWSN]\d{8}$")
#: More small areas than a custom area is made of (Glasgow has 746 data zones, Birmingham 639
#: LSOAs): a bound on what one address can ask the server to sum.
MAX_CODES = 5000
#: An id's longest: its address (and a download's, which repeats it in the query) stays within
#: the service's 8 KB URL limit. 40 picked data zones take about 60 characters, all 746 of
#: Glasgow 55; an area too scattered for this is given to the CLI as a file (``--area-file``).
MAX_ID_LENGTH = 3000
#: A partnership id in an address: a registry id, or a custom area's.
PARTNERSHIP_ID_PATTERN = (rf"^(?:[A-Za-z0-9_\-]{{1,64}}"
                          rf"|{PREFIX}[A-Za-z0-9_\-]{{1,{MAX_ID_LENGTH - len(PREFIX)}}})$")
MAX_NAME_LENGTH = 80
VERSION = 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ID_TEXT = re.compile(r"^[A-Za-z0-9_\-]{0,64}$")
#: Column names under which GIS tools and the ONS write small-area codes (a CSV's code column).
CODE_COLUMNS = ("code", "area_code", "lsoa11cd", "lsoa21cd", "lsoa01cd", "datazone", "datazone2011",
                "dz11_code", "dzcode", "data_zone", "datazone_code", "geography code", "geography_code",
                "areacode", "gss_code", "ons_code")


@dataclass(frozen=True)
class CustomArea:
    """A set of small areas of ``set_id`` (sorted, unique), a name, and the partnership it was
    made in (``within``), whose other areas it may be compared with (``against_within``)."""

    set_id: str
    codes: tuple[str, ...]
    name: str = ""
    within: str = ""
    against_within: bool = False

    @property
    def id(self) -> str:
        return area_id(self.set_id, self.codes, name=self.name, within=self.within,
                       against_within=self.against_within)


def is_area_id(text: str) -> bool:
    """Whether ``text`` names a custom area rather than a partnership of the registry."""
    return text.startswith(PREFIX)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _varint(len(raw)) + raw


def _checked_codes(codes: Iterable[str]) -> tuple[str, ...]:
    cleaned = sorted({str(c).strip().upper() for c in codes if str(c).strip()})
    bad = [c for c in cleaned if not GSS.match(c)]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise InputError(f"custom area: {shown} is not a small-area code (a letter and 8 digits, "
                         "e.g. S01010206 or E01000001)")
    if not cleaned:
        raise InputError("custom area: no small-area codes; pick at least one area")
    if len(cleaned) > MAX_CODES:
        raise InputError(f"custom area: {len(cleaned):,} areas; at most {MAX_CODES:,}")
    return tuple(cleaned)


def _checked_name(name: str | None) -> str:
    name = _CONTROL.sub(" ", name or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"custom area: the name is {len(name)} characters; at most {MAX_NAME_LENGTH}")
    return name


def area_id(set_id: str, codes: Iterable[str], *, name: str | None = None, within: str | None = None,
            against_within: bool = False) -> str:
    """The id of the custom area made of ``codes`` of ``set_id`` (order and repeats ignored).

    >>> area_id("lsoa2011", ["E01000002", "E01000001"]) == area_id("lsoa2011", ["E01000001", "E01000002"])
    True
    """
    if not _ID_TEXT.match(set_id) or not set_id:
        raise InputError(f"custom area: {set_id!r} is not a boundary set id")
    within = within or ""
    if within and (not _ID_TEXT.match(within) or is_area_id(within)):
        raise InputError(f"custom area: {within!r} is not a partnership id")
    if against_within and not within:
        raise InputError("custom area: it can be compared with its surrounding partnership only "
                         "when it names one")
    codes = _checked_codes(codes)
    by_prefix: dict[str, list[int]] = {}
    for code in codes:
        by_prefix.setdefault(code[:3], []).append(int(code[3:]))
    out = bytearray([VERSION, 1 if against_within else 0])
    out += _text(set_id) + _text(_checked_name(name)) + _text(within)
    out += _varint(len(by_prefix))
    for prefix, numbers in by_prefix.items():
        runs: list[tuple[int, int]] = []
        for n in numbers:                    # sorted, unique
            if runs and n == runs[-1][0] + runs[-1][1]:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((n, 1))
        out += prefix.encode("ascii") + _varint(len(runs))
        end = 0
        for start, length in runs:
            out += _varint(start - end) + _varint(length - 1)
            end = start + length
    text = PREFIX + base64.urlsafe_b64encode(bytes(out)).decode("ascii").rstrip("=")
    if len(text) > MAX_ID_LENGTH:
        raise InputError(f"custom area: {len(codes):,} areas this scattered make an id of {len(text):,} "
                         f"characters; a link holds at most {MAX_ID_LENGTH:,} (give its codes to the CLI "
                         "with --area-file, or pick fewer areas)")
    return text


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise ValueError("it ends early")
        self.at += 1
        return self.data[self.at - 1]

    def varint(self) -> int:
        n, shift = 0, 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 35:
                raise ValueError("a number in it is too long")

    def text(self, limit: int) -> str:
        length = self.varint()
        if length > limit or self.at + length > len(self.data):
            raise ValueError("a text in it is too long")
        raw = self.data[self.at:self.at + length]
        self.at += length
        return raw.decode("utf-8")


def parse_area_id(text: str) -> CustomArea:
    """The custom area an id stands for; a damaged or edited id is refused in words (an
    address cut short in an email, a code that is not one)."""
    if not is_area_id(text):
        raise InputError(f"{text[:40]!r} is not a custom area (its id starts with {PREFIX!r})")
    if len(text) > MAX_ID_LENGTH:
        raise InputError(f"custom area: the id is {len(text):,} characters; at most {MAX_ID_LENGTH:,} "
                         "(too scattered an area for a link: give its codes to the CLI with --area-file)")
    token = text[len(PREFIX):]
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        reader = _Reader(data)
        version = reader.byte()
        if version != VERSION:
            raise ValueError(f"it is of version {version}, not {VERSION}")
        flags = reader.byte()
        set_id, name, within = reader.text(64), reader.text(4 * MAX_NAME_LENGTH), reader.text(64)
        codes: list[str] = []
        for _ in range(reader.varint()):
            prefix = bytes(reader.byte() for _ in range(3)).decode("ascii")
            end = 0
            for _ in range(reader.varint()):
                start = end + reader.varint()
                length = reader.varint() + 1
                if len(codes) + length > MAX_CODES:
                    raise ValueError(f"it holds more than {MAX_CODES:,} areas")
                codes += [f"{prefix}{n:06d}" for n in range(start, start + length)]
                end = start + length
        if reader.at != len(data):
            raise ValueError("there is more after its last area")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InputError(f"custom area: the id is damaged ({exc}); copy the whole link again") from exc
    area = CustomArea(set_id, _checked_codes(codes), _checked_name(name), within, bool(flags & 1))
    if area.id != text:
        # one area, one id: an edited token that decodes (unsorted runs, a spare flag bit) would
        # otherwise be a second address, and a second cache entry, for the same figures
        raise InputError("custom area: the id is damaged (it is not written as geo-cs writes it); "
                         "copy the whole link again")
    return area


def file_stem(partnership: str) -> str:
    """What files of ``partnership`` are named: its id, or for a custom area its name and a
    short digest of its id (an id may be thousands of characters; two areas of one name differ).

    >>> file_stem("glasgow")
    'glasgow'
    >>> file_stem(area_id("datazone2011", ["S01010206"], name="Govan estate"))
    'govan-estate-854c07'
    """
    if not is_area_id(partnership):
        return partnership
    name = parse_area_id(partnership).name or "custom-area"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "custom-area"
    return f"{slug}-{hashlib.sha256(partnership.encode()).hexdigest()[:6]}"


# -- files: a list of codes as any GIS exports it, or a partnership file -----------------------

def codes_from_text(text: str, *, source: str = "the list") -> list[str]:
    """The small-area codes in a pasted list or a CSV: the code column of a CSV with a header
    (a column named as :data:`CODE_COLUMNS`, or the one whose every value is a code), else every
    code in the text. Codes are returned in the order found, without repeats.

    >>> codes_from_text("LSOA11CD,LSOA11NM\\nE01000001,City of London 001A\\nE01000002,City of London 001B")
    ['E01000001', 'E01000002']
    >>> codes_from_text("S01010206 S01010207, s01010300")
    ['S01010206', 'S01010207', 'S01010300']
    """
    text = text.lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text))) if "," in text or "\t" in text else []
    if len(rows) > 1 and rows[0]:
        header = [h.strip().lower() for h in rows[0]]
        body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
        column = next((header.index(h) for h in CODE_COLUMNS if h in header), None)
        if column is None:
            columns = [i for i in range(len(header))
                       if body and all(i < len(r) and GSS.match(r[i].strip().upper()) for r in body)]
            column = columns[0] if columns else None
        if column is not None:
            found, bad = [], []
            for line, row in enumerate(body, start=2):
                value = row[column].strip().upper() if column < len(row) else ""
                (found if GSS.match(value) else bad).append(value or f"(empty, row {line})")
            if bad:
                raise InputError(f"{source}: column {rows[0][column]!r} holds {bad[0]!r}, which is "
                                 "not a small-area code (a letter and 8 digits)")
            return list(dict.fromkeys(found))
    found = [c.upper() for c in re.findall(r"\b[EWSNewsn]\d{8}\b", text)]
    if not found:
        raise InputError(f"{source}: no small-area codes found (codes are a letter and 8 digits, e.g. "
                         "S01010206); give a CSV with a code column or a list of codes")
    return list(dict.fromkeys(found))


def read_area_file(path: Path) -> tuple[list[str], str]:
    """(codes, name) of a CSV or text file of codes; the name is the file's stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text file in UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc
    return codes_from_text(text, source=str(path)), path.stem.replace("_", " ").replace("-", " ")
