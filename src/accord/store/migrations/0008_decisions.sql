-- Personalization decisions: offers managed through the API, stock, the decision log with the
-- propensities off-policy evaluation needs, outcomes, and versioned propensity models.

-- Offers created through the API (offers in accord.yaml are read from the file, not stored).
-- definition is the offer as validated (accord.decisions.settings.OfferSpec).
CREATE TABLE offers (
    offer_id TEXT PRIMARY KEY,
    definition ${JSON} NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Stock per inventory item; an offer links to one with `inventory`. No row: stock is not tracked.
CREATE TABLE offer_inventory (
    item TEXT PRIMARY KEY,
    stock BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- One row per decision. unit is what experiments and frequency caps count by: the customer id, or
-- 'anonymous_id:<value>' for a visitor not linked to a customer. features holds the model inputs as
-- they were (JSON), candidates the offers that passed every guardrail and offered the offers given,
-- in order (JSON lists of ids; offered repeats decision_offers so that frequency caps read one row).
CREATE TABLE decisions (
    decision_id TEXT PRIMARY KEY,
    unit TEXT NOT NULL,
    customer_id TEXT,
    anonymous_id TEXT,
    channel TEXT,
    placement TEXT,
    device TEXT,
    policy TEXT NOT NULL,
    model_version INTEGER,
    experiment TEXT,
    variant TEXT,
    personalized BOOLEAN NOT NULL,
    features ${JSON},
    candidates ${JSON},
    offered ${JSON},
    decided_at TIMESTAMP NOT NULL
);
CREATE INDEX decisions_unit ON decisions (unit);
CREATE INDEX decisions_customer ON decisions (customer_id);
CREATE INDEX decisions_experiment ON decisions (experiment, variant);

-- The ranked offers of a decision with the probability the policy had of putting each one at its
-- position (its propensity, for IPW/DR off-policy evaluation) and whether it was an exploration pick.
CREATE TABLE decision_offers (
    decision_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    offer_id TEXT NOT NULL,
    score ${DOUBLE},
    propensity ${DOUBLE} NOT NULL,
    explored BOOLEAN NOT NULL,
    PRIMARY KEY (decision_id, position)
);
CREATE INDEX decision_offers_offer ON decision_offers (offer_id);

-- Feedback: each report is kept; a decision's outcome is the union of its reports. offer_id NULL is
-- an outcome of the decision as a whole (e.g. a conversion by a holdout customer).
CREATE TABLE decision_outcomes (
    outcome_id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    offer_id TEXT,
    shown BOOLEAN NOT NULL,
    clicked BOOLEAN NOT NULL,
    converted BOOLEAN NOT NULL,
    revenue ${DOUBLE},
    occurred_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX decision_outcomes_decision ON decision_outcomes (decision_id);

-- Propensity models, every version kept (model is LightGBM's text format); one is active.
-- summary holds the features, categories, training metrics and the reference distributions
-- that drift monitoring compares against (JSON).
CREATE TABLE decision_models (
    version INTEGER PRIMARY KEY,
    trained_at TIMESTAMP NOT NULL,
    label TEXT NOT NULL,
    training_rows BIGINT NOT NULL,
    auc ${DOUBLE},
    active BOOLEAN NOT NULL,
    summary ${JSON} NOT NULL,
    model TEXT NOT NULL
)
