-- Tables several later stages share: the identifier index, computed traits, accounts and current consent.

-- Every identifier that names a customer: (id_type, value) -> customer_id. id_type is 'email'
-- (lowercased standard form), 'phone' (E.164), 'user_id', 'anonymous_id' or a source's external id
-- name; value is the standard form events and lookups use. Rebuilt by the profiles stage from the
-- resolved records and events, and extended at once by real-time stitching. One identifier may name
-- two customers when identity kept them apart (e.g. a shared household email).
CREATE TABLE customer_identifiers (
    id_type TEXT NOT NULL,
    value TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    PRIMARY KEY (id_type, value, customer_id)
);
CREATE INDEX customer_identifiers_customer ON customer_identifiers (customer_id);

-- Computed traits, one row per customer and trait. value_num holds numbers and booleans (1/0),
-- value_text everything else (lists as JSON text).
CREATE TABLE customer_traits (
    customer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value_num ${DOUBLE},
    value_text TEXT,
    computed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (customer_id, name)
);

-- Accounts (companies) from group calls and company fields, and who belongs to them.
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT,
    traits ${JSON},
    origin TEXT NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL
);

CREATE TABLE account_members (
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, customer_id)
);
CREATE INDEX account_members_customer ON account_members (customer_id);

-- The current consent of every customer per purpose (the most recent decision across the
-- customer's records and events wins); the history behind it belongs to the privacy stage.
-- status: granted, denied, withdrawn.
CREATE TABLE customer_consent (
    customer_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    source TEXT NOT NULL,
    lawful_basis TEXT,
    PRIMARY KEY (customer_id, purpose)
);
