"""Helpers for ingestion tests: a project folder with one accord.yaml, and table dumps."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from accord.config import ProjectConfig, load_config
from accord.store import Store

STORED_TABLES = ("source_records", "source_records_history", "quarantine", "events")


class Project:
    """A throwaway project folder: write data files, declare sources, load accord.yaml."""

    def __init__(self, root: Path):
        self.root = root

    def file(self, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path

    def config(self, *sources: dict[str, Any], store: str = "duckdb:///unused.duckdb") -> ProjectConfig:
        (self.root / "accord.yaml").write_text(
            yaml.safe_dump({"store": store, "sources": list(sources)}, sort_keys=False), encoding="utf-8")
        return load_config(self.root)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def _dump(store: Store) -> dict[str, list[str]]:
    """Every row of every table ingestion writes, in a stable order, for before/after comparisons."""
    return {t: sorted(repr(row) for row in store.fetchall(f"SELECT * FROM {t}")) for t in STORED_TABLES}


def json_value(value: Any) -> Any:
    """JSON columns come back as text, spaced and ordered differently by each backend: compare them parsed."""
    return json.loads(value) if isinstance(value, str) else value


def _records(store: Store, source: str, *columns: str) -> dict[str, dict[str, Any]]:
    """source_records of one source by record_key, JSON columns decoded."""
    cols = columns or ("given_name", "family_name")
    rows = store.fetchall(
        f"SELECT record_key, {', '.join(cols)} FROM source_records WHERE source = ? ORDER BY record_key", (source,))
    json_cols = {"raw", "emails", "phones", "external_ids", "consent"}
    return {r[0]: {c: json_value(v) if c in json_cols else v for c, v in zip(cols, r[1:])} for r in rows}


def _open_quarantine(store: Store, source: str) -> list[dict[str, Any]]:
    cols = ("file", "line", "record_key", "reason", "raw_text")
    rows = store.fetchall(
        f"SELECT {', '.join(cols)} FROM quarantine WHERE source = ? AND resolved_at IS NULL ORDER BY line", (source,))
    return [dict(zip(cols, r)) for r in rows]


@pytest.fixture
def dump() -> Callable[[Store], dict[str, list[str]]]:
    return _dump


@pytest.fixture
def records() -> Callable[..., dict[str, dict[str, Any]]]:
    return _records


@pytest.fixture
def open_quarantine() -> Callable[[Store, str], list[dict[str, Any]]]:
    return _open_quarantine
