-- The audit chain moves off the request path. A request inserts its audit
-- rows in its own transaction with no chain position and no hash, so they
-- commit (or roll back) with the change and never queue on one lock; a
-- background chainer gives them `chain_seq`, `prev_hash` and `hash` in
-- batches, under the `audit_head` lock, in a short transaction of its own.
--
-- `seq` stays the row's insertion number; `chain_seq` is its place in the
-- chain (rows commit out of seq order, so the two differ). Rows chained
-- before this migration keep their hashes: their chain_seq is their seq.
--
-- The application user now needs UPDATE on the three chain columns only
-- (a column grant), and an append-only trigger, if installed, must let the
-- chainer fill them in: see docs/deployment.md.
ALTER TABLE audit_log ADD COLUMN chain_seq BIGINT NULL;

UPDATE audit_log SET chain_seq = seq WHERE hash IS NOT NULL;
-- Rows from before the chain existed (no hash, seq < chain_from) get -seq:
-- they are never linked, and `chain_seq IS NULL` alone then names the rows
-- waiting for the chainer, found through the index below instead of a scan
-- from chain_from over every linked row.
UPDATE audit_log SET chain_seq = -seq WHERE hash IS NULL;

-- Unique: two chainers can never give out one position. Also finds the
-- unchained rows (chain_seq IS NULL, then by seq, the primary key InnoDB
-- appends to every secondary index) without a scan.
CREATE UNIQUE INDEX audit_log_chain ON audit_log (chain_seq);

ALTER TABLE audit_head RENAME COLUMN last_seq TO last_chain_seq;
