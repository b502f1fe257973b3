-- Incremental identity resolution: the state a run needs to resolve only what changed.

-- Every resolved record's standardized columns, as of its row_hash in source_records. A record whose
-- row_hash differs, or that is missing here, is standardized and resolved again; a row here whose
-- record is no longer current leaves the clustering. rid is 'source:record_key'; lists (std_emails,
-- std_phones, quality_flags) and external_ids are JSON text. No index: a full rebuild rewrites it
-- whole (an ART index makes that ~15x slower on DuckDB); PostgreSQL gets indexes from the stage.
CREATE TABLE identity_standardized (
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    rid TEXT NOT NULL,
    row_hash TEXT NOT NULL,
    std_given_name TEXT,
    std_family_name TEXT,
    std_given_initial TEXT,
    std_name_group TEXT,
    std_family_name_metaphone TEXT,
    std_email TEXT,
    std_email_user TEXT,
    std_emails TEXT,
    std_phone TEXT,
    std_phones TEXT,
    std_street TEXT,
    std_house_number TEXT,
    std_unit TEXT,
    std_city TEXT,
    std_postcode TEXT,
    std_country TEXT,
    std_dob TEXT,
    std_company TEXT,
    external_ids TEXT,
    quality_flags TEXT
);

-- Every identifier each resolved record carries (before exclusions): which records share a value.
-- id_type is 'email', 'phone' or 'external:<key>'; rid is 'source:record_key'.
CREATE TABLE identity_record_identifiers (
    rid TEXT NOT NULL,
    id_type TEXT NOT NULL,
    value TEXT NOT NULL
);

-- Watermarks of the identity stage (e.g. the last human decision it has clustered with).
CREATE TABLE identity_watermarks (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
