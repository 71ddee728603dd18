-- Tamper-evident audit trail. Each row's `hash` is SHA-256 over its own
-- fields and `prev_hash` (the hash of the row before it), so changing,
-- removing or inserting a row breaks the chain at that row; `consulta audit
-- verify` finds the first broken link. Rows written before this migration
-- (seq < chain_from) carry no hash.
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;

-- The head of the chain, one row. Appending updates it first, which takes
-- the write lock, so two appends can never chain onto the same row.
CREATE TABLE audit_head (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last_seq   INTEGER NOT NULL,
    last_hash  TEXT NOT NULL,
    chain_from INTEGER NOT NULL
);

INSERT INTO audit_head (id, last_seq, last_hash, chain_from)
SELECT 1, COALESCE(MAX(seq), 0), '0000000000000000000000000000000000000000000000000000000000000000', COALESCE(MAX(seq), 0) + 1 FROM audit_log;

-- Append-only, enforced by the database itself.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
