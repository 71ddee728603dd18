-- Tamper-evident audit trail. Each row's `hash` is SHA-256 over its own
-- fields and `prev_hash` (the hash of the row before it), so changing,
-- removing or inserting a row breaks the chain at that row; `consulta audit
-- verify` finds the first broken link. Rows written before this migration
-- (seq < chain_from) carry no hash.
-- No triggers here (creating them needs the TRIGGER privilege, and SUPER
-- with binary logging on): grant the application user only SELECT and
-- INSERT on audit_log instead; see docs/deployment.md.
ALTER TABLE audit_log ADD COLUMN prev_hash CHAR(64) NULL, ADD COLUMN hash CHAR(64) NULL;

-- The head of the chain, one row. Appending updates it first, which takes
-- its row lock, so two appends can never chain onto the same row.
CREATE TABLE audit_head (
    id         INT      NOT NULL PRIMARY KEY,
    last_seq   BIGINT   NOT NULL,
    last_hash  CHAR(64) NOT NULL,
    chain_from BIGINT   NOT NULL,
    CONSTRAINT audit_head_one_row CHECK (id = 1)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

INSERT INTO audit_head (id, last_seq, last_hash, chain_from)
SELECT 1, COALESCE(MAX(seq), 0), '0000000000000000000000000000000000000000000000000000000000000000', COALESCE(MAX(seq), 0) + 1 FROM audit_log;
