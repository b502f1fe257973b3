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
    """Rebuild the batch part of the index from resolved records, golden multi-values, events and
    identify signals. Call inside the transaction that wrote record_customer and golden_multi."""
    origins = ", ".join(f"'{o}'" for o in BATCH_ORIGINS)
    store.execute(f"DELETE FROM customer_identifiers WHERE origin IN ({origins})")
    # Realtime rows follow merges: a retired customer's identifiers move to the survivor.
    store.execute(
        "DELETE FROM customer_identifiers WHERE origin = 'realtime' AND customer_id IN "
        "(SELECT from_id FROM customer_redirects) AND EXISTS (SELECT 1 FROM customer_redirects r, "
        "customer_identifiers o WHERE r.from_id = customer_identifiers.customer_id AND o.id_type = "
        "customer_identifiers.id_type AND o.value = customer_identifiers.value AND o.customer_id = r.to_id)")
    store.execute(
        "UPDATE customer_identifiers SET customer_id = (SELECT to_id FROM customer_redirects r "
        "WHERE r.from_id = customer_identifiers.customer_id) WHERE origin = 'realtime' AND customer_id IN "
        "(SELECT from_id FROM customer_redirects)")
    _insert_new(store, "record", f"""
        SELECT name AS id_type, value, customer_id, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
        FROM ({_external_id_pairs(store)}) x WHERE value IS NOT NULL AND value <> '' GROUP BY 1, 2, 3
        UNION
        SELECT 'user_id', value, customer_id, MIN(first_seen), MAX(last_seen)
        FROM ({_external_id_pairs(store)}) x WHERE value IS NOT NULL AND value <> '' GROUP BY 1, 2, 3""")
    _insert_new(store, "golden", """
        SELECT CASE attribute WHEN 'emails' THEN 'email' ELSE 'phone' END AS id_type,
               CASE attribute WHEN 'emails' THEN LOWER(value) ELSE value END AS value,
               customer_id, MIN(first_seen) AS first_seen, MAX(last_seen) AS last_seen
        FROM golden_multi WHERE attribute IN ('emails', 'phones') GROUP BY 1, 2, 3""")
    _insert_new(store, "event", f"""
        SELECT 'anonymous_id' AS id_type, e.anonymous_id AS value, ci.customer_id,
               MIN(e.ts) AS first_seen, MAX(e.ts) AS last_seen
        FROM events e JOIN customer_identifiers ci
          ON ci.id_type = e.identity_type AND ci.value = {event_identity_value('e')}
        WHERE e.anonymous_id IS NOT NULL AND e.anonymous_id <> '' GROUP BY 1, 2, 3""")
    _insert_new(store, "signal", """
        SELECT 'anonymous_id' AS id_type, s.anonymous_id AS value, ci.customer_id,
               MIN(s.ts) AS first_seen, MAX(s.ts) AS last_seen
        FROM identity_signals s JOIN customer_identifiers ci ON ci.id_type = 'user_id' AND ci.value = s.user_id
        WHERE s.anonymous_id IS NOT NULL AND s.anonymous_id <> '' GROUP BY 1, 2, 3""")
    identifiers, customers = store.fetchone(
        "SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM customer_identifiers") or (0, 0)
    realtime = store.scalar("SELECT COUNT(*) FROM customer_identifiers WHERE origin = 'realtime'")
    return IdentifierReport(int(identifiers), int(customers), int(realtime or 0))


def _insert_new(store: Store, origin: str, select_sql: str) -> None:
    """Insert the (id_type, value, customer_id, first_seen, last_seen) rows of ``select_sql`` not yet indexed."""
    store.execute(
        f"INSERT INTO customer_identifiers (id_type, value, customer_id, origin, first_seen, last_seen) "
        f"SELECT n.id_type, n.value, n.customer_id, '{origin}', n.first_seen, n.last_seen FROM ({select_sql}) n "
        f"WHERE NOT EXISTS (SELECT 1 FROM customer_identifiers c WHERE c.id_type = n.id_type "
        f"AND c.value = n.value AND c.customer_id = n.customer_id)")
