"""The identifier index: every (id_type, value) that names a customer, in ``customer_identifiers``.

Lookups, event attribution, traits, segments, erasure and real-time stitching all ask the same
question — which customer does this email / phone / user id / anonymous id name? — so it is answered
once, here. The profiles stage brings the batch part up to date after every run (after an incremental
run, for the customers it and real-time stitching touched only); real-time stitching adds rows with
origin 'realtime', which a refresh keeps (moved to the surviving id when their customer merged).

Values are in the form events and lookups use: emails lowercased, phones E.164 (as golden records
hold them), external ids as given. An external id value is also indexed as ``user_id``, because apps
usually send their own customer id as Segment's userId.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyarrow as pa

from accord.clock import Stopwatch, utcnow
from accord.identity.state import set_watermark, watermark
from accord.privacy.pii import index_value_sql
from accord.profiles._sql import rows_for_keys, rows_where, temp_as
from accord.store.backend import Store

BATCH_ORIGINS = ("record", "golden", "event", "signal")
RECORD_ORIGINS = ("record", "golden")
"""Rows that follow the clustering: a customer's records' external ids and its golden emails and phones."""
ACTIVITY_ORIGINS = ("event", "signal")
"""Rows that follow events and identify signals: anonymous ids seen with an identity of a customer."""
REFRESH_WATERMARK = "identifiers_refreshed"
"""When the index was last refreshed (microseconds since 1970, UTC): a scoped refresh also takes the
customers of every record stored since (real-time stitching stores records between runs)."""
AUDIT_WATERMARK = "identifiers_audit"
"""The last identity audit event the index has seen: a scoped refresh also takes every customer named by
a later one (created, merged, split, records moved: by real-time stitching between runs). Audit event
numbers are reserved under a row lock held to commit, so none commits behind a later one."""
RACE_MARGIN = timedelta(minutes=10)
"""Taken off the refresh time: a record stored by a transaction that began before a refresh and
committed after it is still seen by the next one (taking a customer twice is harmless)."""
EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class IdentifierReport:
    identifiers: int
    customers: int | None
    realtime_kept: int | None
    scoped_customers: int | None = None
    """A scoped refresh: the customers whose record and golden rows it recomputed (None: every customer)."""
    timings: dict[str, float] = field(default_factory=dict)


def _external_id_pairs(store: Store, records: str) -> str:
    """Select (customer_id, name, value, first_seen, last_seen) from the external ids of ``records``
    (a table of customer_id, external_ids, first_seen, last_seen)."""
    if store.dialect == "duckdb":
        pairs = "json_each(r.external_ids) AS p"
        name, value = "p.key", "p.value ->> '$'"
    else:
        pairs = ("jsonb_each_text(CASE WHEN jsonb_typeof(r.external_ids) = 'object' "
                 "THEN r.external_ids ELSE '{}'::jsonb END) AS p(key, value)")
        name, value = "p.key", "p.value"
    return (f"SELECT r.customer_id, {name} AS name, {value} AS value, r.first_seen, r.last_seen "
            f"FROM {records} r, {pairs}")


def event_identity_value(alias: str = "e") -> str:
    """The value of an event's identity in customer_identifiers' form (emails compare lowercased)."""
    return f"CASE WHEN {alias}.identity_type = 'email' THEN LOWER({alias}.identity_value) ELSE {alias}.identity_value END"


def event_customers_sql(events: str = "events") -> str:
    """SELECT event_id, customer_id for every event of ``events`` (a table or a parenthesised query
    with the events columns) that names a customer through its identity or its anonymous id."""
    return (f"SELECT e.event_id, ci.customer_id FROM {events} e JOIN customer_identifiers ci "
            f"ON ci.id_type = e.identity_type AND ci.value = {event_identity_value('e')} "
            f"UNION SELECT e.event_id, ci.customer_id FROM {events} e JOIN customer_identifiers ci "
            f"ON ci.id_type = 'anonymous_id' AND ci.value = e.anonymous_id")


def refresh_customer_identifiers(store: Store, customer_ids: Iterable[str] | None = None, *,
                                 scope_records: tuple[str, str, str, str] | None = None) -> IdentifierReport:
    """Bring the batch part of the index up to date with resolved records, golden multi-values, events
    and identify signals. Call inside the transaction that wrote record_customer and golden_multi.

    ``customer_ids`` (the customers a run's ids and golden records touched) scopes the refresh to
    those customers, every customer real-time stitching changed since the last refresh, and every
    customer named by an event or identify signal received since (see ``_scope_table``): the rest of
    the index already holds what a whole refresh would give them, so the result equals a whole
    refresh — except for anonymous ids whose only events were deleted since (retention): their rows
    go at the next whole refresh (``accord run --full``). A scoped refresh does not count the whole
    index: ``customers`` and ``realtime_kept`` are None in its report.

    The wanted rows are built in a temp table and only the difference is written: on a re-run with
    few changes almost nothing is deleted or inserted, which matters because every write to this
    indexed table is expensive (DuckDB maintains its ART indexes row by row).

    ``scope_records`` (customer ids, their record_customer rows, those records' source_records rows, their
    golden_multi rows: ``golden.SCOPE_RECORDS`` as the golden records left them in this transaction) are
    read instead of the store's tables when they cover every customer in scope."""
    started = utcnow()
    timings: dict[str, float] = {}
    lap = Stopwatch(timings).lap
    since = watermark(store, REFRESH_WATERMARK)
    since_audit = watermark(store, AUDIT_WATERMARK)
    scoped = customer_ids is not None and since is not None and since_audit is not None
    _follow_merges(store)
    store.drop_temp_table("_ci_new")
    store.execute(store.type_sql(
        "CREATE TEMP TABLE _ci_new (id_type TEXT, value TEXT, customer_id TEXT, origin TEXT, "
        "first_seen TIMESTAMP, last_seen TIMESTAMP)"))
    scoped_customers, index = None, "customer_identifiers"
    if scoped:
        _scope_table(store, sorted(set(customer_ids or ())), int(since_audit or 0),
                     _from_micros(int(since or 0)) - RACE_MARGIN)
        scoped_customers = int(store.scalar("SELECT COUNT(DISTINCT customer_id) FROM _ci_scope"))
        # The index rows of the customers in scope, read once: the difference is worked out against them.
        index = "_ci_old"
        if store.dialect == "duckdb":  # with each row's position: the writes find their rows without a scan
            temp_as(store, "_ci_old", "SELECT rowid AS row_position, * FROM customer_identifiers "
                                      "WHERE rowid IN (SELECT rowid FROM customer_identifiers "
                                      "WHERE customer_id IN (SELECT customer_id FROM _ci_scope))")
        else:
            temp_as(store, "_ci_old", rows_where(
                store, "customer_identifiers", "customer_id IN (SELECT customer_id FROM _ci_scope)"))
    lap("scope")
    _record_and_golden(store, scoped, index, scope_records)
    lap("records")
    _write_difference(store, RECORD_ORIGINS, index)
    lap("write_records")
    store.execute("DELETE FROM _ci_new")
    _events_and_signals(store, index)  # none wanted when no event or signal carries an anonymous id
    _write_difference(store, ACTIVITY_ORIGINS, index)
    lap("events")
    store.drop_temp_table("_ci_new", "_ci_scope", "_ci_old", "_ci_del", "_ci_upd", "_ci_ins")
    set_watermark(store, REFRESH_WATERMARK, _micros(started))
    set_watermark(store, AUDIT_WATERMARK, int(store.scalar("SELECT COALESCE(MAX(event_id), 0) FROM identity_audit")))
    identifiers = int(store.scalar("SELECT COUNT(*) FROM customer_identifiers") or 0)
    customers = realtime = None
    if not scoped:
        customers = int(store.scalar("SELECT COUNT(DISTINCT customer_id) FROM customer_identifiers") or 0)
        realtime = int(store.scalar("SELECT COUNT(*) FROM customer_identifiers WHERE origin = 'realtime'") or 0)
    lap("count")
    return IdentifierReport(identifiers, customers, realtime, scoped_customers, timings)


def _micros(at: datetime) -> int:
    return int((at - EPOCH) / timedelta(microseconds=1))


def _from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def _scope_table(store: Store, customer_ids: list[str], since_audit: int, since: datetime) -> None:
    """_ci_scope: ``customer_ids`` and every customer changed since the last refresh: named by an
    identity audit event after ``since_audit`` (created, merged, split, records added, moved or
    removed: real-time stitching between runs), holding a record stored since ``since``, or named by
    the identity of an event or identify signal received since ``since`` (its anonymous id may now
    name the customer)."""
    store.create_temp_table("_ci_given", pa.table({"customer_id": pa.array(customer_ids, pa.string())}))
    store.drop_temp_table("_ci_scope")
    store.execute("CREATE TEMP TABLE _ci_scope (customer_id TEXT)")
    store.execute("""
        INSERT INTO _ci_scope (customer_id)
        SELECT customer_id FROM _ci_given
        UNION SELECT customer_id FROM identity_audit WHERE event_id > ?
        UNION SELECT other_customer_id FROM identity_audit WHERE event_id > ? AND other_customer_id IS NOT NULL""",
                  (since_audit, since_audit))
    if store.fetchone("SELECT 1 FROM source_records WHERE valid_from >= ? LIMIT 1", (since,)):
        store.execute("""
            INSERT INTO _ci_scope (customer_id)
            SELECT rc.customer_id FROM record_customer rc
            JOIN (SELECT source, record_key FROM source_records WHERE valid_from >= ?) sr
              ON sr.source = rc.source AND sr.record_key = rc.record_key""", (since,))
    anonymous = "anonymous_id IS NOT NULL AND anonymous_id <> ''"
    if store.fetchone(f"SELECT 1 FROM events WHERE received_at >= ? AND {anonymous} LIMIT 1", (since,)):
        store.execute(f"""
            INSERT INTO _ci_scope (customer_id)
            SELECT DISTINCT ci.customer_id FROM customer_identifiers ci
            JOIN (SELECT DISTINCT identity_type, {event_identity_value('e')} AS value FROM events e
                  WHERE e.received_at >= ? AND e.{anonymous}) e
              ON ci.id_type = e.identity_type AND ci.value = e.value""", (since,))
    if store.fetchone(f"SELECT 1 FROM identity_signals WHERE received_at >= ? AND {anonymous} LIMIT 1", (since,)):
        store.execute(f"""
            INSERT INTO _ci_scope (customer_id)
            SELECT DISTINCT ci.customer_id FROM customer_identifiers ci
            JOIN (SELECT DISTINCT user_id FROM identity_signals WHERE received_at >= ? AND {anonymous}) s
              ON ci.id_type = 'user_id' AND ci.value = s.user_id""", (since,))
    store.drop_temp_table("_ci_given")


def _record_and_golden(store: Store, scoped: bool, index: str,
                       scope_records: tuple[str, str, str, str] | None = None) -> None:
    """The wanted 'record' rows (external ids, also as user_id) and 'golden' rows (emails, phones)
    of every customer, or of the customers in _ci_scope (``index``: their rows of the index;
    ``scope_records``: see ``refresh_customer_identifiers``)."""
    records, sources, multi = "record_customer", "source_records", "golden_multi"
    if scoped:  # the scope's records first, then only their source records are read
        known_ids, known_records, known_sources, known_multi = scope_records or ("", "", "", "")
        if scope_records and store.fetchone(f"SELECT 1 FROM _ci_scope WHERE customer_id NOT IN "
                                            f"(SELECT customer_id FROM {known_ids}) LIMIT 1") is None:
            # Every customer in scope had its records read and its golden values written already (the
            # usual case: nobody changed a customer between runs): three scans of large tables saved.
            temp_as(store, "_ci_rc", f"SELECT source, record_key, customer_id FROM {known_records} "
                                     "WHERE customer_id IN (SELECT customer_id FROM _ci_scope)")
            records, sources, multi = "_ci_rc", known_sources, known_multi
        else:
            temp_as(store, "_ci_rc", "SELECT source, record_key, customer_id FROM record_customer "
                                     "WHERE customer_id IN (SELECT customer_id FROM _ci_scope)")
            records, sources = "_ci_rc", rows_for_keys(store, "source_records", "SELECT source, record_key FROM _ci_rc")
    # The records first, then their external ids: JSON is expanded for the records in scope only.
    temp_as(store, "_ci_records", f"""
        SELECT rc.customer_id, sr.external_ids, sr.first_seen_at AS first_seen,
               COALESCE(sr.source_updated_at, sr.valid_from) AS last_seen
        FROM {records} rc JOIN {sources} sr ON sr.source = rc.source AND sr.record_key = rc.record_key
        WHERE sr.deleted_at IS NULL AND sr.external_ids IS NOT NULL""")
    store.drop_temp_table("_ci_rc")
    temp_as(store, "_ci_pairs", f"SELECT * FROM ({_external_id_pairs(store, '_ci_records')}) x "
                                "WHERE value IS NOT NULL AND value <> ''")
    _add_wanted(store, "record", """
        SELECT name AS id_type, value, customer_id, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
        FROM _ci_pairs GROUP BY 1, 2, 3
        UNION
        SELECT 'user_id', value, customer_id, MIN(first_seen), MAX(last_seen) FROM _ci_pairs GROUP BY 1, 2, 3""",
                index)
    store.drop_temp_table("_ci_records", "_ci_pairs")
    golden_scope = " AND customer_id IN (SELECT customer_id FROM _ci_scope)" if scoped else ""
    _add_wanted(store, "golden", f"""
        SELECT CASE attribute WHEN 'emails' THEN 'email' ELSE 'phone' END AS id_type,
               {index_value_sql("value", "CASE attribute WHEN 'emails' THEN LOWER(value) ELSE value END")} AS value,
               customer_id, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
        FROM {multi} WHERE attribute IN ('emails', 'phones'){golden_scope} GROUP BY 1, 2, 3""", index)


def _events_and_signals(store: Store, index: str) -> bool:
    """The wanted 'event' and 'signal' rows: anonymous ids name whoever the identities seen with them
    name (the record and golden rows of the index, which are up to date by now, and realtime rows).
    ``index``: the index rows to read, customer_identifiers or (scoped) _ci_old, the rows of the
    customers in scope. False when no event or signal carries an anonymous id (nothing is wanted)."""
    anonymous = "anonymous_id IS NOT NULL AND anonymous_id <> ''"
    if (store.fetchone(f"SELECT 1 FROM events WHERE {anonymous} LIMIT 1") is None
            and store.fetchone(f"SELECT 1 FROM identity_signals WHERE {anonymous} LIMIT 1") is None):
        return False
    known = f"(SELECT id_type, value, customer_id FROM {index} WHERE origin IN ('record', 'golden', 'realtime'))"
    _add_wanted(store, "event", f"""
        SELECT 'anonymous_id' AS id_type, e.anonymous_id AS value, ci.customer_id,
               MIN(e.ts) AS first_seen, MAX(e.ts) AS last_seen
        FROM events e JOIN {known} ci
          ON ci.id_type = e.identity_type AND ci.value = {event_identity_value('e')}
        WHERE e.anonymous_id IS NOT NULL AND e.anonymous_id <> '' GROUP BY 1, 2, 3""", index, held=RECORD_ORIGINS)
    _add_wanted(store, "signal", f"""
        SELECT 'anonymous_id' AS id_type, s.anonymous_id AS value, ci.customer_id,
               MIN(s.ts) AS first_seen, MAX(s.ts) AS last_seen
        FROM identity_signals s JOIN {known} ci ON ci.id_type = 'user_id' AND ci.value = s.user_id
        WHERE s.anonymous_id IS NOT NULL AND s.anonymous_id <> '' GROUP BY 1, 2, 3""", index, held=RECORD_ORIGINS)
    return True


_KEY = "{a}.id_type = {b}.id_type AND {a}.value = {b}.value AND {a}.customer_id = {b}.customer_id"


def _write_difference(store: Store, origins: tuple[str, ...], index: str) -> None:
    """Make the index's rows of ``origins`` those of _ci_new: delete the others, update first/last seen,
    insert the new. ``index``: the rows to compare with, customer_identifiers itself or (scoped) _ci_old,
    every row of the customers in scope. Each write runs only when it has rows to write.

    A wanted row held under another batch origin (an anonymous id an event named before a signal did)
    is deleted first: the table keeps one row per (id_type, value, customer_id).

    On DuckDB _ci_old carries each row's ``row_position`` in customer_identifiers (null for rows this
    refresh inserted): deletes and updates go to those positions instead of joining every row of the
    index on its three key columns (~0.4 s each at a million customers)."""
    names = ", ".join(f"'{o}'" for o in origins)
    others = ", ".join(f"'{o}'" for o in BATCH_ORIGINS if o not in origins)
    positioned = index == "_ci_old" and store.dialect == "duckdb"
    position = ", o.row_position" if positioned else ""
    temp_as(store, "_ci_del", f"""
        SELECT o.id_type, o.value, o.customer_id{position} FROM {index} o
        WHERE (o.origin IN ({names}) AND NOT EXISTS (SELECT 1 FROM _ci_new n WHERE {_KEY.format(a="n", b="o")}
                                                     AND n.origin = o.origin))
           OR (o.origin IN ({others}) AND EXISTS (SELECT 1 FROM _ci_new n WHERE {_KEY.format(a="n", b="o")}))""")
    if store.fetchone("SELECT 1 FROM _ci_del LIMIT 1") is not None:
        unplaced = ""
        if positioned:
            store.execute("DELETE FROM customer_identifiers WHERE rowid IN "
                          "(SELECT row_position FROM _ci_del WHERE row_position IS NOT NULL)")
            unplaced = " AND d.row_position IS NULL"
        if not positioned or store.fetchone("SELECT 1 FROM _ci_del WHERE row_position IS NULL LIMIT 1"):
            store.execute(f"DELETE FROM customer_identifiers WHERE EXISTS (SELECT 1 FROM _ci_del d "
                          f"WHERE {_KEY.format(a='d', b='customer_identifiers')}{unplaced})")
        if index != "customer_identifiers":
            store.execute(f"DELETE FROM {index} WHERE EXISTS "
                          f"(SELECT 1 FROM _ci_del d WHERE {_KEY.format(a='d', b=index)})")
    temp_as(store, "_ci_upd", f"""
        SELECT n.*{position} FROM _ci_new n JOIN {index} o ON {_KEY.format(a="n", b="o")}
        AND n.origin = o.origin WHERE n.first_seen IS DISTINCT FROM o.first_seen
                                   OR n.last_seen IS DISTINCT FROM o.last_seen""")
    columns = "id_type, value, customer_id, origin, first_seen, last_seen"
    temp_as(store, "_ci_ins", f"SELECT {columns} FROM _ci_new n "
                              f"WHERE NOT EXISTS (SELECT 1 FROM {index} c WHERE {_KEY.format(a='n', b='c')})")
    for table in dict.fromkeys(("customer_identifiers", index)):  # _ci_old stays the scope's rows as written
        if store.fetchone("SELECT 1 FROM _ci_upd LIMIT 1") is not None:
            unplaced = ""
            if positioned and table == "customer_identifiers":
                store.execute("UPDATE customer_identifiers SET first_seen = u.first_seen, last_seen = u.last_seen "
                              "FROM _ci_upd u WHERE u.row_position IS NOT NULL "
                              "AND customer_identifiers.rowid = u.row_position")
                unplaced = " AND u.row_position IS NULL"
            if not unplaced or store.fetchone("SELECT 1 FROM _ci_upd WHERE row_position IS NULL LIMIT 1"):
                store.execute(f"UPDATE {table} SET first_seen = u.first_seen, last_seen = u.last_seen "
                              f"FROM _ci_upd u WHERE {_KEY.format(a='u', b=table)}{unplaced}")
        store.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _ci_ins")


def _follow_merges(store: Store) -> None:
    """Realtime rows of a retired customer move to the surviving id (redirects are one step deep)."""
    if not store.scalar("SELECT COUNT(*) FROM customer_identifiers c JOIN customer_redirects r "
                        "ON r.from_id = c.customer_id WHERE c.origin = 'realtime'"):
        return
    store.execute(
        "DELETE FROM customer_identifiers WHERE origin = 'realtime' AND customer_id IN "
        "(SELECT from_id FROM customer_redirects) AND EXISTS (SELECT 1 FROM customer_redirects r, "
        "customer_identifiers o WHERE r.from_id = customer_identifiers.customer_id AND o.id_type = "
        "customer_identifiers.id_type AND o.value = customer_identifiers.value AND o.customer_id = r.to_id)")
    store.execute(
        "UPDATE customer_identifiers SET customer_id = (SELECT to_id FROM customer_redirects r "
        "WHERE r.from_id = customer_identifiers.customer_id) WHERE origin = 'realtime' AND customer_id IN "
        "(SELECT from_id FROM customer_redirects)")


def _add_wanted(store: Store, origin: str, select_sql: str, index: str, held: tuple[str, ...] = ()) -> None:
    """Add the (id_type, value, customer_id, first_seen, last_seen) rows of ``select_sql`` to the wanted
    index under ``origin``, unless an earlier origin, a realtime row, or a row of the index under one
    of ``held`` already has the identifier (``index``: the index rows to look in)."""
    kept = ", ".join(f"'{o}'" for o in ("realtime", *held))
    store.execute(
        f"INSERT INTO _ci_new (id_type, value, customer_id, origin, first_seen, last_seen) "
        f"SELECT n.id_type, n.value, n.customer_id, '{origin}', n.first_seen, n.last_seen FROM ({select_sql}) n "
        f"WHERE NOT EXISTS (SELECT 1 FROM _ci_new c WHERE c.id_type = n.id_type "
        f"AND c.value = n.value AND c.customer_id = n.customer_id) "
        f"AND NOT EXISTS (SELECT 1 FROM {index} c WHERE c.origin IN ({kept}) "
        f"AND c.id_type = n.id_type AND c.value = n.value AND c.customer_id = n.customer_id)")
