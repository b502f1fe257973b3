"""Exports: the record -> customer mapping, and golden records as a table (CSV or Parquet)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from accord.errors import AccordError
from accord.privacy.pii import reveal_tree, store_is_encrypted
from accord.profiles.settings import ADDRESS_PARTS
from accord.store.backend import Store

PROFILE_COLUMNS = ("given_name", "family_name", "full_name", "email", "phone", "date_of_birth", "company",
                   *ADDRESS_PARTS)
MULTI_COLUMNS = ("emails", "phones", "addresses")


def _check(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise AccordError(f"{path}: expected a .csv or .parquet file name")
    return path


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed", quoting_header="none"))


def export_identities(store: Store, path: str | Path) -> int:
    """Write ``source,record_key,customer_id`` for every resolved record (CSV, or Parquet by extension)."""
    path = _check(path)
    rows = store.fetchall("SELECT source, record_key, customer_id FROM record_customer ORDER BY source, record_key")
    cols = list(zip(*rows)) if rows else [(), (), ()]
    table = pa.table({n: pa.array(list(c), pa.string()) for n, c in zip(("source", "record_key", "customer_id"), cols)})
    _write(table, path)
    return table.num_rows


def profiles_frame(store: Store) -> pd.DataFrame:
    """One row per active customer: golden values, multi-valued attributes as JSON lists, record count."""
    pivot = ", ".join(f"MAX(CASE WHEN attribute = '{a}' THEN value END) AS {a}" for a in PROFILE_COLUMNS)
    golden = store.fetch_arrow(
        f"SELECT c.customer_id, {pivot} FROM customers c LEFT JOIN golden_values g ON g.customer_id = c.customer_id "
        "WHERE c.status = 'active' GROUP BY c.customer_id ORDER BY c.customer_id").to_pandas()
    counts = store.fetch_arrow("SELECT customer_id, COUNT(*) AS records, MIN(source) AS first_source "
                               "FROM record_customer GROUP BY customer_id").to_pandas()
    multi = store.fetch_arrow("SELECT customer_id, attribute, value FROM golden_multi "
                              "ORDER BY customer_id, attribute, last_seen DESC, value").to_pandas()
    if store_is_encrypted(store):  # privacy.encryption: fields decrypted with the environment's keys
        for frame, columns in ((golden, PROFILE_COLUMNS), (multi, ("value",))):
            for col in columns:
                frame[col] = [reveal_tree(None, v) for v in frame[col]]
    out = golden.merge(counts[["customer_id", "records"]], on="customer_id", how="left")
    for attr in MULTI_COLUMNS:
        part = multi[multi["attribute"] == attr]
        lists = part.groupby("customer_id", sort=False)["value"].agg(lambda v: json.dumps(list(v)))
        out[attr] = out["customer_id"].map(lists).fillna("[]")
    out["records"] = out["records"].fillna(0).astype("int64")
    return out[["customer_id", *PROFILE_COLUMNS, *MULTI_COLUMNS, "records"]]


def export_profiles(store: Store, path: str | Path) -> int:
    """Write golden records, one row per active customer, to CSV or Parquet (by the file's extension)."""
    path = _check(path)
    df = profiles_frame(store)
    schema = pa.schema([(c, pa.int64() if c == "records" else pa.string()) for c in df.columns])
    _write(pa.Table.from_pandas(df, schema=schema, preserve_index=False), path)
    return len(df)
