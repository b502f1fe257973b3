"""Spark (Splink's Spark backend, local mode) gives the same clusters as DuckDB."""

import pytest

from accord.config import ProjectConfig
from accord.identity.settings import IdentitySettings, default_model_settings
from accord.identity.stage import resolve
from tests.identity.people import insert_records, population

import pyspark  # noqa: E402,F401  (a missing Spark is a failure, never a skip)

SETTINGS = IdentitySettings(model=default_model_settings().model_copy(update={"u_max_pairs": 2e4}))


@pytest.mark.slow
@pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
def test_spark_engine_gives_the_same_clusters_as_duckdb(store):
    records, _, _ = population(people=40)
    insert_records(store, records)
    resolve(store, ProjectConfig(), "run_duckdb", settings=SETTINGS, engine="duckdb")
    on_duckdb = store.fetchall("SELECT source, record_key, cluster_id FROM identity ORDER BY 1, 2")
    report = resolve(store, ProjectConfig(), "run_spark", settings=SETTINGS, engine="spark")
    on_spark = store.fetchall("SELECT source, record_key, cluster_id FROM identity ORDER BY 1, 2")
    assert report.engine == "spark"
    assert on_spark == on_duckdb
