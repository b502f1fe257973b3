-- Profile documents: each customer's profile (golden values with lineage, every value seen, records,
-- status and merged ids) as one JSON text, so that the profile API answers with one point query
-- instead of scanning the golden tables (unindexed on DuckDB: see 0003). A read-through copy:
-- written by profile lookups that miss, removed for a customer whenever its golden record, records or
-- status change (profiles.lookup.invalidate_profile_documents, called where those are written), and
-- dropped whole by a full rebuild. Identifiers are read live from customer_identifiers.
-- 'documents' counts invalidations: a lookup stores the document it built only if none came between.
CREATE TABLE profile_documents (
    customer_id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    built_at TIMESTAMP NOT NULL
);
INSERT INTO profile_counters (name, last_value) VALUES ('documents', 0);
