"""Access-audit rows of profile reads: durable before the answer, in the store soon after, none lost
to a crash (api/audit_journal.py)."""

from __future__ import annotations

import http.client
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from accord.api.audit_journal import FLUSH_SECONDS_ENV, AuditJournal, journal_path
from accord.store import connect, open_store

COLUMNS = ("access_id", "accessed_at", "actor", "role", "channel", "action", "customer_id", "purpose", "detail")


def _row(n: int) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    return COLUMNS, (f"acc_{n:04d}", datetime(2026, 1, 1, 12, 0, n), "key:r", "read", "api", "profile.read",
                     "cus_00000001", None, "get_profile")


def _seed(store_url: str) -> None:
    """One active customer with an email in the identifier index."""
    with open_store(store_url) as store, store.transaction():
        store.execute("INSERT INTO customers (customer_id, seq, status, created_at, created_by) "
                      "VALUES ('cus_00000001', 1, 'active', ?, 'test')", (datetime(2026, 1, 1),))
        store.execute("INSERT INTO customer_identifiers (id_type, value, customer_id, origin) "
                      "VALUES ('email', 'ada@example.com', 'cus_00000001', 'golden')")


def test_the_journal_lives_beside_a_duckdb_file_only():
    assert journal_path("duckdb:////data/accord.duckdb") == Path("/data/accord.duckdb.access-journal")
    assert journal_path("duckdb:///:memory:") is None
    assert journal_path("postgresql://u@h:5432/db?schema=a") is None


def test_appended_rows_are_on_disk_and_move_into_the_access_log(tmp_path: Path):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    journal = AuditJournal(tmp_path / "j", flush_seconds=60)
    journal.append([_row(1), _row(2)])
    assert [orjson.loads(x)["access_id"] for x in (tmp_path / "j").read_bytes().splitlines()] == ["acc_0001",
                                                                                                  "acc_0002"]
    with open_store(url) as store:
        assert journal.move(store) == 2
        assert store.fetchall("SELECT access_id, accessed_at FROM access_log ORDER BY 1") == [
            ("acc_0001", datetime(2026, 1, 1, 12, 0, 1)), ("acc_0002", datetime(2026, 1, 1, 12, 0, 2))]
    assert (tmp_path / "j").read_bytes() == b""
    assert journal.pending == 0
    journal.close()


def test_rows_left_by_a_crash_are_moved_once_at_start(tmp_path: Path):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    crashed = AuditJournal(tmp_path / "j", flush_seconds=60)
    crashed.append([_row(1), _row(2), _row(3)])
    with open_store(url) as store:  # the crash came after row 1 was moved, before the journal was emptied
        store.execute("INSERT INTO access_log (access_id, accessed_at, actor, channel, action) "
                      "VALUES ('acc_0001', ?, 'key:r', 'api', 'profile.read')", (datetime(2026, 1, 1, 12, 0, 1),))
    crashed.close()
    with open(tmp_path / "j", "ab") as f:
        f.write(b'{"access_id": "acc_0004", "accessed_')  # torn by the crash before its fsync: never answered
    journal = AuditJournal(tmp_path / "j")
    with open_store(url) as store:
        assert journal.recover(store) == 3
        assert [r[0] for r in store.fetchall("SELECT access_id FROM access_log ORDER BY 1")] == [
            "acc_0001", "acc_0002", "acc_0003"]
    assert (tmp_path / "j").read_bytes() == b""
    journal.close()


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Authorization": "Bearer test-read-key"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


@pytest.mark.slow
def test_every_answered_profile_read_is_in_the_access_log_after_a_sigkill(serve: Any, store_url: str,
                                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(FLUSH_SECONDS_ENV, "600")  # the rows stay in the journal until the kill
    _seed(store_url)
    server = serve()
    answered = sum(_get(server.port, "/v1/profiles/email:ada@example.com") == 200 for _ in range(25))
    assert answered == 25
    path = journal_path(store_url)
    if path is not None:  # DuckDB: the reads after the first (which stored the document) wait in the journal
        assert len(path.read_bytes().splitlines()) == 24
    server.kill()
    serve().stop()  # a start moves what the journal holds; a clean stop moves the rest
    store = connect(store_url)
    try:
        rows = store.fetchall("SELECT access_id, customer_id, action FROM access_log")
    finally:
        store.close()
    assert len(rows) == 25 == len({r[0] for r in rows})
    assert {(c, a) for _, c, a in rows} == {("cus_00000001", "profile.read")}
    if path is not None:
        assert path.read_bytes() == b""
