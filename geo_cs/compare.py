"""Compare places: two to four partnerships or custom areas on one rate, side by side.

A *place* is a partnership id; a custom area is one too (``area-…``, :mod:`geo_cs.custom_areas`),
so both are found with :func:`geo_cs.partnerships.get_partnerships` and turned into small areas
with :func:`geo_cs.partnerships.resolve`. On one measure (a count over a population, as the
map's gap uses), each place's rate per period is Σ count / Σ denominator over its areas, with
the project's Wilson interval (:func:`geo_cs.stats.rate_with_interval`), and each pair of places
gets its difference in points with a 95% interval: *real* when the interval excludes 0, else
*within noise*. Places may share areas (a custom area inside its partnership, two partnerships
sharing a district): the difference's variance is worked out from the disjoint parts (A only,
both, B only; :func:`geo_cs.stats.overlapping_difference`), so shared people are counted once.

With disclosure control (:mod:`geo_cs.disclosure`), every sum is of the areas' *published*
figures (rounded counts; a withheld area has none and is left out), so a comparison is a
function of what is already published and gives nothing back that the map withholds: a place
of one area against that area plus a withheld one reads the same.

Example
-------
Two places sharing area ``b``, one period (a frame as :func:`geo_cs.layers.area_values` gives):

>>> frame = pd.DataFrame({"code": ["a", "b", "c"], "period_id": "p", "count": [30.0, 20.0, 10.0],
...                       "denominator": [200.0, 200.0, 100.0], "suppressed": False})
>>> places = [Place("x", "X", ("a", "b")), Place("y", "Y", ("b", "c"))]
>>> rates = place_rates(frame, places, ["p"])
>>> rates[["place", "count", "denominator", "rate"]].round(2).values.tolist()
[['x', 50.0, 400.0, 12.5], ['y', 30.0, 300.0, 10.0]]
>>> diff = pair_differences(frame, places, ["p"]).iloc[0]
>>> round(float(diff["difference"]), 2), diff["verdict"]
(2.5, 'within noise')
>>> difference_sentence("Glasgow", "Castlemilk estate", 4.1, 3.2, 5.0)
"Glasgow's rate is 4.1 points higher than Castlemilk estate's (3.2 to 5.0): a real difference."
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd

from geo_cs.custom_areas import PARTNERSHIP_ID_PATTERN
from geo_cs.custom_areas import PREFIX as CUSTOM_PREFIX
from geo_cs.disclosure import DisclosureControl
from geo_cs.errors import GeoCsError, InputError, NotFoundError
from geo_cs.geography import area_words
from geo_cs.layers import AreaValues, Measure, area_values, default_view, resolve_measure, sentence_case
from geo_cs.partnerships import Partnership, get_partnerships, resolve
from geo_cs.stats import overlapping_difference, rate_with_interval
from geo_cs.store import Store

MIN_PLACES, MAX_PLACES = 2, 4
#: A place id as an address carries it: a partnership's id, or a custom area's (``area-`` and
#: its base64url text).
PLACE_ID = re.compile(PARTNERSHIP_ID_PATTERN)
_CUSTOM_ID = re.compile(rf"{re.escape(CUSTOM_PREFIX)}[A-Za-z0-9_\-]+")
NUMBER_WORDS = {0: "none", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


@dataclass(frozen=True)
class Place:
    """One place compared: its id (a partnership's or a custom area's), name and small areas."""

    id: str
    name: str
    codes: tuple[str, ...]


# -- which places --------------------------------------------------------------------------------

def parse_places(*texts: str | None) -> list[str]:
    """Place ids, in the order given and each once, from ``places=`` text (ids separated by
    commas) and from what a person pastes: ids, a map's link (``…/maps/glasgow?…``), a compare
    link (``…?places=a,b``) or any link holding a custom area's ``area-…`` id.

    >>> parse_places("glasgow, edinburgh")
    ['glasgow', 'edinburgh']
    >>> parse_places("glasgow", "https://host/maps/compare?places=area-QUJD,dundee&geography=x\\nglasgow")
    ['glasgow', 'area-QUJD', 'dundee']
    >>> parse_places("http://host/maps/edinburgh?indicator=claimants")
    ['edinburgh']
    """
    found: list[str] = []
    for text in texts:
        for chunk in (text or "").split():
            found.extend(_ids_in(chunk))
    return list(dict.fromkeys(i for i in found if i))


def _ids_in(chunk: str) -> list[str]:
    """The place ids in one pasted piece of text (no spaces in it)."""
    if "/" not in chunk and "?" not in chunk:
        return [c.strip() for c in unquote(chunk).split(",")]
    parts = urlsplit(chunk)
    listed = parse_qs(parts.query).get("places")
    if listed:
        return [c.strip() for value in listed for c in value.split(",")]
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if "maps" in segments[:-1]:
        candidate = segments[segments.index("maps") + 1]
        if candidate not in ("compare", "help") and "." not in candidate:
            return [candidate]
    return _CUSTOM_ID.findall(unquote(chunk))


def check_places(ids: list[str]) -> list[str]:
    """``ids`` if they are two to four well-formed place ids, else an InputError in words.

    >>> check_places(["glasgow"])
    Traceback (most recent call last):
    ...
    geo_cs.errors.InputError: places: choose two to four places to compare; you chose one (glasgow)
    """
    bad = [i for i in ids if not PLACE_ID.match(i)]
    if bad:
        raise InputError(f"places: {', '.join(repr(b[:60]) for b in bad)} is not a place; give "
                         "partnership ids or custom areas' ids (area-…), separated by commas")
    if not MIN_PLACES <= len(ids) <= MAX_PLACES:
        chosen = f"{NUMBER_WORDS.get(len(ids), str(len(ids)))}" + (f" ({', '.join(ids)})" if ids else "")
        raise InputError(f"places: choose two to four places to compare; you chose {chosen}")
    return ids


def find_places(ids: list[str]) -> list[Partnership]:
    """The partnerships (or custom areas) of ``ids``; a NotFoundError names every id that is
    neither, and a malformed custom area's own error is passed on, naming it."""
    found, unknown = [], []
    for pid in ids:
        try:
            found.append(get_partnerships([pid])[0])
        except NotFoundError:
            unknown.append(pid)
        except GeoCsError as exc:
            raise InputError(f"places: {pid[:60]!r} is not a place we can read: {exc}") from exc
    if unknown:
        raise NotFoundError(f"places: no place called {', '.join(repr(u[:60]) for u in unknown)}; "
                            "choose partnerships from the list, or paste a custom area's link")
    return found


def place_name(partnership: Partnership) -> str:
    """What a place is called (its final definition's name)."""
    return partnership.phase_at(None).name


def resolve_places(store: Store, partnerships: list[Partnership], set_id: str) -> list[Place]:
    """Each place's small areas on ``set_id`` (final definitions); an InputError in words for a
    place with none there."""
    out = []
    for p in partnerships:
        try:
            codes = resolve(store, p, set_id).codes
        except GeoCsError as exc:
            raise InputError(f"geography: {place_name(p)} has no {set_id} areas, so it cannot be "
                             f"compared on them ({exc}); choose a geography every place has") from exc
        if not codes:
            raise InputError(f"geography: {place_name(p)} has no {set_id} areas; choose a geography "
                             "every place has")
        out.append(Place(p.id, place_name(p), tuple(sorted(set(codes)))))
    return out


def compare_view(store: Store, partnerships: list[Partnership], geography: str | None = None,
                 indicator: str | None = None, denominator: str | None = None,
                 ) -> tuple[str, str, str | None]:
    """(geography, indicator, denominator) of a comparison: what was asked, completed from the
    map's defaults (:data:`geo_cs.layers.DEFAULT_VIEWS`) as :func:`geo_cs.layers.store_view`
    completes the first place's, but holding every place and giving a rate: the first place's
    own map when the others have areas and values there (Glasgow against a custom area in
    Glasgow), else the first default that all of them have (Glasgow against Nottingham, or two
    Welsh partnerships, whose own maps show a rank: constituencies)."""
    if geography:
        resolve_places(store, partnerships, geography)   # a place without areas there, named
    codes: dict[str, list[list[str]]] = {}

    def has_areas(set_id: str) -> bool:
        try:
            codes[set_id] = [resolve(store, p, set_id).codes for p in partnerships]
        except GeoCsError:
            return False
        return all(codes[set_id])

    def has_measure(set_id: str, name: str) -> bool:
        try:
            measure = resolve_measure(store, set_id, name)
        except GeoCsError:
            return False
        if not measure.is_rate:
            return False     # a rank or a score (the Welsh maps' default) sums to no rate
        return all(store.sql(
            "SELECT count(*) FROM observations WHERE set_id = ? AND list_contains(?, indicator_id) "
            "AND list_contains(?, code) AND value IS NOT NULL",
            [set_id, list(measure.indicators), sorted(place_codes)]).fetchone()[0]
            for place_codes in codes[set_id])

    try:
        return default_view(partnerships[0].id, geography, indicator, denominator, has_areas, has_measure)
    except NotFoundError as exc:
        names = ", ".join(place_name(p) for p in partnerships)
        raise NotFoundError(f"geography: no map of the defaults holds all of {names}; choose a "
                            "geography and an indicator they all have (constituencies, wpc2010, "
                            "with claimants, cover Great Britain)") from exc


# -- the figures ---------------------------------------------------------------------------------

def _members(places: list[Place]) -> pd.DataFrame:
    return pd.DataFrame([(p.id, c) for p in places for c in p.codes], columns=["place", "code"])


def _usable(frame: pd.DataFrame) -> pd.Series:
    """The rows a sum counts: a count and a positive denominator (published ones, under
    disclosure control: a withheld area has neither)."""
    return frame["count"].notna() & (frame["denominator"] > 0)


def place_rates(frame: pd.DataFrame, places: list[Place], period_ids: list[str],
                confidence: float = 0.95) -> pd.DataFrame:
    """Per place and period: Σ count, Σ denominator over its areas with both, the rate in % and
    its Wilson interval, and how many of its areas were counted (``n_areas``), withheld
    (``n_withheld``: suppressed under disclosure control) or had no figure (``n_missing``).

    ``frame``: :attr:`geo_cs.layers.AreaValues.frame` (code, period_id, count, denominator,
    suppressed). Every place has a row for every period, with no rate where it has no figure.
    """
    rows = frame[frame["code"].isin({c for p in places for c in p.codes})]
    withheld = rows["suppressed"].fillna(False).astype(bool) if "suppressed" in rows else False
    rows = rows.assign(ok=_usable(rows), withheld=withheld)
    rows = rows.assign(count=rows["count"].where(rows["ok"], 0.0),
                       denominator=rows["denominator"].where(rows["ok"], 0.0),
                       share=(rows.get("estimated_share", 0.0) * rows["count"]).where(rows["ok"], 0.0))
    joined = _members(places).merge(rows, on="code")
    sums = joined.groupby(["place", "period_id"]).agg(
        count=("count", "sum"), denominator=("denominator", "sum"), n_areas=("ok", "sum"),
        n_withheld=("withheld", "sum"), share=("share", "sum"))
    grid = pd.MultiIndex.from_product([[p.id for p in places], period_ids], names=["place", "period_id"])
    out = sums.reindex(grid).reset_index()
    for column in ("n_areas", "n_withheld"):
        out[column] = out[column].fillna(0).astype(int)
    size = {p.id: len(p.codes) for p in places}
    out["n_missing"] = out["place"].map(size) - out["n_areas"] - out["n_withheld"]
    none = out["n_areas"] == 0
    out.loc[none, ["count", "denominator"]] = np.nan
    out["rate"], out["low"], out["high"] = rate_with_interval(out["count"], out["denominator"], confidence)
    # the share of the count carried across a boundary change (harmonised editions): estimates
    out["estimated_share"] = (out.pop("share") / out["count"].where(out["count"] > 0)).fillna(0.0)
    out.insert(1, "name", out["place"].map({p.id: p.name for p in places}))
    return out


def pair_differences(frame: pd.DataFrame, places: list[Place], period_ids: list[str],
                     confidence: float = 0.95) -> pd.DataFrame:
    """Per period, every pair's difference ``rate(a) − rate(b)`` in points with its interval
    from the pair's disjoint parts (:func:`geo_cs.stats.overlapping_difference`), the verdict
    (``real`` when the interval excludes 0, ``within noise`` when not, None without a figure)
    and how many areas the two places share."""
    usable = frame[_usable(frame) & frame["period_id"].isin(period_ids)]
    out = []
    for a, b in itertools.combinations(places, 2):
        set_a, set_b = set(a.codes), set(b.codes)
        parts = [set_a - set_b, set_a & set_b, set_b - set_a]
        sums = []
        for codes in parts:
            mine = usable[usable["code"].isin(codes)].groupby("period_id")[["count", "denominator"]].sum()
            sums.append(mine.reindex(period_ids).fillna(0.0))
        counts = np.stack([s["count"].to_numpy() for s in sums], axis=-1)
        dens = np.stack([s["denominator"].to_numpy() for s in sums], axis=-1)
        diff, low, high = overlapping_difference(counts, dens, [True, True, False], [False, True, True],
                                                 confidence)
        out.append(pd.DataFrame({
            "period_id": period_ids, "place_a": a.id, "name_a": a.name, "place_b": b.id, "name_b": b.name,
            "shared_areas": len(parts[1]), "difference": diff, "low": low, "high": high,
            "verdict": [verdict(lo, hi) for lo, hi in zip(low, high, strict=True)]}))
    return pd.concat(out, ignore_index=True)


def verdict(low: float, high: float) -> str | None:
    """``real`` when the interval [low, high] excludes 0, ``within noise`` when it holds 0,
    None without one.

    >>> verdict(0.4, 2.0), verdict(-0.1, 2.0), verdict(float("nan"), 1.0)
    ('real', 'within noise', None)
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return "real" if low > 0 or high < 0 else "within noise"


@dataclass
class Comparison:
    """Two to four places on one measure: each one's rate per period, and each pair's difference."""

    measure: Measure
    places: list[Place]
    periods: pd.DataFrame          # period_id, period_label (time order)
    rates: pd.DataFrame            # place_rates, with period_label
    differences: pd.DataFrame      # pair_differences, with period_label
    disclosure: DisclosureControl | None = None
    label: str = ""                # the measure in words: "Employment-deprived people, % of …"
    geography_label: str = ""      # "Scottish Data Zones, 2011"
    source: str = ""               # "Source: …." (geo_cs.narrative.source_line)
    extra_notes: list[str] = field(default_factory=list)

    @property
    def period_ids(self) -> list[str]:
        return self.periods["period_id"].tolist()

    def period_label(self, period: str) -> str:
        return str(self.periods.set_index("period_id").loc[period, "period_label"])

    def check_period(self, period: str | None) -> str:
        """``period`` if the measure has it (default: the latest with a figure for every place),
        else NotFoundError naming them."""
        if period is None:
            held = self.rates.groupby("period_id")["rate"].apply(lambda r: bool(r.notna().all()))
            complete = [p for p in self.period_ids if held.get(p, False)]
            return (complete or self.period_ids)[-1]
        if period not in self.period_ids:
            raise NotFoundError(f"period {period!r} is not one of this comparison's; valid: "
                                f"{', '.join(self.period_ids)}")
        return period

    def differences_at(self, period: str | None = None) -> pd.DataFrame:
        period = self.check_period(period)
        return self.differences[self.differences["period_id"] == period].reset_index(drop=True)

    def sentences(self, period: str | None = None) -> list[str]:
        """Each pair's difference in ``period`` in words (:func:`difference_sentence`)."""
        return [difference_sentence(r.name_a, r.name_b, r.difference, r.low, r.high)
                for r in self.differences_at(period).itertuples()]

    def notes(self, period: str | None = None) -> list[str]:
        """What a reader must know to read ``period``'s figures: places sharing areas, the
        disclosure control and each place's withheld areas, areas with no figure, estimates."""
        period = self.check_period(period)
        many = area_words(self.measure.set_id)[1]
        at = self.rates[self.rates["period_id"] == period]
        label = self.period_label(period)
        notes = []
        for a, b in itertools.combinations(self.places, 2):
            inside = _inside_words(a, b) or _inside_words(b, a)
            shared = len(set(a.codes) & set(b.codes))
            if inside:
                notes.append(inside)
            elif shared:
                notes.append(f"{a.name} and {b.name} share {shared} {many}: each difference between "
                             "them counts the people there once, and its interval allows for that.")
        if self.disclosure is not None:
            withheld = "; ".join(f"{r.name} {_count_words(r.n_withheld)} of {len(self._place(r.place).codes)}"
                                 for r in at.itertuples())
            notes.append(f"Figures as published: {self.disclosure.note} Each place's figures are sums "
                         f"of its {many}' published figures; {many} whose figures are withheld are "
                         "left out, so a place's rate is that of its other "
                         f"{many} (withheld ones count few people, so it may read a little high). "
                         f"Withheld in {label}: {withheld}.")
        missing = [f"{r.name} {r.n_missing} of {len(self._place(r.place).codes)}" for r in at.itertuples()
                   if r.n_missing > 0]
        if missing:
            notes.append(f"{sentence_case(many)} with no figure in {label}, left out: {'; '.join(missing)}.")
        estimated = float(at["estimated_share"].max())
        if estimated > 0.005:
            notes.append(f"Up to {estimated:.0%} of a place's count in {label} was carried across a "
                         "boundary change: that part is an estimate.")
        return [*notes, *self.extra_notes]

    def _place(self, place_id: str) -> Place:
        return next(p for p in self.places if p.id == place_id)

    def to_dict(self, period: str | None = None) -> dict:
        """The comparison as JSON-ready data: figures rounded to 3 decimals, none as null."""
        period = self.check_period(period)
        rates = self.rates[["place", "name", "period_id", "period_label", "count", "denominator", "rate",
                            "low", "high", "n_areas", "n_withheld", "n_missing"]]
        diffs = self.differences[["period_id", "period_label", "place_a", "name_a", "place_b", "name_b",
                                  "shared_areas", "difference", "low", "high", "verdict"]]
        return {
            "measure": {"set_id": self.measure.set_id, "indicator": self.measure.name,
                        "denominator": self.measure.denominator, "label": self.label or self.measure.label,
                        "unit": "%"},
            "geography": self.measure.set_id, "geography_label": self.geography_label,
            "places": [{"id": p.id, "name": p.name, "areas": len(p.codes)} for p in self.places],
            "periods": [{"id": r.period_id, "label": r.period_label} for r in self.periods.itertuples()],
            "period": period,
            "rates": _records(rates),
            "differences": _records(diffs),
            "sentences": self.sentences(period),
            "notes": self.notes(period),
            "disclosure": self.disclosure.note if self.disclosure is not None else None,
            "source": self.source,
        }


def _records(frame: pd.DataFrame) -> list[dict]:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].round(3)
    return out.astype(object).where(out.notna(), None).to_dict("records")


def _count_words(n: int) -> str:
    return "none" if n == 0 else str(n)


def _inside_words(small: Place, big: Place) -> str | None:
    """A note when one place lies wholly inside the other (a custom area in its partnership)."""
    if set(small.codes) < set(big.codes):
        return (f"{small.name} lies inside {big.name}: their difference compares it with the whole "
                f"of {big.name}, itself included, and its interval allows for that.")
    return None


def compare_values(values: AreaValues, places: list[Place], confidence: float = 0.95) -> Comparison:
    """The comparison of ``places`` on the values of one measure (published figures when
    ``values`` were made under disclosure control). An InputError in words when the measure is
    not a count over a population (a score, a rank, a survey rate) or gives no figure for the
    places."""
    measure = values.measure
    if not measure.is_rate or values.unit != "%":
        raise InputError(f"indicator: {measure.name} on {measure.set_id} is not a count of people over "
                         "a population, so places cannot be compared on it; choose a rate such as "
                         "employment-deprived people or claimants")
    periods = values.periods[["period_id", "period_label"]].reset_index(drop=True)
    period_ids = periods["period_id"].tolist()
    rates = place_rates(values.frame, places, period_ids, confidence)
    if not rates["rate"].notna().any():
        raise InputError(f"figures: {measure.name} on {measure.set_id} has no figure for any of "
                         f"{', '.join(p.name for p in places)}; choose another measure")
    differences = pair_differences(values.frame, places, period_ids, confidence)
    labels = dict(zip(periods["period_id"], periods["period_label"], strict=True))
    rates.insert(3, "period_label", rates["period_id"].map(labels))
    differences.insert(1, "period_label", differences["period_id"].map(labels))
    return Comparison(measure, places, periods, rates, differences, values.disclosure)


def rate_label(store: Store, measure: Measure) -> str:
    """The measure as a rate, in words: the map's own choice label where it has one
    ("Employment-deprived people, % of working-age people")."""
    from geo_cs.layers import view_choices

    for choice in view_choices(store, [measure.set_id]):
        if choice.indicator == measure.name and choice.denominator == measure.denominator and choice.gap:
            return choice.label
    label = sentence_case(measure.label)
    return label if "%" in label else f"{label} (%)"


def describe(store: Store, comparison: Comparison) -> Comparison:
    """``comparison`` with its words filled in from the store: the measure as a rate, the
    geography's name and the source line of the places' figures."""
    from geo_cs.layers import measure_sources
    from geo_cs.narrative import source_line

    measure = comparison.measure
    row = store.sql("SELECT label FROM geography_sets WHERE set_id = ?", [measure.set_id]).fetchone()
    codes = sorted({c for p in comparison.places for c in p.codes})
    indicators = [*measure.indicators, *([measure.denominator] if measure.denominator else [])]
    comparison.label = rate_label(store, measure)
    comparison.geography_label = str(row[0]) if row and row[0] else measure.set_id
    comparison.source = source_line(measure_sources(store, measure.set_id, indicators, codes))
    return comparison


def compare_places(store: Store, place_ids: list[str], geography: str | None = None,
                   indicator: str | None = None, denominator: str | None = None, *,
                   disclosure: DisclosureControl | None = None, values: AreaValues | None = None,
                   confidence: float = 0.95) -> Comparison:
    """Compare two to four places (partnership or custom-area ids) on a measure: the one asked
    for, else the first place's default map if it holds them all (:func:`compare_view`).
    ``values``: the measure's area values when the caller has them (the service's cache);
    made here otherwise, under ``disclosure`` when given."""
    partnerships = find_places(check_places(list(place_ids)))
    view = compare_view(store, partnerships, geography, indicator, denominator)
    measure = resolve_measure(store, *view)
    places = resolve_places(store, partnerships, measure.set_id)
    if values is None or values.measure != measure:
        values = area_values(store, measure, disclosure=disclosure)
    return describe(store, compare_values(values, places, confidence))


# -- in words --------------------------------------------------------------------------------------

def _possessive(name: str) -> str:
    """``Glasgow's``; ``Heads of the Valleys'``; ``Swansea Bay's`` for "Swansea Bay (DAF
    partnership)": a name's closing qualifier is the table's and the key's, not the sentence's."""
    name = re.sub(r"\s*\([^()]*\)$", "", name) or name
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _points(value: float, digits: int) -> str:
    text = f"{abs(value):.{digits}f}"
    return f"−{text}" if value < 0 and float(text) != 0 else text


def difference_sentence(name_a: str, name_b: str, difference: float, low: float, high: float) -> str:
    """One pair's difference in words, with its 95% interval (signed as the words read) and
    whether it is real or within noise.

    >>> difference_sentence("Glasgow", "Dundee", -0.5, -1.3, 0.3)
    "Glasgow's rate is 0.5 points lower than Dundee's (−0.3 to 1.3): within noise."
    >>> difference_sentence("Glasgow", "Dundee", float("nan"), float("nan"), float("nan"))
    'Glasgow and Dundee cannot be compared in this period: one of them has no figure.'
    """
    if not math.isfinite(difference):
        return f"{name_a} and {name_b} cannot be compared in this period: one of them has no figure."
    # as the words read: "lower by 0.5 (from −0.3 to 1.3)" is the interval of b − a
    size, lo, hi = (difference, low, high) if difference >= 0 else (-difference, -high, -low)
    what = verdict(low, high)

    def digits(*values: float) -> int:
        # a figure near zero keeps a second decimal: not "0.0 points", nor "(0.0 to 0.9)" for
        # an interval that reaches just below zero
        return 2 if any(v != 0 and round(abs(v), 1) == 0 for v in values if math.isfinite(v)) else 1

    ending = {"real": "a real difference", "within noise": "within noise"}.get(what or "", "no interval")
    ends = digits(lo, hi)
    interval = f" ({_points(lo, ends)} to {_points(hi, ends)})" if what else ""
    digits_size = digits(size)
    if round(size, digits_size) == 0:
        return f"{_possessive(name_a)} rate is the same as {_possessive(name_b)}{interval}: {ending}."
    direction = "higher" if difference > 0 else "lower"
    unit = "point" if round(size, digits_size) == 1 else "points"
    return (f"{_possessive(name_a)} rate is {_points(size, digits_size)} {unit} {direction} than "
            f"{_possessive(name_b)}{interval}: {ending}.")
