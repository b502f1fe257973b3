-- The HTTP API: API keys (hashed) and the identity signals that collection hands to identity.

-- API keys. Only hashes are stored: 'sha256:<hex>' of the key. origin says who manages the row:
-- 'config' (accord.yaml api.keys) and 'env' (ACCORD_*_KEY) rows are re-synced at every start.
CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- identify traits, alias and group calls from collection, for identity resolution to consume
-- (real-time stitching); processed_at stays NULL until identity has read the row.
CREATE TABLE identity_signals (
    event_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    user_id TEXT,
    anonymous_id TEXT,
    previous_id TEXT,
    group_id TEXT,
    traits ${JSON},
    ts TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    processed_at TIMESTAMP
);
CREATE INDEX identity_signals_pending ON identity_signals (processed_at, received_at)
