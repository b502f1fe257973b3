-- Identity resolution: which customer cluster each current source record belongs to,
-- the match edges that put it there (or were held for review, or refused), and the trained models.
CREATE TABLE identity (
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (source, record_key)
);
CREATE INDEX identity_cluster ON identity (cluster_id);

-- record_a < record_b, each 'source:record_key'. probability is null for deterministic rule edges.
-- status: 'auto' (merged), 'review' (between the thresholds, or a cut weak bridge), 'rejected' (cannot-link or limit).
CREATE TABLE match_edges (
    record_a TEXT NOT NULL,
    record_b TEXT NOT NULL,
    probability ${DOUBLE},
    match_weight ${DOUBLE},
    rule_or_model TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    run_id TEXT NOT NULL
);
CREATE INDEX match_edges_a ON match_edges (record_a);
CREATE INDEX match_edges_b ON match_edges (record_b);
CREATE INDEX match_edges_status ON match_edges (status);

-- Each trained model: Splink's JSON, versioned; fingerprint changes when the configured comparisons do.
CREATE TABLE identity_models (
    version INTEGER PRIMARY KEY,
    trained_at TIMESTAMP NOT NULL,
    run_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    settings ${JSON} NOT NULL,
    summary ${JSON}
);
