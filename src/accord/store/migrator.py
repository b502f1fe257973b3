"""Versioned schema migrations, applied in order and recorded in schema_migrations.

Each migration is a file ``NNNN_name.sql`` beside this module, written in SQL that DuckDB
and PostgreSQL share, with ``${JSON}``-style placeholders for the types that differ.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources

from accord.errors import StoreError
from accord.store.backend import Store


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("accord.store.migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def applied_versions(store: Store) -> dict[int, str]:
    store.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    return {v: c for v, c in store.fetchall("SELECT version, checksum FROM schema_migrations")}


def migrate(store: Store) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied."""
    done = applied_versions(store)
    applied = []
    for migration in available_migrations():
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise StoreError(
                    f"migration {migration.version:04d}_{migration.name} changed after it was applied "
                    f"(checksum {done[migration.version]} in the store, {migration.checksum} in this version); "
                    "add a new migration instead of editing an applied one"
                )
            continue
        with store.transaction():
            for statement in _statements(store.type_sql(migration.sql)):
                try:
                    store.execute(statement)
                except Exception as exc:  # the transaction rolls the migration back as a whole
                    raise StoreError(
                        f"migration {migration.version:04d}_{migration.name} failed, nothing of it was applied: "
                        f"{str(exc).strip()}"
                    ) from exc
            store.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                (migration.version, migration.name, migration.checksum, datetime.now(timezone.utc).replace(tzinfo=None)),
            )
        applied.append(migration)
    return applied
