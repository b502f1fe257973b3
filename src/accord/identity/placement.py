"""One new record resolved in real time: incremental resolution's decisions without its batch machinery.

``incremental.resolve_records`` hands a single new record here first (an identify call bringing a new
email). The steps and the functions that decide are incremental resolution's (``_resolve_delta``):
the record standardized as a batch would (``stage.prepare_record``), scored with the saved model
against every record its blocking rules pair it with (``scorer.PairScorer``, Splink's weights),
the deterministic rule groups of every identifier value involved (``rules.apply_rules``), and the
record with everything linked to it clustered under every constraint (``stage.cluster_records``);
then its identity rows and match edges are replaced as a batch would replace them. What differs is
how the data is reached, since a batch's way costs ~0.5 s whatever the delta's size:

* no temp tables and no scans: the candidates are one query answered by the blocking columns'
  indexes (PostgreSQL; ``state._PG_INDEXES``), the linked records a walk of ``match_edges`` by its
  indexes, the human decisions only those naming the records involved;
* term frequencies (the share of a name or city among all records) come from ``TermFrequencies``, a
  per-process cache: a value's count is read once per ``TF_TTL_SECONDS`` (by index on PostgreSQL) and
  the column totals once per ``TF_TOTAL_TTL_SECONDS`` (a scan). A cached share is off by at most the
  records stored since it was read; a full rebuild computes them afresh;
* the model is loaded once per version per process.

``place_record`` answers a reason instead (and the caller takes the batch path) when the record is
not new, when human decisions arrived since the last run, when the model's blocking rules are SQL the
in-process scorer does not run, or when the record meets more than ``MAX_CANDIDATES`` candidates or
``MAX_LINKED`` linked records (a batch is then as fast, and its plan scales).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from accord.clock import Stopwatch
from accord.config import ProjectConfig
from accord.identity.clustering import ClusterResult, cluster_id_for
from accord.identity.model import IdentityModel, input_columns, term_frequency_columns
from accord.identity.rules import apply_rules, identifiers_of
from accord.identity.scorer import PairScorer, probability
from accord.identity.settings import IdentitySettings, identity_settings
from accord.identity.stage import (
    IdentityReport,
    clustering_hash,
    cluster_records,
    JSON_TEXT_COLUMNS,
    RECORD_COLUMNS,
    load_model,
    prepare_record,
    rule_edge_frame,
    split_rid,
    summarise,
    write_clusters,
)
from accord.identity.state import (
    CONSTRAINT_WATERMARK,
    LIST_COLUMNS,
    SETTINGS_WATERMARK,
    STATE_COLUMNS,
    decisions,
    _list_sql,
    edges_touching,
    read_state,
    state_row,
)
from accord.store.backend import Store

MAX_CANDIDATES = 5_000
"""More candidates than this (a very common name with no other field): the batch path scores them."""
MAX_LINKED = 500
"""More records linked to the new one than this: the batch path clusters them."""
TF_TTL_SECONDS = 300.0
TF_TOTAL_TTL_SECONDS = 900.0
TF_CACHED_VALUES = 200_000
"""Value counts kept per process at most (~30 MB); past it the oldest tenth is dropped and read again
when asked (a store of a hundred million people holds millions of distinct names)."""


def _sql_text(value: str) -> str:
    """A string as an SQL literal (quotes doubled): record ids inlined into IN lists."""
    return "'" + str(value).replace("'", "''") + "'"


def _in_list(values: Iterable[str]) -> str:
    return ", ".join(_sql_text(v) for v in sorted(set(values))) or "NULL"


class TermFrequencies:
    """Counts of values among all stored records, per column, cached for a while (see the module doc)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], tuple[float, int]] = {}
        self._totals: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def count_sql(column: str) -> str:
        return f"SELECT COUNT(*) FROM identity_standardized WHERE {column} = ?"

    def count(self, store: Store, column: str, value: str) -> int:
        now = time.monotonic()
        with self._lock:
            hit = self._counts.get((column, value))
        if hit is None or now - hit[0] > TF_TTL_SECONDS:
            hit = self.put(column, value, int(store.scalar(self.count_sql(column), (value,)) or 0))
        return hit[1]

    def due(self, column: str, value: str) -> bool:
        """Whether ``count`` would read this value's count (not cached, or cached too long ago)."""
        with self._lock:
            hit = self._counts.get((column, value))
        return hit is None or time.monotonic() - hit[0] > TF_TTL_SECONDS

    def put(self, column: str, value: str, count: int) -> tuple[float, int]:
        """Cache a count just read (``count_sql``)."""
        hit = (time.monotonic(), count)
        with self._lock:
            self._counts[(column, value)] = hit
            if len(self._counts) > TF_CACHED_VALUES:  # the oldest reads go first (insertion order)
                for key in list(self._counts)[: TF_CACHED_VALUES // 10]:
                    del self._counts[key]
        return hit

    def total(self, store: Store, column: str) -> int:
        now = time.monotonic()
        with self._lock:
            hit = self._totals.get(column)
        if hit is None or now - hit[0] > TF_TOTAL_TTL_SECONDS:
            hit = (now, int(store.scalar(f"SELECT COUNT({column}) FROM identity_standardized") or 0))
            with self._lock:
                self._totals[column] = hit
        return hit[1]

    def read_totals(self, store: Store, columns: list[str]) -> None:
        """Every column's total in one pass over the table (a server's start, ahead of the first call)."""
        if not columns:
            return
        row = store.fetchone("SELECT " + ", ".join(f"COUNT({c})" for c in columns) + " FROM identity_standardized")
        now = time.monotonic()
        with self._lock:
            for column, total in zip(columns, row or ()):
                self._totals[column] = (now, int(total or 0))

    def shares(self, store: Store, column: str, new_value: str) -> Mapping[str, float]:
        """value -> its share of the column's non-null values, read when the scorer asks (a comparison
        adjusts at one level, for the pairs that reach it), counting the new record: the batch path
        has stored it before it scores."""
        return _Shares(self, store, column, new_value)


class _Shares(Mapping[str, float]):
    def __init__(self, frequencies: TermFrequencies, store: Store, column: str, new_value: str) -> None:
        self._of, self._store, self._column, self._new = frequencies, store, column, new_value
        self._denominator: int | None = None
        self._seen: dict[str, float | None] = {}  # one placement asks for the same values again and again

    def get(self, value: Any, default: Any = None) -> Any:  # type: ignore[override]
        if value is None:
            return default
        if value not in self._seen:
            n = self._of.count(self._store, self._column, value) + (1 if value == self._new else 0)
            if n and self._denominator is None:
                self._denominator = self._of.total(self._store, self._column) + 1
            self._seen[value] = n / self._denominator if n and self._denominator else None
        found = self._seen[value]
        return default if found is None else found

    def __getitem__(self, value: str) -> float:
        found = self.get(value)
        if found is None:
            raise KeyError(value)
        return found

    def __iter__(self) -> Any:  # only looked up, never listed
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass
class _Loaded:
    version: int
    model: IdentityModel
    scorer: PairScorer | None
    columns: list[str]
    frequencies: TermFrequencies = field(default_factory=TermFrequencies)


_MODELS: weakref.WeakKeyDictionary[Store, _Loaded] = weakref.WeakKeyDictionary()


def _model(store: Store, settings: IdentitySettings, version: int) -> _Loaded | None:
    loaded = _MODELS.get(store)
    if loaded is not None and loaded.version == version:
        return loaded
    found = load_model(store, settings, "duckdb")
    if found is None or found[1] != version:
        return None
    model = found[0]
    loaded = _Loaded(version, model, model.pair_scorer(),
                     [c for c in input_columns(settings.model) if c != "rid"])
    _MODELS[store] = loaded
    return loaded


_READY_SQL = f"""
        SELECT m.version, m.fingerprint,
               (SELECT value FROM identity_watermarks WHERE name = '{SETTINGS_WATERMARK}'),
               (SELECT value FROM identity_watermarks WHERE name = '{CONSTRAINT_WATERMARK}'),
               (SELECT COALESCE(MAX(constraint_id), 0) FROM identity_constraints),
               (SELECT COUNT(*) FROM source_records WHERE source = ? AND record_key = ?)
        FROM (SELECT version, fingerprint FROM identity_models ORDER BY version DESC LIMIT 1) m"""
"""The latest model, the watermarks, the last human decision, and whether the record is stored."""


def _unsupported(settings: IdentitySettings) -> str | None:
    if settings.engine != "duckdb":
        return f"engine {settings.engine} resolves in full"
    if any(not isinstance(r, list) for r in settings.model.blocking_rules):
        return "blocking rules in SQL: the batch path pairs them"
    return None


def _ready(store: Store, cfg: ProjectConfig, settings: IdentitySettings, key: tuple[str, str] | None = None
           ) -> _Loaded | str:
    """The loaded model when the stored state allows a real-time placement of the record ``key`` (one not
    stored yet), else why not."""
    reason = _unsupported(settings)
    if reason is not None:
        return reason
    return _ready_from(store, cfg, settings, store.fetchone(_READY_SQL, key or ("", "")), key)


def _ready_from(store: Store, cfg: ProjectConfig, settings: IdentitySettings, row: tuple[Any, ...] | None,
                key: tuple[str, str] | None) -> _Loaded | str:
    """``_ready``, given the row ``_READY_SQL`` read."""
    if row is None or row[1] != settings.model.fingerprint():
        return "no saved model fits the configuration"
    version, _, settings_mark, constraint_mark, last, stored = row
    if key is not None and stored:
        return "the record is stored already: a changed record takes the batch path"
    if settings_mark is None or int(settings_mark) != clustering_hash(cfg, settings):
        return "the identity settings changed since the last full rebuild"
    if int(last) > int(constraint_mark or 0):
        return "human decisions arrived since the last run: the batch path applies them"
    loaded = _model(store, settings, int(version))
    if loaded is None or loaded.scorer is None:
        return "the saved model's comparisons need Splink's SQL"
    return loaded


def warm(store: Store, cfg: ProjectConfig, settings: IdentitySettings | None = None) -> str | None:
    """Load the model and read the term-frequency totals now, so the first identify does not (~0.5 s at a
    million records); on the connection the placements will use. None, or why placement cannot run yet."""
    settings = settings or identity_settings(cfg.identity)
    loaded = _ready(store, cfg, settings)
    if isinstance(loaded, str):
        return loaded
    loaded.frequencies.read_totals(store, term_frequency_columns(settings.model))
    return None


def _standardize(row: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The record as ``load_records`` reads it back and ``prepare`` standardizes it."""
    record = {k: row.get(k) for k in ("source", "record_key", "row_hash", *RECORD_COLUMNS, *JSON_TEXT_COLUMNS)}
    record["rid"] = f"{row['source']}:{row['record_key']}"
    return prepare_record(record, region)


def _candidates_query(store: Store, columns: list[str], std: Mapping[str, Any], rules: list[list[str]]
                      ) -> tuple[str, tuple[Any, ...]] | None:
    """The statement reading the stored records a blocking rule pairs with ``std`` (None: no rule applies):
    an OR of the rules, each answered by its index on PostgreSQL."""
    usable = [r for r in rules if all(std.get(c) not in (None, "") for c in r)]
    if not usable:
        return None
    where = " OR ".join("(" + " AND ".join(f"s.{c} = ?" for c in r) + ")" for r in usable)
    params = tuple(std[c] for r in usable for c in r)
    selects = ["s.rid"] + [_list_sql(store, c) if c in LIST_COLUMNS else f"s.{c}" for c in columns]
    return (f"SELECT {', '.join(selects)} FROM identity_standardized s WHERE {where} "
            f"LIMIT {MAX_CANDIDATES + 1}", params)


def _candidates(found: list[tuple[Any, ...]], columns: list[str]) -> list[dict[str, Any]] | None:
    """The candidates' rows as records (None: more than ``MAX_CANDIDATES``)."""
    if len(found) > MAX_CANDIDATES:
        return None
    names = ["rid", *columns]
    return [dict(zip(names, row)) for row in found]


Edge = tuple[str, str, float, float]
"""A model edge: (record_a, record_b, probability, match_weight), record_a < record_b."""


def _score(loaded: _Loaded, store: Store, std: Mapping[str, Any], candidates: list[dict[str, Any]],
           threshold: float, tf_columns: list[str]) -> list[Edge]:
    """The model edges of the new record at or above ``threshold`` (``IdentityModel.predict_new``'s, in
    its order)."""
    assert loaded.scorer is not None
    left = {"rid": std["rid"], **{c: std.get(c) for c in loaded.columns}}
    for col in LIST_COLUMNS:
        if col in left and not left[col]:
            left[col] = None
    # Only the columns the new record holds: a null value meets the comparison's null level, which
    # reads no frequency.
    tfs = {col: loaded.frequencies.shares(store, col, left[col]) for col in tf_columns if left.get(col) is not None}
    least = -math.inf if threshold <= 0 else math.inf if threshold >= 1 else math.log2(threshold / (1 - threshold))
    seen: dict[tuple[str, str], tuple[float, float]] = {}
    for right in candidates:  # each met a blocking rule in the candidates' query (PairScorer.blocked)
        a, b = str(left["rid"]), str(right["rid"])
        if a == b:
            continue
        weight = loaded.scorer.match_weight(left, right, tfs)
        if weight >= least:
            seen[(min(a, b), max(a, b))] = (probability(weight), weight)
    return [(a, b, *seen[(a, b)]) for a, b in sorted(seen)]


def _edge_frame(edges: list[Edge]) -> pd.DataFrame:
    return pd.DataFrame({"record_a": [e[0] for e in edges], "record_b": [e[1] for e in edges],
                         "probability": pd.Series([e[2] for e in edges], dtype=float),
                         "match_weight": pd.Series([e[3] for e in edges], dtype=float)})


def _holders_query(values: Iterable[tuple[str, str]]) -> tuple[str, tuple[Any, ...]] | None:
    """The statement reading the stored records holding any (id_type, value) of ``values`` (None: none)."""
    pairs = sorted(set(values))
    if not pairs:
        return None
    where = " OR ".join("(id_type = ? AND value = ?)" for _ in pairs)
    return f"SELECT DISTINCT rid FROM identity_record_identifiers WHERE {where}", tuple(x for p in pairs for x in p)


def _holders(store: Store, values: Iterable[tuple[str, str]]) -> set[str]:
    """The stored records holding any (id_type, value) of ``values``."""
    query = _holders_query(values)
    return {r for (r,) in store.fetchall(*query)} if query is not None else set()


def _linked(store: Store, seeds: set[str], auto: float) -> set[str] | None:
    """``seeds`` and every record linked to them by a stored edge that can merge, walked by the edge
    indexes (None: more than ``MAX_LINKED``)."""
    seen, frontier = set(seeds), set(seeds)
    mergeable = f"probability IS NULL OR probability >= {float(auto)!r}"
    while frontier:
        rows = store.fetchall(edges_touching(store, _in_list(frontier), columns="record_a, record_b", where=mergeable))
        frontier = {r for pair in rows for r in pair} - seen
        seen |= frontier
        if len(seen) > MAX_LINKED:
            return None
    return seen


def _cluster(store: Store, cfg: ProjectConfig, settings: IdentitySettings, report: IdentityReport, rid: str,
             new_row: pd.DataFrame, affected: set[str], linked: set[str], holders: set[str],
             new_ids: list[tuple[str, str]], model_edges: pd.DataFrame, version: int
             ) -> tuple[ClusterResult, pd.DataFrame]:
    """As ``_resolve_delta`` clusters: the rule groups of every value the affected records hold, the
    stored model edges of the affected records and the new ones, the standardized rows of every record
    named, the decisions naming them. The result (edges touching the affected records, their clusters)
    and the standardized rows read."""
    held = set(new_ids)
    if linked:
        held |= set(store.fetchall(f"SELECT DISTINCT id_type, value FROM identity_record_identifiers "
                                   f"WHERE rid IN ({_in_list(linked)})"))
    group_rids = (_holders(store, held) if linked else set(holders)) | {rid}
    stored = pd.DataFrame(columns=["record_a", "record_b", "probability", "match_weight", "rule_or_model"])
    if linked:
        stored = store.fetch_arrow(edges_touching(
            store, _in_list(linked), columns="record_a, record_b, probability, match_weight, rule_or_model",
            where="rule_or_model LIKE 'model:%'")).to_pandas()
    model_edges = model_edges.assign(rule_or_model=f"model:v{version}", priority=None)
    edges_model = pd.concat([stored.assign(priority=None).astype(object), model_edges.astype(object)],
                            ignore_index=True)
    named = affected | group_rids | set(edges_model["record_a"]) | set(edges_model["record_b"])
    others = read_state(store, f"WHERE s.rid IN ({_in_list(named - {rid})})")
    state = pd.concat([others, new_row], ignore_index=True) if len(others) else new_row
    in_groups = state[state["rid"].isin(group_rids | affected)].reset_index(drop=True)
    rules = apply_rules(in_groups, settings)
    report.excluded_identifiers = [e.as_dict() for e in rules.excluded if (e.type, e.value) in held]
    rule_edges = rule_edge_frame(rules)
    rule_edges = rule_edges[rule_edges["record_a"].isin(affected) | rule_edges["record_b"].isin(affected)]
    report.rule_edges = len(rule_edges)
    decided = decisions(store, _in_list(named))
    report.decisions = len(decided.must_link) + sum(len(v) for v in decided.cannot_link.values()) // 2
    result = cluster_records(state, rules, [rule_edges, edges_model], settings, cfg, decided, records=sorted(named))
    touches = result.edges["record_a"].isin(affected) | result.edges["record_b"].isin(affected)
    result.edges = result.edges[touches].reset_index(drop=True)
    result.clusters = {r: c for r, c in result.clusters.items() if r in affected}
    return result, state


def place_record(store: Store, cfg: ProjectConfig, settings: IdentitySettings, row: Mapping[str, Any],
                 run_id: str) -> IdentityReport | str:
    """Resolve one new record (``realtime.record_row``'s form; the caller stores it in ``source_records``
    once this has placed it) inside the caller's transaction: its identity state, match edges and
    cluster, and those of every record linked to it. Answers the report (``scope``: the records whose
    customer may have changed), or why the batch path must take it, having written nothing."""
    report = IdentityReport(run_id, mode="realtime")
    lap = Stopwatch(report.timings).lap
    reason = _unsupported(settings)
    if reason is not None:
        return reason
    std = _standardize(row, cfg.identity.default_region)
    rid = std["rid"]
    new_ids = identifiers_of(std, settings)
    lap("standardize")

    if store.dialect == "postgresql":
        # One identity writer at a time, as incremental resolution takes it.
        store.execute("LOCK TABLE identity_watermarks IN EXCLUSIVE MODE")
    # The first reads in one round trip (PostgreSQL): readiness, candidates, the records holding the new
    # record's identifiers, and the counts of its values the frequency cache lacks (of the model loaded
    # before; checked to be the one readiness names).
    columns = [c for c in input_columns(settings.model) if c != "rid"]
    tf_columns = term_frequency_columns(settings.model)
    cached = _MODELS.get(store)
    counts = [(c, std[c]) for c in tf_columns if cached is not None and std.get(c) not in (None, "")
              and not isinstance(std[c], list) and cached.frequencies.due(c, std[c])]
    candidates_query = _candidates_query(store, columns, std, settings.model.blocking_rules)
    holders_query = _holders_query(new_ids)
    reads = [(_READY_SQL, (row["source"], row["record_key"])),
             *([candidates_query] if candidates_query else []), *([holders_query] if holders_query else []),
             *((TermFrequencies.count_sql(c), (v,)) for c, v in counts)]
    results = store.fetch_many(reads)
    loaded = _ready_from(store, cfg, settings, results[0][0] if results[0] else None,
                         (row["source"], row["record_key"]))
    if isinstance(loaded, str):
        return loaded
    report.model_version = loaded.version
    rest = iter(results[1:])
    found = next(rest) if candidates_query else []
    holders = {r for (r,) in next(rest)} if holders_query else set()  # stored records: never the new one
    if loaded is cached:
        for (column, value), rows in zip(counts, rest):
            loaded.frequencies.put(column, value, int(rows[0][0]) if rows else 0)
    lap("ready")

    candidates = _candidates(found, columns)
    if candidates is None:
        return f"more than {MAX_CANDIDATES} candidates"
    report.candidate_records = len(candidates)
    model_edges = _score(loaded, store, std, candidates, cfg.identity.review_threshold, tf_columns)
    report.model_edges = len(model_edges)
    lap("predict")

    auto = cfg.identity.auto_merge_threshold
    seeds = holders | {r for a, b, p, _ in model_edges if p >= auto for r in (a, b)}
    seeds.discard(rid)
    linked = _linked(store, seeds, auto) if seeds else set()
    if linked is None:
        return f"more than {MAX_LINKED} linked records"
    affected = linked | {rid}
    lap("affected")

    result: ClusterResult | None = None
    state: pd.DataFrame | None = None
    if linked or model_edges:
        new_row = pd.DataFrame([{c: std.get(c) for c in STATE_COLUMNS}], dtype=object)
        result, state = _cluster(store, cfg, settings, report, rid, new_row, affected, linked, holders, new_ids,
                                 _edge_frame(model_edges), loaded.version)
    lap("cluster")

    # The writes _resolve_delta makes: the record's state and identifiers, then the affected records'
    # identity rows and match edges replaced.
    store.execute(f"INSERT INTO identity_standardized ({', '.join(STATE_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in STATE_COLUMNS)})", state_row(std))
    store.executemany("INSERT INTO identity_record_identifiers (rid, id_type, value) VALUES (?, ?, ?)",
                      [(rid, t, v) for t, v in new_ids])
    if linked:
        keys = [split_rid(r) for r in sorted(linked)]
        where = " OR ".join("(source = ? AND record_key = ?)" for _ in keys)
        store.execute(f"DELETE FROM identity WHERE {where}", tuple(x for k in keys for x in k))
        ends = _in_list(linked)
        store.execute(f"DELETE FROM match_edges WHERE record_a IN ({ends})")
        store.execute(f"DELETE FROM match_edges WHERE record_b IN ({ends})")
    if result is None:  # nothing pairs with it, it shares no identifier: a cluster of its own, no edges
        store.execute("INSERT INTO identity (source, record_key, cluster_id, run_id) VALUES (?, ?, ?, ?)",
                      (row["source"], row["record_key"], cluster_id_for([rid]), run_id))
        report.clusters = 1
    else:
        assert state is not None
        write_clusters(store, state[state["rid"].isin(affected)], result.clusters, result.edges, run_id)
        summarise(report, result)
    report.changed_records = 1
    report.affected_records = len(affected)
    report.scope = sorted(split_rid(r) for r in affected)
    lap("write")
    return report
