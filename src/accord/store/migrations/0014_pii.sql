-- PII at rest: check values of the keys encrypted person fields were written with (privacy.encryption).
-- 'pii_hash_key': an HMAC of a constant under $ACCORD_PII_HASH_KEY (a different key would silently stop
-- matching); 'pii_keys': a token of a constant under the newest key used (rotation re-encrypts it too).
CREATE TABLE pii_key_checks (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
