"""The traits stage: events and records in; customer_traits, RFM boundaries and account traits out.

``compute_traits`` recomputes every active customer's traits in one transaction;
``update_customer_traits`` recomputes one customer's with the same SQL (RFM scored against the
boundaries of the last batch run), ``update_traits`` many customers' in one transaction (what the
trait refresher of ``accord serve`` runs after events arrive, ``accord.traits.refresher``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from accord.clock import Stopwatch, utcnow
from accord.errors import ConfigError
from accord.store.backend import Store
from accord.traits import computed, health, rfm
from accord.traits.accounts import AccountsReport, sync_company_accounts, write_account_traits
from accord.traits.catalog import (
    ENGAGEMENT_TRAITS,
    HEALTH_TRAITS,
    RFM_TRAITS,
    VALUE_TYPES,
    computed_specs,
    owned_traits,
)
from accord.traits.computed import Fragment
from accord.traits.events import TABLE as EVENTS_TABLE
from accord.traits.events import (
    SCOPE_IDS_TABLE,
    SCOPE_TABLE,
    PropertyColumns,
    build_trait_events,
    drop,
)
from accord.traits.lookups import ensure_lookup_indexes
from accord.traits.settings import TraitSpec, TraitsSettings

AGG_TABLE = "_trait_agg"
BASE_TABLE = "_trait_base"
FEW_CUSTOMERS = 20
"""Up to this many customers, an update deletes their old traits one customer per statement."""


@dataclass
class TraitsReport:
    run_id: str
    as_of: str
    customers: int = 0
    events_attributed: int = 0
    traits: list[str] = field(default_factory=list)
    rows_written: int = 0
    rfm_customers: int = 0
    rfm_thresholds: dict[str, dict[int, float]] = field(default_factory=dict)
    support_customers: int = 0
    churn_risk_customers: int = 0
    accounts: AccountsReport | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CustomerTraits:
    """The traits of one customer after ``update_customer_traits``."""

    customer_id: str
    values: dict[str, Any]
    seconds: float


def traits_settings(section: Any = None) -> TraitsSettings:
    """Typed settings from ``cfg.traits`` (already typed, a mapping, or None)."""
    if isinstance(section, TraitsSettings):
        return section
    if section is None:
        return TraitsSettings()
    data = section.model_dump() if hasattr(section, "model_dump") else dict(section)
    try:
        return TraitsSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"traits.{loc}: {first['msg']}") from None


def _settings_of(cfg: Any) -> TraitsSettings:
    return traits_settings(getattr(cfg, "traits", None) if not isinstance(cfg, TraitsSettings) else cfg)


def _aggregate(store: Store, settings: TraitsSettings, specs: dict[str, TraitSpec],
               columns: PropertyColumns) -> None:
    window = settings.rfm.within.total_seconds() if settings.rfm.within else None
    in_window = f" AND age < {window!r}" if window else ""
    fragments = computed.aggregate_columns(store, specs, columns) + [
        Fragment("FLOOR(min(age) FILTER (WHERE is_purchase) / 86400) AS rfm_recency_days"),
        Fragment(f"count(*) FILTER (WHERE is_purchase{in_window}) AS rfm_frequency_n"),
        Fragment(f"COALESCE(sum(revenue) FILTER (WHERE is_purchase{in_window}), 0) AS rfm_monetary_v"),
        Fragment("COALESCE(sum(revenue) FILTER (WHERE is_purchase), 0) AS spend"),
    ] + health.engagement_columns(store, settings.engagement.weeks)
    store.create_temp_table_as(AGG_TABLE, f"SELECT customer_id, "
                  f"{', '.join(f.sql for f in fragments)} FROM {EVENTS_TABLE} GROUP BY customer_id",
                  [p for f in fragments for p in f.params])


def _build_base(store: Store, settings: TraitsSettings, specs: dict[str, TraitSpec], separate: list[str],
                thresholds: rfm.Thresholds, customer_id: str | None, scope: list[str] | None = None) -> None:
    cols = []
    joins = []
    for i, spec in enumerate(specs.values()):
        if spec.aggregation in computed.SEPARATE:
            cols.append(f"s{i}.value AS c{i}")
            joins.append(f"LEFT JOIN _trait_c{i} s{i} ON s{i}.customer_id = p.customer_id")
        else:
            cols.append(f"a.c{i}")
    weeks = settings.engagement.weeks
    cols += [rfm.score_sql(dim, col, thresholds.get(dim, {})) + f" AS {dim[0]}"
             for dim, col in rfm.DIMENSIONS.items()]
    cols += ["a.rfm_frequency_n", f"{health.trend_sql(weeks)} AS trend", "a.eng_weeks", "a.last_activity_age",
             "COALESCE(a.spend, 0) AS spend", "sp.support", "ch.churn_risk"]
    churn = "SELECT customer_id, value_num AS churn_risk FROM customer_traits WHERE name = 'churn_risk'"
    churn_params: list[Any] = []
    if scope is not None:  # the active customers of the scope, as the batch run's population
        population, params = (f"SELECT c.customer_id FROM customers c JOIN {SCOPE_TABLE} s "
                              f"ON s.customer_id = c.customer_id WHERE c.status = 'active'"), []
        if len(scope) <= FEW_CUSTOMERS:  # one zone-map lookup each, rather than a scan of every trait row
            churn, churn_params = " UNION ALL ".join(f"{churn} AND customer_id = ?" for _ in scope), scope
        else:
            churn += f" AND customer_id IN (SELECT customer_id FROM {SCOPE_TABLE})"
    elif customer_id is None:
        population, params = "SELECT customer_id FROM customers WHERE status = 'active'", []
    else:
        population, params = "SELECT CAST(? AS TEXT) AS customer_id", [customer_id]
        churn, churn_params = f"{churn} AND customer_id = ?", [customer_id]
    store.create_temp_table_as(
        BASE_TABLE, f"SELECT b.*, "
        f"{health.health_sql(settings.health, weeks, settings.rfm.enabled)} AS health, "
        f"seg.segment AS rfm_segment FROM (SELECT p.customer_id, {', '.join(cols)} "
        f"FROM ({population}) p LEFT JOIN {AGG_TABLE} a ON a.customer_id = p.customer_id {' '.join(joins)} "
        f"LEFT JOIN {health.SUPPORT_TABLE} sp ON sp.customer_id = p.customer_id "
        f"LEFT JOIN ({churn}) ch ON ch.customer_id = p.customer_id) b LEFT JOIN {rfm.segment_table_sql()} "
        f"ON seg.seg_r = b.r AND seg.seg_fm = {rfm.fm_sql('b.f', 'b.m')} ORDER BY b.customer_id",
        params + churn_params)


def _outputs(store: Store, settings: TraitsSettings, specs: dict[str, TraitSpec]) -> list[tuple[str, str, str]]:
    """(trait name, number SQL, text SQL) over ``_trait_base`` for every trait written."""
    out = computed.output_columns(store, specs)
    if settings.rfm.enabled:
        out += [("rfm_recency", "r", "NULL"), ("rfm_frequency", "f", "NULL"), ("rfm_monetary", "m", "NULL"),
                ("rfm_score", "NULL", "CAST(r AS TEXT) || CAST(f AS TEXT) || CAST(m AS TEXT)"),
                ("rfm_segment", "NULL", "rfm_segment")]
    if settings.engagement.enabled:
        out += [("engagement_trend", "trend", "NULL"), ("engagement_active_weeks", "COALESCE(eng_weeks, 0)", "NULL")]
    if settings.health.enabled:
        out += [("health_score", "health", "NULL"), ("support_sentiment", "support", "NULL")]
    return out


def ensure_trait_index(store: Store) -> None:
    """PostgreSQL: the unique (customer_id, name) index behind every per-customer read (see migration 0011),
    and the indexes that let ``update_customer_traits`` find one customer's events (``lookups``). On DuckDB
    the batch run creates none: customer_traits is written in customer order, so zone maps serve one
    customer's reads, and the events indexes, which slow every bulk insert, come with the API server
    (``ensure_lookup_indexes``)."""
    if store.dialect == "postgresql":
        store.execute("CREATE UNIQUE INDEX IF NOT EXISTS customer_traits_key ON customer_traits (customer_id, name)")
        ensure_lookup_indexes(store)


def _stale_names(store: Store, current: set[str]) -> list[str]:
    return [n for (n,) in store.fetchall("SELECT name FROM trait_definitions ORDER BY name") if n not in current]


def _write(store: Store, outputs: list[tuple[str, str, str]], computed_at: datetime, customer_id: str | None,
           remove: list[str], scope: list[str] | None = None) -> int:
    """Replace the ``remove`` traits with the ``outputs`` of ``_trait_base``; return the rows written.
    ``scope``: only these customers' rows are replaced (``_trait_base`` holds those of them that are active)."""
    if scope is not None:
        return _write_scope(store, outputs, computed_at, remove, scope)
    only = " AND customer_id = ?" if customer_id is not None else ""
    for lo in range(0, len(remove), 500):
        chunk = remove[lo:lo + 500]
        store.execute(f"DELETE FROM customer_traits WHERE name IN ({', '.join('?' * len(chunk))}){only}",
                      chunk + ([customer_id] if customer_id is not None else []))
    if not outputs:
        return 0
    if customer_id is not None:
        # One profile: read its values in one row and insert them, rather than plan a statement per trait.
        exprs = ", ".join(f"CAST({number} AS DOUBLE PRECISION), CAST({text} AS TEXT)" for _, number, text in outputs)
        row = store.fetchone(f"SELECT {exprs} FROM {BASE_TABLE}") or ()
        rows = [(customer_id, name, row[2 * i], row[2 * i + 1], computed_at) for i, (name, _, _) in enumerate(outputs)
                if row and not (row[2 * i] is None and row[2 * i + 1] is None)]
        if rows:  # one statement: DuckDB runs executemany as one statement per row
            store.execute("INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) VALUES "
                          + ", ".join("(?, ?, CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), ?)" for _ in rows),
                          [p for row in rows for p in row])
        return len(rows)
    # Every customer's rows together (``_trait_base`` is in customer order and the cross join keeps it
    # chunk by chunk), so DuckDB's zone maps answer one customer's reads and deletes from a row group or
    # two instead of scanning every trait row: the real-time update and segments read them point-wise.
    names = ", ".join(f"({i}, CAST(? AS TEXT))" for i in range(len(outputs)))
    number = " ".join(f"WHEN {i} THEN CAST({n} AS DOUBLE PRECISION)" for i, (_, n, _) in enumerate(outputs))
    text = " ".join(f"WHEN {i} THEN CAST({t} AS TEXT)" for i, (_, _, t) in enumerate(outputs))
    before = int(store.scalar("SELECT count(*) FROM customer_traits") or 0)
    store.execute(
        "INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) "
        "SELECT customer_id, name, value_num, value_text, CAST(? AS TIMESTAMP) FROM ("
        f"SELECT b.customer_id, n.name, CASE n.i {number} END AS value_num, CASE n.i {text} END AS value_text "
        f"FROM {BASE_TABLE} b CROSS JOIN (VALUES {names}) AS n(i, name)) t "
        "WHERE value_num IS NOT NULL OR value_text IS NOT NULL", [computed_at, *(name for name, _, _ in outputs)])
    return int(store.scalar("SELECT count(*) FROM customer_traits") or 0) - before


def _write_scope(store: Store, outputs: list[tuple[str, str, str]], computed_at: datetime, remove: list[str],
                 scope: list[str]) -> int:
    names = ", ".join("?" * len(remove))
    if remove and len(scope) <= FEW_CUSTOMERS:
        # One statement per customer (``customer_id = ?``): DuckDB's zone maps find that customer's rows in a
        # row group or two; a list of them is a scan of every trait row, cheaper only for many customers.
        for customer_id in scope:
            store.execute(f"DELETE FROM customer_traits WHERE name IN ({names}) AND customer_id = ?",
                          [*remove, customer_id])
    elif remove:
        store.execute(f"DELETE FROM customer_traits WHERE name IN ({names}) AND customer_id IN "
                      f"(SELECT customer_id FROM {SCOPE_TABLE})", remove)
    if not outputs:
        return 0
    labels = ", ".join(f"({i}, CAST(? AS TEXT))" for i in range(len(outputs)))
    number = " ".join(f"WHEN {i} THEN CAST({n} AS DOUBLE PRECISION)" for i, (_, n, _) in enumerate(outputs))
    text = " ".join(f"WHEN {i} THEN CAST({t} AS TEXT)" for i, (_, _, t) in enumerate(outputs))
    rows = store.fetchall(
        "INSERT INTO customer_traits (customer_id, name, value_num, value_text, computed_at) "
        "SELECT customer_id, name, value_num, value_text, CAST(? AS TIMESTAMP) FROM ("
        f"SELECT b.customer_id, n.name, CASE n.i {number} END AS value_num, CASE n.i {text} END AS value_text "
        f"FROM {BASE_TABLE} b CROSS JOIN (VALUES {labels}) AS n(i, name)) t "
        "WHERE value_num IS NOT NULL OR value_text IS NOT NULL ORDER BY customer_id, name RETURNING 1",
        [computed_at, *(name for name, _, _ in outputs)])
    return len(rows)


def _save_definitions(store: Store, settings: TraitsSettings, specs: dict[str, TraitSpec], now: datetime) -> None:
    rows = []
    for name, spec in specs.items():
        rows.append((name, "computed", VALUE_TYPES[spec.aggregation],
                     json.dumps(spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True))))
    for kind, group, enabled in (("rfm", RFM_TRAITS, settings.rfm.enabled),
                                 ("engagement", ENGAGEMENT_TRAITS, settings.engagement.enabled),
                                 ("health", HEALTH_TRAITS, settings.health.enabled)):
        if enabled:
            rows += [(name, kind, value_type, json.dumps(getattr(settings, kind).model_dump(mode="json")))
                     for name, value_type in group.items()]
    store.execute("DELETE FROM trait_definitions")
    store.executemany(store.type_sql("INSERT INTO trait_definitions (name, kind, value_type, definition, updated_at) "
                                     "VALUES (?, ?, ?, CAST(? AS ${JSON}), ?)"),
                      [(*r, now) for r in rows])


def _prepare(store: Store, settings: TraitsSettings, as_of: datetime, customer_id: str | None,
             lap: Callable[[str], None], report: TraitsReport | None, scoped: bool = False
             ) -> tuple[dict[str, TraitSpec], list[str]]:
    specs = computed_specs(settings)
    columns = PropertyColumns()
    computed.register_columns(specs, columns)
    health.register_columns(settings.health.support, columns)
    events = build_trait_events(store, settings, columns, as_of, customer_id, scoped)
    lap("attribute events")
    _aggregate(store, settings, specs, columns)
    separate = computed.build_separate_tables(store, specs, columns)
    lap("aggregate")
    support = health.build_support_table(store, settings.health.support, columns, as_of, customer_id, scoped)
    lap("support")
    if report is not None:
        report.events_attributed = events
        report.support_customers = support
    return specs, separate


def _cleanup(store: Store, separate: list[str]) -> None:
    drop(store, EVENTS_TABLE, AGG_TABLE, BASE_TABLE, health.SUPPORT_TABLE, SCOPE_TABLE, SCOPE_IDS_TABLE, *separate)


def compute_traits(store: Store, cfg: Any, run_id: str, *, as_of: datetime | None = None,
                   progress: Callable[[str], None] | None = None) -> TraitsReport:
    """Recompute every active customer's traits, the RFM boundaries and account traits, in one transaction."""
    started = time.perf_counter()
    settings = _settings_of(cfg)
    now = utcnow()
    as_of = as_of or settings.as_of or now
    report = TraitsReport(run_id=run_id, as_of=as_of.isoformat(timespec="seconds"))
    watch = Stopwatch(report.timings, on_lap=progress)
    ensure_trait_index(store)
    with store.transaction():
        specs, separate = _prepare(store, settings, as_of, None, watch.lap, report)
        thresholds = rfm.compute_thresholds(store, AGG_TABLE) if settings.rfm.enabled else {}
        report.rfm_thresholds = thresholds
        rfm.save_thresholds(store, thresholds, now)
        _build_base(store, settings, specs, separate, thresholds, None)
        report.customers = int(store.scalar(f"SELECT count(*) FROM {BASE_TABLE}") or 0)
        report.rfm_customers = int(store.scalar(f"SELECT count(*) FROM {BASE_TABLE} WHERE r IS NOT NULL") or 0)
        report.churn_risk_customers = int(
            store.scalar(f"SELECT count(*) FROM {BASE_TABLE} WHERE churn_risk IS NOT NULL") or 0)
        watch.lap("score")
        owned = owned_traits(settings)
        report.traits = list(owned)
        outputs = _outputs(store, settings, specs)
        remove = sorted(set(owned) | set(_stale_names(store, set(owned))))
        report.rows_written = _write(store, outputs, now, None, remove)
        _save_definitions(store, settings, specs, now)
        watch.lap("write traits")
        if settings.accounts.enabled:
            accounts = AccountsReport()
            sync_company_accounts(store, now, accounts)
            write_account_traits(store, BASE_TABLE, settings.accounts.active_days, now, accounts)
            report.accounts = accounts
            watch.lap("accounts")
        if report.rfm_customers == 0 and settings.rfm.enabled:
            report.warnings.append("no customer has a purchase: RFM scores were not written (see traits.purchase)")
        if report.events_attributed == 0:
            report.warnings.append("no event is attributed to a customer: run the profiles stage first, or check "
                                   "that events carry identities the profiles know")
        _cleanup(store, separate)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def update_customer_traits(store: Store, cfg: Any, customer_id: str, *,
                           as_of: datetime | None = None) -> CustomerTraits:
    """Recompute one customer's traits now (after an event arrived); RFM uses the last batch boundaries."""
    started = time.perf_counter()
    settings = _settings_of(cfg)
    now = utcnow()
    as_of = as_of or settings.as_of or now
    with store.transaction():
        if store.dialect == "postgresql":
            # Two API workers updating one customer at once would both delete, then both insert.
            store.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"traits:{customer_id}",))
        specs, separate = _prepare(store, settings, as_of, customer_id, lambda step: None, None)
        thresholds = rfm.load_thresholds(store) if settings.rfm.enabled else {}
        _build_base(store, settings, specs, separate, thresholds, customer_id)
        owned = owned_traits(settings)
        _write(store, _outputs(store, settings, specs), now, customer_id, sorted(owned))
    values = customer_trait_values(store, customer_id)
    return CustomerTraits(customer_id, values, round(time.perf_counter() - started, 4))


def update_traits(store: Store, cfg: Any, customer_ids: Iterable[str], *, as_of: datetime | None = None) -> int:
    """Recompute these customers' traits in one transaction, as ``compute_traits`` would give them (RFM
    against the last batch boundaries); a customer no longer active loses this stage's traits, as in a batch
    run. Returns how many customers got traits. What the real-time refresher calls after events arrive."""
    scope = sorted(set(customer_ids))
    if not scope:
        return 0
    settings = _settings_of(cfg)
    now = utcnow()
    as_of = as_of or settings.as_of or now
    with store.transaction():
        if store.dialect == "postgresql":
            # Two API workers updating one customer at once would both delete, then both insert; sorted, so
            # that two overlapping scopes take their locks in the same order.
            for customer_id in scope:
                store.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"traits:{customer_id}",))
        store.create_temp_table_as(SCOPE_TABLE, f"SELECT customer_id FROM ("
                      f"VALUES {', '.join('(CAST(? AS TEXT))' for _ in scope)}) AS s(customer_id)", scope)
        specs, separate = _prepare(store, settings, as_of, None, lambda step: None, None, scoped=True)
        thresholds = rfm.load_thresholds(store) if settings.rfm.enabled else {}
        _build_base(store, settings, specs, separate, thresholds, None, scope=scope)
        owned = owned_traits(settings)
        _write(store, _outputs(store, settings, specs), now, None, sorted(owned), scope=scope)
        written = int(store.scalar(f"SELECT count(*) FROM {BASE_TABLE}") or 0)
        _cleanup(store, separate)
    return written


def customer_trait_values(store: Store, customer_id: str) -> dict[str, Any]:
    """Every trait of a customer (any stage's), name -> number, text, or list for list traits."""
    types = dict(store.fetchall("SELECT name, value_type FROM trait_definitions"))
    out: dict[str, Any] = {}
    for name, number, text in store.fetchall(
            "SELECT name, value_num, value_text FROM customer_traits WHERE customer_id = ? ORDER BY name",
            (customer_id,)):
        if types.get(name) == "list" and text is not None:
            out[name] = json.loads(text)
        elif text is not None:
            out[name] = text
        else:
            out[name] = number
    return out
