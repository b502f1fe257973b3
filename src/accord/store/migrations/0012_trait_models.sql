-- Versioned models behind the model traits (lifetime value, churn risk): each fit is a new version;
-- the newest of a kind is the one in force. params: fitted parameters and settings; metrics: fit
-- quality (log-likelihood, holdout checks, ROC AUC, ...); artifact: what is needed to score again
-- (the LightGBM model text and calibrator for churn), as JSON text.
CREATE TABLE trait_models (
    kind TEXT NOT NULL,
    version BIGINT NOT NULL,
    trained_at TIMESTAMP NOT NULL,
    run_id TEXT,
    params ${JSON} NOT NULL,
    metrics ${JSON} NOT NULL,
    artifact TEXT,
    PRIMARY KEY (kind, version)
);
