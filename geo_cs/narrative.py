"""The answer in words: is the gap between a partnership's worst-performing neighbourhoods and
the rest of it closing?

One sentence per partnership, from its NI 153 table (:func:`geo_cs.analysis.ni153`), decided by
:func:`geo_cs.analysis.classify_changes` — so the words say "a real change" only when the change
is beyond the method's tolerance *and* its 95% interval excludes zero, and "not distinguishable
from no change" otherwise. The sentence ends with the rule it used (the threshold and the
baseline). When a partnership has no worst-performing neighbourhoods at the threshold, the
sentence says why (the highest baseline rate) and offers a threshold that would pick some. A
measure that cannot give a gap (a published rate without its counts, a score, a rank, a
decile) gets :func:`no_gap_sentence` instead: what the map shows, why there is no gap, and
what would give one. The web map and the exports show the same sentences.

The words for a measure live here too (:func:`area_words`, :func:`legend_title`,
:func:`low_is_worse`), so the web map and the print map say the same thing.

A survey rate (the Annual Population Survey's employment rate) gets :func:`survey_sentence`:
the partnership's rate with its 95% interval against the benchmark, and whether the gap is real
by its interval (no verdict without published intervals); :func:`survey_notes` says what the
districts marked in the file (unreliable, missing) do to the figure, in words.

>>> import pandas as pd
>>> table = pd.DataFrame({
...     "partnership": ["glasgow", "glasgow"], "period_id": ["2012", "2020"],
...     "period_label": ["SIMD 2012", "SIMD 2020"], "gap": [20.4, 18.1], "gap_low": [19.6, 17.4],
...     "gap_high": [21.2, 18.8], "cohort_rate": [30.0, 27.0], "cohort_rate_low": [29.0, 26.0],
...     "cohort_rate_high": [31.0, 28.0], "n_cohort": [34, 34]})
>>> print(gap_sentence(table, "Glasgow", MethodParams(baseline=("2012",))))
... # doctest: +NORMALIZE_WHITESPACE
The gap between the 34 worst-performing neighbourhoods and the rest of Glasgow narrowed from
20.4 to 18.1 points between SIMD 2012 and SIMD 2020 — a real change (95% interval of the change
-3.4 to -1.2 points). Threshold: a baseline rate above 25%; baseline: SIMD 2012.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo_cs.analysis import MethodParams, classify_changes
from geo_cs.geography import AREA_WORDS, area_words  # noqa: F401 (their home was here)
from geo_cs.layers import AreaValues, sentence_case

#: Measures whose high end is good (more people in work): their legend says so.
_HIGH_IS_GOOD = re.compile(r"\b(employment rate|in employment|economic activity rate|economically active"
                           r"|qualifi|life expectancy)", re.I)


def high_is_good(label: str) -> bool:
    """Whether a higher value of the measure labelled ``label`` is better (an employment rate,
    not an employment *deprivation* rate).

    >>> high_is_good("Employment rate (APS)"), high_is_good("Employment deprivation rate (%)")
    (True, False)
    """
    return bool(_HIGH_IS_GOOD.search(label)) and "depriv" not in label.lower()


def low_is_worse(kind: str, label: str) -> bool:
    """Whether the worst areas have the *lowest* values: ranks and deciles of the indices of
    deprivation (1 = most deprived), and measures whose high end is good. Maps colour the worst
    darkest, so these take the palette reversed.

    >>> low_is_worse("rank", "Employment domain rank (1 = most deprived)")
    True
    >>> low_is_worse("count", "Claimants"), low_is_worse("rank", "Rank (1 = least deprived)")
    (False, False)
    """
    text = label.lower()
    if "1 = least deprived" in text:
        return False
    if kind in ("rank", "decile") or "1 = most deprived" in text:
        return True
    return high_is_good(label)


def _lower_first(text: str) -> str:
    """``text`` to run on inside a sentence: its first letter lower case, unless it starts an
    acronym (IMD, SIMD)."""
    if len(text) > 1 and text[:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def legend_title(kind: str, label: str, unit: str = "") -> str:
    """The legend's title: the measure and which way its colours run.

    >>> legend_title("rank", "Employment domain rank (1 = most deprived)")
    'Employment domain rank (1 = most deprived): darker areas are more deprived'
    >>> legend_title("rate", "Employment rate", "%")
    'Employment rate (%): higher is better, so the darkest areas are the lowest'
    >>> legend_title("count", "claimants", "%")
    'Claimants (%): darker areas are higher'
    >>> legend_title("survey", "Employment rate - aged 16-64", "%")
    'Employment rate, % of people aged 16-64: higher is better, so the darkest areas are the lowest'
    """
    name = sentence_case(label)
    if kind == "survey":
        name = survey_label(label)     # what the rate is a share of says its unit
    elif unit and unit not in name:
        name += f" ({unit})"
    if kind in ("rank", "decile") and low_is_worse(kind, label):
        return f"{name}: darker areas are more deprived"
    if high_is_good(label):
        return f"{name}: higher is better, so the darkest areas are the lowest"
    return f"{name}: darker areas are higher"


def baseline_words(baseline: tuple[str, ...] | list[str], labels: dict[str, str]) -> str:
    """The baseline's periods in words: one label, or the first and last of a run.

    >>> baseline_words(("2010-05", "2011-02"), {"2010-05": "May 2010", "2011-02": "February 2011"})
    'May 2010 to February 2011'
    """
    names = [labels.get(p, p) for p in baseline]
    if not names:
        return ""
    return names[0] if len(names) == 1 else f"{names[0]} to {names[-1]}"


@dataclass(frozen=True)
class ThresholdHint:
    """Why a partnership has no worst-performing neighbourhoods, and a threshold that would give
    it some: ``suggested`` picks ``n_at_suggested`` of its areas."""

    highest: float
    suggested: float
    n_at_suggested: int


def threshold_hint(baseline_rates: pd.Series | np.ndarray, share: float = 0.1,
                   below: float | None = None) -> ThresholdHint | None:
    """A whole-number threshold that about ``share`` of the areas' baseline rates exceed (None
    without rates, or when it would not be below ``below``, the threshold in use: a hint that
    repeats the threshold the sentence already refused would loop).

    >>> threshold_hint(pd.Series([5.0, 10.0, 12.5, 18.0, 21.3]))
    ThresholdHint(highest=21.3, suggested=19.0, n_at_suggested=1)
    >>> threshold_hint(pd.Series([5.0, 27.8]), below=20) is None
    True
    """
    rates = pd.Series(baseline_rates, dtype=float).dropna()
    if rates.empty:
        return None
    suggested = float(math.floor(rates.quantile(1 - share)))
    if not (rates > suggested).any():
        suggested = float(math.floor(rates.max()) - 1)
    if below is not None and suggested >= below:
        return None
    return ThresholdHint(round(float(rates.max()), 1), suggested, int((rates > suggested).sum()))


def possessive(name: str) -> str:
    """``name``'s, or ``name``' for a name ending in s.

    >>> possessive("Rhyl"), possessive("Heads of the Valleys")
    ("Rhyl's", "Heads of the Valleys'")
    """
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _points(value: float) -> str:
    return f"{value:.1f}"


def _plural(n: int, words: tuple[str, str]) -> str:
    return words[0] if n == 1 else words[1]


def gap_sentence(table: pd.DataFrame, partnership_name: str, params: MethodParams | None = None,
                 hint: ThresholdHint | None = None, *,
                 areas: tuple[str, str] = ("neighbourhood", "neighbourhoods"),
                 rest_of: str | None = None) -> str:
    """The plain sentence for one partnership's NI 153 table (its rows in time order), ending
    with the rule it used: the threshold and the baseline (``params``).

    ``hint``: for a partnership with no worst-performing neighbourhoods, what to say instead
    (from :func:`threshold_hint` on its areas' baseline rates). ``areas``: what its areas are
    called (:func:`area_words`): constituencies are not neighbourhoods. ``rest_of``: the
    whole the worst-performing areas are compared with, when it is not ``partnership_name``
    itself (a custom area against the rest of the partnership it lies in).
    """
    params = params or MethodParams()
    labels = (dict(zip(table["period_id"], table["period_label"], strict=True))
              if {"period_id", "period_label"} <= set(table.columns) else {})
    baseline = baseline_words(params.baseline or (), labels)
    rows = table[table["gap"].notna()] if "gap" in table else table.iloc[0:0]
    n_cohort = int(table["n_cohort"].max()) if "n_cohort" in table and len(table) else 0
    one, many = areas
    if n_cohort == 0:
        in_baseline = f" (baseline: {baseline})" if baseline else ""
        text = (f"No {one} of {partnership_name} has a baseline rate above {params.threshold:g}%"
                f"{in_baseline}, so there are no worst-performing {many} to track")
        if hint is not None:
            text += (f" (the highest is {hint.highest:.1f}%). A threshold of {hint.suggested:g}% would "
                     f"pick the {hint.n_at_suggested} {_plural(hint.n_at_suggested, areas)} above it.")
        else:
            text += "."
        return text
    # the rule the figures rest on, in words without hyphens (a report may break a line at one)
    rule = f" Threshold: a baseline rate above {params.threshold:g}%" + (
        f"; baseline: {baseline}." if baseline else ".")
    cohort = f"{n_cohort} worst-performing {_plural(n_cohort, areas)}"
    if rest_of:
        cohort, partnership_name = f"{cohort} of {partnership_name}", rest_of
    if rows.empty:
        return f"There are {cohort} in {partnership_name}, but no period has a gap to report." + rule
    first, last = rows.iloc[0], rows.iloc[-1]
    label = (lambda r: r["period_label"]) if "period_label" in rows else (lambda r: r["period_id"])
    if len(rows) == 1:
        return (f"The gap between the {cohort} and the rest of {partnership_name} is "
                f"{_points(first['gap'])} points in {label(first)}; a change needs a second period." + rule)
    change = classify_changes(rows.assign(partnership="p"), first["period_id"], last["period_id"],
                              params).iloc[0]
    low, high = change["gap_change_low"], change["gap_change_high"]
    interval = f"95% interval of the change {low:.1f} to {high:.1f} points"
    verb = "narrowed" if abs(last["gap"]) < abs(first["gap"]) else "widened"
    if change["gap_direction"] in ("closed", "widened"):
        verdict = f"a real change ({interval})"
    elif change["gap_change_within_noise"]:
        verdict = f"not distinguishable from no change ({interval})"
    else:
        verb = "stayed about the same"
        verdict = f"a change of less than {params.tolerance_pp:g} points counts as no change"
    if verb == "stayed about the same":
        moved = f"stayed about the same ({_points(first['gap'])} and {_points(last['gap'])} points)"
    else:
        moved = f"{verb} from {_points(first['gap'])} to {_points(last['gap'])} points"
    return (f"The gap between the {cohort} and the rest of {partnership_name} {moved} between "
            f"{label(first)} and {label(last)} — {verdict}." + rule)


@dataclass(frozen=True)
class Alternative:
    """Another map of the same partnership that gives the gap: its label and its areas."""

    label: str
    geography_label: str


def gives_gap(values: AreaValues, codes: list[str]) -> bool:
    """Whether a map can show the worst-performing neighbourhoods and the gap (NI 153): only a
    count of people over their population can, for the partnership's areas. A rate published
    without its counts cannot be summed over a set of areas, and a score, rank or decile counts
    no one (issue 28: such maps outlined areas as worst while every figure read n/a)."""
    if not (values.measure.is_rate and values.unit == "%"):
        return False
    mine = values.frame[values.frame["code"].isin(codes)]
    return bool(mine["denominator"].notna().any())


def source_line(sources: pd.DataFrame) -> str:
    """``Source: …`` in words from :func:`geo_cs.layers.measure_sources` (title, publisher):
    editions of one publication share its name ("Scottish Index of Multiple Deprivation 2012,
    2016 and 2020 (Scottish Government)").

    >>> print(source_line(pd.DataFrame({"title": ["SIMD 2012", "SIMD 2020", "NRS estimates"],
    ...                                 "publisher": ["Scot Gov", "Scot Gov", "NRS"]})))
    Source: SIMD 2012 and 2020 (Scot Gov); NRS estimates (NRS).
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for title, publisher in zip(sources["title"], sources["publisher"], strict=True):
        found = re.match(r"^(.*?)\s+((?:19|20)\d\d)$", str(title))
        stem, year = (found.group(1), found.group(2)) if found else (str(title), "")
        groups.setdefault((stem, str(publisher or "")), []).append(year)
    parts = []
    for (stem, publisher), years in groups.items():
        years = sorted(y for y in years if y)
        name = stem if not years else f"{stem} {years[0]}" if len(years) == 1 else (
            f"{stem} {', '.join(years[:-1])} and {years[-1]}")
        parts.append(f"{name} ({publisher})" if publisher else name)
    return "Source: " + "; ".join(parts) + "." if parts else ""


def no_gap_sentence(partnership_name: str, kind: str, label: str, unit: str,
                    areas: tuple[str, str], latest: pd.DataFrame, *,
                    nation: str | None = None, alternative: Alternative | None = None,
                    offer: bool = True) -> str:
    """What a map of a measure that cannot give a gap tells, why it shows no worst-performing
    areas or gap, and what would give them.

    ``latest``: the partnership's areas in the period shown (``name``, ``value``); ``nation``:
    the one nation its areas are in (ranks are within a nation); ``alternative``: a map of the
    partnership that does give the gap. ``offer``: whether the reader can choose another map
    (on the web page, not on paper).

    >>> latest = pd.DataFrame({"name": ["Rhyl West 2", "Rhyl East 1"], "value": [3.0, 900.0]})
    >>> print(no_gap_sentence("Rhyl", "rank", "Employment domain rank (1 = most deprived)", "",
    ...                       ("neighbourhood", "neighbourhoods"), latest, nation="Wales"))
    ... # doctest: +NORMALIZE_WHITESPACE
    Darker neighbourhoods are more deprived. The most deprived of Rhyl's 2 neighbourhoods is
    Rhyl West 2 (rank 3, where 1 is the most deprived in Wales). A rank compares areas but does
    not count people, so this map cannot pick out worst-performing neighbourhoods or show the gap
    between them and the rest of Rhyl. That needs a count of people (such as benefit claimants)
    with the working-age population of each neighbourhood, and none is loaded for Rhyl.
    """
    one, many = areas
    shown = latest.dropna(subset=["value"])
    worst_low = low_is_worse(kind, label)
    facts = []
    n = len(latest)
    if not shown.empty:
        row = shown.loc[shown["value"].idxmin() if worst_low else shown["value"].idxmax()]
        name = row["name"] if isinstance(row["name"], str) and row["name"] else "one area"
        value = float(row["value"])
        whole = value == round(value)
        shown_value = f"{value:,.0f}" if whole else f"{value:,.1f}"
        where = f" in {nation}" if nation else ""
        owner = f"{possessive(partnership_name)} {n} {_plural(n, areas)}"
        if kind == "rank":
            facts.append(f"Darker {many} are more deprived. The most deprived of {owner} is {name} "
                         f"(rank {shown_value}, where 1 is the most deprived{where}).")
        elif kind == "decile":
            first = int((shown["value"] == 1).sum())
            facts.append(f"Darker {many} are more deprived. {first} of {owner} "
                         f"{'is' if first == 1 else 'are'} among the most deprived tenth{where} (decile 1).")
        else:
            extreme = "lowest" if worst_low else "highest"
            unit_text = "%" if unit == "%" else ""
            facts.append(f"The {extreme} {_lower_first(label)} of {owner} is {shown_value}{unit_text}, "
                         f"in {name}.")
    why = {
        "rate": "These rates were published without the numbers of people behind them and cannot be "
                "added up",
        "score": "A score ranks areas but does not count people",
        "rank": "A rank compares areas but does not count people",
        "decile": "A decile compares areas but does not count people",
        "count": "These are numbers of people, not shares of a population",
    }.get(kind, "This measure is not a rate of people")
    facts.append(f"{why}, so this map cannot pick out worst-performing {many} or show the gap between "
                 f"them and the rest of {partnership_name}.")
    if alternative is not None and offer:
        facts.append(f"Choose “{alternative.label}” ({alternative.geography_label}) under “Map of” "
                     "to see them.")
    elif not offer:
        facts.append(f"That needs a count of people (such as benefit claimants) with the working-age "
                     f"population of each {one}.")
    else:
        facts.append(f"That needs a count of people (such as benefit claimants) with the working-age "
                     f"population of each {one}, and none is loaded for {partnership_name}.")
    return " ".join(facts)


# -- survey estimates (the Annual Population Survey): rates with their published intervals ------

#: What a district's marker in a survey file means, in words (never a number: :mod:`geo_cs.survey`).
MARKER_WORDS = {
    "unreliable": "unreliable (survey sample of 3 to 9 people)",
    "missing": "missing (not published)",
    "withheld": "withheld (survey sample of 0 to 2 people, not published)",
}

#: A verdict that needs intervals where at least one is not published.
CANNOT_SAY = "real or not, cannot say: no interval published"

_AGED = re.compile(r"^\s*(?P<what>.*?)\s*[-–]\s*aged\s+(?P<ages>\d+\s*(?:-|to)\s*\d+|\d+\s*\+)\s*$", re.I)


def _survey_parts(label: str) -> tuple[str, str]:
    """(what, ages) of a Nomis variable's name: ``("Employment rate", "16-64")``; ages "" when
    the name gives none."""
    found = _AGED.match(label)
    if found is None:
        return label.strip(), ""
    return found.group("what").strip(), re.sub(r"\s+", "", found.group("ages"))


def survey_population(label: str) -> str:
    """Who a survey rate is a share of, in words: the employment rate and the inactivity rate
    are shares of everyone of the ages; the unemployment rate is a share of those in work or
    looking for it (the economically active).

    >>> survey_population("Employment rate - aged 16-64")
    'people aged 16-64'
    >>> survey_population("Unemployment rate - aged 16-64")
    'economically active people aged 16-64'
    """
    what, ages = _survey_parts(label)
    people = f"people aged {ages}" if ages else "people"
    return f"economically active {people}" if "unemploy" in what.lower() else people


def survey_label(label: str) -> str:
    """A survey rate's name for a legend or a list: what it is and what it is a share of.

    >>> survey_label("Employment rate - aged 16-64")
    'Employment rate, % of people aged 16-64'
    >>> survey_label("% who are economically inactive - aged 16-64")
    'Economically inactive, % of people aged 16-64'
    """
    what, _ = _survey_parts(label)
    what = re.sub(r"^%\s*(who are\s+)?", "", what).strip()
    return f"{sentence_case(what)}, % of {survey_population(label)}"


def percent(value: float) -> str:
    """A rate in words: one decimal and a per cent sign (``72.7%``)."""
    return f"{value:.1f}%"


def has_interval(half_width: float | None) -> bool:
    return half_width is not None and not (isinstance(half_width, float) and math.isnan(half_width)) \
        and not pd.isna(half_width)


def interval_words(rate: float, half_width: float | None) -> str:
    """A survey rate with its 95% interval in words, or saying none is published.

    >>> interval_words(72.6947, 1.0355)
    '72.7% (95% interval 71.7% to 73.7%)'
    >>> interval_words(71.9, float("nan"))
    '71.9% (no interval published)'
    """
    if not has_interval(half_width):
        return f"{percent(rate)} (no interval published)"
    return f"{percent(rate)} (95% interval {percent(rate - half_width)} to {percent(rate + half_width)})"


def _magnitude_interval(diff: float, half_width: float) -> tuple[float, float]:
    """The interval of a difference in the direction it is told ("3.1 points below": 2.0 to
    4.1), its low end negative when it includes 0."""
    size = abs(diff)
    return size - half_width, size + half_width


def difference_verdict(diff: float, half_width: float | None, real: bool | None,
                       subject: str = "the difference") -> str:
    """Whether a difference between two survey rates is real, in words: real only when its 95%
    interval does not include 0 (:func:`geo_cs.stats.survey_difference`); no verdict without
    intervals. ``map.js``'s ``differenceVerdict`` says the same.

    >>> difference_verdict(-3.064, 1.019, True, "the gap")
    'the gap is real: its interval, 2.0 to 4.1 points, does not include 0'
    >>> difference_verdict(1.2, 2.5, False)
    'the difference is not shown to be real: its interval, -1.3 to 3.7 points, includes 0'
    >>> difference_verdict(1.2, float("nan"), None)
    'real or not, cannot say: no interval published'
    """
    if real is None or not has_interval(half_width):
        return CANNOT_SAY
    low, high = _magnitude_interval(diff, half_width)
    span = f"its interval, {low:.1f} to {high:.1f} points,"
    if real:
        return f"{subject} is real: {span} does not include 0"
    return f"{subject} is not shown to be real: {span} includes 0"


def _against(diff: float, other: str) -> str:
    """``3.1 points below Great Britain (75.8%)``; level when it rounds to no difference."""
    size = abs(diff)
    if round(size, 1) == 0:
        return f"level with {other}"
    return f"{size:.1f} points {'below' if diff < 0 else 'above'} {other}"


def survey_sentence(partnership_name: str, label: str, period_label: str, rate: float,
                    half_width: float | None, benchmark: str, benchmark_rate: float,
                    gap: float, gap_half_width: float | None, gap_real: bool | None) -> str:
    """The map's answer for a survey rate: the partnership's rate in a period with its 95%
    interval, against the benchmark (Great Britain, or the nearest the data hold), and whether
    the gap is real by its interval (:func:`geo_cs.survey.employment_rates`).

    >>> print(survey_sentence("Greater Manchester", "Employment rate - aged 16-64", "Jan 2019-Dec 2019",
    ...                       72.6947, 1.0355, "Great Britain", 75.7591, -3.0644, 1.0192, True))
    ... # doctest: +NORMALIZE_WHITESPACE
    In Jan 2019-Dec 2019, 72.7% of Greater Manchester's people aged 16-64 were in work (95% interval
    71.7% to 73.7%), 3.1 points below Great Britain (75.8%); the gap is real: its interval, 2.0 to
    4.1 points, does not include 0.
    """
    what, _ = _survey_parts(label)
    people = survey_population(label)
    interval = interval_words(rate, half_width).removeprefix(percent(rate) + " ")
    lowered = what.lower()
    if "unemploy" not in lowered and "employment rate" in lowered:
        told = f"{percent(rate)} of {possessive(partnership_name)} {people} were in work {interval}"
    elif "inactive" in lowered:
        told = (f"{percent(rate)} of {possessive(partnership_name)} {people} were economically inactive "
                f"{interval}")
    else:
        name = _lower_first(sentence_case(re.sub(r"^%\s*", "", what)))
        told = f"{possessive(partnership_name)} {name} ({people}) was {percent(rate)} {interval}"
    # a place keeps its capital; the file's own benchmark ("All 72 districts of ...") runs on
    against = _against(gap, f"{re.sub(r'^All ', 'all ', benchmark)} ({percent(benchmark_rate)})")
    return (f"In {period_label}, {told}, {against}; "
            f"{difference_verdict(gap, gap_half_width, gap_real, 'the gap')}.")


def survey_notes(partnership_name: str, marked: list[tuple[str, str]], districts: int) -> list[str]:
    """What the partnership's districts marked in the survey file do to its figure, in words:
    ``marked`` is (name, marker) of each, ``districts`` how many it has.

    >>> for note in survey_notes("South Yorkshire", [("Rotherham", "unreliable")], 4):
    ...     print(note)                                      # doctest: +NORMALIZE_WHITESPACE
    Rotherham's estimate is unreliable (survey sample of 3 to 9 people), so the map shows no figure
    for it. It is in South Yorkshire's rate, but not in its interval, which is a little too narrow.
    """
    out = []
    absent = [name for name, marker in marked if marker != "unreliable"]
    for name, marker in marked:
        if marker == "unreliable":
            out.append(f"{possessive(name)} estimate is {MARKER_WORDS[marker]}, so the map shows no figure "
                       f"for it. It is in {possessive(partnership_name)} rate, but not in its interval, "
                       "which is a little too narrow.")
        else:
            out.append(f"{possessive(name)} figure is {MARKER_WORDS.get(marker, marker)}.")
    if absent:
        rest = districts - len(absent)
        out.append(f"{possessive(partnership_name)} rate covers its other {rest} "
                   f"{'district' if rest == 1 else 'districts'}.")
    return out
