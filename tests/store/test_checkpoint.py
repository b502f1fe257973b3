"""DuckDB's checkpoint policy: commits stay in the write-ahead log up to a threshold, `accord run`
checkpoints once at its end, and committed data survives a crash before any checkpoint."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from accord.config import load_config
from accord.errors import StoreError
from accord.pipeline import run_pipeline
from accord.store import connect, open_store
from accord.store.backend import DuckDBStore
from accord.synth import generate


def wal_bytes(path: Path) -> int:
    wal = Path(f"{path}.wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_checkpoint_threshold_defaults_to_256mb(tmp_path, monkeypatch):
    monkeypatch.delenv("ACCORD_DUCKDB_CHECKPOINT_THRESHOLD", raising=False)
    with connect(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        assert store.scalar("SELECT current_setting('checkpoint_threshold')") == "244.1 MiB"  # 256 MB


def test_the_checkpoint_threshold_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCORD_DUCKDB_CHECKPOINT_THRESHOLD", "1GB")
    with connect(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        assert store.scalar("SELECT current_setting('checkpoint_threshold')") == "953.6 MiB"  # 1 GB


def test_a_checkpoint_threshold_that_is_not_a_size_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCORD_DUCKDB_CHECKPOINT_THRESHOLD", "lots")

    with pytest.raises(StoreError) as exc:
        connect(f"duckdb:///{tmp_path / 's.duckdb'}")

    assert str(exc.value) == ("ACCORD_DUCKDB_CHECKPOINT_THRESHOLD: expected a size such as 256MB or 1GB; "
                              "got 'lots'")


def test_a_commit_past_duckdbs_default_threshold_stays_in_the_log_until_a_checkpoint(tmp_path):
    path = tmp_path / "s.duckdb"
    with open_store(f"duckdb:///{path}") as store:
        store.execute("CREATE TABLE t AS SELECT range AS i, 'value ' || range AS s FROM range(1000000)")
        store.checkpoint()
        with store.transaction():
            store.execute("UPDATE t SET s = s || '!'")
        logged = wal_bytes(path)

        store.checkpoint()

        assert logged > 16 * 2**20  # DuckDB's own threshold would have checkpointed inside the commit
        assert wal_bytes(path) == 0
        assert store.scalar("SELECT COUNT(*) FROM t WHERE s LIKE '%!'") == 1000000


def test_a_checkpoint_keeps_what_was_committed(store):
    with store.transaction():
        store.execute("CREATE TABLE t (i INTEGER)")
        store.execute("INSERT INTO t VALUES (1), (2)")

    store.checkpoint()

    assert store.fetchall("SELECT i FROM t ORDER BY i") == [(1,), (2,)]


def test_committed_data_survives_a_crash_before_any_checkpoint(tmp_path):
    path = tmp_path / "s.duckdb"
    crash = textwrap.dedent(f"""
        import os
        from accord.store import open_store
        store = open_store("duckdb:///{path}")
        store.checkpoint()
        with store.transaction():
            store.execute("CREATE TABLE t (i INTEGER)")
            store.execute("INSERT INTO t SELECT range FROM range(1000)")
        os._exit(0)  # no close, no checkpoint: the process dies with the rows in the log only
    """)

    subprocess.run([sys.executable, "-c", crash], check=True, timeout=120)

    assert wal_bytes(path) > 0
    with connect(f"duckdb:///{path}") as store:
        assert store.scalar("SELECT COUNT(*) FROM t") == 1000


def test_a_run_checkpoints_at_its_end_and_leaves_only_its_status_in_the_log(tmp_path, monkeypatch):
    generate(tmp_path, people=60, seed=3)
    cfg = load_config(tmp_path / "accord.yaml")
    at_close: list[int] = []
    close = DuckDBStore.close

    def measured_close(self: DuckDBStore) -> None:
        at_close.append(wal_bytes(Path(self.path)))  # before closing, which would checkpoint anyway
        close(self)

    monkeypatch.setattr(DuckDBStore, "close", measured_close)

    report = run_pipeline(cfg)

    assert report["status"] == "ok" and report["checkpoint_seconds"] >= 0
    # Without the checkpoint the run's commits (~1 MB here) would still be in the log.
    assert len(at_close) == 1 and at_close[0] < 100_000
