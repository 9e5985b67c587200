"""Analysis-ready panels: area × period arrays with integer keys, built from the observations
or once at ingest.

A :class:`geo_cs.analysis.Panel` is built from the ``observations`` table: the benefit groups
of each area and period summed, matched to their denominators. When the counts carry their own
denominators (the benefit groups of DWP's tables), :func:`observed_panel` builds the arrays
directly: the observations read with integer keys (the area's row, the period's column, through
two small joins) and summed by numpy, not hash-aggregated into area-periods (the hash
aggregation of millions of rows was most of the time of an NI 153 series from the
observations); other sources are built as a DuckDB table. :func:`prepare_panel` (``geo-cs
analyse prepare``, or right after the ingest that brings the data) stores that result once per source
in ``analysis_panels``: one row per area and period with integer keys (the area's position in
the panel's sorted codes, the period's in its periods in time order). A ``Panel`` of that
source then loads the arrays instead (:func:`load_dense`; kept in this process, keyed by the
preparation's token, so every connection and request shares one copy) and the analyses run
on them with numpy: a cohort for a new threshold or baseline is a mean over four columns of the
rate matrix, a partnership's figures sums over its rows (:class:`DensePanel`).

Any ingest or crosswalk that writes observations of a set drops that set's prepared panels
(:func:`drop_prepared`): a stale panel is never read, and the next ``Panel`` is built from the
observations again until the panel is prepared again.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

from geo_cs.store import Store

#: Prepared panels kept in memory per process (each is a few arrays of areas × periods).
MAX_KEPT = 4
_KEPT: OrderedDict[str, DensePanel] = OrderedDict()
_LOCK = threading.Lock()


def panel_key(set_id: str, counts: list[str], denominator: str | None, count_is_rate: bool) -> str:
    """The prepared panel's key: what the panel is of (its source)."""
    return json.dumps({"set_id": set_id, "counts": list(counts), "denominator": denominator,
                       "count_is_rate": bool(count_is_rate)}, sort_keys=True)


@dataclass
class DensePanel:
    """A panel as arrays: rows are areas (``codes``, sorted), columns periods (time order).

    ``present``: the (area, period) row exists; ``count``, ``denominator``, ``rate``,
    ``estimated_share``, ``den_var``: NaN where NULL (or absent)."""

    token: str
    codes: np.ndarray
    period_ids: list[str]
    periods: pd.DataFrame
    present: np.ndarray
    count: np.ndarray
    denominator: np.ndarray
    rate: np.ndarray
    estimated_share: np.ndarray
    den_var: np.ndarray
    denominator_note: str

    def __post_init__(self) -> None:
        self.row_of = pd.Index(self.codes, dtype=object)
        # count IS NOT NULL AND denominator > 0, as SQL's three-valued logic has it: ``ok`` is
        # true where both hold; ``not_ok`` (counted as missing) where the count is NULL, or
        # present with a denominator <= 0 (a NULL denominator is neither)
        has_count = self.present & ~np.isnan(self.count)
        self.ok = has_count & (self.denominator > 0)
        self.not_ok = self.present & ~has_count | self.present & (self.denominator <= 0)
        # what aggregate sums, ready: masked to the usable rows, as counts where it counts
        self._count_ok = np.where(self.ok, self.count, 0.0)
        self._den_ok = np.where(self.ok, self.denominator, 0.0)
        self._n_ok = self.ok.astype(np.float64)
        self._n_present = self.present.astype(np.float64)
        # the codes as a column once (a new frame of them would convert 34,753 strings each time)
        self._code_column = pd.Series(self.codes).astype("str")
        self._has_den_var = bool((~np.isnan(self.den_var)).any())
        self._has_share = bool((~np.isnan(self.estimated_share)).any())

    @functools.cached_property
    def _n_not_ok(self) -> np.ndarray:
        return self.not_ok.astype(np.float64)  # only aggregate() needs it

    @property
    def nbytes(self) -> int:
        """The bytes of its arrays (a column of NaN shared by all its cells counts as none)."""
        arrays = [self.present, self.count, self.denominator, self.rate, self.estimated_share, self.den_var,
                  self.ok, self.not_ok, self._count_ok, self._den_ok, self._n_ok, self._n_present,
                  *([self._n_not_ok] if "_n_not_ok" in self.__dict__ else [])]
        return sum(a.nbytes for a in arrays if a.strides != (0, 0))

    def columns(self, period_ids: list[str]) -> np.ndarray:
        where = {p: i for i, p in enumerate(self.period_ids)}
        return np.array([where[p] for p in period_ids], dtype=np.int64)

    def cohort(self, baseline: tuple[str, ...], threshold: float) -> pd.DataFrame:
        """What ``worst_cohort``'s query gives: per code the baseline rate, the number of
        baseline periods with a rate, the mean denominator over them and ``worst``."""
        cols = self.columns(list(baseline))
        rate = self.rate[:, cols]
        ok = self.present[:, cols] & ~np.isnan(rate)
        n_ok = ok.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(ok, rate, 0.0).sum(axis=1) / n_ok
            den = self.denominator[:, cols]
            mean_den = np.where(ok & ~np.isnan(den), den, 0.0).sum(axis=1) / (ok & ~np.isnan(den)).sum(axis=1)
        mean[n_ok == 0] = np.nan
        worst = pd.array(mean > threshold, dtype="boolean")
        worst[n_ok != len(cols)] = pd.NA
        return pd.DataFrame({"code": self._code_column, "baseline_rate": mean, "n_baseline": n_ok.astype(int),
                             "baseline_denominator": mean_den, "worst": worst})

    def aggregate(self, groups: pd.DataFrame) -> pd.DataFrame:
        """What ``Panel.aggregate``'s query gives, per group and period: Σ count, Σ denominator,
        the number of areas with both, Σ den_var, the number missing and the estimated share
        (a sparse product of the membership and each column's matrix)."""
        columns = ["group", "period_id", "count", "denominator", "n_areas", "den_var", "n_missing",
                   "estimated_share"]
        rows = self.row_of.get_indexer(groups["code"].to_numpy(dtype=object))
        known = rows >= 0
        labels, names = pd.factorize(groups["group"].to_numpy(dtype=object)[known])
        if not len(labels):
            return pd.DataFrame(columns=columns)
        # one sparse product per column: membership (groups x areas) times the area x period matrix
        members = sparse.csr_matrix((np.ones(len(labels)), (labels, rows[known])),
                                    shape=(len(names), len(self.codes)))

        def total(a: np.ndarray) -> np.ndarray:
            return np.asarray(members @ a)

        n_ok = np.rint(total(self._n_ok)).astype(np.int64)
        sums = total(self._count_ok)
        denominator = total(self._den_ok)
        none = n_ok == 0
        sums[none] = np.nan
        denominator[none] = np.nan
        if self._has_den_var:
            dv_ok = self.ok & ~np.isnan(self.den_var)
            den_var = total(np.where(dv_ok, self.den_var, 0.0))
            den_var[total(dv_ok.astype(np.float64)) == 0] = np.nan
        else:
            den_var = np.full(sums.shape, np.nan)
        if self._has_share:
            weighted = total(self._count_ok * np.nan_to_num(self.estimated_share))
            with np.errstate(invalid="ignore", divide="ignore"):
                estimated = np.where(sums != 0, weighted / np.where(sums != 0, sums, 1.0), 0.0)
            estimated[none] = 0.0
        else:
            estimated = np.zeros(sums.shape)
        g, t = np.nonzero(total(self._n_present) > 0)
        return pd.DataFrame({
            "group": np.asarray(names, dtype=object)[g],
            "period_id": np.asarray(self.period_ids, dtype=object)[t],
            "count": sums[g, t], "denominator": denominator[g, t], "n_areas": n_ok[g, t],
            "den_var": den_var[g, t], "n_missing": np.rint(total(self._n_not_ok)[g, t]).astype(np.int64),
            "estimated_share": estimated[g, t]}, columns=columns)

    def _role_sums(self, members: sparse.csr_matrix) -> dict[str, np.ndarray]:
        """Per group (row of ``members``) and period: what ``aggregate`` sums."""
        n_ok = np.rint(np.asarray(members @ self._n_ok)).astype(np.int64)
        count = np.asarray(members @ self._count_ok)
        denominator = np.asarray(members @ self._den_ok)
        none = n_ok == 0
        count[none] = np.nan
        denominator[none] = np.nan
        if self._has_den_var:
            dv_ok = self.ok & ~np.isnan(self.den_var)
            den_var = np.asarray(members @ np.where(dv_ok, self.den_var, 0.0))
            den_var[np.asarray(members @ dv_ok.astype(np.float64)) == 0] = np.nan
        else:
            den_var = np.full(count.shape, np.nan)
        if self._has_share:
            weighted = np.asarray(members @ (self._count_ok * np.nan_to_num(self.estimated_share)))
            with np.errstate(invalid="ignore", divide="ignore"):
                estimated = np.where(count != 0, weighted / np.where(count != 0, count, 1.0), 0.0)
            estimated[none] = 0.0
        else:
            estimated = np.zeros(count.shape)
        return {"has_row": np.asarray(members @ self._n_present) > 0, "count": count,
                "denominator": denominator, "n_areas": n_ok, "den_var": den_var, "estimated_share": estimated}

    def ni153_wide(self, groups: pd.DataFrame, worst: set, params) -> pd.DataFrame:
        """The wide table :func:`geo_cs.analysis.ni153` builds from ``aggregate`` (the cohort's
        and the rest's sums, rates, intervals and flags per partnership and period, columns
        ``{role}_{value}``), computed on the arrays directly: one sparse product per role and
        column, no long table to split and unstack."""
        from geo_cs.stats import rate_with_interval, widen_for_denominator

        rows = self.row_of.get_indexer(groups["code"].to_numpy(dtype=object))
        known = rows >= 0
        labels, names = pd.factorize(groups["group"].to_numpy(dtype=object)[known])
        rows = rows[known]
        worst_rows = np.zeros(len(self.codes), dtype=bool)
        found = self.row_of.get_indexer(np.array(list(worst), dtype=object)) if worst else np.zeros(0, int)
        worst_rows[found[found >= 0]] = True
        in_cohort = worst_rows[rows]
        shape = (len(names), len(self.codes))
        sums = {}
        for role, chosen in (("cohort", in_cohort), ("rest", ~in_cohort)):
            members = sparse.csr_matrix((np.ones(int(chosen.sum())), (labels[chosen], rows[chosen])),
                                        shape=shape)
            part = self._role_sums(members)
            part["rate"], part["rate_low"], part["rate_high"] = rate_with_interval(
                part["count"], part["denominator"], params.confidence)
            with np.errstate(invalid="ignore"):
                part["small"] = ((part["count"] < params.small_count)
                                 | (part["denominator"] < params.small_denominator))
            sums[role] = part
        cells = sums["cohort"]["has_row"] | sums["rest"]["has_row"]
        g, t = np.nonzero(cells)
        # a derived denominator widens every interval, as add_rates does when any row has one
        if any((~np.isnan(part["den_var"][g, t]) & part["has_row"][g, t]).any() for part in sums.values()):
            for part in sums.values():
                part["rate_low"], part["rate_high"] = widen_for_denominator(
                    part["rate"], part["rate_low"], part["rate_high"], part["denominator"], part["den_var"],
                    params.confidence)
        out: dict[str, np.ndarray] = {"partnership": np.asarray(names, dtype=object)[g],
                                      "period_id": np.asarray(self.period_ids, dtype=object)[t]}
        present_roles = [role for role in ("cohort", "rest") if sums[role]["has_row"][g, t].any()]
        for value in ("count", "denominator", "estimated_share", "n_areas", "rate", "rate_high", "rate_low",
                      "small"):
            for role in present_roles:
                has = sums[role]["has_row"][g, t]
                column = sums[role][value][g, t]
                if not has.all():
                    column = column.astype(object if value == "small" else np.float64)
                    column[~has] = np.nan
                out[f"{role}_{value}"] = column
        return pd.DataFrame(out)

    def area_rates(self, period_ids: list[str] | None, with_estimated_share: bool) -> pd.DataFrame:
        """What ``Panel.area_rates``'s query gives: one row per area and period with a rate."""
        cols = self.columns(period_ids) if period_ids is not None else np.arange(len(self.period_ids))
        rate = self.rate[:, cols]
        keep = self.present[:, cols] & ~np.isnan(rate)
        r, c = np.nonzero(keep)
        out = {"code": self.codes[r], "period_id": np.asarray(self.period_ids, dtype=object)[cols][c],
               "count": self.count[:, cols][r, c], "denominator": self.denominator[:, cols][r, c],
               "rate": rate[r, c], "den_var": self.den_var[:, cols][r, c]}
        if with_estimated_share:
            out["estimated_share"] = self.estimated_share[:, cols][r, c]
        return pd.DataFrame(out)


# -- built from the observations ----------------------------------------------------------------

_KEYS_SQL = """
SELECT list(DISTINCT indicator_id), list(DISTINCT code), list(DISTINCT period_id), count(apportioned_share)
FROM observations
WHERE list_contains($counts, indicator_id) AND set_id = $set_id
  AND ($periods IS NULL OR list_contains($periods, period_id))
"""

# every observation of the counts as (cell, value, denominator[, apportioned_share]); the cell
# is the area's row × the number of periods + the period's column, through two small joins
_CELLS_SQL = """
WITH a AS (SELECT unnest($codes::VARCHAR[]) AS code,
                  (generate_subscripts($codes::VARCHAR[], 1) - 1)::{cell} AS area),
     p AS (SELECT unnest($periods::VARCHAR[]) AS period_id,
                  (generate_subscripts($periods::VARCHAR[], 1) - 1)::{cell} AS period)
SELECT a.area * {width} + p.period AS cell, o.value, o.denominator{share}
FROM observations o JOIN a USING (code) JOIN p USING (period_id)
WHERE list_contains($counts, o.indicator_id) AND o.set_id = $set_id
"""


@dataclass
class ObservedKeys:
    """What the observations of some count indicators on a set hold, read in one pass:
    ``indicators`` found, the ``codes`` (sorted), the ``periods`` (period_id, period_label,
    period_kind, start_date; time order) and how many rows have an ``apportioned_share``."""

    indicators: list[str]
    codes: list[str]
    periods: pd.DataFrame
    shares: int


def observed_keys(store: Store, counts: list[str], set_id: str, periods: list[str] | None) -> ObservedKeys:
    """:class:`ObservedKeys` of ``counts`` on ``set_id`` (in ``periods``, when given)."""
    found, codes, period_ids, shares = store.sql(
        _KEYS_SQL, {"counts": list(counts), "set_id": set_id, "periods": periods}).fetchone()
    frame = store.sql(
        "SELECT period_id, label AS period_label, kind AS period_kind, start_date FROM periods "
        "WHERE list_contains(?, period_id) ORDER BY start_date", [period_ids or []]).df()
    return ObservedKeys(list(found or []), sorted(codes or []), frame, int(shares or 0))


#: rows of observations summed at a time (observed_panel)
BATCH_ROWS = 1 << 20


def _floats(column) -> np.ndarray:
    """An Arrow column of doubles as a numpy array, NaN where NULL."""
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def observed_panel(store: Store, keys: ObservedKeys, counts: list[str], set_id: str, count_is_rate: bool,
                   half: float | None, note: str) -> DensePanel | None:
    """The panel of ``counts`` on ``set_id`` with the rows' own denominators, as arrays, from
    the observations (``keys``: :func:`observed_keys`): what ``geo_cs.analysis``'s panel table
    of such a source holds (the benefit groups summed per area and period, a suppressed group
    making the sum missing; the largest denominator; count, rate and the variance of a derived
    denominator, ``half`` being half its rate's rounding step), without its hash aggregation of
    every observation into area-periods: the observations are read with integer keys (their
    area's row and period's column, through two small joins) and summed into the matrices by
    numpy. None when there is no observation (the caller builds the empty table)."""
    codes, period_ids = keys.codes, keys.periods["period_id"].tolist()
    if not codes or not period_ids:
        return None
    shape = (len(codes), len(period_ids))
    cells = shape[0] * shape[1]
    reader = store.sql(
        _CELLS_SQL.format(cell="INTEGER" if cells < 2**31 else "BIGINT", width=shape[1],
                          share=", o.apportioned_share" if keys.shares else ""),
        {"counts": list(counts), "set_id": set_id, "codes": codes, "periods": period_ids},
    ).to_arrow_reader(BATCH_ROWS)
    # summed batch by batch as DuckDB produces them (a fraction of the memory of the whole)
    present = np.zeros(cells, dtype=bool)
    suppressed = np.zeros(cells, dtype=bool)
    summed = np.zeros(cells)
    denominator = np.full(cells, np.nan)
    # a source without apportioned shares or derived denominators (most): one NaN for every cell
    nothing = np.broadcast_to(np.float64(np.nan), shape)
    estimated_share = np.full(cells, np.nan) if keys.shares else nothing
    for batch in reader:
        cell = batch.column(0).to_numpy()
        value = _floats(batch.column(1))
        present[cell] = True
        # CASE WHEN count(value) = count(*) THEN sum(value) END: a NULL part makes the sum NULL
        missing = np.isnan(value)
        suppressed[cell[missing]] = True
        np.add.at(summed, cell, np.where(missing, 0.0, value))
        # max(denominator), max(apportioned_share): NULLs ignored, NULL when all are
        np.fmax.at(denominator, cell, _floats(batch.column(2)))
        if keys.shares:
            np.fmax.at(estimated_share, cell, _floats(batch.column(3)))
    summed[suppressed | ~present] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        if count_is_rate:
            count = summed / 100 * denominator
            rate = summed
        else:
            count = summed
            rate = np.where(denominator == 0, np.nan, 100 * summed / denominator)
        den_var = nothing
        if half is not None and not count_is_rate:
            den_var = np.full(cells, np.nan)
            derived = (denominator > 0) & (100 * summed / denominator > half)
            r = 100 * summed[derived] / denominator[derived]
            den_var[derived] = np.power(100 * summed[derived] * half / (np.power(r, 2) - half * half), 2) / 3
    return DensePanel(f"observed-{uuid.uuid4().hex}", np.asarray(codes, dtype=object), period_ids,
                      keys.periods, present.reshape(shape), count.reshape(shape), denominator.reshape(shape),
                      rate.reshape(shape), estimated_share.reshape(shape), den_var.reshape(shape), note)


# -- preparing -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedPanel:
    """What :func:`prepare_panel` wrote."""

    key: str
    areas: int
    periods: int
    seconds: float

    def to_dict(self) -> dict:
        return {"source": json.loads(self.key), "areas": self.areas, "periods": self.periods,
                "seconds": round(self.seconds, 2)}

    def lines(self) -> list[str]:
        source = json.loads(self.key)
        return [f"prepared panel of {' + '.join(source['counts'])} on {source['set_id']}: "
                f"{self.areas:,} areas × {self.periods} periods in {self.seconds:.1f} s"]


_WRITE_SQL = """
INSERT INTO analysis_panels
WITH a AS (SELECT unnest($codes::VARCHAR[]) AS code,
                  (generate_subscripts($codes::VARCHAR[], 1) - 1)::INTEGER AS area),
     p AS (SELECT unnest($periods::VARCHAR[]) AS period_id,
                  (generate_subscripts($periods::VARCHAR[], 1) - 1)::SMALLINT AS period)
SELECT $key, a.area, p.period, t.count, t.denominator, t.rate, t.estimated_share, t.den_var
FROM {name} t JOIN a USING (code) JOIN p USING (period_id)
ORDER BY a.area, p.period
"""


def prepare_panel(store: Store, panel) -> PreparedPanel:
    """Store ``panel`` (a :class:`geo_cs.analysis.Panel` built from the observations) as its
    source's analysis-ready panel, replacing an earlier one. Run inside the ingest's
    transaction (or one of its own)."""
    started = time.perf_counter()
    source = panel.source
    key = panel_key(source.set_id, source.counts, source.denominator, source.count_is_rate)
    store.sql("DELETE FROM analysis_panels WHERE panel_key = ?", [key])
    store.sql("DELETE FROM analysis_panel_index WHERE panel_key = ?", [key])
    codes = sorted(panel.codes())
    periods = panel.period_ids()
    arrays = getattr(panel, "arrays", None)
    if arrays is not None:  # built as arrays (observed_panel): their present cells, in order
        area, period = np.nonzero(arrays.present)
        rows = pa.table({"area": pa.array(area.astype(np.int32)), "period": pa.array(period.astype(np.int16)),
                         **{name: pa.array(getattr(arrays, name)[area, period], from_pandas=True)
                            for name in ("count", "denominator", "rate", "estimated_share", "den_var")}})
        store.con.register("geo_cs_prepared_rows", rows)
        try:
            store.sql("INSERT INTO analysis_panels SELECT $key, area, period, count, denominator, rate, "
                      "estimated_share, den_var FROM geo_cs_prepared_rows", {"key": key})
        finally:
            store.con.unregister("geo_cs_prepared_rows")
    else:
        store.sql(_WRITE_SQL.format(name=panel.name),  # an internal table name
                  {"key": key, "codes": codes, "periods": periods})
    store.sql("INSERT INTO analysis_panel_index VALUES (?, ?, ?, ?, ?, ?, ?, now())",
              [key, source.set_id, codes, periods, panel.denominator_note, uuid.uuid4().hex,
               len(codes)])
    return PreparedPanel(key, len(codes), len(periods), time.perf_counter() - started)


def drop_prepared(store: Store, set_id: str) -> None:
    """Forget the prepared panels of ``set_id`` (its observations are being rewritten)."""
    keys = [r[0] for r in store.sql("SELECT panel_key FROM analysis_panel_index WHERE set_id = ?",
                                    [set_id]).fetchall()]
    if keys:
        store.sql("DELETE FROM analysis_panels WHERE list_contains(?, panel_key)", [keys])
        store.sql("DELETE FROM analysis_panel_index WHERE set_id = ?", [set_id])


def prepared_token(store: Store, key: str) -> str | None:
    """The token of the prepared panel ``key`` in this database, or None."""
    try:
        row = store.sql("SELECT token FROM analysis_panel_index WHERE panel_key = ?", [key]).fetchone()
    except duckdb.CatalogException:  # a database from before prepared panels, opened read-only
        return None
    return row[0] if row else None


def load_dense(store: Store, key: str, token: str) -> DensePanel:
    """The prepared panel ``key`` (its ``token``) as arrays, loaded once per process."""
    with _LOCK:
        found = _KEPT.get(token)
        if found is not None:
            _KEPT.move_to_end(token)
            return found
    codes, period_ids, note = store.sql(
        "SELECT codes, periods, denominator_note FROM analysis_panel_index WHERE token = ?",
        [token]).fetchone()
    table = store.sql("SELECT area, period, count, denominator, rate, estimated_share, den_var "
                      "FROM analysis_panels WHERE panel_key = ?", [key]).to_arrow_table()
    shape = (len(codes), len(period_ids))
    area = table["area"].to_numpy()
    period = table["period"].to_numpy()
    present = np.zeros(shape, dtype=bool)
    present[area, period] = True

    def matrix(name: str, dtype=float) -> np.ndarray:
        out = np.full(shape, np.nan)
        column = table[name]
        if column.null_count < len(column):
            out[area, period] = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        return out

    periods = store.sql(
        "SELECT period_id, label AS period_label, kind AS period_kind, start_date FROM periods "
        "WHERE list_contains(?, period_id)", [list(period_ids)]).df()
    periods = periods.set_index("period_id").loc[list(period_ids)].reset_index()
    dense = DensePanel(token, np.asarray(codes, dtype=object), list(period_ids), periods,
                       present, matrix("count"), matrix("denominator"), matrix("rate"),
                       matrix("estimated_share"), matrix("den_var"),
                       note or "")
    with _LOCK:
        _KEPT[token] = dense
        while len(_KEPT) > MAX_KEPT:
            _KEPT.popitem(last=False)
    return dense


def forget_loaded() -> None:
    """Empty this process's prepared panels (they are loaded again from the store on next use)."""
    with _LOCK:
        _KEPT.clear()
