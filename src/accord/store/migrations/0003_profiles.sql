-- Profiles: stable customer ids, the current record -> customer mapping, the append-only
-- identity audit, human decisions (constraints and training labels) and golden records with lineage.

-- Every customer id ever given. Rows are never deleted, so an id is never given twice.
-- status: 'active', or 'retired' (merged_into says where it went; null when it lost all its records).
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    merged_into TEXT,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    retired_at TIMESTAMP
);

-- Monotonic counters for customer ids and audit events; never decrease, even when rows are erased.
CREATE TABLE profile_counters (
    name TEXT PRIMARY KEY,
    last_value BIGINT NOT NULL
);
INSERT INTO profile_counters (name, last_value) VALUES ('customer', 0);
INSERT INTO profile_counters (name, last_value) VALUES ('audit', 0);
INSERT INTO profile_counters (name, last_value) VALUES ('constraint', 0);

-- A retired id -> the active id it now resolves to (kept one step deep when merges chain).
CREATE TABLE customer_redirects (
    from_id TEXT PRIMARY KEY,
    to_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX customer_redirects_to ON customer_redirects (to_id);

-- The current customer of every resolved source record.
CREATE TABLE record_customer (
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    assigned_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (source, record_key)
);
CREATE INDEX record_customer_customer ON record_customer (customer_id);

-- Append-only: one row per identity change. records and evidence are JSON lists;
-- records hold 'source:record_key', evidence holds the match edges (with scores) behind the change.
-- kind: created, merged, split, record_added, record_moved, record_removed, retired, unmerged, decision.
CREATE TABLE identity_audit (
    event_id BIGINT PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    customer_id TEXT,
    other_customer_id TEXT,
    records ${JSON},
    reason TEXT,
    evidence ${JSON}
);
CREATE INDEX identity_audit_customer ON identity_audit (customer_id);
CREATE INDEX identity_audit_other ON identity_audit (other_customer_id);

-- Human decisions on record pairs (record_a < record_b, each 'source:record_key').
-- Append-only; the latest row per pair is in force. kind: must_link, cannot_link.
CREATE TABLE identity_constraints (
    constraint_id BIGINT PRIMARY KEY,
    record_a TEXT NOT NULL,
    record_b TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX identity_constraints_pair ON identity_constraints (record_a, record_b);

-- One surviving value per customer and single-valued attribute, with its lineage.
-- No index here: the profiles stage rewrites these tables on every run, and on DuckDB an index makes
-- that commit ~15x slower while zone maps serve lookups; PostgreSQL gets its index from the stage.
CREATE TABLE golden_values (
    customer_id TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    observed_at TIMESTAMP,
    rule TEXT NOT NULL
);

-- Every value of a multi-valued attribute (emails, phones, addresses), with when and where it was seen;
-- source/record_key name the latest record holding it.
CREATE TABLE golden_multi (
    customer_id TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value TEXT NOT NULL,
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    sources ${JSON} NOT NULL,
    records BIGINT NOT NULL,
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    rule TEXT NOT NULL
);
