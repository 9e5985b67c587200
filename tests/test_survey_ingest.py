"""Ingest of survey estimates (issue 29) on small files written here, in the two shapes Nomis
gives the Annual Population Survey: the web download (preamble, header, ``lacu:``/``ladu:``
rows, footer) and the API's long form. No spec is given anywhere: the shape is recognised."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli

from geo_cs.errors import InputError
from geo_cs.ingest import ingest_indicator, ingest_lookup
from geo_cs.ingest.survey import ingest_survey, survey_shape
from geo_cs.store import Store

#: The district code history the edition is decided from (a few lines of the real list).
LAD_CHANGES = """oldcd,oldnm,newcd,newnm,type,start
S12000046,Glasgow City,S12000049,Glasgow City,new_geo,2019
E07000004,Aylesbury Vale,E06000060,Buckinghamshire,merger,2020
E07000005,Chiltern,E06000060,Buckinghamshire,merger,2020
E07000150,Corby,E06000061,North Northamptonshire,merger,2021
E07000152,East Northamptonshire,E06000061,North Northamptonshire,merger,2021
"""

PREAMBLE = [
    "",
    '"annual population survey"',
    '"ONS Crown Copyright Reserved [from Nomis on 12 June 2020]"',
    '"Analysis   :","variable"',
    '"Confidence :","95% confidence interval of percent figure (+/-)"',
]
HEADER = '"Area","mnemonic","Numerator","Denominator","Employment rate - aged 16-64","Conf"'
FOOTER = [
    "", "", "",
    '"*","Estimate and confidence interval unreliable since the group sample size is"',
    '"","small (3-9)"',
    "",
    '"-","These figures are missing."',
    "",
    '"!","Estimate is not available since sample size is disclosive (0-2)."',
]
#: Darlington and Hartlepool (unitaries) twice, as lacu: and ladu:; a county; Buckinghamshire
#: (formed 2020); the City of London unreliable; the Isles of Scilly missing; Rutland withheld.
ROWS = [
    '"lacu:Darlington","E06000005",47200,63600,74.2,2.8',
    '"lacu:Hartlepool","E06000001",38100,56300,67.6,3.2',
    '"lacu:Buckinghamshire","E06000060",262300,335800,78.1,2.6',
    '"lacu:Cumbria","E10000006",234500,303000,77.4,1.8',
    '"ladu:Darlington","E06000005",47200,63600,74.2,2.8',
    '"ladu:Hartlepool","E06000001",38100,56300,67.6,3.2',
    '"ladu:Buckinghamshire","E06000060",262300,335800,78.1,2.6',
    '"ladu:City of London","E09000001",7400,8500,87.2,"*"',
    '"ladu:Isles of Scilly","E06000053",-,-,-,-',
    '"ladu:Rutland","E06000017",!,!,!,!',
    '"ladu:Manchester","E08000003",259400,388400,66.8,3.1',
]


def web_text(rows: list[str] = ROWS, date: str = "Jan 2019-Dec 2019", blocks: list | None = None) -> str:
    """A Nomis web download: preamble with its Date, header, rows, footer (one or more blocks)."""
    lines = list(PREAMBLE)
    for block_date, block_rows in blocks or [(date, rows)]:
        lines += [f'"Date       :","{block_date}"', "", HEADER, "", *block_rows]
        lines += ["", ""]
    return "\n".join(lines[:-2] + FOOTER) + "\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


API_COLUMNS = ["date", "date_name", "geography_code", "geography_name", "geography_type",
               "variable_name", "measures_name", "value"]
AS_OF_2021 = "local authorities: district / unitary (as of April 2021)"
EMPLOYMENT = "Employment rate - aged 16-64"


def api_text(rows: list[tuple], upper: bool = False, value_name: str = "value") -> str:
    """The Nomis API's long form: one row per (date, area, variable, measure)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = [c if c != "value" else value_name for c in API_COLUMNS]
    writer.writerow([c.upper() for c in header] if upper else header)
    writer.writerows(rows)
    return buffer.getvalue()


def api_rows(date: str = "2019-12-01", name: str = "Jan 2019-Dec 2019",
             areas: tuple = (("E08000011", "Knowsley", "71.0", "64100"),
                             ("E08000012", "Liverpool", "68.4", "224600")),
             variable: str = EMPLOYMENT, geography_type: str = AS_OF_2021) -> list[tuple]:
    out = []
    for code, area, rate, numerator in areas:
        out.append((date, name, code, area, geography_type, variable, "Variable", rate))
        out.append((date, name, code, area, geography_type, variable, "Numerator", numerator))
    return out


@pytest.fixture
def history(store: Store, tmp_path: Path) -> Store:
    """An in-memory store holding the district code history (LAD_CHANGES)."""
    ingest_lookup(store, write(tmp_path, "lad_changes.csv", LAD_CHANGES))
    return store


def estimates(store: Store, set_id: str | None = None) -> dict[tuple[str, str], dict]:
    """(code, period) -> the stored estimate of aps.employment_rate."""
    rows = store.sql("""
        SELECT o.set_id, o.code, o.period_id, o.value, o.denominator, o.status, s.numerator,
               s.half_width, s.reliability, s.denominator_derived
        FROM observations o JOIN survey_estimates s USING (indicator_id, set_id, code, period_id)
        WHERE o.indicator_id = 'aps.employment_rate' ORDER BY 1, 2, 3""").df()
    if set_id:
        rows = rows[rows["set_id"] == set_id]
    return {(r["code"], r["period_id"]): r for r in rows.to_dict("records")}


def lines(report) -> list[str]:
    return [line.strip() for line in report.lines()]


# -- the web download ----------------------------------------------------------------------------

def test_web_download_with_preamble_and_footer(history: Store, tmp_path: Path):
    path = write(tmp_path, "nomis-web.csv", web_text())
    assert survey_shape(path) == "nomis_web"
    report = ingest_indicator(history, path)      # no spec
    assert report.shape == "nomis_web" and report.rows_read == len(ROWS)
    assert report.period_labels == ["Jan 2019-Dec 2019"] and report.periods == ["2019y12"]
    assert report.sets == {"cty2020": 1, "lad2020": 7}
    stored = estimates(history)
    # the areas are the rows, nothing of the preamble or the footer
    assert {code for code, _ in stored} == {"E06000005", "E06000001", "E06000060", "E10000006",
                                           "E09000001", "E06000053", "E06000017", "E08000003"}
    manchester = stored[("E08000003", "2019y12")]
    assert (manchester["value"], manchester["numerator"], manchester["denominator"],
            manchester["half_width"]) == (66.8, 259400, 388400, 3.1)
    assert pd.isna(manchester["reliability"]) and pd.isna(manchester["status"])
    text = lines(report)
    assert ("the file's footer: '*' = Estimate and confidence interval unreliable since the group "
            "sample size is small (3-9)") in text
    assert "the file's footer: '-' = These figures are missing." in text
    assert "intervals: the published 95% confidence intervals (Conf)" in text
    assert "denominators: as published (Denominator)" in text
    names = dict(history.sql("SELECT code, name FROM areas WHERE set_id = 'lad2020'").fetchall())
    assert names["E06000005"] == "Darlington" and names["E09000001"] == "City of London"
    label = history.sql("SELECT label, kind FROM periods WHERE period_id = '2019y12'").fetchone()
    assert label == ("Jan 2019-Dec 2019", "rolling_year")


def test_unitaries_listed_twice_are_kept_once_when_identical(history: Store, tmp_path: Path):
    report = ingest_indicator(history, write(tmp_path, "web.csv", web_text()))
    assert report.duplicates_dropped == 3
    assert ("3 areas listed twice (lacu: and ladu:, the unitary authorities) with the same figures, "
            "kept once") in lines(report)
    counts = history.sql("SELECT code, count(*) FROM observations GROUP BY code HAVING count(*) > 1")
    assert counts.fetchall() == []


def test_unitaries_listed_twice_with_different_figures_are_refused_naming_both_lines(
        history: Store, tmp_path: Path):
    rows = [r.replace("67.6,3.2", "67.7,3.2") if r.startswith('"ladu:Hartlepool') else r for r in ROWS]
    text = web_text(rows)
    path = write(tmp_path, "web.csv", text)
    first, second = line_of(text, '"lacu:Hartlepool'), line_of(text, '"ladu:Hartlepool')
    with pytest.raises(InputError) as err:
        ingest_indicator(history, path)
    message = str(err.value)
    assert str(path) in message and f"lines {first} and {second}" in message
    assert "E06000001 (Hartlepool) is listed twice with different figures" in message


def test_markers_are_kept_as_words_and_never_as_numbers(history: Store, tmp_path: Path):
    report = ingest_indicator(history, write(tmp_path, "web.csv", web_text()))
    stored = estimates(history)
    london = stored[("E09000001", "2019y12")]     # '*': the estimate kept, no interval
    assert (london["value"], london["numerator"], london["denominator"]) == (87.2, 7400, 8500)
    assert london["reliability"] == "unreliable" and london["status"] == "*"
    assert pd.isna(london["half_width"])     # no interval
    for code, word, marker in (("E06000053", "missing", "-"), ("E06000017", "withheld", "!")):
        row = stored[(code, "2019y12")]
        assert (row["reliability"], row["status"]) == (word, marker)
        assert all(pd.isna(row[c]) for c in ("value", "numerator", "denominator", "half_width"))
    assert report.reliability == {"missing": 1, "unreliable": 1, "withheld": 1}
    assert ("kept as words, not numbers: 1 missing (not published), 1 unreliable (survey sample of "
            "3 to 9 people), 1 withheld by ONS (sample of 0 to 2 people)") in lines(report)
    assert "the file's footer: '!' = Estimate is not available since sample size is disclosive (0-2)." \
        in lines(report)


@pytest.mark.parametrize(("row", "column", "cell"), [
    ('"ladu:Manchester","E08000003",259400,388400,66.8,n/a', "Conf", "n/a"),
    ('"ladu:Manchester","E08000003",259400,388400,sixty,3.1', EMPLOYMENT, "sixty"),
    ('"ladu:Manchester","E08000003",?,388400,66.8,3.1', "Numerator", "?"),
    ('"ladu:Manchester","E08000003",259400,-388400,66.8,3.1', "Denominator", "-388400"),
])
def test_a_cell_neither_number_nor_marker_is_refused_naming_file_line_and_column(
        history: Store, tmp_path: Path, row: str, column: str, cell: str):
    text = web_text([*ROWS[:-1], row])
    path = write(tmp_path, "web.csv", text)
    with pytest.raises(InputError) as err:
        ingest_indicator(history, path)
    assert str(err.value).startswith(
        f"{path}, line {line_of(text, 'Manchester')}, column {column!r}: {cell!r} is not a number "
        "nor one of the survey's markers")


def test_a_numerator_above_its_denominator_is_refused(history: Store, tmp_path: Path):
    text = web_text([*ROWS[:-1], '"ladu:Manchester","E08000003",388500,388400,66.8,3.1'])
    path = write(tmp_path, "web.csv", text)
    with pytest.raises(InputError, match=rf"line {line_of(text, 'Manchester')}: the numerator 388,500 "
                                         "is larger than the denominator 388,400"):
        ingest_indicator(history, path)


def test_a_rate_over_100_is_refused(history: Store, tmp_path: Path):
    text = web_text([*ROWS[:-1], '"ladu:Manchester","E08000003",259400,388400,166.8,3.1'])
    path = write(tmp_path, "web.csv", text)
    with pytest.raises(InputError, match=rf"line {line_of(text, 'Manchester')}: the rate 166.8 is over 100%"):
        ingest_indicator(history, path)


def test_two_date_blocks_in_one_download_are_two_rolling_years(history: Store, tmp_path: Path):
    earlier = ['"ladu:Manchester","E08000003",250100,384000,65.1,3.2',
               '"ladu:Darlington","E06000005",46000,63900,72.0,3.0']
    text = web_text(blocks=[("Jan 2018-Dec 2018", earlier), ("Jan 2019-Dec 2019", ROWS)])
    report = ingest_indicator(history, write(tmp_path, "web.csv", text))
    assert report.period_labels == ["Jan 2018-Dec 2018", "Jan 2019-Dec 2019"]
    assert report.periods == ["2018y12", "2019y12"]
    stored = estimates(history)
    assert stored[("E08000003", "2018y12")]["value"] == 65.1
    assert stored[("E08000003", "2019y12")]["value"] == 66.8
    assert ("E06000060", "2018y12") not in stored


@pytest.mark.parametrize("date", ["Apr 2019-Jun 2019", "2019", "Jan 2019-Dec 2020"])
def test_a_date_that_is_not_a_rolling_year_is_refused(history: Store, tmp_path: Path, date: str):
    text = web_text(date=date)
    path = write(tmp_path, "web.csv", text)
    with pytest.raises(InputError) as err:
        ingest_indicator(history, path)
    assert str(err.value).startswith(
        f"{path}, line {line_of(text, 'Date')}: the Date {date!r} is not a rolling year as the "
        "Annual Population Survey publishes")


# -- the API's long form ------------------------------------------------------------------------

@pytest.mark.parametrize(("upper", "value_name"), [(False, "value"), (True, "value"), (True, "obs_value")])
def test_api_long_form_whatever_the_case_of_its_columns(history: Store, tmp_path: Path, upper, value_name):
    path = write(tmp_path, "api.csv", api_text(api_rows(), upper=upper, value_name=value_name))
    assert survey_shape(path) == "nomis_api"
    report = ingest_indicator(history, path)
    assert report.shape == "nomis_api" and report.sets == {"lad2021": 2}
    assert report.edition == "2021 edition: as the file says"
    stored = estimates(history)
    liverpool = stored[("E08000012", "2019y12")]
    assert (liverpool["value"], liverpool["numerator"]) == (68.4, 224600)
    # the denominator derived, and said so, in the store and in the report
    assert liverpool["denominator"] == pytest.approx(224600 / 68.4 * 100)
    assert bool(liverpool["denominator_derived"]) is True
    assert report.denominators.startswith("derived as Numerator ÷ Variable × 100 (the extract has no "
                                          "Denominator rows)")
    assert "is approximate" in report.denominators
    assert report.intervals == ("none in this extract (no Confidence rows): figures say 'no interval "
                                "published'")
    assert pd.isna(liverpool["half_width"])   # none invented


def test_api_blanks_are_missing_and_other_variables_are_their_own_measures(history: Store, tmp_path: Path):
    sthelens = ("2019-12-01", "Jan 2019-Dec 2019", "E08000013", "St. Helens", AS_OF_2021, EMPLOYMENT)
    rows = [*api_rows(), (*sthelens, "Variable", ""), (*sthelens, "Numerator", ""),
            *api_rows(variable="Unemployment rate - aged 16-64",
                      areas=(("E08000011", "Knowsley", "6.2", "4000"),))]
    report = ingest_indicator(history, write(tmp_path, "api.csv", api_text(rows)))
    sthelens = estimates(history)[("E08000013", "2019y12")]
    assert sthelens["reliability"] == "missing"
    assert all(pd.isna(sthelens[c]) for c in ("value", "numerator", "denominator"))
    assert report.reliability == {"missing": 1}
    assert report.measures == {"aps.employment_rate": 3, "aps.unemployment_rate": 1}
    kinds = set(history.sql("SELECT DISTINCT kind FROM indicators").fetchall())
    assert kinds == {("survey",)}


def test_api_confidence_rows_give_half_widths_and_published_denominators_are_kept(
        history: Store, tmp_path: Path):
    liverpool = ("2019-12-01", "Jan 2019-Dec 2019", "E08000012", "Liverpool", AS_OF_2021, EMPLOYMENT)
    knowsley = ("2019-12-01", "Jan 2019-Dec 2019", "E08000011", "Knowsley", AS_OF_2021, EMPLOYMENT)
    rows = [*api_rows(), (*liverpool, "Denominator", "328400"), (*liverpool, "Confidence", "3.4"),
            (*knowsley, "Denominator", "90300"), (*knowsley, "Confidence", "*")]
    report = ingest_indicator(history, write(tmp_path, "api.csv", api_text(rows)))
    stored = estimates(history)
    liverpool, knowsley = stored[("E08000012", "2019y12")], stored[("E08000011", "2019y12")]
    assert (liverpool["half_width"], liverpool["denominator"]) == (3.4, 328400)
    assert bool(liverpool["denominator_derived"]) is False
    assert knowsley["reliability"] == "unreliable" and knowsley["value"] == 71.0
    assert report.intervals == "the published 95% confidence intervals (Confidence)"
    assert report.denominators == "as published (Denominator)"


def test_api_duplicate_rows_kept_once_when_equal_refused_when_they_conflict(history: Store, tmp_path: Path):
    rows = api_rows()
    report = ingest_indicator(history, write(tmp_path, "same.csv", api_text(rows + rows[:1])))
    assert report.duplicates_dropped == 1
    assert "1 repeated rows with the same values kept once" in lines(report)
    conflicting = [*rows, (*rows[2][:-1], "70.0")]      # Liverpool's rate again, another value
    path = write(tmp_path, "conflict.csv", api_text(conflicting))
    with pytest.raises(InputError) as err:
        ingest_indicator(history, path)
    assert str(err.value) == (f"{path}, lines 4, {len(conflicting) + 1}: E08000012 has two different "
                              "rate values for Jan 2019-Dec 2019")


# -- the district edition, from the code history ------------------------------------------------

def test_the_district_edition_from_the_code_history(history: Store, tmp_path: Path):
    report = ingest_indicator(history, write(tmp_path, "web.csv", web_text()))
    # downloaded in 2020: Buckinghamshire (formed April 2020) is there, so its districts are 2020's
    assert report.edition == "2020 edition: E06000060 is in use from 2020 (district code history)"
    assert "district codes: the 2020 edition: E06000060 is in use from 2020 (district code history)" \
        in lines(report)
    assert report.sets == {"cty2020": 1, "lad2020": 7}


def test_the_api_states_its_edition_as_of_april_2021(history: Store, tmp_path: Path):
    rows = api_rows(areas=(("E06000061", "North Northamptonshire", "77.0", "131000"),))
    report = ingest_indicator(history, write(tmp_path, "api.csv", api_text(rows)))
    assert report.edition == "2021 edition: as the file says" and report.sets == {"lad2021": 1}


def test_a_file_mixing_editions_is_refused(history: Store, tmp_path: Path):
    rows = [*ROWS, '"ladu:Aylesbury Vale","E07000004",100000,130000,76.9,3.0']
    with pytest.raises(InputError, match="the district codes are of more than one edition: E06000060 "
                                         "is in use from 2020, E07000004 only until 2019"):
        ingest_indicator(history, write(tmp_path, "web.csv", web_text(rows)))
    # a stated edition the codes contradict
    rows = api_rows(areas=(("E07000150", "Corby", "75.0", "30000"),))
    with pytest.raises(InputError, match="the file says its districts are of 2021, but by the district "
                                         "code history its codes are in use together only until 2020"):
        ingest_indicator(history, write(tmp_path, "api.csv", api_text(rows)))


def test_a_file_mixing_editions_is_refused_naming_the_file(history: Store, tmp_path: Path):
    path = write(tmp_path, "mixed.csv",
                 web_text([*ROWS, '"ladu:Aylesbury Vale","E07000004",100000,130000,76.9,3.0']))
    with pytest.raises(InputError, match=str(path)):
        ingest_indicator(history, path)


def test_without_a_code_history_the_data_year_is_said_to_be_unchecked(store: Store, tmp_path: Path):
    rows = [r for r in ROWS if "E06000060" not in r and "E10000006" not in r]   # no county
    report = ingest_survey(store, write(tmp_path, "web.csv", web_text(rows)))
    assert report.edition.startswith("2019 edition: the data's year; no district code history in the "
                                     "store to check it")
    assert report.sets == {"lad2019": 6}


def test_a_web_download_with_counties_into_a_store_without_code_history(store: Store, tmp_path: Path):
    """The real 2019 file into a fresh database was refused ('no geography set cty2019'): its
    districts and counties are now stored on the data's year, said to be unchecked."""
    rows = [r for r in ROWS if "E06000060" not in r]    # Cumbria (E10) kept
    report = ingest_survey(store, write(tmp_path, "web.csv", web_text(rows)))
    assert report.sets == {"cty2019": 1, "lad2019": 6}
    assert "ingest the district changes lookup, e.g. lad_changes_2014_2025.csv" in report.edition


# -- the command line, and a refused file leaving the store as it was ---------------------------

@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "geo-cs.duckdb"
    with Store.open(path) as store:
        ingest_lookup(store, write(tmp_path, "lad_changes.csv", LAD_CHANGES))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_ingest_indicator_reports_the_survey_file(db: Path, tmp_path: Path, capsys):
    path = write(tmp_path, "nomis-web.csv", web_text())
    result = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(path))
    assert result.code == 0, result.stderr
    out = [line.strip() for line in result.stdout.splitlines()]
    assert out[0] == (f"aps: {len(ROWS)} rows read from {path} (Nomis web download); 8 survey estimates "
                      "written for Jan 2019-Dec 2019")
    assert "areas: 1 in cty2020, 7 in lad2020" in out
    assert "district codes: the 2020 edition: E06000060 is in use from 2020 (district code history)" in out
    assert "the file's footer: '-' = These figures are missing." in out
    api = write(tmp_path, "api.csv", api_text(api_rows()))
    result = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(api))
    assert result.code == 0 and "district codes: the 2021 edition: as the file says" in result.stdout
    # --district-edition forces the edition, and is said
    result = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(api), "--district-edition", "2022")
    assert result.code == 0 and "district codes: the 2022 edition: as asked (--district-edition)" in result.stdout


@pytest.mark.parametrize(("text", "code", "words"), [
    (web_text([*ROWS[:-1], '"ladu:Manchester","E08000003",259400,388400,166.8,3.1']), 3,
     "the rate 166.8 is over 100%"),
    (web_text(date="Apr 2019-Jun 2019"), 3, "is not a rolling year"),
    (web_text([*ROWS, '"ladu:Aylesbury Vale","E07000004",100000,130000,76.9,3.0']), 3,
     "the district codes are of more than one edition"),
    (api_text([*api_rows(), (*api_rows()[2][:-1], "70.0")]), 3, "two different rate values"),
])
def test_cli_refuses_a_bad_survey_file_and_leaves_the_store_byte_identical(
        db: Path, tmp_path: Path, capsys, text: str, code: int, words: str):
    # a first good file in the store, so a refused one has something to spoil
    run_cli(capsys, "--db", str(db), "ingest", "indicator", str(write(tmp_path, "good.csv", web_text())))
    before = sha256(db)
    path = write(tmp_path, "bad.csv", text)
    result = run_cli(capsys, "--db", str(db), "-q", "ingest", "indicator", str(path))
    assert result.code == code, (result.code, result.stderr)
    assert result.stderr.startswith("error: ") and words in result.stderr
    assert result.stdout == ""
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert sha256(db) == before


def test_a_failed_ingest_through_the_library_changes_nothing(db: Path, tmp_path: Path):
    with Store.open(db) as store:
        ingest_indicator(store, write(tmp_path, "good.csv", web_text()))
    before = sha256(db)
    bad = web_text([*ROWS[:-1], '"ladu:Manchester","E08000003",388500,388400,66.8,3.1'])
    with Store.open(db) as store, pytest.raises(InputError):
        ingest_indicator(store, write(tmp_path, "bad.csv", bad))
    assert sha256(db) == before


def test_cli_district_edition_on_a_file_that_is_not_a_survey_is_refused(db: Path, tmp_path: Path, capsys):
    path = write(tmp_path, "other.csv", "code,value\nE08000003,1\n")
    result = run_cli(capsys, "--db", str(db), "ingest", "indicator", str(path), "--district-edition", "2020")
    assert result.code == 3
    assert "--district-edition is for survey files (APS from Nomis)" in result.stderr
