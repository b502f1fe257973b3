-- The dashboard (/ui): the secret that signs its session cookies. Made once per store, so that every
-- API worker process and every restart signs and checks cookies alike. Holds no person data.
CREATE TABLE ui_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
