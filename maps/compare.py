"""The compare page: two to four places (partnerships or custom areas) on one chart, in one
table, and each pair's difference in a sentence saying whether it is real or within noise.

The page only formats what :mod:`geo_cs.compare` computes. It holds no script of its own (the
Content-Security-Policy forbids one): ``static/geo-cs/compare.js`` keeps the picker to four
places, and the page works without it (the form is a plain GET, which the service turns into
the page's own address).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from geo_cs.attribution import OGL_ATTRIBUTION
from geo_cs.compare import MAX_PLACES, NUMBER_WORDS, PLACE_ID, Comparison, parse_places
from geo_cs.errors import GeoCsError
from geo_cs.layers import ViewChoice
from geo_cs.maps import asset_url
from geo_cs.maps.page import TEMPLATES


@dataclass(frozen=True)
class CompareRequest:
    """What a person asked to compare (the page's query parameters)."""

    places: tuple[str, ...] = ()
    geography: str | None = None
    indicator: str | None = None
    denominator: str | None = None
    period: str | None = None

    def query(self, *, period: bool = True, places: tuple[str, ...] | None = None) -> dict[str, str]:
        """The parameters as an address carries them (none left empty)."""
        out = {"places": ",".join(self.places if places is None else places), "geography": self.geography,
               "indicator": self.indicator, "denominator": self.denominator,
               "period": self.period if period else None}
        return {k: v for k, v in out.items() if v}

    def url(self, fmt: str | None = None, **extra: str) -> str:
        """``/maps/compare`` (or its ``.svg``, ``.png``, ``.csv``, ``.json``) for this request.

        >>> CompareRequest(("glasgow", "dundee"), period="simd2020").url("svg", highlight="simd2020")
        '/maps/compare.svg?places=glasgow%2Cdundee&period=simd2020&highlight=simd2020'
        """
        return f"/maps/compare{'.' + fmt if fmt else ''}?{urlencode({**self.query(), **extra})}"


def from_form(was: str | None, picked: list[str], pasted: str | None, view: str | None,
              from_view: str | None, req: CompareRequest) -> CompareRequest:
    """The request a submitted picker asks for: the places ticked (``place``) and pasted
    (``custom``: ids or links), those chosen before (``was``) keeping their order (the picker
    lists places by name), the measure chosen (``view``: ``geography|indicator|denominator``;
    empty: the first place's own map) and the period, which a new measure drops (its periods
    are others).

    >>> asked = from_form("glasgow,edinburgh", ["dundee", "glasgow"], "https://x/maps/rhyl",
    ...                   "wpc2010|claimants|", "a|b|", CompareRequest(period="simd2020"))
    >>> asked.places, asked.geography, asked.indicator, asked.denominator, asked.period
    (('glasgow', 'dundee', 'rhyl'), 'wpc2010', 'claimants', None, None)
    """
    chosen = parse_places(*picked, pasted)
    before = [p for p in parse_places(was) if p in chosen]
    ids = tuple(dict.fromkeys([*before, *chosen]))
    geography, indicator, denominator, period = req.geography, req.indicator, req.denominator, req.period
    if view:
        geography, indicator, denominator = ([*view.split("|"), "", ""][:3])
        if view != from_view:
            period = None
    return CompareRequest(ids, geography or None, indicator or None, denominator or None, period)


def download_name(comparison: Comparison, extension: str) -> str:
    """``compare_glasgow_dundee_employment_deprived.csv``: the places (a custom area by the
    start of its id) and the measure.

    >>> from geo_cs.compare import Place
    >>> from geo_cs.layers import Measure
    >>> import pandas as pd
    >>> c = Comparison(Measure("wpc2010", "claimants", ("c",), "count", "Claimants", None),
    ...                [Place("glasgow", "Glasgow", ()), Place("area-QUJDREVGR0hJSktM", "Mine", ())],
    ...                pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    >>> download_name(c, "csv")
    'compare_glasgow_area-QUJDREVG_claimants.csv'
    """
    parts = ["compare", *(p.id[:13] for p in comparison.places), comparison.measure.name]
    stem = "_".join(re.sub(r"[^A-Za-z0-9_\-]+", "-", p).strip("-") for p in parts if p)
    return f"{stem}.{extension}"


def _view_value(geography: str | None, indicator: str | None, denominator: str | None) -> str:
    return f"{geography or ''}|{indicator or ''}|{denominator or ''}"


def _cell(rate: float, low: float, high: float) -> dict | None:
    if rate != rate:   # NaN: no figure
        return None
    return {"rate": f"{rate:.1f}%", "interval": f"{low:.1f} to {high:.1f}"}


def render_compare_page(req: CompareRequest, partnerships: list[dict], *,
                        comparison: Comparison | None = None, choices: list[ViewChoice] | None = None,
                        names: dict[str, str] | None = None, problem: tuple[str, str] | None = None,
                        detail: str | None = None, disclosure_note: str | None = None) -> str:
    """The compare page: the picker (every partnership, ticked if chosen, and the custom areas
    chosen), and when a comparison was made the chart, its downloads, the table of rates side by
    side and each pair's difference in words; or what went wrong, in words (``problem``: title
    and sentence), with the technical ``detail`` folded away.

    ``partnerships``: id and name of each, for the picker; ``names``: the chosen places' names
    (custom areas among them); ``choices``: the measures every chosen place can be compared on.
    """
    names = dict(names or {})
    listed = {p["id"] for p in partnerships}
    picker = [{**p, "checked": p["id"] in req.places} for p in partnerships]
    custom = [{"id": pid, "name": names.get(pid, "Custom area")} for pid in req.places if pid not in listed]
    context: dict = {
        "req": req, "picker": picker, "custom": custom, "max_places": MAX_PLACES,
        "max_words": NUMBER_WORDS[MAX_PLACES], "chosen": len(req.places), "problem": problem,
        "detail": detail, "attribution": OGL_ATTRIBUTION, "disclosure": disclosure_note,
        "css": asset_url("geo-cs/map.css"), "js": asset_url("geo-cs/compare.js"),
        "from_view": _view_value(req.geography, req.indicator, req.denominator),
        "was": ",".join(req.places),
    }
    chosen_view = _view_value(req.geography, req.indicator, req.denominator)
    context["choices"] = [{"value": _view_value(c.geography, c.indicator, c.denominator),
                           "label": c.label, "group": c.geography_label,
                           "selected": _view_value(c.geography, c.indicator, c.denominator) == chosen_view}
                          for c in (choices or [])]
    if comparison is not None:
        period = comparison.check_period(req.period)
        shown = CompareRequest(tuple(p.id for p in comparison.places), comparison.measure.set_id,
                               comparison.measure.name, comparison.measure.denominator, req.period)
        context["from_view"] = _view_value(shown.geography, shown.indicator, shown.denominator)
        if not any(c["selected"] for c in context["choices"]):
            context["choices"].append({"value": context["from_view"], "label": comparison.label,
                                       "group": comparison.geography_label, "selected": True})
        rates = comparison.rates.set_index(["period_id", "place"])
        rows = []
        for r in comparison.periods.itertuples():
            cells = [_cell(*rates.loc[(r.period_id, p.id), ["rate", "low", "high"]].astype(float))
                     for p in comparison.places]
            rows.append({"id": r.period_id, "label": r.period_label, "cells": cells,
                         "current": r.period_id == period})
        map_query = {"geography": shown.geography, "indicator": shown.indicator,
                     "denominator": shown.denominator}
        context.update({
            "comparison": comparison, "period": period, "period_label": comparison.period_label(period),
            "periods": comparison.periods.to_dict("records"), "rows": rows,
            "sentences": comparison.sentences(period), "notes": comparison.notes(period),
            "places": [{"id": p.id, "name": p.name, "areas": len(p.codes),
                        "map": f"/maps/{p.id}?{urlencode({k: v for k, v in map_query.items() if v})}"}
                       for p in comparison.places],
            "chart": shown.url("svg", highlight=period),
            "downloads": [{"label": fmt.upper(), "url": shown.url(fmt, **({"highlight": period}
                                                                           if fmt == "png" else {})),
                           "name": download_name(comparison, fmt)} for fmt in ("png", "svg", "csv")],
            "json": shown.url("json"),
            "source": comparison.source,
            "disclosure": (comparison.disclosure.note if comparison.disclosure is not None
                           else disclosure_note),
        })
    return TEMPLATES.get_template("compare.html").render(**context)


#: A compare error's words, by the start of the core's message (geo_cs.compare).
_COMPARE_WORDS: tuple[tuple[str, str, str], ...] = (
    (r"^places: no place called", "We could not find {what}",
     "There is no partnership or custom area called {what}. Tick places from the list, or paste the "
     "whole link of a custom area you made."),
    (r"^places: choose two to four", "Choose two to four places",
     "Tick two, three or four places to compare, or paste a custom area's link. {what}"),
    (r"^places: .*is not a place", "That is not a place we know",
     "Something in the places could not be read as a partnership or a custom area ({what}). Tick "
     "places from the list, or paste the whole link of a custom area."),
    (r"^places\b", "Choose two to four places",
     "Tick two, three or four places to compare, or paste a custom area's link."),
    (r"^geography: no map", "These places have no measure in common",
     "No measure we hold covers all of these places by default. Choose one under “Compare on”, or "
     "compare places of the same nation."),
    (r"^geography\b|no \S+ areas", "These places cannot be compared on those areas",
     "{what}. Choose another measure under “Compare on”."),
    (r"^indicator\b|^measure\b|^denominator\b", "This measure cannot be compared",
     "Places can be compared only on a rate: a count of people over a population (such as "
     "employment-deprived people or claimants). Choose one under “Compare on”."),
    (r"^figures:", "No figures for these places",
     "None of these places has a figure on this measure (where figures are published under "
     "disclosure control, areas with few people are withheld). Choose another measure or other places."),
    (r"^period\b", "This period is not in the comparison",
     "The period in the address is not one this measure covers. Choose a period from the list."),
)


def explain_compare_error(status: int, detail: str) -> tuple[str, str]:
    """(title, sentence) for a person whose comparison could not be made, in words about their
    task; the technical ``detail`` stays in the problem+json (and folded away on the page).

    >>> explain_compare_error(404, "places: no place called 'nowhere'; choose partnerships ...")[1][:54]
    'There is no partnership or custom area called “nowhere'
    >>> explain_compare_error(400, "places: choose two to four places to compare; you chose one (glasgow)")[1]
    "Tick two, three or four places to compare, or paste a custom area's link. You chose one (glasgow)."
    """
    for pattern, title, words in _COMPARE_WORDS:
        if re.search(pattern, detail):
            quoted = re.findall(r"'([^']*)'", detail)
            if pattern.startswith("^places: no place"):
                what = " and ".join(f"“{q}”" for q in quoted) or "that place"
            elif pattern.startswith("^places: choose"):
                found = re.search(r"you chose (.*)$", detail)
                what = f"You chose {found.group(1)}." if found else ""
            elif pattern.startswith("^places: .*is"):
                what = ", ".join(f"“{q}”" for q in quoted)
            else:
                found = re.match(r"^geography: (.*?)(?: \(|;|$)", detail)
                what = found.group(1) if found else detail
            return title.format(what=what), words.format(what=what).strip()
    if status >= 500:
        return ("Something went wrong", "Something went wrong while comparing these places. It has "
                                        "been logged; please try again later.")
    return ("These places could not be compared",
            "The address asks for something we cannot compare. Choose the places again below.")


def compare_error_page(status: int, detail: str, query: dict[str, str]) -> str:
    """The compare page for a request refused before it was read (a parameter too long, say):
    the picker with the problem in words (:func:`explain_compare_error`), the places of the
    address ticked where they can be read."""
    from geo_cs.partnerships import load_partnerships

    try:
        places = tuple(parse_places(query.get("places")))
    except GeoCsError:
        places = ()
    req = CompareRequest(places if all(PLACE_ID.match(p) for p in places) else ())
    partnerships = sorted(({"id": p.id, "name": p.phase_at(None).name} for p in load_partnerships().values()),
                          key=lambda p: p["name"])
    return render_compare_page(req, partnerships, problem=explain_compare_error(status, detail),
                               detail=detail)
