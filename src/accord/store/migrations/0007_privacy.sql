-- Privacy: consent history, erasure receipts and suppression, the access audit, retraining notes.

-- Every consent decision ever seen, append-only; customer_consent (0005) holds the current one.
-- origin 'record': from a source record's mapped consent field (record_source, record_key);
-- 'event': from context.consent of a collected event (id_type, id_value: user_id or anonymous_id);
-- 'api': PUT /v1/profiles/{ref}/consent or the CLI (customer_id).
CREATE TABLE consent_history (
    decision_id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    source TEXT NOT NULL,
    lawful_basis TEXT,
    origin TEXT NOT NULL,
    customer_id TEXT,
    record_source TEXT,
    record_key TEXT,
    id_type TEXT,
    id_value TEXT,
    recorded_at TIMESTAMP NOT NULL,
    actor TEXT
);
CREATE INDEX consent_history_customer ON consent_history (customer_id);
CREATE INDEX consent_history_record ON consent_history (record_source, record_key);
CREATE INDEX consent_history_identifier ON consent_history (id_type, id_value);

-- Salted HMAC-SHA256 of an erased person's standardized identifiers ('email:...', 'phone:+...',
-- 'record:crm:1001', ...): ingestion and collection skip rows that carry one.
CREATE TABLE suppression (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- One row per erasure: counts per table, never the person's identifiers.
CREATE TABLE erasure_receipts (
    receipt_id TEXT PRIMARY KEY,
    erased_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    purpose TEXT,
    customer_ids ${JSON} NOT NULL,
    counts ${JSON} NOT NULL,
    suppressed BIGINT NOT NULL,
    seconds ${DOUBLE} NOT NULL,
    notes ${JSON},
    purged_at TIMESTAMP
);

-- Who read or changed whose data, when and why: customer ids only, never raw identifiers.
CREATE TABLE access_log (
    access_id TEXT PRIMARY KEY,
    accessed_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    role TEXT,
    channel TEXT NOT NULL,
    action TEXT NOT NULL,
    customer_id TEXT,
    purpose TEXT,
    detail TEXT
);
CREATE INDEX access_log_customer ON access_log (customer_id);
CREATE INDEX access_log_at ON access_log (accessed_at);

-- Secrets generated once per store (the suppression salt when ACCORD_PRIVACY_SALT is unset).
CREATE TABLE privacy_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Models trained on data that included an erased person: the next training must run without them.
-- retrained_at stays NULL until the model's stage retrains (and sets it).
CREATE TABLE model_exclusions (
    model TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    retrained_at TIMESTAMP,
    PRIMARY KEY (model, receipt_id)
);
