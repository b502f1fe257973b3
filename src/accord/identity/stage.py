"""The identity stage: current source records -> customer clusters and match edges.

Reads every current (not deleted) people record, standardizes it, links by
deterministic rules, scores candidate pairs with the probabilistic model
(training it first when no model fits the configuration, or when asked),
clusters under cannot-link constraints and writes ``identity``,
``match_edges`` (and a new ``identity_models`` version) in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from accord.clock import Stopwatch, utcnow
from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.identity.clustering import ClusterOptions, cluster_edges
from accord.identity.model import Engine, IdentityModel
from accord.identity.rules import apply_rules, identifier_limits
from accord.identity.settings import IdentitySettings, identity_settings
from accord.standardize import standardize_records
from accord.store.backend import Store

ProgressFactory = Callable[[str], Callable[[int, int], None]]

RECORD_COLUMNS = ("given_name", "family_name", "full_name", "street", "city", "region", "postcode",
                  "country", "date_of_birth", "company")
JSON_TEXT_COLUMNS = ("emails", "phones", "external_ids")


@dataclass
class IdentityReport:
    run_id: str
    records: int = 0
    clusters: int = 0
    rule_edges: int = 0
    model_edges: int = 0
    auto_edges: int = 0
    review_edges: int = 0
    rejected_edges: int = 0
    bridges_cut: int = 0
    model_version: int | None = None
    model_trained: bool = False
    engine: str = "duckdb"
    excluded_identifiers: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rid(source: str, record_key: str) -> str:
    """A record's name across Accord: ``source:record_key``."""
    return f"{source}:{record_key}"


def split_rid(value: str) -> tuple[str, str]:
    source, sep, key = value.partition(":")
    if not sep:
        raise AccordError(f"record {value!r}: expected SOURCE:RECORD_KEY")
    return source, key


def load_records(store: Store) -> pd.DataFrame:
    """Current people records, standardizable: one row each, with ``rid``."""
    cols = ", ".join(RECORD_COLUMNS)
    json_cols = ", ".join(f"CAST({c} AS TEXT) AS {c}" for c in JSON_TEXT_COLUMNS)
    table = store.fetch_arrow(
        f"SELECT source, record_key, {cols}, {json_cols} FROM source_records "
        "WHERE deleted_at IS NULL ORDER BY source, record_key")
    df = table.to_pandas()
    if df.empty:
        df = pd.DataFrame(columns=["source", "record_key", *RECORD_COLUMNS, *JSON_TEXT_COLUMNS])
    df = df.astype(object).where(df.notna(), None)
    df["rid"] = [rid(s, k) for s, k in zip(df["source"], df["record_key"])]
    return df


def prepare(records: pd.DataFrame, default_region: str) -> pd.DataFrame:
    """Standardized records with empty lists as nulls (so the model treats them as missing)."""
    std = standardize_records(records, default_region)
    for col in ("std_emails", "std_phones"):
        std[col] = [list(v) if v else None for v in std[col]]
    return std


def cannot_link_values(std: pd.DataFrame, settings: IdentitySettings) -> tuple[dict, dict]:
    """Per record: values unique to a person (key -> value) and its (given, family) name.

    A source's own record key among its external ids is no cannot-link: one person
    may hold several records in a source (a second account, every support ticket).
    """
    unique: dict[str, dict[str, str]] = {r: {} for r in std["rid"]}
    given: dict[str, str] = {}
    if "dob" in settings.cannot_link:
        for r, dob in zip(std["rid"], std["std_dob"]):
            if dob:
                unique[r]["dob"] = dob
    if "external_id" in settings.cannot_link:
        for r, source, record_key, raw in zip(std["rid"], std["source"], std["record_key"], std["external_ids"]):
            ids = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or {})
            for key, value in (ids.items() if isinstance(ids, dict) else []):
                if value not in (None, "") and str(value) != str(record_key):
                    unique[r][f"external:{source}:{key}"] = str(value)
    if "given_name" in settings.cannot_link:
        for r, name, family in zip(std["rid"], std["std_given_name"], std["std_family_name"]):
            if name:
                given[r] = (name, family or None)
    return unique, given


def latest_model(store: Store) -> tuple[int, str, dict[str, Any]] | None:
    row = store.fetchone("SELECT version, fingerprint, CAST(settings AS TEXT) FROM identity_models "
                         "ORDER BY version DESC LIMIT 1")
    return (int(row[0]), row[1], json.loads(row[2])) if row else None


def _spark_session():
    """A local Spark session with Splink's similarity UDFs and a checkpoint folder (Splink checkpoints)."""
    import tempfile

    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    spark = (SparkSession.builder.master("local[2]").appName("accord-identity")
             .config("spark.jars", similarity_jar_location())
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.default.parallelism", "4")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="accord-spark-"))
    return spark


def resolve(store: Store, cfg: ProjectConfig, run_id: str, progress: ProgressFactory | None = None, *,
            retrain: bool = False, labels_csv: str | Path | None = None, engine: Engine | None = None,
            settings: IdentitySettings | None = None) -> IdentityReport:
    """Resolve identities over all current records; write the result in one transaction."""
    settings = settings or identity_settings(cfg.identity)
    engine = engine or settings.engine
    report = IdentityReport(run_id, engine=engine)
    lap = Stopwatch(report.timings, (lambda step: progress(step)(1, 1)) if progress else None).lap

    records = load_records(store)
    report.records = len(records)
    std = prepare(records, cfg.identity.default_region)
    lap("standardize")

    rules = apply_rules(std, settings)
    report.excluded_identifiers = [e.as_dict() for e in rules.excluded]
    rule_edges = rules.edges.assign(probability=None, match_weight=None)
    rule_edges = rule_edges.rename(columns={"rule": "rule_or_model"})
    report.rule_edges = len(rule_edges)
    lap("rules")

    model_edges = pd.DataFrame(columns=["record_a", "record_b", "probability", "match_weight"])
    new_model: IdentityModel | None = None
    if len(std) >= 2:
        spark = _spark_session() if engine == "spark" else None
        fingerprint = settings.model.fingerprint()
        saved = None if retrain or labels_csv else latest_model(store)
        # A saved model's SQL is in its engine's dialect: another engine trains its own.
        if saved and saved[1] == fingerprint and saved[2].get("sql_dialect", engine) == engine:
            model = IdentityModel.from_json(settings.model, saved[2], engine=engine, spark_session=spark)
            report.model_version = saved[0]
        else:
            if saved:
                report.warnings.append(f"model v{saved[0]} was trained for other comparisons or another "
                                       "engine; retraining")
            labels = _read_labels(labels_csv) if labels_csv else None
            model = IdentityModel(settings.model, engine=engine, spark_session=spark).fit(std, labels)
            report.warnings += model.training_summary_["warnings"]
            new_model = model
            report.model_trained = True
        lap("train" if new_model else "load_model")
        model_edges = model.predict(std, cfg.identity.review_threshold)
        report.warnings += [w for w in model.warnings_ if w not in report.warnings]
        lap("predict")
    model_edges = model_edges.assign(rule_or_model=f"model:v{report.model_version or '?'}", priority=None)
    report.model_edges = len(model_edges)

    unique, given = cannot_link_values(std, settings)
    ident = rules.identifiers
    per_record: dict[str, dict[str, set[str]]] = {}
    for r, type_, value in zip(ident["rid"], ident["type"], ident["value"]):
        per_record.setdefault(r, {}).setdefault(type_, set()).add(value)
    options = ClusterOptions(cfg.identity.auto_merge_threshold, cfg.identity.review_threshold,
                             settings.bridge_threshold, settings.bridge_min_side)
    parts = [e.astype(object) for e in (rule_edges, model_edges) if len(e)]
    all_edges = pd.concat(parts, ignore_index=True) if parts else model_edges
    result = cluster_edges(std["rid"], all_edges, options, unique_values=unique, given_names=given,
                           identifiers=per_record, limits=identifier_limits(settings, sorted(set(ident["type"]))))
    lap("cluster")

    with store.transaction():
        if new_model is not None:
            version = int(store.scalar("SELECT COALESCE(MAX(version), 0) FROM identity_models")) + 1
            store.execute(store.type_sql(
                "INSERT INTO identity_models (version, trained_at, run_id, fingerprint, settings, summary) "
                "VALUES (?, ?, ?, ?, CAST(? AS ${JSON}), CAST(? AS ${JSON}))"),
                (version, utcnow(), run_id, settings.model.fingerprint(), json.dumps(new_model.model_json_),
                 json.dumps(new_model.training_summary_)))
            report.model_version = version
            is_model = result.edges["probability"].notna()
            result.edges.loc[is_model, "rule_or_model"] = f"model:v{version}"
        _write(store, std, result.clusters, result.edges, run_id)
    lap("write")

    statuses = result.edges["status"].value_counts()
    report.clusters = len(set(result.clusters.values()))
    report.auto_edges = int(statuses.get("auto", 0))
    report.review_edges = int(statuses.get("review", 0))
    report.rejected_edges = int(statuses.get("rejected", 0))
    report.bridges_cut = result.bridges_cut
    return report


def _write(store: Store, std: pd.DataFrame, clusters: dict[str, str], edges: pd.DataFrame, run_id: str) -> None:
    store.execute("DELETE FROM identity")
    store.execute("DELETE FROM match_edges")
    store.load_arrow("identity", pa.table({
        "source": pa.array(std["source"].astype(str).tolist(), pa.string()),
        "record_key": pa.array(std["record_key"].astype(str).tolist(), pa.string()),
        "cluster_id": pa.array([clusters[r] for r in std["rid"]], pa.string()),
        "run_id": pa.array([run_id] * len(std), pa.string()),
    }))
    store.load_arrow("match_edges", pa.table({
        "record_a": pa.array(edges["record_a"].astype(str).tolist(), pa.string()),
        "record_b": pa.array(edges["record_b"].astype(str).tolist(), pa.string()),
        "probability": pa.array([_num(v) for v in edges["probability"]], pa.float64()),
        "match_weight": pa.array([_num(v) for v in edges["match_weight"]], pa.float64()),
        "rule_or_model": pa.array(edges["rule_or_model"].astype(str).tolist(), pa.string()),
        "status": pa.array(edges["status"].astype(str).tolist(), pa.string()),
        "reason": pa.array([None if v is None or v != v else str(v) for v in edges["reason"]], pa.string()),
        "run_id": pa.array([run_id] * len(edges), pa.string()),
    }))


def _num(v: Any) -> float | None:
    return None if v is None or v != v else float(v)


def _read_labels(path: str | Path) -> pd.DataFrame:
    """Labelled pairs: columns record_a, record_b (source:record_key) and is_match (1/0)."""
    labels = pd.read_csv(path, dtype=str)
    missing = {"record_a", "record_b", "is_match"} - set(labels.columns)
    if missing:
        raise AccordError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                          "expected record_a, record_b, is_match")
    labels["is_match"] = labels["is_match"].astype(float)
    return labels


def explain(store: Store, cfg: ProjectConfig, record_a: str, record_b: str) -> dict[str, Any]:
    """Why the latest model scores two records (``source:record_key``) as it does."""
    settings = identity_settings(cfg.identity)
    saved = latest_model(store)
    if saved is None:
        raise AccordError("no trained identity model in the store; run 'accord resolve' first")
    for r in (record_a, record_b):
        split_rid(r)
    std = prepare(load_records(store), cfg.identity.default_region)
    known = set(std["rid"])
    for r in (record_a, record_b):
        if r not in known:
            raise AccordError(f"record {r!r} is not a current source record")
    model = IdentityModel.from_json(settings.model, saved[2])
    out = model.explain(std, record_a, record_b)
    out["model_version"] = saved[0]
    return out
