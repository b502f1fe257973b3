-- Segments: their definitions, membership with history, clustering runs and the webhook queue.
-- No secondary indexes here: on DuckDB an index makes the batch rewrite of membership many times
-- slower (zone maps serve its lookups); PostgreSQL gets its indexes from accord.segments.store_indexes.

-- Every segment ever defined. origin: 'config' (accord.yaml or a segments file), 'saved' (saved from
-- the CLI or API), 'cluster' (made by `accord segments cluster`). status: 'active' or 'retired'
-- (removed from the config; its open memberships are closed). definition is the condition's text.
CREATE TABLE segments (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    origin TEXT NOT NULL,
    status TEXT NOT NULL,
    definition TEXT,
    description TEXT,
    requires_consent ${JSON},
    realtime BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_run_id TEXT,
    last_evaluated_at TIMESTAMP,
    members BIGINT NOT NULL
);

-- One row per stint of a customer in a segment: exited_at stays NULL while the customer is a
-- member. Re-entering starts a new row. how: 'batch', 'realtime' or 'cluster'.
CREATE TABLE segment_membership (
    segment TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    entered_at TIMESTAMP NOT NULL,
    exited_at TIMESTAMP,
    entered_by TEXT NOT NULL,
    exited_by TEXT,
    entered_run TEXT,
    exited_run TEXT
);

-- Each clustering run: the features, the k chosen, silhouette per k and each cluster's description.
CREATE TABLE segment_clusterings (
    run_id TEXT PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    k INTEGER NOT NULL,
    features ${JSON} NOT NULL,
    scores ${JSON} NOT NULL,
    clusters ${JSON} NOT NULL
);

-- Webhook deliveries, a durable queue: 'pending' (due at next_attempt_at), 'sending' (claimed by a
-- worker until locked_until), 'delivered', 'dead' (gave up after max attempts; replayable).
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    url TEXT NOT NULL,
    segment TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_attempt_at TIMESTAMP,
    last_status INTEGER,
    last_error TEXT,
    delivered_at TIMESTAMP
)
