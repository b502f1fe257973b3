"""Purge: make erased bytes unrecoverable from the store's files.

DuckDB marks deleted rows and frees blocks, but the bytes stay in the file until it is rewritten
(verified: an erased email is still in the .duckdb file after DELETE, CHECKPOINT and VACUUM). Purging
copies the live database into a fresh file (``COPY FROM DATABASE``: tables, constraints and indexes)
and replaces the old one; it needs the store to itself (stop ``accord serve`` first). PostgreSQL keeps
dead row versions until vacuumed: purging runs VACUUM FULL on the tables erasures touched.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from accord.clock import utcnow
from accord.errors import StoreError
from accord.store import connect
from accord.store.backend import Store


def pending(store: Store) -> list[tuple[str, dict[str, int]]]:
    """(receipt_id, counts) of erasures not purged yet."""
    return [(r[0], json.loads(r[1])) for r in store.fetchall(
        "SELECT receipt_id, CAST(counts AS TEXT) FROM erasure_receipts WHERE purged_at IS NULL ORDER BY erased_at")]


def _mark(store: Store, receipt_ids: list[str]) -> None:
    if receipt_ids:
        marks = ", ".join("?" for _ in receipt_ids)
        with store.transaction():
            store.execute(f"UPDATE erasure_receipts SET purged_at = ? WHERE receipt_id IN ({marks})",
                          (utcnow(), *receipt_ids))


def purge(store_url: str) -> dict[str, object]:
    """Rewrite the store so no erased byte remains; mark the pending receipts purged. Returns a report."""
    started = time.perf_counter()
    store = connect(store_url)
    try:
        todo = pending(store)
        if store.dialect == "postgresql":
            tables = sorted({t for _, counts in todo for t in counts})
            for table in tables:
                store.execute(f"VACUUM FULL {table}")
            _mark(store, [r for r, _ in todo])
            return {"receipts": len(todo), "tables": tables, "seconds": round(time.perf_counter() - started, 3)}
        path = Path(store.path)  # type: ignore[attr-defined]
        _mark(store, [r for r, _ in todo])
        store.execute("CHECKPOINT")
    finally:
        store.close()
    if str(path) == ":memory:":
        return {"receipts": len(todo), "seconds": 0.0}
    size_before = path.stat().st_size
    compact_duckdb(path)
    return {"receipts": len(todo), "bytes_before": size_before, "bytes_after": path.stat().st_size,
            "seconds": round(time.perf_counter() - started, 3)}


def compact_duckdb(path: Path) -> None:
    """Copy the live contents of the DuckDB file ``path`` into a new file and put it in its place."""
    import duckdb

    fresh = path.with_name(path.name + ".purge")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    try:
        conn = duckdb.connect(str(fresh))
        try:
            conn.execute("SET preserve_insertion_order = false")
            conn.execute(f"ATTACH '{_sql_path(path)}' AS erased_source (READ_ONLY)")
            target = conn.execute("SELECT current_database()").fetchone()[0]
            conn.execute(f"COPY FROM DATABASE erased_source TO \"{target}\"")
            conn.execute("DETACH erased_source")
            conn.execute("CHECKPOINT")
        finally:
            conn.close()
    except duckdb.Error as exc:
        fresh.unlink(missing_ok=True)
        if "lock" in str(exc).lower():
            raise StoreError(f"cannot purge {path}: another process has it open (stop 'accord serve' first)") from None
        raise StoreError(f"cannot purge {path}: {exc}") from None
    with fresh.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(fresh, path)
    Path(str(path) + ".wal").unlink(missing_ok=True)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
