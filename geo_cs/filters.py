r"""OGC API - Features Part 3 filters and sorting, as parameterised DuckDB SQL.

A ``filter`` in CQL2 text is parsed by the ``cql2`` library (Rust) into CQL2 JSON, and that
tree is translated here into a ``WHERE`` clause whose values are ``?`` parameters and whose
column names come only from :func:`queryables` (a fixed whitelist): nothing a client writes
is ever spliced into SQL. A tree this module does not know (an operator, a function, a
property, a literal of the wrong type) is an :class:`~geo_cs.errors.InputError` naming it.

Supported: comparisons (``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``), ``AND``, ``OR``, ``NOT``,
``IN``, ``BETWEEN``, ``LIKE`` (``%`` and ``_``, a backslash escapes), ``IS NULL``, ``CASEI``, and the
spatial predicates ``S_INTERSECTS`` (``S_WITHIN``, ``S_CONTAINS``, ``S_DISJOINT``…) of the
``geometry`` property with a ``BBOX(...)`` or a WKT literal in the ``filter-crs``.

Two languages (``filter-lang``): ``cql2-text``, the standard, whose string comparisons and
LIKE respect case (``CASEI`` ignores it); and ``cql-text``, the name GDAL's OAPIF driver (3.2 to
3.6) sends with the part of a ``-where`` it passes on, read as GDAL means that ``-where``
(:data:`GDAL_LANG`): string comparisons (``=``, ``<>``, ``<``… and ``IN``) ignore ASCII case as
OGR SQL's do, LIKE respects case as OGR SQL's does since GDAL 3.1, and ``ILIKE`` ignores ASCII
case. GDAL evaluates a whole ``-where`` itself, over what the server sent, as soon as one part
of it cannot be sent: read any other way, the same condition would select other features
depending on what it is combined with.

A LIKE pattern is matched by an RE2 regular expression (:func:`like_regex`), in time linear in
the string and the pattern, never by DuckDB's LIKE: its matcher backtracks, and
``name LIKE '%_%_%_…'`` (30 pairs) ran past every limit inside one chunk of rows, where the
query timeout cannot interrupt it.

Example
-------
>>> w = translate(parse_text("value > 20 AND name LIKE 'Glas%'"), queryables(True))
>>> print(w.sql)
(((CASE WHEN isfinite(v.value) THEN round(v.value, 4) END) > ?) AND regexp_full_match(a.name, ?))
>>> w.params
(20.0, '(?s)Glas.*')
>>> order_by(parse_sortby("-value,name", queryables(True)))
'(CASE WHEN isfinite(v.value) THEN round(v.value, 4) END) DESC NULLS LAST, a.name ASC NULLS LAST, a.code ASC'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from geo_cs.errors import InputError

#: The filter languages accepted: CQL2 text, and ``cql-text``, its draft name (GDAL 3.6 sends it).
FILTER_LANGS = ("cql2-text", "cql-text")
#: What GDAL's OAPIF driver (3.2-3.6) names the language of the ``filter`` it makes of a
#: ``-where`` (it sends no User-Agent): such a filter is read with OGR SQL's string semantics.
GDAL_LANG = "cql-text"
#: Longest filter text and deepest nesting accepted. The parser is recursive: a few thousand
#: nested parentheses overflow its stack and end the process, so depth is checked first.
MAX_FILTER_CHARS = 6000
MAX_DEPTH = 40
MAX_IN_VALUES = 1000

#: JSON Schema types of the queryables (Part 3 /req/queryables/type).
_STRING, _INTEGER, _NUMBER, _BOOLEAN, _GEOMETRY = "string", "integer", "number", "boolean", "geometry"


@dataclass(frozen=True)
class Queryable:
    """A property a filter or sortby may name: its JSON Schema type and its fixed SQL."""

    name: str
    type: str
    sql: str
    title: str
    description: str = ""

    def schema(self) -> dict:
        """The property's JSON Schema, as /queryables lists it."""
        if self.type == _GEOMETRY:
            return {"title": self.title, "description": self.description,
                    "format": "geometry-multipolygon", "x-ogc-role": "primary-geometry"}
        out: dict[str, Any] = {"title": self.title, "type": self.type}
        if self.description:
            out["description"] = self.description
        return out


def _rounded(column: str) -> str:
    # what a feature shows: four decimals, and nothing for a value that is not finite
    return f"(CASE WHEN isfinite({column}) THEN round({column}, 4) END)"


_BASE = (
    Queryable("code", _STRING, "a.code", "Area code", "GSS or data zone code (unique in the collection)"),
    Queryable("name", _STRING, "a.name", "Area name"),
    Queryable("nation", _STRING, "a.nation", "Nation", "E, W or S"),
    Queryable("geography", _STRING, "a.geography", "Geography", "lsoa, datazone, wpc…"),
    Queryable("vintage", _INTEGER, "a.vintage", "Boundary vintage (year)"),
    Queryable("area_km2", _NUMBER, "round(a.area_m2 / 1e6, 4)", "Area, km²"),
)
_VALUES = (
    Queryable("value", _NUMBER, _rounded("v.value"), "Value", "the indicator's value in the period "
              "(a rate in %, or a count)"),
    Queryable("value_low", _NUMBER, _rounded("v.value_low"), "Lower bound of the 95% interval"),
    Queryable("value_high", _NUMBER, _rounded("v.value_high"), "Upper bound of the 95% interval"),
    Queryable("count", _NUMBER, _rounded("v.count"), "Count"),
    Queryable("denominator", _NUMBER, _rounded("v.denominator"), "Denominator"),
    Queryable("worst", _BOOLEAN, "v.worst", "Worst-performing neighbourhood",
              "in the cohort: baseline rate above the threshold"),
    Queryable("estimated_share", _NUMBER, _rounded("v.estimated_share"),
              "Share of the value estimated through a boundary change (0-1)"),
    Queryable("suppressed", _BOOLEAN, "v.suppressed", "Withheld by disclosure control"),
)
#: The geometry property: its SQL depends on the filter-crs (see :class:`Spatial`).
GEOMETRY = Queryable("geometry", _GEOMETRY, "", "Boundary",
                     "the area's boundary (MultiPolygon); spatial predicates take it")


def queryables(with_values: bool) -> dict[str, Queryable]:
    """The queryables of a collection's items by name: the area's own properties and its
    geometry, and the measure's when the items carry one.

    >>> sorted(queryables(False))
    ['area_km2', 'code', 'geography', 'geometry', 'name', 'nation', 'vintage']
    >>> queryables(True)["worst"].type
    'boolean'
    """
    chosen = _BASE + (_VALUES if with_values else ()) + (GEOMETRY,)
    return {q.name: q for q in chosen}


def queryables_schema(qs: dict[str, Queryable], url: str, title: str) -> dict:
    """The /queryables document: a JSON Schema (2020-12) of the properties a filter may name.

    It also carries ``queryables``, the list form of the Part 3 drafts: GDAL up to 3.6 reads
    only that to decide which parts of a ``-where`` it sends to the server."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url, "type": "object", "title": title,
        "properties": {name: q.schema() for name, q in qs.items()},
        "additionalProperties": False,
        "queryables": [{"id": name, "type": q.type, "title": q.title} for name, q in qs.items()],
    }


# -- parsing ---------------------------------------------------------------------------------

_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def check_shape(text: str) -> None:
    """Refuse a filter too long or too deeply nested to parse safely (before the parser sees it).

    >>> check_shape("((a = 1))")
    >>> check_shape("(" * 50 + "a = 1" + ")" * 50)
    Traceback (most recent call last):
    ...
    geo_cs.errors.InputError: filter: nested 50 deep; at most 40 levels of parentheses
    """
    if len(text) > MAX_FILTER_CHARS:
        raise InputError(f"filter: {len(text):,} characters; at most {MAX_FILTER_CHARS:,}")
    bare = _QUOTED.sub("''", text)          # what is inside strings does not nest
    depth = deepest = 0
    for char in bare:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise InputError(f"filter: nested {deepest} deep; at most {MAX_DEPTH} levels of parentheses")
    nots = len(re.findall(r"\bNOT\b", bare, re.IGNORECASE))
    if nots > MAX_DEPTH:
        raise InputError(f"filter: {nots} NOTs; at most {MAX_DEPTH}")
    if re.search(r"-\s*-\s*-", bare):
        raise InputError("filter: a run of minus signs; write a number with one sign")


_ILIKE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")+")\s+ILIKE\s*$', re.IGNORECASE)


def ilike_as_casei(text: str) -> str:
    """``name ILIKE 'govan%'`` (what GDAL sends for OGR SQL's ILIKE; not CQL2) written as CQL2,
    ``CASEI(name) LIKE CASEI('govan%')``. Only a property followed by a string literal is
    rewritten, never anything inside a string.

    >>> ilike_as_casei("name ILIKE 'a ILIKE b' AND code LIKE 'S%'")
    "CASEI(name) LIKE CASEI('a ILIKE b') AND code LIKE 'S%'"
    """
    out, last = [], 0
    for literal in _QUOTED.finditer(text):
        before = text[last:literal.start()]
        found = _ILIKE.search(before) if literal.group().startswith("'") else None
        if found:
            before = f"{before[:found.start()]}CASEI({found.group(1)}) LIKE CASEI({literal.group()})"
            out.append(before)
        else:
            out.append(before + literal.group())
        last = literal.end()
    out.append(text[last:])
    return "".join(out)


def parse_text(text: str, lang: str | None = None) -> dict:
    """CQL2 text as its CQL2 JSON tree (parsed by ``cql2``), or an InputError saying where the
    text stops making sense.

    >>> parse_text("code IN ('S01010206', 'S01010207')")
    {'op': 'in', 'args': [{'property': 'code'}, ['S01010206', 'S01010207']]}
    >>> parse_text("value >")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo_cs.errors.InputError: filter: not CQL2 text at line 1, column 8 ('value >'): expected GEOMETRY, ...
    """
    if lang is not None and lang not in FILTER_LANGS:
        raise InputError(f"filter-lang={lang!r}: expected one of {', '.join(FILTER_LANGS)}")
    if not text.strip():
        raise InputError("filter: empty; give a CQL2 text expression, e.g. value > 20")
    check_shape(text)
    import cql2

    if re.search(r"\bILIKE\b", text, re.IGNORECASE):
        text = ilike_as_casei(text)
    try:
        return cql2.Expr(text).to_json()
    except Exception as exc:   # the parser's errors are plain Exceptions with a caret diagram
        raise InputError(f"filter: {_parse_message(str(exc), text)}") from None


def _parse_message(message: str, text: str) -> str:
    where = re.search(r"-->\s*(\d+):(\d+)", message)
    expected = re.search(r"=\s*(expected .*)$", message, re.M)
    if where is None:
        return f"not CQL2 text ({message.strip().splitlines()[0] if message.strip() else 'unparsable'})"
    snippet = text if len(text) <= 80 else text[:77] + "..."
    return (f"not CQL2 text at line {where.group(1)}, column {where.group(2)} ({snippet!r})"
            + (f": {expected.group(1)}" if expected else ""))


# -- LIKE patterns ---------------------------------------------------------------------------

#: What a LIKE pattern's wildcards become in RE2: ``%`` any run of characters, ``_`` exactly one
#: character (a code point, as DuckDB's LIKE counts them); with ``(?s)`` both take newlines too.
_ANY, _ONE = ".*", "."


def like_regex(pattern: str) -> str:
    r"""The RE2 expression whose full match accepts exactly the strings that the CQL2 LIKE
    ``pattern`` accepts (as DuckDB's ``LIKE pattern ESCAPE '\'`` does): ``%`` any run of
    characters, ``_`` one character, and a backslash makes the character after it literal
    (``\%``, ``\_``, ``\\``; before any other character it only drops out, as in DuckDB).

    A run of wildcards is written in one canonical order, its ``_`` first and then one ``%`` if
    it has any (``%_%_`` is "two characters or more", ``..*``), not as the combinations a
    backtracking matcher tries. Other characters are literal: ASCII letters and digits as they
    are, other ASCII characters as ``\x{hh}`` (never syntax, and unchanged by SQL's ``lower``,
    which CASEI applies to the expression), the rest as they are (RE2's syntax is ASCII). RE2
    matches in time linear in the string and the expression, whatever the pattern; patterns
    are as long as a filter may be (:data:`MAX_FILTER_CHARS`) at most.

    A pattern that ends in a lone backslash is an :class:`~geo_cs.errors.InputError`.

    >>> like_regex("Glas%")
    '(?s)Glas.*'
    >>> like_regex("%_%_%_")
    '(?s)....*'
    >>> print(like_regex(r"50\% of a_b"))
    (?s)50\x{25}\x{20}of\x{20}a.b
    >>> like_regex("Ceann a\\")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo_cs.errors.InputError: filter: LIKE pattern 'Ceann a\\' ends with the escape character \; write ...
    """
    out = ["(?s)"]
    ones = 0            # the run of wildcards being read: how many _, and whether it has a %
    any_run = False
    chars = iter(pattern)
    for char in chars:
        if char == "%":
            any_run = True
            continue
        if char == "_":
            ones += 1
            continue
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                shown = pattern if len(pattern) <= 60 else "…" + pattern[-59:]
                raise InputError(f"filter: LIKE pattern {shown!r} ends with the escape "
                                 "character \\; write \\\\ for a backslash")
            char = escaped
        out.append(_ONE * ones + (_ANY if any_run else ""))
        ones, any_run = 0, False
        out.append(char if char.isalnum() or not char.isascii() else f"\\x{{{ord(char):x}}}")
    out.append(_ONE * ones + (_ANY if any_run else ""))
    return "".join(out)


# -- translation -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Spatial:
    """How spatial literals meet the geometry: the column in the literal's CRS, whether the
    literal's axes are swapped (EPSG:4326 is lat/lon) and whether the lon/lat bounds columns
    (``a.xmin``…) may prefilter."""

    column: str = "a.geom_4326"
    swap_axes: bool = False
    lonlat_bounds: bool = True


@dataclass(frozen=True)
class Where:
    """A translated filter: SQL with ``?`` placeholders, its parameters in order, and whether
    it names a measure's property (the values must then be joined)."""

    sql: str
    params: tuple
    uses_values: bool = False


_COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
#: CQL2 spatial predicates and DuckDB's (argument order kept as written).
_SPATIAL = {"s_intersects": "ST_Intersects", "s_within": "ST_Within", "s_contains": "ST_Contains",
            "s_disjoint": "ST_Disjoint", "s_equals": "ST_Equals", "s_touches": "ST_Touches",
            "s_overlaps": "ST_Overlaps", "s_crosses": "ST_Crosses"}
SUPPORTED = ("AND, OR, NOT, =, <>, <, <=, >, >=, LIKE, BETWEEN, IN, IS NULL, CASEI, "
             + ", ".join(op.upper() for op in _SPATIAL))


def ascii_lower(sql: str) -> str:
    """SQL for ``sql`` with A-Z lower-cased and every other character kept: how OGR SQL
    (``strcasecmp``) ignores case; ``Ô`` and ``ô`` stay different, as they do in GDAL.

    >>> ascii_lower("a.name")
    "translate(a.name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
    """
    return f"translate({sql}, '{_UPPER}', '{_UPPER.lower()}')"


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _Translator:
    def __init__(self, qs: dict[str, Queryable], spatial: Spatial, ogr_sql: bool = False) -> None:
        self.qs = qs
        self.spatial = spatial
        self.params: list[Any] = []
        self.uses_values = False
        # GDAL's meaning (GDAL_LANG): string comparisons and IN, and CASEI (which only ILIKE, as
        # GDAL sends it, becomes) ignore ASCII case, as OGR SQL's do (GDAL 3.6: 'abc' <= 'ABC'
        # and 'Ô' <> 'ô'); CQL2's CASEI folds all of Unicode
        self.ogr_sql = ogr_sql
        self.fold = ascii_lower if ogr_sql else (lambda sql: f"lower({sql})")

    # a scalar: (sql, type)
    def scalar(self, node: Any, where: str) -> tuple[str, str]:
        if isinstance(node, bool):
            self.params.append(node)
            return "?", _BOOLEAN
        if isinstance(node, int | float):
            if not math.isfinite(node):
                raise InputError(f"filter: {where}: the number is not finite")
            self.params.append(node)
            return "?", _NUMBER
        if isinstance(node, str):
            self.params.append(node)
            return "?", _STRING
        if isinstance(node, dict) and "property" in node:
            q = self.queryable(node["property"])
            if q.type == _GEOMETRY:
                raise InputError(f"filter: {where}: geometry is compared only by spatial "
                                 "predicates (S_INTERSECTS…)")
            return q.sql, _NUMBER if q.type == _INTEGER else q.type
        if isinstance(node, dict) and node.get("op") == "casei":
            args = node.get("args") or []
            if len(args) != 1:
                raise InputError("filter: CASEI takes one argument")
            sql, kind = self.scalar(args[0], "CASEI")
            if kind != _STRING:
                raise InputError("filter: CASEI takes a string")
            return self.fold(sql), _STRING
        raise InputError(f"filter: {where}: {_describe(node)} is not supported here; "
                         f"supported: {SUPPORTED}")

    def queryable(self, name: Any) -> Queryable:
        q = self.qs.get(name) if isinstance(name, str) else None
        if q is None:
            raise InputError(f"filter: unknown property {name!r}; queryables: {', '.join(self.qs)}")
        if q.sql.startswith(("v.", "(CASE WHEN isfinite(v.")):
            self.uses_values = True
        return q

    def predicate(self, node: Any) -> str:
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        if isinstance(node, dict) and "property" in node:
            sql, kind = self.scalar(node, "a property alone")
            if kind != _BOOLEAN:
                raise InputError(f"filter: property {node['property']!r} is a {kind}, not a "
                                 "condition; compare it (e.g. value > 20)")
            return f"({sql})"
        if not isinstance(node, dict) or "op" not in node:
            raise InputError(f"filter: {_describe(node)} is not a condition")
        op, args = node["op"], node.get("args") or []
        if not isinstance(args, list):
            raise InputError(f"filter: {op}: malformed arguments")
        if op in ("and", "or"):
            if len(args) < 2:
                raise InputError(f"filter: {op.upper()} needs two conditions")
            return "(" + f" {op.upper()} ".join(self.predicate(a) for a in args) + ")"
        if op == "not":
            self.arity(op, args, 1)
            return f"(NOT {self.predicate(args[0])})"
        if op in _COMPARISONS:
            self.arity(op, args, 2)
            at = [len(self.params)]
            left, lkind = self.scalar(args[0], f"left of {op}")
            at.append(len(self.params))
            right, rkind = self.scalar(args[1], f"right of {op}")
            if {lkind, rkind} == {_BOOLEAN, _NUMBER} and op in ("=", "<>"):
                # GDAL types booleans as integers and sends worst = 1: 0 and 1 mean false and true
                side = 1 if rkind == _NUMBER else 0
                literal = args[side]
                if isinstance(literal, int | float) and not isinstance(literal, bool) and literal in (0, 1):
                    self.params[at[side]] = bool(literal)
                    lkind = rkind = _BOOLEAN
            self.same_kind(op, lkind, rkind, args)
            if self.ogr_sql and lkind == _STRING:
                left, right = self.fold(left), self.fold(right)
            return f"({left} {_COMPARISONS[op]} {right})"
        if op == "like":
            self.arity(op, args, 2)
            left, lkind = self.scalar(args[0], "LIKE")
            if lkind != _STRING:
                raise InputError("filter: LIKE compares strings (e.g. name LIKE 'Glas%')")
            return f"regexp_full_match({left}, {self.like_pattern(args[1])})"
        if op == "between":
            self.arity(op, args, 3)
            parts = [self.scalar(a, "BETWEEN") for a in args]
            for sql_kind in parts[1:]:
                self.same_kind("BETWEEN", parts[0][1], sql_kind[1], args)
            if self.ogr_sql and parts[0][1] == _STRING:
                parts = [(self.fold(sql), kind) for sql, kind in parts]
            return f"({parts[0][0]} BETWEEN {parts[1][0]} AND {parts[2][0]})"
        if op == "in":
            self.arity(op, args, 2)
            left, lkind = self.scalar(args[0], "IN")
            if not isinstance(args[1], list) or not args[1]:
                raise InputError("filter: IN takes a list of values, e.g. code IN ('S01010206')")
            if len(args[1]) > MAX_IN_VALUES:
                raise InputError(f"filter: IN lists {len(args[1]):,} values; at most {MAX_IN_VALUES:,}")
            items = []
            for value in args[1]:
                sql, kind = self.scalar(value, "IN list")
                self.same_kind("IN", lkind, kind, args)
                items.append(self.fold(sql) if self.ogr_sql and kind == _STRING else sql)
            if self.ogr_sql and lkind == _STRING:
                left = self.fold(left)
            return f"({left} IN ({', '.join(items)}))"
        if op == "isNull":
            self.arity("IS NULL", args, 1)
            if isinstance(args[0], dict) and args[0].get("property") == GEOMETRY.name \
                    and GEOMETRY.name in self.qs:
                return f"({self.spatial.column} IS NULL)"
            sql, _ = self.scalar(args[0], "IS NULL")
            return f"({sql} IS NULL)"
        if op in _SPATIAL:
            return self.spatial_predicate(op, args)
        raise InputError(f"filter: operator {op!r} is not supported; supported: {SUPPORTED}")

    def like_pattern(self, node: Any) -> str:
        """SQL for a LIKE pattern: its RE2 expression (:func:`like_regex`) as a parameter,
        case-folded in SQL under each CASEI around it, as the string it is matched with is
        (the expression's own syntax is lower-case ASCII, which folding leaves as it is).

        In CQL2's grammar a pattern is a string literal, perhaps within CASEI (or ACCENTI, not
        supported): a property's value is never a pattern here, so every pattern that reaches
        the database is one this module translated."""
        if isinstance(node, str):
            self.params.append(like_regex(node))
            return "?"
        if isinstance(node, dict) and node.get("op") == "casei":
            args = node.get("args") or []
            if len(args) != 1:
                raise InputError("filter: CASEI takes one argument")
            return self.fold(self.like_pattern(args[0]))
        if isinstance(node, dict) and "property" in node:
            self.queryable(node["property"])    # an unknown name is named as such
            raise InputError(f"filter: LIKE takes a pattern written as a string, not property "
                             f"{node['property']!r}; e.g. name LIKE 'Glas%'")
        raise InputError("filter: LIKE compares strings (e.g. name LIKE 'Glas%')")

    @staticmethod
    def arity(op: str, args: list, n: int) -> None:
        if len(args) != n:
            raise InputError(f"filter: {op.upper()} takes {n} argument{'s' if n > 1 else ''}, "
                             f"got {len(args)}")

    @staticmethod
    def same_kind(op: str, left: str, right: str, args: list) -> None:
        if left != right:
            raise InputError(f"filter: {op.upper()} compares a {left} with a {right} "
                             f"({' and '.join(_describe(a) for a in args[:2])})")

    def spatial_predicate(self, op: str, args: list) -> str:
        self.arity(op, args, 2)
        is_geometry = [isinstance(a, dict) and a.get("property") == GEOMETRY.name for a in args]
        if is_geometry.count(True) != 1:
            if any(isinstance(a, dict) and "property" in a for a in args):
                for a in args:
                    if isinstance(a, dict) and "property" in a:
                        self.queryable(a["property"])   # an unknown name is named as such
            raise InputError(f"filter: {op.upper()} takes the geometry property and one literal "
                             "(BBOX(minx,miny,maxx,maxy) or WKT), e.g. S_INTERSECTS(geometry, "
                             "BBOX(-4.3,55.8,-4.2,55.9))")
        self.queryable(GEOMETRY.name)
        literal_sql, literal_params, bounds = self.geometry_literal(args[is_geometry.index(False)], op)
        sides = [self.spatial.column if g else literal_sql for g in is_geometry]
        sql = f"{_SPATIAL[op]}({sides[0]}, {sides[1]})"
        if op != "s_disjoint" and self.spatial.lonlat_bounds:
            west, south, east, north = bounds   # prefilter on the stored lon/lat bounds
            self.params.extend([west, east, south, north])
            sql = f"a.xmax >= ? AND a.xmin <= ? AND a.ymax >= ? AND a.ymin <= ? AND {sql}"
        self.params.extend(literal_params)
        return f"({sql})"

    def geometry_literal(self, node: Any, op: str) -> tuple[str, list, tuple[float, ...]]:
        """SQL for a BBOX or WKT literal, its parameters, and its bounds (west, south, east,
        north) in the geometry column's CRS."""
        import shapely
        from shapely.geometry import box, shape
        from shapely.ops import transform
        from shapely.validation import explain_validity

        if isinstance(node, dict) and "bbox" in node:
            numbers = node["bbox"]
            if not isinstance(numbers, list) or len(numbers) not in (4, 6) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in numbers):
                raise InputError(f"filter: {op.upper()}: BBOX takes 4 (or 6) finite numbers, "
                                 "minx,miny,maxx,maxy")
            if len(numbers) == 6:
                numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
            a, b, c, d = (float(v) for v in numbers)
            if self.spatial.swap_axes:
                a, b, c, d = b, a, d, c
            if a > c or b > d:
                raise InputError(f"filter: BBOX({','.join(f'{v:g}' for v in numbers)}): min must "
                                 "not exceed max")
            geometry = box(a, b, c, d)
        elif isinstance(node, dict) and "type" in node and "coordinates" in node:
            try:
                geometry = shape(node)
            except Exception as exc:
                raise InputError(f"filter: {op.upper()}: {node['type']} literal is not a geometry "
                                 f"({exc})") from None
            if self.spatial.swap_axes:
                geometry = transform(lambda x, y, z=None: (y, x), geometry)
            if geometry.is_empty or not all(math.isfinite(v) for v in geometry.bounds):
                raise InputError(f"filter: {op.upper()}: the {node['type']} literal is empty or not finite")
            if not geometry.is_valid:
                raise InputError(f"filter: {op.upper()}: the {node['type']} literal is not a valid "
                                 f"geometry ({explain_validity(geometry)})")
        else:
            raise InputError(f"filter: {op.upper()} takes BBOX(...) or a WKT geometry, not "
                             f"{_describe(node)}")
        return "ST_GeomFromWKB(?)", [shapely.to_wkb(geometry)], tuple(geometry.bounds)


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        if "property" in node:
            return f"property {node['property']!r}"
        if "op" in node:
            return f"function or operator {node['op']!r}"
        for key in ("date", "timestamp", "interval"):
            if key in node:
                return f"a {key} literal"
        if "bbox" in node:
            return "a BBOX"
        if "type" in node:
            return f"a {node['type']} geometry"
        return "an object"
    if isinstance(node, list):
        return "a list"
    if node is None:
        return "NULL"
    return repr(node)


def translate(tree: dict, qs: dict[str, Queryable], spatial: Spatial | None = None,
              ogr_sql: bool = False) -> Where:
    """A CQL2 JSON tree as a parameterised WHERE clause over the queryables ``qs``; with
    ``ogr_sql``, strings compared as OGR SQL compares them (see :data:`GDAL_LANG`).

    >>> translate(parse_text("code IN ('S01010206') OR NOT worst"), queryables(True)).sql
    '((a.code IN (?)) OR (NOT (v.worst)))'
    >>> translate(parse_text("colour = 'red'"), queryables(False))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo_cs.errors.InputError: filter: unknown property 'colour'; queryables: code, name, ..., geometry
    """
    t = _Translator(qs, spatial or Spatial(), ogr_sql)
    try:
        sql = t.predicate(tree)
    except RecursionError:   # a guard: check_shape keeps parsed trees far shallower
        raise InputError(f"filter: nested too deeply; at most {MAX_DEPTH} levels") from None
    return Where(sql, tuple(t.params), t.uses_values)


def parse_filter(text: str, qs: dict[str, Queryable], lang: str | None = None,
                 spatial: Spatial | None = None) -> Where:
    """``filter`` text in ``lang`` as a :class:`Where` (``parse_text`` then ``translate``):
    CQL2 for ``cql2-text`` (the default), GDAL's meaning for :data:`GDAL_LANG`.

    >>> qs = queryables(False)
    >>> parse_filter("name = 'glasgow'", qs).sql
    '(a.name = ?)'
    >>> gdal = parse_filter("name = 'glasgow'", qs, GDAL_LANG)
    >>> gdal.sql == f"({ascii_lower('a.name')} = {ascii_lower('?')})"
    True
    """
    return translate(parse_text(text, lang), qs, spatial, ogr_sql=lang == GDAL_LANG)


def all_of(texts: list[str]) -> str:
    """Several ``filter`` values as one CQL2 text that holds where each holds (a repeat said
    once): what a request that gives ``filter`` more than once asks for. GDAL repeats a layer
    URL's own query (with its ``filter``) after the ``filter`` it makes of a ``-where``, and
    once more on the ``next`` links it follows; reading only one of them would answer with
    the features of the other alone.

    >>> all_of(["value > 30"])
    'value > 30'
    >>> all_of(["value > 30", "worst = 1", "value > 30"])
    '(value > 30) AND (worst = 1)'
    >>> all_of(["a = 1", "b = 2"] * 20) == all_of(["a = 1", "b = 2"])
    True
    """
    unique = list(dict.fromkeys(texts))
    if len(unique) == 1:
        return unique[0]
    joined = " AND ".join(f"({text})" for text in unique)
    if len(joined) > MAX_FILTER_CHARS:
        raise InputError(f"filter: given {len(unique)} times, {len(joined):,} characters in all; "
                         f"at most {MAX_FILTER_CHARS:,}")
    return joined


# -- sortby ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SortKey:
    queryable: Queryable
    descending: bool = False


def parse_sortby(text: str, qs: dict[str, Queryable]) -> tuple[SortKey, ...]:
    """``sortby=-value,+name`` (``+`` may arrive as a space) as sort keys over the queryables.

    >>> [(k.queryable.name, k.descending) for k in parse_sortby("-value, name", queryables(True))]
    [('value', True), ('name', False)]
    """
    keys = []
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            raise InputError(f"sortby={text!r}: an empty name; expected e.g. -value,name")
        descending = token.startswith("-")
        name = token[1:].strip() if token[0] in "+-" else token
        q = qs.get(name)
        if q is None or q.type == _GEOMETRY:
            sortable = ", ".join(n for n, v in qs.items() if v.type != _GEOMETRY)
            raise InputError(f"sortby: unknown property {name!r}; sortable queryables: {sortable}")
        keys.append(SortKey(q, descending))
    if len({k.queryable.name for k in keys}) != len(keys):
        raise InputError(f"sortby={text!r}: a property named twice")
    return tuple(keys)


def order_by(keys: tuple[SortKey, ...]) -> str:
    """The ORDER BY list for ``keys``, ending with the unique code so that pages never overlap
    or skip an area whatever the keys' ties.

    >>> order_by(())
    'a.code ASC'
    """
    parts = []
    for k in keys:
        direction = "DESC" if k.descending else "ASC"
        if k.queryable.name == "code":      # unique: any key after it could never decide
            parts.append(f"a.code {direction}")
            break
        parts.append(f"{k.queryable.sql} {direction} NULLS LAST")
    else:
        parts.append("a.code ASC")
    return ", ".join(parts)


def sorts_by_values(keys: tuple[SortKey, ...]) -> bool:
    """Whether the sort needs the measure's values joined."""
    return any(k.queryable.sql.startswith(("v.", "(CASE WHEN isfinite(v.")) for k in keys)
