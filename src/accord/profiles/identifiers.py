"""The identifier index: every (id_type, value) that names a customer, in ``customer_identifiers``.

Lookups, event attribution, traits, segments, erasure and real-time stitching all ask the same
question — which customer does this email / phone / user id / anonymous id name? — so it is answered
once, here. The profiles stage rebuilds the batch part after every run; real-time stitching adds rows
with origin 'realtime', which a rebuild keeps (moved to the surviving id when their customer merged).

Values are in the form events and lookups use: emails lowercased, phones E.164 (as golden records
hold them), external ids as given. An external id value is also indexed as ``user_id``, because apps
usually send their own customer id as Segment's userId.
"""

from __future__ import annotations

from dataclasses import dataclass

from accord.privacy.pii import index_value_sql
from accord.store.backend import Store

BATCH_ORIGINS = ("record", "golden", "event", "signal")


@dataclass(frozen=True)
class IdentifierReport:
    identifiers: int
    customers: int
    realtime_kept: int


def _external_id_pairs(store: Store) -> str:
    """Select (customer_id, name, value, first_seen, last_seen) from every active record's external ids."""
    if store.dialect == "duckdb":
        pairs = "json_each(sr.external_ids) AS p"
        name, value = "p.key", "p.value ->> '$'"
    else:
        pairs = ("jsonb_each_text(CASE WHEN jsonb_typeof(sr.external_ids) = 'object' "
                 "THEN sr.external_ids ELSE '{}'::jsonb END) AS p(key, value)")
        name, value = "p.key", "p.value"
    return (f"SELECT rc.customer_id, {name} AS name, {value} AS value, sr.first_seen_at AS first_seen, "
            f"COALESCE(sr.source_updated_at, sr.valid_from) AS last_seen "
            f"FROM record_customer rc JOIN source_records sr ON sr.source = rc.source AND sr.record_key = rc.record_key, "
            f"{pairs} WHERE sr.deleted_at IS NULL AND sr.external_ids IS NOT NULL")


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


def refresh_customer_identifiers(store: Store) -> IdentifierReport:
    """Bring the batch part of the index up to date with resolved records, golden multi-values, events
    and identify signals. Call inside the transaction that wrote record_customer and golden_multi.

    The wanted rows are built in a temp table and only the difference is written: on a re-run with
    few changes almost nothing is deleted or inserted, which matters because every write to this
    indexed table is expensive (DuckDB maintains its ART indexes row by row)."""
    origins = ", ".join(f"'{o}'" for o in BATCH_ORIGINS)
    _follow_merges(store)
    store.execute("DROP TABLE IF EXISTS _ci_new")
    store.execute(store.type_sql(
        "CREATE TEMP TABLE _ci_new (id_type TEXT, value TEXT, customer_id TEXT, origin TEXT, "
        "first_seen TIMESTAMP, last_seen TIMESTAMP)"))
    _add_wanted(store, "record", f"""
        SELECT name AS id_type, value, customer_id, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
        FROM ({_external_id_pairs(store)}) x WHERE value IS NOT NULL AND value <> '' GROUP BY 1, 2, 3
        UNION
        SELECT 'user_id', value, customer_id, MIN(first_seen), MAX(last_seen)
        FROM ({_external_id_pairs(store)}) x WHERE value IS NOT NULL AND value <> '' GROUP BY 1, 2, 3""")
    _add_wanted(store, "golden", f"""
        SELECT CASE attribute WHEN 'emails' THEN 'email' ELSE 'phone' END AS id_type,
               {index_value_sql("value", "CASE attribute WHEN 'emails' THEN LOWER(value) ELSE value END")} AS value,
               customer_id, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
        FROM golden_multi WHERE attribute IN ('emails', 'phones') GROUP BY 1, 2, 3""")
    # Anonymous ids name whoever the identities seen with them name (batch rows so far, and realtime rows).
    known = ("(SELECT id_type, value, customer_id FROM _ci_new UNION SELECT id_type, value, customer_id "
             "FROM customer_identifiers WHERE origin = 'realtime')")
    _add_wanted(store, "event", f"""
        SELECT 'anonymous_id' AS id_type, e.anonymous_id AS value, ci.customer_id,
               MIN(e.ts) AS first_seen, MAX(e.ts) AS last_seen
        FROM events e JOIN {known} ci
          ON ci.id_type = e.identity_type AND ci.value = {event_identity_value('e')}
        WHERE e.anonymous_id IS NOT NULL AND e.anonymous_id <> '' GROUP BY 1, 2, 3""")
    _add_wanted(store, "signal", f"""
        SELECT 'anonymous_id' AS id_type, s.anonymous_id AS value, ci.customer_id,
               MIN(s.ts) AS first_seen, MAX(s.ts) AS last_seen
        FROM identity_signals s JOIN {known} ci ON ci.id_type = 'user_id' AND ci.value = s.user_id
        WHERE s.anonymous_id IS NOT NULL AND s.anonymous_id <> '' GROUP BY 1, 2, 3""")
    same_key = ("n.id_type = c.id_type AND n.value = c.value AND n.customer_id = c.customer_id")
    store.execute(f"DELETE FROM customer_identifiers WHERE origin IN ({origins}) AND NOT EXISTS "
                  f"(SELECT 1 FROM _ci_new n WHERE n.id_type = customer_identifiers.id_type AND "
                  f"n.value = customer_identifiers.value AND n.customer_id = customer_identifiers.customer_id "
                  f"AND n.origin = customer_identifiers.origin)")
    store.execute(
        "UPDATE customer_identifiers SET first_seen = n.first_seen, last_seen = n.last_seen FROM _ci_new n "
        "WHERE n.id_type = customer_identifiers.id_type AND n.value = customer_identifiers.value "
        "AND n.customer_id = customer_identifiers.customer_id AND n.origin = customer_identifiers.origin "
        "AND (n.first_seen IS DISTINCT FROM customer_identifiers.first_seen "
        "OR n.last_seen IS DISTINCT FROM customer_identifiers.last_seen)")
    store.execute(
        "INSERT INTO customer_identifiers (id_type, value, customer_id, origin, first_seen, last_seen) "
        f"SELECT n.id_type, n.value, n.customer_id, n.origin, n.first_seen, n.last_seen FROM _ci_new n "
        f"WHERE NOT EXISTS (SELECT 1 FROM customer_identifiers c WHERE {same_key})")
    store.execute("DROP TABLE IF EXISTS _ci_new")
    identifiers, customers = store.fetchone(
        "SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM customer_identifiers") or (0, 0)
    realtime = store.scalar("SELECT COUNT(*) FROM customer_identifiers WHERE origin = 'realtime'")
    return IdentifierReport(int(identifiers), int(customers), int(realtime or 0))


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


def _add_wanted(store: Store, origin: str, select_sql: str) -> None:
    """Add the (id_type, value, customer_id, first_seen, last_seen) rows of ``select_sql`` to the wanted
    index under ``origin``, unless an earlier origin or a realtime row already has the identifier."""
    store.execute(
        f"INSERT INTO _ci_new (id_type, value, customer_id, origin, first_seen, last_seen) "
        f"SELECT n.id_type, n.value, n.customer_id, '{origin}', n.first_seen, n.last_seen FROM ({select_sql}) n "
        f"WHERE NOT EXISTS (SELECT 1 FROM _ci_new c WHERE c.id_type = n.id_type "
        f"AND c.value = n.value AND c.customer_id = n.customer_id) "
        f"AND NOT EXISTS (SELECT 1 FROM customer_identifiers c WHERE c.origin = 'realtime' "
        f"AND c.id_type = n.id_type AND c.value = n.value AND c.customer_id = n.customer_id)")
