-- The audit chain moves off the request path. A request inserts its audit
-- rows in its own transaction with no chain position and no hash, so they
-- commit (or roll back) with the change and never queue on one lock; a
-- background chainer gives them `chain_seq`, `prev_hash` and `hash` in
-- batches, under the `audit_head` lock, in a short transaction of its own.
--
-- `seq` stays the row's insertion number; `chain_seq` is its place in the
-- chain (rows commit out of seq order, so the two differ). Rows chained
-- before this migration keep their hashes: their chain_seq is their seq.
ALTER TABLE audit_log ADD COLUMN chain_seq INTEGER;

DROP TRIGGER audit_log_no_update;
UPDATE audit_log SET chain_seq = seq WHERE hash IS NOT NULL;
-- Rows from before the chain existed (no hash, seq < chain_from) get -seq:
-- they are never linked, and `chain_seq IS NULL` alone then names the rows
-- waiting for the chainer, found through the index below instead of a scan
-- from chain_from over every linked row.
UPDATE audit_log SET chain_seq = -seq WHERE hash IS NULL;
-- Unique: two chainers can never give out one position. Also finds the
-- unchained rows (chain_seq IS NULL, then by seq) without a scan.
CREATE UNIQUE INDEX audit_log_chain ON audit_log (chain_seq);

ALTER TABLE audit_head RENAME COLUMN last_seq TO last_chain_seq;

-- The one UPDATE allowed: the chainer filling in the three chain columns of
-- a row that has none yet, leaving everything else as it was. A chained
-- row can no longer change at all; DELETE stays refused (the trigger from
-- 0004).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN OLD.chain_seq IS NOT NULL OR OLD.prev_hash IS NOT NULL OR OLD.hash IS NOT NULL
    OR NEW.chain_seq IS NULL OR NEW.prev_hash IS NULL OR NEW.hash IS NULL
    OR NEW.seq IS NOT OLD.seq OR NEW.at IS NOT OLD.at OR NEW.user_id IS NOT OLD.user_id
    OR NEW.role IS NOT OLD.role OR NEW.action IS NOT OLD.action
    OR NEW.appointment_id IS NOT OLD.appointment_id OR NEW.outcome IS NOT OLD.outcome
    OR NEW.client_ip IS NOT OLD.client_ip OR NEW.request_id IS NOT OLD.request_id
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
