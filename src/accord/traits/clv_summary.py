"""From a transaction log to the per-customer summary BG/NBD and Gamma-Gamma are fitted on.

Conventions (those of Fader and Hardie's CDNOW analyses and of the ``lifetimes`` package):

- Transactions are counted per day: several on one day are one purchase whose amount is their sum.
- ``frequency`` is the number of purchase days after the first one in the calibration period (repeat
  purchases), ``recency`` the time from the first to the last purchase day, ``T`` the time from the
  first purchase day to the end of the calibration period (inclusive), all in ``unit_days`` units.
- ``monetary_value`` is the mean amount of the repeat purchase days (0 without repeat purchases); the
  first purchase is left out because it is often unlike the rest (Fader, Hardie and Lee 2005).
- Customers whose first purchase falls after the calibration end are not in the summary.
- With an observation end after the calibration end, ``frequency_holdout`` / ``monetary_value_holdout``
  hold the purchase days and their mean amount in (calibration end, observation end], and
  ``duration_holdout`` that period's length, to check predictions against what happened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from accord.errors import AccordError


class TransactionsError(AccordError):
    """A transaction file cannot be read or lacks what the model needs."""


def read_transactions(path: Path, *, customer: str, date: str, amount: str | None = None,
                      date_format: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet transaction file into columns ``customer``, ``date`` (day) and ``amount``.

    Errors name the file, the column and (for a bad value) the line, e.g.
    ``orders.csv:17: column 'ordered_at': cannot read '2024-13-45' as a date``.
    """
    if not path.exists():
        raise TransactionsError(f"{path}: no such file")
    suffix = path.suffix.lower()
    columns = [c for c in (customer, date, amount) if c]
    try:
        if suffix in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".tsv"):
            raw = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
        else:
            raise TransactionsError(f"{path}: expected a .csv, .tsv or .parquet file")
    except TransactionsError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many kinds for unreadable files
        raise TransactionsError(f"{path}: cannot read: {exc}") from None
    if raw.empty:
        raise TransactionsError(f"{path}: the file holds no transactions")
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise TransactionsError(f"{path}: no column {', '.join(repr(c) for c in missing)}; "
                                f"the file has: {', '.join(map(str, raw.columns))}")
    # CSV line numbers: the header is line 1, so data row i is on line i + 2.
    line_of = (lambda i: f"{path}:{i + 2}") if suffix != ".parquet" else (lambda i: f"{path}: row {i + 1}")
    ids = raw[customer]
    empty_id = ids.isna() | (ids.astype(str).str.strip() == "")
    if empty_id.any():
        i = int(np.flatnonzero(empty_id.to_numpy())[0])
        raise TransactionsError(f"{line_of(i)}: column {customer!r} is empty; every transaction needs a customer")
    dates = _parse_dates(raw[date], date_format)
    bad = dates.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        hint = f" with format {date_format!r}" if date_format else " (give --date-format, e.g. %d/%m/%Y)"
        raise TransactionsError(f"{line_of(i)}: column {date!r}: cannot read {raw[date].iloc[i]!r} as a date"
                                f"{hint}; {int(bad.sum())} row(s) like this")
    out = pd.DataFrame({"customer": ids.astype(str).to_numpy(), "date": dates.dt.normalize().to_numpy()})
    if amount:
        values = pd.to_numeric(raw[amount], errors="coerce")
        bad = values.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise TransactionsError(f"{line_of(i)}: column {amount!r}: cannot read {raw[amount].iloc[i]!r} as a "
                                    f"number; {int(bad.sum())} row(s) like this")
        out["amount"] = values.to_numpy(dtype=float)
    return out


def _parse_dates(values: pd.Series, date_format: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        text = values.astype(str).str.strip()
        parsed = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce", utc=True)
        if not date_format and parsed.isna().any():
            # Compact dates such as CDNOW's 19970101 are not ISO 8601 with separators.
            compact = pd.to_datetime(text, format="%Y%m%d", errors="coerce", utc=True)
            parsed = parsed.fillna(compact)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def summarize_transactions(
    transactions: pd.DataFrame,
    *,
    calibration_end: pd.Timestamp | None = None,
    observation_end: pd.Timestamp | None = None,
    unit_days: float = 7.0,
) -> pd.DataFrame:
    """The per-customer summary (see the module docstring), indexed by customer.

    ``transactions`` has columns ``customer``, ``date`` and optionally ``amount``. Both ends default
    to the last transaction day; the calibration end may not be after the observation end.
    """
    if transactions.empty:
        raise TransactionsError("no transactions to summarize")
    tx = transactions.copy()
    tx["date"] = pd.to_datetime(tx["date"]).dt.normalize()
    if "amount" not in tx.columns:
        tx["amount"] = 0.0
    last_day = tx["date"].max()
    obs_end = pd.Timestamp(observation_end).normalize() if observation_end is not None else last_day
    cal_end = pd.Timestamp(calibration_end).normalize() if calibration_end is not None else obs_end
    if cal_end > obs_end:
        raise TransactionsError(f"the calibration end {cal_end.date()} is after the observation end {obs_end.date()}")
    daily = tx[tx["date"] <= obs_end].groupby(["customer", "date"], sort=True)["amount"].sum().reset_index()
    calibration = daily[daily["date"] <= cal_end]
    if calibration.empty:
        raise TransactionsError(f"no transactions on or before the calibration end {cal_end.date()}")

    grouped = calibration.groupby("customer", sort=True)
    first = grouped["date"].min()
    last = grouped["date"].max()
    days = grouped["date"].count()
    first_amount = grouped["amount"].first()
    total = grouped["amount"].sum()
    frequency = days - 1
    summary = pd.DataFrame({
        "frequency": frequency.astype(float),
        "recency": (last - first).dt.days / unit_days,
        "T": (cal_end - first).dt.days / unit_days,
        "monetary_value": np.where(frequency > 0, (total - first_amount) / frequency.clip(lower=1), 0.0),
        "first_purchase": first,
        "last_purchase": last,
    })
    if obs_end > cal_end:
        holdout = daily[daily["date"] > cal_end].groupby("customer")["amount"].agg(["count", "mean"])
        holdout = holdout.reindex(summary.index)
        summary["frequency_holdout"] = holdout["count"].fillna(0).astype(float)
        summary["monetary_value_holdout"] = holdout["mean"].fillna(0.0)
        summary["duration_holdout"] = (obs_end - cal_end).days / unit_days
    summary.index.name = "customer"
    return summary
