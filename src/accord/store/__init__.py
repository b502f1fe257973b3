"""The store: one interface over DuckDB and PostgreSQL, with versioned migrations."""

from accord.store.backend import Store, connect
from accord.store.migrator import migrate


def open_store(url: str, *, auto_migrate: bool = True) -> Store:
    """Open the store at ``url`` and bring its schema up to date."""
    store = connect(url)
    if auto_migrate:
        try:
            migrate(store)
        except BaseException:
            store.close()
            raise
    return store


__all__ = ["Store", "connect", "migrate", "open_store"]
