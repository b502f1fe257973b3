-- Runs, source records with history, quarantine, events.
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status TEXT NOT NULL,
    report ${JSON}
);

-- The current version of every row of every people source.
CREATE TABLE source_records (
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    row_hash TEXT NOT NULL,
    raw ${JSON} NOT NULL,
    given_name TEXT,
    family_name TEXT,
    full_name TEXT,
    emails ${JSON},
    phones ${JSON},
    street TEXT,
    city TEXT,
    region TEXT,
    postcode TEXT,
    country TEXT,
    date_of_birth TEXT,
    company TEXT,
    external_ids ${JSON},
    consent ${JSON},
    source_created_at TIMESTAMP,
    source_updated_at TIMESTAMP,
    source_file TEXT,
    source_line BIGINT,
    first_seen_at TIMESTAMP NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    run_id TEXT NOT NULL,
    PRIMARY KEY (source, record_key)
);

-- Earlier versions: a row moves here, with valid_to, when its source row changes.
CREATE TABLE source_records_history (
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    row_hash TEXT NOT NULL,
    raw ${JSON} NOT NULL,
    given_name TEXT,
    family_name TEXT,
    full_name TEXT,
    emails ${JSON},
    phones ${JSON},
    street TEXT,
    city TEXT,
    region TEXT,
    postcode TEXT,
    country TEXT,
    date_of_birth TEXT,
    company TEXT,
    external_ids ${JSON},
    consent ${JSON},
    source_created_at TIMESTAMP,
    source_updated_at TIMESTAMP,
    source_file TEXT,
    source_line BIGINT,
    first_seen_at TIMESTAMP NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    run_id TEXT NOT NULL,
    valid_to TIMESTAMP NOT NULL
);
CREATE INDEX source_records_history_key ON source_records_history (source, record_key);

-- Rows that could not be stored, with why and where; resolved when a later ingest stores them.
CREATE TABLE quarantine (
    quarantine_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    file TEXT,
    line BIGINT,
    record_key TEXT,
    reason TEXT NOT NULL,
    raw_text TEXT,
    raw_hash TEXT NOT NULL,
    first_run_id TEXT NOT NULL,
    last_run_id TEXT NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    resolution TEXT
);
CREATE INDEX quarantine_source ON quarantine (source, raw_hash);

-- Behavioural events: from event sources now, from the collection API later.
CREATE TABLE events (
    event_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    type TEXT NOT NULL,
    event TEXT,
    ts TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    identity_type TEXT,
    identity_value TEXT,
    anonymous_id TEXT,
    revenue ${DOUBLE},
    properties ${JSON},
    row_hash TEXT,
    source_file TEXT,
    source_line BIGINT,
    run_id TEXT NOT NULL
);
CREATE INDEX events_identity ON events (identity_type, identity_value);
CREATE INDEX events_ts ON events (ts);
