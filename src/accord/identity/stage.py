"""The identity stage, full rebuild: current source records -> customer clusters and match edges.

Reads every current (not deleted) people record, standardizes it, links by
deterministic rules, scores candidate pairs with the probabilistic model
(training it first when no model fits the configuration, or when asked),
clusters under cannot-link constraints and human decisions, and writes
``identity``, ``match_edges``, the state incremental runs start from
(``identity.state``) and a new ``identity_models`` version in one transaction.
``identity.incremental`` resolves only what changed since.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from accord import collector
from accord.clock import Stopwatch, utcnow
from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.identity.clustering import (DOB_KEY, NAME_KEY, NAME_SEPARATOR, ClusterOptions, ClusterResult,
                                       ConstraintValues, cluster_edges)
from accord.identity.grouped import predict_through_groups
from accord.identity.model import Engine, IdentityModel, input_columns, term_frequency_columns
from accord.identity.rules import RuleResult, apply_rules, identifier_limits, record_identifiers
from accord.identity.settings import IdentitySettings, identity_settings
from accord.identity.state import (
    CONSTRAINT_WATERMARK,
    SETTINGS_WATERMARK,
    Decisions,
    decisions,
    drop_indexes,
    ensure_indexes,
    identifier_rows,
    read_state,
    set_watermark,
    settings_hash,
    state_table,
)
from accord.privacy.encryption import Encryption, blind_standardized, encryption_for, reveal_records
from accord.standardize import standardize_records
from accord.standardize.records import standardize_record
from accord.store.backend import Store

ProgressFactory = Callable[[str], Callable[[int, int], None]]

RECORD_COLUMNS = ("given_name", "family_name", "full_name", "street", "city", "region", "postcode",
                  "country", "date_of_birth", "company")
JSON_TEXT_COLUMNS = ("emails", "phones", "external_ids")


@dataclass
class IdentityReport:
    run_id: str
    mode: str = "full"
    """'full' (every record resolved) or 'incremental' (only the changes)."""
    records: int = 0
    clusters: int = 0
    rule_edges: int = 0
    model_edges: int = 0
    auto_edges: int = 0
    review_edges: int = 0
    rejected_edges: int = 0
    bridges_cut: int = 0
    changed_records: int = 0
    """incremental: new or changed records resolved."""
    removed_records: int = 0
    """incremental: records no longer current, taken out of their clusters."""
    candidate_records: int = 0
    """incremental: stored records the blocking rules pair with the changes (scored against them)."""
    affected_records: int = 0
    """incremental: records whose clusters were recomputed (the changes and everything linked to them)."""
    decisions: int = 0
    """Human decisions (must-link, cannot-link) in force during clustering."""
    composite_records: int = 0
    """full: records the model's blocking ran over when scoring through rule groups (one per group)."""
    model_version: int | None = None
    model_trained: bool = False
    engine: str = "duckdb"
    excluded_identifiers: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    scope: list[tuple[str, str]] | None = field(default=None, repr=False)
    """incremental: (source, record_key) of every record whose customer may have changed (the
    affected and the removed records); None after a full rebuild (every record may have)."""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("scope")
        return out


def rid(source: str, record_key: str) -> str:
    """A record's name across Accord: ``source:record_key``."""
    return f"{source}:{record_key}"


def split_rid(value: str) -> tuple[str, str]:
    source, sep, key = value.partition(":")
    if not sep:
        raise AccordError(f"record {value!r}: expected SOURCE:RECORD_KEY")
    return source, key


def load_records(store: Store, only: str | None = None) -> pd.DataFrame:
    """Current people records, standardizable: one row each, with ``rid`` and ``row_hash``.

    ``only`` names a (temp) table of (source, record_key): just those records."""
    cols = ", ".join(f"r.{c}" for c in RECORD_COLUMNS)
    json_cols = ", ".join(f"CAST(r.{c} AS TEXT) AS {c}" for c in JSON_TEXT_COLUMNS)
    join, where = "", ""
    if only and store.dialect == "duckdb":
        # The keys matched reading the key columns only, then the rows fetched by position: a join reads
        # every column of every row (~0.25 s at a million records, for a thousand changes).
        where = ("AND r.rowid IN (SELECT t.rowid FROM source_records t JOIN "
                 f"{only} o ON o.source = t.source AND o.record_key = t.record_key)")
    elif only:
        join = f"JOIN {only} o ON o.source = r.source AND o.record_key = r.record_key"
    table = store.fetch_arrow(
        f"SELECT r.source, r.record_key, r.row_hash, {cols}, {json_cols} FROM source_records r {join} "
        f"WHERE r.deleted_at IS NULL {where} ORDER BY r.source, r.record_key")
    if table.num_rows == 0:
        df = pd.DataFrame(columns=["source", "record_key", "row_hash", *RECORD_COLUMNS, *JSON_TEXT_COLUMNS, "rid"])
        return df.astype(object)
    names = pc.binary_join_element_wise(pc.cast(table["source"], pa.string()), pc.cast(table["record_key"], pa.string()),
                                        ":")
    df = table.append_column("rid", names).to_pandas()
    # Text columns arrive as objects with None for nulls; anything else is made so the same way.
    for col in df.columns:
        if df[col].dtype != object:
            df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


NULL_WHEN_EMPTY = ("std_emails", "std_phones")
"""Standardized list columns whose empty lists become nulls, so the model treats them as missing."""


def prepare(records: pd.DataFrame, default_region: str, encryption: Encryption | None = None) -> pd.DataFrame:
    """Standardized records with empty lists as nulls (so the model treats them as missing).

    With ``privacy.encryption``, encrypted fields are decrypted in memory to standardize them, and the
    standardized columns derived from them become keyed hashes (exact comparisons only)."""
    if encryption is not None:
        records = reveal_records(records, encryption)
    std = standardize_records(records, default_region)
    for col in NULL_WHEN_EMPTY:  # each row's list is its own already
        std[col] = [v or None for v in std[col].tolist()]
    return blind_standardized(std, encryption) if encryption is not None else std


def prepare_record(record: Mapping[str, Any], default_region: str) -> dict[str, Any]:
    """``prepare`` for one record, without a frame (a one-row frame costs ~25 ms of set-up): the row
    ``prepare`` would give, as a dict. No encryption: with ``privacy.encryption`` on, the real-time
    path takes the batch path instead."""
    std = standardize_record(record, default_region)
    for col in NULL_WHEN_EMPTY:
        std[col] = std[col] or None
    return std


CONSTRAINT_COLUMNS = ("rid", "source", "record_key", "std_dob", "external_ids", "std_given_name", "std_family_name")
"""The columns ``constraint_values`` reads."""


def constraint_values(std: pd.DataFrame, settings: IdentitySettings) -> pd.DataFrame:
    """Per record, in long form (``ConstraintValues.values``: rid, key, value): the values unique to a
    person (birth date; external ids under ``external:SOURCE:KEY``) and its (given, family) name.
    Built column by column (birth dates, then external ids, then names), each in record order.

    A source's own record key among its external ids is no cannot-link: one person
    may hold several records in a source (a second account, every support ticket).
    """
    parts: list[pd.DataFrame] = []
    rid = std["rid"].astype(str).to_numpy(dtype=object)
    if "dob" in settings.cannot_link:
        dob = std["std_dob"].to_numpy(dtype=object)
        has = pd.notna(dob) & (dob != "")
        parts.append(pd.DataFrame({"rid": rid[has], "key": DOB_KEY, "value": dob[has]}))
    if "external_id" in settings.cannot_link:
        rows: list[tuple[str, str, str]] = []
        raw = std["external_ids"].to_numpy(dtype=object)
        has = np.flatnonzero(pd.notna(raw))
        sources = std["source"].to_numpy(dtype=object)[has].tolist()
        keys = std["record_key"].astype(str).to_numpy(dtype=object)[has].tolist()
        for r, source, record_key, ids in zip(rid[has].tolist(), sources, keys, raw[has].tolist()):
            ids = orjson.loads(ids) if isinstance(ids, str) and ids.strip() else (ids or {})
            if isinstance(ids, dict):
                rows += [(r, f"external:{source}:{key}", str(value)) for key, value in ids.items()
                         if value not in (None, "") and str(value) != record_key]
        parts.append(pd.DataFrame(rows, columns=["rid", "key", "value"], dtype=object))
    if "given_name" in settings.cannot_link:
        given = std["std_given_name"].to_numpy(dtype=object)
        family = std["std_family_name"].fillna("").to_numpy(dtype=object)
        has = pd.notna(given) & (given != "")
        parts.append(pd.DataFrame({"rid": rid[has], "key": NAME_KEY,
                                   "value": given[has].astype(str) + NAME_SEPARATOR + family[has].astype(str)}))
    if not parts:
        return pd.DataFrame(columns=["rid", "key", "value"], dtype=object)
    return pd.concat(parts, ignore_index=True)


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


def load_model(store: Store, settings: IdentitySettings, engine: Engine, spark: Any = None
               ) -> tuple[IdentityModel, int] | None:
    """The saved model, when it fits the configured comparisons and the engine's SQL dialect."""
    saved = latest_model(store)
    if saved and saved[1] == settings.model.fingerprint() and saved[2].get("sql_dialect", engine) == engine:
        return IdentityModel.from_json(settings.model, saved[2], engine=engine, spark_session=spark), saved[0]
    return None


def resolve(store: Store, cfg: ProjectConfig, run_id: str, progress: ProgressFactory | None = None, *,
            retrain: bool = False, labels_csv: str | Path | None = None, engine: Engine | None = None,
            settings: IdentitySettings | None = None) -> IdentityReport:
    """Resolve identities over all current records; write the result in one transaction."""
    # A million records' objects: full collections would walk them all. The stored state's rows are
    # built on a thread of their own while the model scores (DuckDB's work leaves a core idle).
    with collector.paused(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="accord-state") as background:
        return _resolve(store, cfg, run_id, progress, retrain=retrain, labels_csv=labels_csv, engine=engine,
                        settings=settings, background=background)


def _resolve(store: Store, cfg: ProjectConfig, run_id: str, progress: ProgressFactory | None, *, retrain: bool,
             labels_csv: str | Path | None, engine: Engine | None, settings: IdentitySettings | None,
             background: ThreadPoolExecutor) -> IdentityReport:
    settings = settings or identity_settings(cfg.identity)
    engine = engine or settings.engine
    report = IdentityReport(run_id, engine=engine)
    lap = Stopwatch(report.timings, (lambda step: progress(step)(1, 1)) if progress else None).lap

    records = load_records(store)
    report.records = len(records)
    std = prepare(records, cfg.identity.default_region, encryption_for(cfg))
    # Only the standardized columns are read from here on (the raw ones are a million strings each).
    del records
    read = set(input_columns(settings.model))
    std = std.drop(columns=[c for c in (*RECORD_COLUMNS, "emails", "phones") if c in std and c not in read])
    lap("standardize")

    rules = apply_rules(std, settings)
    report.excluded_identifiers = [e.as_dict() for e in rules.excluded]
    rule_edges = rule_edge_frame(rules)
    report.rule_edges = len(rule_edges)
    lap("rules")
    state_rows = background.submit(state_table, std)  # std is only read from here on

    model_edges = pd.DataFrame(columns=["record_a", "record_b", "probability", "match_weight"])
    new_model: IdentityModel | None = None
    if len(std) >= 2:
        spark = _spark_session() if engine == "spark" else None
        saved = latest_model(store)
        loaded = None if retrain or labels_csv else load_model(store, settings, engine, spark)
        if loaded:
            model, report.model_version = loaded
        else:
            if saved and not (retrain or labels_csv):
                report.warnings.append(f"model v{saved[0]} was trained for other comparisons or another "
                                       "engine; retraining")
            labels = _read_labels(labels_csv) if labels_csv else None
            model = IdentityModel(settings.model, engine=engine, spark_session=spark).fit(std, labels)
            report.warnings += model.training_summary_["warnings"]
            new_model = model
            report.model_trained = True
        lap("train" if new_model else "load_model")
        if settings.score_through_rule_groups and len(rule_edges):
            model_edges, grouped = predict_through_groups(model, std, rule_edges, cfg.identity.review_threshold)
            report.composite_records = grouped.composites
        else:
            model_edges = model.predict(std, cfg.identity.review_threshold)
        report.warnings += [w for w in model.warnings_ if w not in report.warnings]
        lap("predict")
    model_edges = model_edges.assign(rule_or_model=f"model:v{report.model_version or '?'}", priority=None)
    report.model_edges = len(model_edges)

    decided = decisions(store)
    result = cluster_records(std, rules, [rule_edges, model_edges], settings, cfg, decided)
    report.decisions = len(decided.must_link) + sum(len(v) for v in decided.cannot_link.values()) // 2
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
            is_model = result.edges["probability"].notna() & result.edges["rule_or_model"].astype(str).str.startswith(
                "model:")
            result.edges.loc[is_model, "rule_or_model"] = f"model:v{version}"
        store.execute("DELETE FROM identity")
        store.execute("DELETE FROM match_edges")
        write_clusters(store, std, result.clusters, result.edges, run_id)
        _write_state(store, std, settings, decided, cfg, rules.carried, state_rows.result())
    lap("write")
    summarise(report, result)
    return report


def rule_edge_frame(rules: RuleResult) -> pd.DataFrame:
    return rules.edges.assign(probability=None, match_weight=None).rename(columns={"rule": "rule_or_model"})


def cluster_records(std: pd.DataFrame, rules: RuleResult, edge_parts: list[pd.DataFrame], settings: IdentitySettings,
                    cfg: ProjectConfig, decided: Decisions, records: list[str] | None = None) -> ClusterResult:
    """Cluster ``records`` (default: every record of ``std``) under every constraint.

    ``std`` holds the standardized rows of these records and of every other record an edge names;
    ``rules.identifiers`` their identifiers after exclusions (for the per-customer limits)."""
    rids = list(std["rid"]) if records is None else records
    must = decided.edges(set(std["rid"]))
    parts = [e for e in (*edge_parts, must) if len(e)]
    all_edges = (_stack(parts) if parts else
                 pd.DataFrame(columns=["record_a", "record_b", "probability", "match_weight", "rule_or_model",
                                       "priority"]))
    # Only records an edge names ever meet a constraint: most records are alone, and reading their
    # values (a dict each) cost more than the clustering itself.
    touched = pd.Index(pd.unique(pd.concat([all_edges["record_a"], all_edges["record_b"]],
                                           ignore_index=True).astype(str)))
    ident = rules.identifiers
    limits = identifier_limits(settings, sorted(set(ident["type"])))
    # Only the types with a per-customer limit are ever counted (external ids usually have none).
    limited = ident[ident["type"].isin(list(limits)).to_numpy() & (touched.get_indexer(ident["rid"]) >= 0)]
    # Only the columns constraint_values reads are copied for the touched records.
    read = [c for c in CONSTRAINT_COLUMNS if c in std]
    values = ConstraintValues(constraint_values(std.loc[touched.get_indexer(std["rid"]) >= 0, read], settings),
                              limited[["rid", "type", "value"]].reset_index(drop=True), decided.cannot_link)
    options = ClusterOptions(cfg.identity.auto_merge_threshold, cfg.identity.review_threshold,
                             settings.bridge_threshold, settings.bridge_min_side)
    return cluster_edges(rids, all_edges, options, limits=limits, values=values)


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat`` of the parts as object columns (missing columns NaN), column by column: pandas'
    own concat tests every value of an all-null object column (rule edges' probability) one by one."""
    columns = list(dict.fromkeys(c for part in parts for c in part.columns))
    return pd.DataFrame({c: np.concatenate([part[c].to_numpy(dtype=object) if c in part
                                            else np.full(len(part), np.nan, dtype=object) for part in parts])
                         for c in columns})


def summarise(report: IdentityReport, result: ClusterResult) -> None:
    statuses = result.edges["status"].value_counts()
    report.clusters = len(set(result.clusters.values()))
    report.auto_edges = int(statuses.get("auto", 0))
    report.review_edges = int(statuses.get("review", 0))
    report.rejected_edges = int(statuses.get("rejected", 0))
    report.bridges_cut = result.bridges_cut


def clustering_hash(cfg: ProjectConfig, settings: IdentitySettings) -> int:
    """What the stored clustering depends on besides the records: settings, thresholds, region."""
    identity = cfg.identity
    return settings_hash(settings, identity.auto_merge_threshold, identity.review_threshold, identity.default_region)


def _write_state(store: Store, std: pd.DataFrame, settings: IdentitySettings, decided: Decisions,
                 cfg: ProjectConfig, carried: pd.DataFrame | None = None, rows: pa.Table | None = None) -> None:
    """Everything an incremental run starts from, rewritten whole. ``carried``: the records'
    identifiers as ``record_identifiers`` gives them, ``rows``: ``state_table(std)`` (each computed
    here when not given)."""
    drop_indexes(store)
    store.execute("DELETE FROM identity_standardized")
    store.execute("DELETE FROM identity_record_identifiers")
    store.load_arrow("identity_standardized", rows if rows is not None else state_table(std))
    ids = carried if carried is not None else record_identifiers(std, settings)
    store.load_arrow("identity_record_identifiers", identifier_rows(ids))
    ensure_indexes(store)
    set_watermark(store, CONSTRAINT_WATERMARK, decided.last_id)
    set_watermark(store, SETTINGS_WATERMARK, clustering_hash(cfg, settings))


def write_clusters(store: Store, std: pd.DataFrame, clusters: dict[str, str], edges: pd.DataFrame,
                   run_id: str) -> None:
    """Insert the ``identity`` rows of ``std``'s records and ``edges`` into ``match_edges``."""
    def text(values: pd.Series) -> pa.Array:
        try:  # text already (record names, statuses): converted whole, without a str() per value
            array = pa.array(values.to_numpy(dtype=object), pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = None
        return array if array is not None and not array.null_count else pa.array(
            values.astype(str).to_numpy(dtype=object), pa.string())

    def number(values: pd.Series) -> pa.Array:
        return pa.array(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float), pa.float64(), from_pandas=True)

    store.load_arrow("identity", pa.table({
        "source": text(std["source"]),
        "record_key": text(std["record_key"]),
        "cluster_id": text(std["rid"].map(clusters)),
        "run_id": pa.array([run_id] * len(std), pa.string()),
    }))
    reason = edges["reason"].where(edges["reason"].notna(), None)
    store.load_arrow("match_edges", pa.table({
        "record_a": text(edges["record_a"]),
        "record_b": text(edges["record_b"]),
        "probability": number(edges["probability"]),
        "match_weight": number(edges["match_weight"]),
        "rule_or_model": text(edges["rule_or_model"]),
        "status": text(edges["status"]),
        "reason": _optional_text(reason.to_numpy(dtype=object)),
        "run_id": pa.array([run_id] * len(edges), pa.string()),
    }))


def _optional_text(values: np.ndarray) -> pa.Array:
    """Text with None as null (other values as ``str`` gives them)."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def term_frequencies(store: Store, settings: IdentitySettings, values: Mapping[str, Any] | None = None
                     ) -> dict[str, pa.Table]:
    """Term-frequency tables over every stored record (``identity_standardized``), as Splink computes them.

    With ``values`` (column -> the values wanted: a frame or a dict of lists), only their rows."""
    out: dict[str, pa.Table] = {}
    for col in term_frequency_columns(settings.model):
        where = f"{col} IS NOT NULL"
        if values is not None:
            wanted = sorted({str(v) for v in values[col] if v is not None and v == v}) if col in values else []
            store.create_temp_table("_ix_tf_values", pa.table({"v": pa.array(wanted, pa.string())}))
            where += f" AND {col} IN (SELECT v FROM _ix_tf_values)"
        out[col] = store.fetch_arrow(
            f"SELECT {col}, CAST(COUNT(*) AS DOUBLE PRECISION) / "
            f"(SELECT COUNT({col}) FROM identity_standardized) AS tf_{col} "
            f"FROM identity_standardized WHERE {where} GROUP BY {col}")
    if values is not None:
        store.drop_temp_table("_ix_tf_values")
    return out


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
    """Why the latest model scores two records (``source:record_key``) as it does.

    Reads the two records' stored standardized rows and the stored term frequencies; records
    resolved before that state existed are standardized on the spot, against every record."""
    found = explain_many(store, cfg, [(record_a, record_b)])[(record_a, record_b)]
    if isinstance(found, AccordError):
        raise found
    return found


def explain_many(store: Store, cfg: ProjectConfig, pairs: Sequence[tuple[str, str]]
                 ) -> dict[tuple[str, str], dict[str, Any] | AccordError]:
    """``explain`` for many pairs with one model and one linker: pair -> explanation, or the error
    that pair alone gets (a record that is no longer current). The review queue explains the pairs a
    reviewer will see next this way."""
    settings = identity_settings(cfg.identity)
    saved = latest_model(store)
    if saved is None:
        raise AccordError("no trained identity model in the store; run 'accord resolve' first")
    pairs = list(dict.fromkeys(pairs))
    for pair in pairs:
        for r in pair:
            split_rid(r)
    wanted = sorted({r for pair in pairs for r in pair})
    current = set()
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        current |= {f"{s}:{k}" for s, k in store.fetchall(
            "SELECT source, record_key FROM source_records WHERE deleted_at IS NULL AND source || ':' || record_key "
            f"IN ({', '.join('?' * len(part))})", tuple(part))}
    out: dict[tuple[str, str], dict[str, Any] | AccordError] = {}
    for pair in pairs:
        missing = [r for r in pair if r not in current]
        if missing:
            out[pair] = AccordError(f"record {missing[0]!r} is not a current source record")
    todo = [pair for pair in pairs if pair not in out]
    if not todo:
        return out
    model = IdentityModel.from_json(settings.model, saved[2])
    ids = sorted({r for pair in todo for r in pair})
    std = read_state(store, "JOIN source_records r ON r.source = s.source AND r.record_key = s.record_key "
                     f"AND r.row_hash = s.row_hash WHERE s.rid IN ({', '.join('?' * len(ids))})", tuple(ids))
    if len(std) == len(ids):
        explained = model.explain_pairs(std, todo, term_frequencies=term_frequencies(store, settings, std))
    else:
        explained = model.explain_pairs(prepare(load_records(store), cfg.identity.default_region, encryption_for(cfg)), todo)
    for pair, found in zip(todo, explained):
        found["model_version"] = saved[0]
        out[pair] = found
    return out
