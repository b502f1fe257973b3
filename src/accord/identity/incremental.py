"""Incremental identity resolution: only new, changed and removed records, against the stored graph.

A full rebuild (``stage.resolve``) leaves the standardized records, their identifiers and every
match edge in the store. A later run then:

1. finds the changes: current records whose row hash differs from (or is missing in)
   ``identity_standardized``, records no longer current, human decisions newer than the watermark;
2. standardizes only the new and changed records and updates the stored state;
3. scores them with the saved model against the records the model's blocking rules pair them with
   (found in SQL; term frequencies over every record, so scores equal a full run's);
4. recomputes the deterministic rule groups of every identifier value they hold or held;
5. takes the *affected* records: the changes plus everything linked to them, transitively, by an
   edge that can merge (a rule, a decision, a model edge at or above auto-merge) — whole
   connected components, so clustering them alone gives what clustering everything would;
6. clusters those under every constraint (cannot-links, limits, weak bridges, human decisions) and
   replaces their ``identity`` rows and their match edges, in one transaction.

Time grows with the changes and their components, not with the store. ``accord run --full``
rebuilds everything and agrees with the incremental result, up to the term frequencies of old
pairs (a full run rescores every pair with the frequencies of the grown data set).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from accord.clock import Stopwatch, new_run_id
from accord.config import ProjectConfig
from accord.errors import AccordError
from accord.identity.model import IN_PROCESS_PAIRS, _pairs, input_columns, list_columns, term_frequency_columns
from accord.identity.realtime import record_row, store_records
from accord.identity.rules import apply_rules, record_identifiers
from accord.identity.settings import IdentitySettings, identity_settings
from accord.identity.stage import (
    IdentityReport,
    ProgressFactory,
    cluster_records,
    clustering_hash,
    load_model,
    load_records,
    prepare,
    resolve,
    rule_edge_frame,
    split_rid,
    summarise,
    write_clusters,
)
from accord.identity.state import (
    CONSTRAINT_WATERMARK,
    LIST_COLUMNS,
    STATE_COLUMNS,
    SETTINGS_WATERMARK,
    decided_since,
    decisions,
    edges_touching,
    _list_sql,
    identifier_rows,
    read_model_input,
    read_state,
    set_watermark,
    state_table,
    watermark,
)
from accord.privacy.encryption import encrypt_record_rows, encryption_for
from accord.store.backend import Store

log = logging.getLogger("accord.identity")

FULL_REBUILD_SHARE = 0.5
"""When more than this share of the records changed, a full rebuild is faster."""

_TEMPS = ("_ix_changed", "_ix_removed", "_ix_delta", "_ix_values", "_ix_cand", "_ix_set", "_ix_front",
          "_ix_rids", "_ix_held", "_ix_diff", "_ix_keys", "_ix_tfv", "_ix_rows", "_ix_edges")


def _temp(store: Store, name: str, select_sql: str, params: tuple = ()) -> None:
    store.create_temp_table_as(name, select_sql, params)


def _rid_table(store: Store, name: str, rids: Sequence[str]) -> None:
    store.create_temp_table(name, pa.table({"rid": pa.array(sorted(set(rids)), pa.string())}))


def full_rebuild_reason(store: Store, settings: IdentitySettings, cfg: ProjectConfig) -> str | None:
    """Why the next run cannot be incremental (None when it can)."""
    if settings.engine != "duckdb":
        return f"engine {settings.engine} resolves in full"
    if store.scalar("SELECT COUNT(*) FROM identity_models") == 0:
        return "no trained model yet"
    if load_model(store, settings, "duckdb") is None:
        return "the saved model was trained for other comparisons or another engine"
    if store.fetchone("SELECT 1 FROM identity_standardized LIMIT 1") is None:
        return "no incremental state yet (first resolution)"
    if watermark(store, SETTINGS_WATERMARK) != clustering_hash(cfg, settings):
        return "the identity settings changed since the last full rebuild"
    return None


def resolve_changes(store: Store, cfg: ProjectConfig, run_id: str, progress: ProgressFactory | None = None, *,
                    settings: IdentitySettings | None = None) -> IdentityReport:
    """Resolve what changed since the last resolution; a full rebuild when that is not possible
    (no model or state yet, another engine) or cheaper (most records changed)."""
    settings = settings or identity_settings(cfg.identity)
    reason = full_rebuild_reason(store, settings, cfg)
    if reason is None:
        with store.transaction():
            report = _resolve_delta(store, cfg, run_id, settings, progress)
            committing = time.perf_counter()
        if report is not None:
            report.timings["commit"] = round(time.perf_counter() - committing, 3)
            return report
        reason = f"more than {FULL_REBUILD_SHARE:.0%} of the records changed"
    report = resolve(store, cfg, run_id, progress, settings=settings)
    report.warnings.insert(0, f"full rebuild: {reason}")
    return report


def _resolve_delta(store: Store, cfg: ProjectConfig, run_id: str, settings: IdentitySettings,
                   progress: ProgressFactory | None = None, only: str | None = None) -> IdentityReport | None:
    """The incremental run, inside the caller's transaction. None when a full rebuild is cheaper.

    ``only`` names a temp table of (source, record_key): consider just those records' changes."""
    if store.dialect == "postgresql":
        # One identity writer at a time (several API workers may stitch at once); readers go on.
        store.execute("LOCK TABLE identity_watermarks IN EXCLUSIVE MODE")
    report = IdentityReport(run_id, mode="incremental")
    if _scores_in_store(store, settings) and (loaded := load_model(store, settings, "duckdb")) is not None:
        loaded[0].prepare_scoring_sql()  # on a thread, while the changes are found and standardized
    lap = Stopwatch(report.timings, (lambda step: progress(step)(1, 1)) if progress else None).lap
    if only:
        _temp(store, "_ix_changed", f"""
            SELECT r.source, r.record_key, r.source || ':' || r.record_key AS rid, s.rid IS NOT NULL AS known
            FROM source_records r JOIN {only} o ON o.source = r.source AND o.record_key = r.record_key
            LEFT JOIN identity_standardized s ON s.source = r.source AND s.record_key = r.record_key
            WHERE r.deleted_at IS NULL AND (s.rid IS NULL OR s.row_hash <> r.row_hash)""")
        _temp(store, "_ix_removed", "SELECT source, record_key, rid FROM identity_standardized WHERE FALSE")
    else:
        # One join of the records with the stored state gives both the changed and the removed ones.
        _temp(store, "_ix_diff", """
            SELECT COALESCE(r.source, s.source) AS source, COALESCE(r.record_key, s.record_key) AS record_key,
                   COALESCE(s.rid, r.source || ':' || r.record_key) AS rid, s.rid IS NOT NULL AS known,
                   r.record_key IS NOT NULL AND r.deleted_at IS NULL AS current
            FROM source_records r FULL JOIN identity_standardized s
              ON s.source = r.source AND s.record_key = r.record_key
            WHERE (r.record_key IS NOT NULL AND r.deleted_at IS NULL AND (s.rid IS NULL OR s.row_hash <> r.row_hash))
               OR (s.rid IS NOT NULL AND (r.record_key IS NULL OR r.deleted_at IS NOT NULL))""")
        _temp(store, "_ix_changed", "SELECT source, record_key, rid, known FROM _ix_diff WHERE current")
        _temp(store, "_ix_removed", "SELECT source, record_key, rid FROM _ix_diff WHERE NOT current")
    changed_rows = store.fetchall("SELECT rid, known FROM _ix_changed ORDER BY rid")
    changed = [r for r, _ in changed_rows]
    restated = any(known for _, known in changed_rows)  # changed records the stored state holds already
    removed = [r for (r,) in store.fetchall("SELECT rid FROM _ix_removed ORDER BY rid")]
    decided = decisions(store)
    last = watermark(store, CONSTRAINT_WATERMARK) or 0
    newly_decided = decided_since(store, last) if decided.last_id > last else set()
    total = int(store.scalar("SELECT COUNT(*) FROM identity_standardized"))
    report.changed_records, report.removed_records = len(changed), len(removed)
    report.decisions = len(decided.must_link) + sum(len(v) for v in decided.cannot_link.values()) // 2
    if not only and len(changed) + len(removed) > FULL_REBUILD_SHARE * max(total, 1):
        _drop(store)
        return None
    report.scope = []
    if not changed and not removed and not newly_decided:
        report.records = total
        _drop(store)
        lap("find_changes")
        return report
    lap("find_changes")

    # The changes, standardized; the stored state now describes them.
    delta = prepare(load_records(store, "_ix_changed"), cfg.identity.default_region, encryption_for(cfg))
    old_values = pd.DataFrame({"id_type": pd.Series([], dtype=object), "value": pd.Series([], dtype=object)})
    if restated or removed:  # new records alone have no stored state to replace
        old_values = store.fetch_arrow(
            "SELECT DISTINCT id_type, value FROM identity_record_identifiers WHERE rid IN "
            "(SELECT rid FROM _ix_changed UNION ALL SELECT rid FROM _ix_removed)").to_pandas()
        for table in ("identity_standardized", "identity_record_identifiers"):
            store.execute(f"DELETE FROM {table} WHERE rid IN "
                          "(SELECT rid FROM _ix_changed UNION ALL SELECT rid FROM _ix_removed)")
    new_ids = record_identifiers(delta, settings)
    store.load_arrow("identity_standardized", state_table(delta))
    store.load_arrow("identity_record_identifiers", identifier_rows(new_ids))
    # What the deletes and the load above did to the count taken before them (no second count).
    report.records = total - len(removed) - sum(1 for _, known in changed_rows if known) + len(delta)
    lap("standardize")

    # Identifier values the changes hold or held: their rule groups are recomputed.
    values = pd.concat([old_values, new_ids.rename(columns={"type": "id_type"})[["id_type", "value"]]])
    values = values.drop_duplicates()
    store.create_temp_table("_ix_values", pa.table({
        "id_type": pa.array(values["id_type"].astype(str).tolist(), pa.string()),
        "value": pa.array(values["value"].astype(str).tolist(), pa.string())}))
    holders = _holders(store, "_ix_values")

    # The model: the changes against the records its blocking rules pair them with.
    model_edges = _score_changes(store, cfg, settings, delta, report)
    lap("predict")

    auto = cfg.identity.auto_merge_threshold
    strong = model_edges[model_edges["probability"] >= auto]
    seeds = set(changed) | set(removed) | set(holders) | newly_decided
    seeds |= set(strong["record_a"]) | set(strong["record_b"])
    # Not yet narrowed to current records: the stored state read below says which are (it holds the
    # current records only, the removed ones were taken out above).
    affected = _linked(store, seeds, auto) - set(removed)
    lap("affected")

    # Rule groups of every value the affected records hold, with all the holders of each value.
    _rid_table(store, "_ix_set", sorted(affected))
    _temp(store, "_ix_held", "SELECT DISTINCT id_type, value FROM identity_record_identifiers "
                             "WHERE rid IN (SELECT rid FROM _ix_set)")
    group_rids = set(_holders(store, "_ix_held"))
    # Every stored edge of the affected and removed records, read once: the model's are kept below, and
    # all of them are replaced at the end (on DuckDB deleted by position, without a second scan).
    ends = "SELECT rid FROM _ix_set UNION ALL SELECT rid FROM _ix_removed"
    position = "rowid AS row_position, " if store.dialect == "duckdb" else ""
    _temp(store, "_ix_edges", edges_touching(
        store, ends, columns=f"{position}record_a, record_b, probability, match_weight, rule_or_model"))
    stored = store.fetch_arrow(
        "SELECT record_a, record_b, probability, match_weight, rule_or_model FROM _ix_edges "
        "WHERE rule_or_model LIKE 'model:%' AND (record_a IN (SELECT rid FROM _ix_set) "
        "OR record_b IN (SELECT rid FROM _ix_set))").to_pandas()
    stale = set(changed) | set(removed)
    stored = stored[~(stored["record_a"].isin(stale) | stored["record_b"].isin(stale))]
    model_edges = model_edges.assign(rule_or_model=f"model:v{report.model_version}", priority=None)
    edges_model = pd.concat([stored.assign(priority=None).astype(object), model_edges.astype(object)],
                            ignore_index=True)
    edges_model = _touching(edges_model, affected)
    named = affected | group_rids | set(edges_model["record_a"]) | set(edges_model["record_b"])
    _rid_table(store, "_ix_rids", sorted(named))
    std = read_state(store, "JOIN _ix_rids x ON x.rid = s.rid")
    if not affected <= (current := set(std["rid"])):  # an edge to a record no longer stored: rarely any
        affected &= current
        edges_model = _touching(edges_model, affected)
        named = affected | group_rids | set(edges_model["record_a"]) | set(edges_model["record_b"])
        std = std[std["rid"].isin(named)].reset_index(drop=True)
    in_groups = std[std["rid"].isin(group_rids | affected)]
    rules = apply_rules(in_groups.reset_index(drop=True), settings)
    held = set(store.fetchall("SELECT id_type, value FROM _ix_held"))
    report.excluded_identifiers = [e.as_dict() for e in rules.excluded if (e.type, e.value) in held]
    rule_edges = rule_edge_frame(rules)
    rule_edges = _touching(rule_edges, affected)
    report.rule_edges, report.model_edges = len(rule_edges), len(model_edges)
    lap("rules")

    named_rids = sorted(set(std["rid"]))
    result = cluster_records(std, rules, [rule_edges, edges_model], settings, cfg, decided, records=named_rids)
    touches = result.edges["record_a"].isin(affected) | result.edges["record_b"].isin(affected)
    result.edges = result.edges[touches].reset_index(drop=True)
    result.clusters = {r: c for r, c in result.clusters.items() if r in affected}
    lap("cluster")

    affected_std = std[std["rid"].isin(affected)]
    # By key columns, not by a rid built for every row of the table.
    store.create_temp_table("_ix_keys", pa.table({
        "source": pa.array(affected_std["source"].astype(str).tolist(), pa.string()),
        "record_key": pa.array(affected_std["record_key"].astype(str).tolist(), pa.string())}))
    store.execute("INSERT INTO _ix_keys (source, record_key) SELECT source, record_key FROM _ix_removed")
    store.execute("DELETE FROM identity WHERE EXISTS (SELECT 1 FROM _ix_keys k "
                  "WHERE k.source = identity.source AND k.record_key = identity.record_key)")
    if store.dialect == "duckdb":
        store.execute("DELETE FROM match_edges WHERE rowid IN (SELECT row_position FROM _ix_edges)")
    else:  # each by its index (an OR of the two would scan the table)
        store.execute(f"DELETE FROM match_edges WHERE record_a IN ({ends})")
        store.execute(f"DELETE FROM match_edges WHERE record_b IN ({ends})")
    write_clusters(store, affected_std, result.clusters, result.edges, run_id)
    set_watermark(store, CONSTRAINT_WATERMARK, decided.last_id)
    summarise(report, result)
    report.affected_records = len(affected)
    report.scope = sorted([split_rid(r) for r in affected] + [split_rid(r) for r in removed])
    _drop(store)
    lap("write")
    return report


def _score_changes(store: Store, cfg: ProjectConfig, settings: IdentitySettings, delta: pd.DataFrame,
                   report: IdentityReport) -> pd.DataFrame:
    """Model edges of the changed records (at or above the review threshold)."""
    loaded = load_model(store, settings, "duckdb")
    if loaded is None:  # pragma: no cover - full_rebuild_reason checked it
        raise AccordError("no saved identity model fits the configuration; run 'accord run --full'")
    model, report.model_version = loaded
    if not len(delta):
        return pd.DataFrame({c: pd.Series([], dtype=object)
                             for c in ("record_a", "record_b", "probability", "match_weight")}).astype(
            {"probability": float})
    # DuckDB: the candidates by row id, then their rows fetched by position (a second join on rid would
    # scan every rid of the table again: ~0.3 s at a million records). PostgreSQL: by rid, its key.
    key = "rowid" if store.dialect == "duckdb" else "rid"
    if _scores_in_store(store, settings):
        # Every pair a blocking rule gives (changed record, stored record), by the stored record's row id.
        store.create_temp_table("_ix_delta", model.input_table(delta))
        pairs = " UNION ALL ".join(
            "SELECT d.rid AS rid_l, s.rowid AS k FROM identity_standardized s JOIN _ix_delta d ON "
            + " AND ".join(f"s.{c} = d.{c}" for c in rule) for rule in settings.model.blocking_rules)
        _temp(store, "_ix_cand", f"SELECT DISTINCT rid_l, k FROM ({pairs}) c")
        stored = int(store.scalar("SELECT COUNT(DISTINCT k) FROM _ix_cand"))
        if len(delta) * (len(delta) + stored) > IN_PROCESS_PAIRS:  # else predict_new scores them in process
            return _score_in_store(store, cfg, settings, model, report)
    else:
        cols = [c for c in input_columns(settings.model) if c not in list_columns(settings.model)]
        keys = {"rid": pa.array(delta["rid"].astype(str).tolist(), pa.string())}
        for col in cols:
            values = delta[col].tolist() if col in delta else [None] * len(delta)
            keys[col] = pa.array([None if v is None or v != v or v == "" else str(v) for v in values], pa.string())
        store.create_temp_table("_ix_delta", pa.table(keys))
        selects = []
        for rule in settings.model.blocking_rules:
            if isinstance(rule, list):
                on = " AND ".join(f"s.{c} = d.{c}" for c in rule)
                selects.append(f"SELECT s.{key} AS k FROM identity_standardized s JOIN _ix_delta d ON {on}")
            else:  # SQL over l. and r.: the changed record on either side
                selects.append(f"SELECT r.{key} AS k FROM _ix_delta l JOIN identity_standardized r ON {rule}")
                selects.append(f"SELECT l.{key} AS k FROM identity_standardized l JOIN _ix_delta r ON {rule}")
        _temp(store, "_ix_cand", f"SELECT DISTINCT k FROM ({' UNION ALL '.join(selects)}) c")
    existing = read_model_input(store, [c for c in input_columns(settings.model) if c != "rid"],
                                f"WHERE s.{key} IN (SELECT k FROM _ix_cand) "
                                "AND s.rid NOT IN (SELECT rid FROM _ix_delta)")
    report.candidate_records = existing.num_rows
    frequencies = _candidate_frequencies(store, settings, existing)
    edges = model.predict_new(delta, existing, cfg.identity.review_threshold, term_frequencies=frequencies)
    report.warnings += [w for w in model.warnings_ if w not in report.warnings]
    return edges


def _scores_in_store(store: Store, settings: IdentitySettings) -> bool:
    """Whether the changes are scored in the store's own DuckDB (``_score_in_store``): blocking rules
    on equal columns only (a rule in SQL pairs records one way round; Splink's linker keeps it)."""
    return store.dialect == "duckdb" and all(isinstance(r, list) for r in settings.model.blocking_rules)


def _score_in_store(store: Store, cfg: ProjectConfig, settings: IdentitySettings, model: Any,
                    report: IdentityReport) -> pd.DataFrame:
    """``_score_changes`` where the candidates are: the store's DuckDB pairs each changed record
    (``_ix_delta``, left) with every record a blocking rule gives it (``_ix_cand``'s stored ones, and the
    other changes), as Splink's linker pairs the changes with the changes and their candidates, and
    scores the pairs with Splink's own SQL (``IdentityModel.scoring_sql``), term frequencies over every
    stored record: the linker's scores, without its set-up or the candidates moved out of the store."""
    names = [c for c in input_columns(settings.model) if c != "rid"]
    listed = list_columns(settings.model)
    rules = settings.model.blocking_rules
    # The columns the comparisons read, as read_model_input reads them and IdentityModel.input_table types them.
    compared = [c for c in names if c in _compared_columns(settings)]
    stored = [(_list_sql(store, c).rsplit(" AS ", 1)[0] if c in LIST_COLUMNS else f"s.{c}" if c in STATE_COLUMNS
               else "NULL") for c in compared]
    stored = [f"CAST({v} AS {'VARCHAR[]' if c in listed else 'VARCHAR'}) AS {c}" for v, c in zip(stored, compared)]
    # The candidates' rows; the changes' own stored rows are left out: they are paired as given, below.
    _temp(store, "_ix_rows", f"SELECT s.rowid AS k, s.rid, {', '.join(stored)} FROM identity_standardized s "
                             "WHERE s.rowid IN (SELECT k FROM _ix_cand) AND s.rid NOT IN (SELECT rid FROM _ix_delta)")
    report.candidate_records = int(store.scalar("SELECT COUNT(*) FROM _ix_rows"))
    frequencies = term_frequency_columns(settings.model)
    if frequencies:
        totals = store.fetchone("SELECT " + ", ".join(f"COUNT({c})" for c in frequencies)
                                + " FROM identity_standardized") or ()
        for i, (col, total) in enumerate(zip(frequencies, totals)):
            _temp(store, f"_ix_tf{i}", f"""
                SELECT {col} AS value, CAST(COUNT(*) AS DOUBLE PRECISION) / {max(int(total), 1)} AS tf
                FROM identity_standardized WHERE {col} IS NOT NULL AND {col} IN
                (SELECT {col} FROM _ix_delta UNION SELECT {col} FROM _ix_rows) GROUP BY {col}""")
    right = ", ".join(f"r.{c}" for c in compared)
    # The changes with each other: one equi-join a rule (an OR of the rules would compare every two).
    among = " UNION ALL ".join(
        "SELECT l.rid AS rid_l, r.rid AS rid_r FROM _ix_delta l JOIN _ix_delta r ON "
        + " AND ".join(f"l.{c} = r.{c}" for c in rule) + " WHERE l.rid <> r.rid" for rule in rules)
    both = (f"SELECT c.rid_l, r.rid, {right} FROM _ix_cand c JOIN _ix_rows r ON r.k = c.k "
            f"UNION ALL SELECT p.rid_l, r.rid, {right} FROM (SELECT DISTINCT rid_l, rid_r FROM ({among}) a) p "
            "JOIN _ix_delta r ON r.rid = p.rid_r")
    selects = ["r.rid_l", "r.rid AS rid_r"] + [f"l.{c} AS {c}_l, r.{c} AS {c}_r" for c in compared]
    joins = []
    for i, col in enumerate(frequencies):
        selects.append(f"tl{i}.tf AS tf_{col}_l, tr{i}.tf AS tf_{col}_r")
        joins.append(f"LEFT JOIN _ix_tf{i} tl{i} ON tl{i}.value = l.{col} "
                     f"LEFT JOIN _ix_tf{i} tr{i} ON tr{i}.value = r.{col}")
    scored = store.fetch_arrow(model.scoring_sql(
        f"(SELECT {', '.join(selects)} FROM ({both}) r JOIN _ix_delta l ON l.rid = r.rid_l {' '.join(joins)})",
        cfg.identity.review_threshold) + " ORDER BY rid_l, rid_r").to_pandas()
    store.drop_temp_table(*(f"_ix_tf{i}" for i in range(len(frequencies))))
    model.warnings_ = []
    edges = _pairs(scored)
    edges = edges[edges["record_a"] != edges["record_b"]]
    return edges.drop_duplicates(["record_a", "record_b"]).reset_index(drop=True)


def _compared_columns(settings: IdentitySettings) -> set[str]:
    """The columns the model's comparisons read (blocking-only columns are not carried into the pairs)."""
    cols = set()
    for spec in settings.model.comparisons:
        cols |= {c for c in (spec.column, spec.group_column, spec.list_column, spec.user_column) if c}
    return cols


def _candidate_frequencies(store: Store, settings: IdentitySettings, existing: pa.Table) -> dict[str, pa.Table]:
    """``stage.term_frequencies`` over every stored record, for the values the changes (``_ix_delta``)
    and their candidates (``existing``, read already) hold only."""
    out: dict[str, pa.Table] = {}
    columns = term_frequency_columns(settings.model)
    if not columns:
        return out
    # Every column's count of values in one pass over the table.
    totals = store.fetchone("SELECT " + ", ".join(f"COUNT({c})" for c in columns) + " FROM identity_standardized")
    for col, total in zip(columns, totals or ()):
        held = existing[col] if col in existing.column_names else pa.chunked_array([], pa.string())
        store.create_temp_table("_ix_tfv", pa.table({"value": pc.unique(pc.drop_null(held.cast(pa.string())))}))
        out[col] = store.fetch_arrow(
            f"SELECT {col}, CAST(COUNT(*) AS DOUBLE PRECISION) / CAST(? AS DOUBLE PRECISION) AS tf_{col} "
            f"FROM identity_standardized WHERE {col} IS NOT NULL AND {col} IN "
            f"(SELECT {col} FROM _ix_delta UNION SELECT value FROM _ix_tfv) GROUP BY {col}",
            (max(int(total), 1),))
    return out


def _linked(store: Store, seeds: set[str], auto_merge_threshold: float) -> set[str]:
    """``seeds`` and every record linked to them, transitively, by a stored edge that can merge."""
    if store.dialect == "duckdb":
        # One statement: the edges that can merge are read once and walked in memory. Walking them step by
        # step from here costs a scan of match_edges a step (~50 ms at a million edges; 5-10 steps).
        _rid_table(store, "_ix_front", sorted(seeds))
        return {r for (r,) in store.fetchall("""
            WITH RECURSIVE e AS MATERIALIZED (
                SELECT record_a, record_b FROM match_edges WHERE probability IS NULL OR probability >= ?),
            linked(rid) AS (
                SELECT rid FROM _ix_front
                UNION
                SELECT n.rid FROM (SELECT e.record_b AS rid FROM linked l JOIN e ON e.record_a = l.rid
                                   UNION ALL SELECT e.record_a FROM linked l JOIN e ON e.record_b = l.rid) n)
            SELECT rid FROM linked""", (auto_merge_threshold,))}
    # PostgreSQL: its indexes on record_a and record_b find each step's edges.
    seen = set(seeds)
    frontier = sorted(seeds)
    while frontier:
        _rid_table(store, "_ix_front", frontier)
        rows = store.fetchall(edges_touching(store, "SELECT rid FROM _ix_front", columns="record_a, record_b",
                                             where=f"probability IS NULL OR probability >= {float(auto_merge_threshold)!r}"))
        found = {r for pair in rows for r in pair} - seen
        seen |= found
        frontier = sorted(found)
    return seen


def _holders(store: Store, values: str) -> list[str]:
    """The records holding an identifier of ``values`` (a table of id_type, value)."""
    return [r for (r,) in store.fetchall(f"""
        SELECT DISTINCT i.rid FROM identity_record_identifiers i
        JOIN {values} v ON v.id_type = i.id_type AND v.value = i.value""")]


def _touching(edges: pd.DataFrame, records: set[str]) -> pd.DataFrame:
    """The edges with an end in ``records``."""
    return edges[edges["record_a"].isin(records) | edges["record_b"].isin(records)]


def _drop(store: Store) -> None:
    store.drop_temp_table(*_TEMPS)


# --- real-time stitching -----------------------------------------------------------------------

@dataclass
class Assignment:
    """Where one record given to ``resolve_records`` went."""

    source: str
    record_key: str
    customer_id: str
    outcome: str
    """'created' (a new customer), 'joined' (an existing customer) or 'unchanged' (already resolved as given)."""
    merged_ids: list[str] = field(default_factory=list)
    """Customer ids this call merged into ``customer_id`` (they now redirect to it)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_records(store: Store, cfg: ProjectConfig, records: Sequence[Mapping[str, Any]], *,
                    run_id: str | None = None, actor: str | None = None,
                    settings: IdentitySettings | None = None) -> list[Assignment]:
    """Store ``records``, resolve them against the stored graph, give each a stable customer id.

    For real-time stitching (an identify call bringing a new email, phone or name). One
    transaction: the records in ``source_records``, their clusters, ids (audited) and the golden
    records of the customers they touch. See docs/identity.md."""
    from accord.identity.placement import place_record
    from accord.profiles.stage import build_new_profile, build_profiles

    run_id = run_id or new_run_id()
    settings = settings or identity_settings(cfg.identity)
    rows = [record_row(r, i) for i, r in enumerate(records)]
    if not rows:
        return []
    encryption = encryption_for(cfg)
    if encryption is not None:  # privacy.encryption: stored as tokens
        rows = encrypt_record_rows(rows, encryption, cfg.identity.default_region)
    keys = list(dict.fromkeys((r["source"], r["record_key"]) for r in rows))
    unique = list({(r["source"], r["record_key"]): r for r in rows}.values())
    with store.transaction():
        report: IdentityReport | None = None
        if len(keys) == 1 and encryption is None:  # the usual identify: one new record, placed directly
            with store.pipeline():  # its writes held back and sent with its reads (PostgreSQL)
                placed = place_record(store, cfg, settings, unique[0], run_id)
                if isinstance(placed, str):
                    log.debug("record %s:%s takes the batch path: %s", *keys[0], placed)
                else:
                    report = placed
                    stored_at = store_records(store, unique, run_id, new=True)
                    if report.affected_records == 1:  # placed alone, and new: a customer of its own
                        profile = build_new_profile(store, cfg, *keys[0], run_id, (unique[0], stored_at),
                                                    actor=actor or run_id)
                        assert profile.ids.customer_ids
                        return [Assignment(*keys[0], profile.ids.customer_ids[0], "created")]
        before: dict[tuple[str, str], str] = {}  # a placed record is new: it had no customer
        if report is None:
            before = _customers_of(store, keys)
            reason = full_rebuild_reason(store, settings, cfg)
            if reason is not None:
                raise AccordError(f"cannot resolve records in real time: {reason}; run 'accord run' first")
            store_records(store, unique, run_id)
            store.create_temp_table("_ix_only", pa.table({
                "source": pa.array([s for s, _ in keys], pa.string()),
                "record_key": pa.array([k for _, k in keys], pa.string())}))
            report = _resolve_delta(store, cfg, run_id, settings, only="_ix_only")
            store.drop_temp_table("_ix_only")
            assert report is not None
        last_seq = int(store.scalar("SELECT last_value FROM profile_counters WHERE name = 'customer'"))
        merged: dict[str, list[str]] = {}
        if report.scope:
            # customer_identifiers: the caller's real-time rows now; the next run's refresh takes the
            # customers this changed (their audit events, their records stored since).
            profiles = build_profiles(store, cfg, None, run_id, scope=report.scope, actor=actor or run_id,
                                      refresh_identifiers=False)
            for old, new in profiles.ids.merges:
                merged.setdefault(new, []).append(old)
        after = {key: (c, int(store.scalar("SELECT seq FROM customers WHERE customer_id = ?", (c,))))
                 for key, c in _customers_of(store, keys).items()}
    out = []
    for key in keys:
        if key not in after:  # pragma: no cover - every current record is clustered
            raise AccordError(f"record {key[0]}:{key[1]} was not assigned a customer")
        cid, seq = after[key]
        outcome = "unchanged" if before.get(key) == cid and cid not in merged else (
            "created" if seq > last_seq else "joined")
        out.append(Assignment(key[0], key[1], cid, outcome, sorted(merged.get(cid, []))))
    return out


def _customers_of(store: Store, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The customer of each record of ``keys`` that has one: a point query on record_customer's key per
    record (a real-time call brings one or a few; a filter on ``source || ':' || record_key`` scans the
    table, ~80 ms at a million records)."""
    found = {}
    for source, key in keys:
        row = store.fetchone("SELECT customer_id FROM record_customer WHERE source = ? AND record_key = ?",
                             (source, key))
        if row is not None:
            found[(source, key)] = row[0]
    return found
