-- Computed traits: which traits the traits stage writes, and the RFM score boundaries.

-- One row per trait the traits stage currently writes into customer_traits. kind: computed, rfm,
-- engagement, health; value_type: number, text, list (JSON text), timestamp (ISO text + Unix seconds).
-- A trait removed from accord.yaml is found here and its rows are deleted at the next run.
CREATE TABLE trait_definitions (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value_type TEXT NOT NULL,
    definition ${JSON},
    updated_at TIMESTAMP NOT NULL
);

-- RFM quintile boundaries of the last batch run: a value scores `score` in `dimension` (recency,
-- frequency, monetary) from `threshold` on (recency: at or below it), so one customer updated in
-- real time is scored against the same population.
CREATE TABLE trait_thresholds (
    dimension TEXT NOT NULL,
    score INTEGER NOT NULL,
    threshold ${DOUBLE} NOT NULL,
    computed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (dimension, score)
);

-- customer_traits without its primary key. The traits stage rewrites some twenty values per customer
-- on every run (20 M rows for 1 M customers); DuckDB maintains a primary key as an ART index, which
-- made that write ~10x slower (5 M rows: 27 s with the key, 2.8 s without). Writers keep
-- (customer_id, name) unique by deleting before inserting in one transaction; on PostgreSQL the
-- traits stage creates the unique index customer_traits_key (as the profiles stage does for its tables).
CREATE TABLE customer_traits_rebuilt (
    customer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value_num ${DOUBLE},
    value_text TEXT,
    computed_at TIMESTAMP NOT NULL
);
INSERT INTO customer_traits_rebuilt (customer_id, name, value_num, value_text, computed_at)
    SELECT customer_id, name, value_num, value_text, computed_at FROM customer_traits;
DROP TABLE customer_traits;
ALTER TABLE customer_traits_rebuilt RENAME TO customer_traits;
