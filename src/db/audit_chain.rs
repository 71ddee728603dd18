//! The audit trail's hash chain: what each row's hash covers, and the
//! chainer's pass that links rows requests have appended (the walk that
//! checks it is in [`super::audit_verify`]).
//!
//! `hash = SHA-256(prev_hash ‖ JSON [chain_seq, at, user_id, role, action,
//! appointment_id, outcome, client_ip, request_id])`, hex-encoded, where
//! `chain_seq` is the row's place in the chain (1, 2, 3, … from
//! `audit_head.chain_from`; for rows chained before migration 0006 it is
//! their `seq`, so their hashes still hold). The first chained row has 64
//! zeros as its `prev_hash`. `audit_head` keeps the last position and hash,
//! so dropping rows from the end is caught too.
//!
//! Requests insert rows without the three chain columns; one pass here
//! takes the `audit_head` lock in a short transaction of its own, links up
//! to a batch of them in `seq` order, and moves the head. Two servers may
//! run passes at once: the lock queues them, and the unique index on
//! `chain_seq` would refuse a second row at one position anyway.

use sha2::{Digest as _, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::appointments::placeholders;
use super::{Db, DbError};

/// The `prev_hash` of the first chained row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Exactly the fields a row's hash covers, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainedFields {
    /// The row's place in the chain (not its `seq`).
    pub chain_seq: i64,
    pub at: i64,
    pub user_id: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub appointment_id: Option<String>,
    pub outcome: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

impl ChainedFields {
    /// This row's hash when chained after `prev_hash`.
    pub fn hash(&self, prev_hash: &str) -> String {
        // A JSON array is an unambiguous encoding: no field can spill into the next.
        let encoded = serde_json::json!([
            self.chain_seq,
            self.at,
            self.user_id,
            self.role,
            self.action,
            self.appointment_id,
            self.outcome,
            self.client_ip,
            self.request_id,
        ])
        .to_string();
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(encoded.as_bytes());
        hex::encode(hasher.finalize())
    }
}

impl ChainedFields {
    /// The hashed fields of a stored row, with its place in the chain.
    pub(super) fn from_row(row: &AnyRow, chain_seq: i64) -> Result<Self, DbError> {
        Ok(Self {
            chain_seq,
            at: row.try_get("at")?,
            user_id: row.try_get("user_id")?,
            role: row.try_get("role")?,
            action: row.try_get("action")?,
            appointment_id: row.try_get("appointment_id")?,
            outcome: row.try_get("outcome")?,
            client_ip: row.try_get("client_ip")?,
            request_id: row.try_get("request_id")?,
        })
    }
}

/// The hashed columns, as every chain query reads them.
pub(super) const HASHED_COLUMNS: &str = "at, user_id, role, action, appointment_id, outcome, client_ip, request_id";

impl Db {
    /// Links up to `batch` unchained rows (oldest `seq` first) onto the
    /// chain in one short transaction; returns how many it linked. Call it
    /// again while it returns `batch`.
    pub async fn chain_pending_audit(&self, batch: u32) -> Result<usize, DbError> {
        // A plain read first: when nothing waits, no lock is taken at all
        // (on SQLite the lock is the whole database's write lock).
        let waiting: Option<i64> = sqlx::query_scalar("SELECT seq FROM audit_log WHERE chain_seq IS NULL LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        if waiting.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        // The first statement writes the head row: from here until commit no
        // other pass (on this server or another) can read the same head.
        sqlx::query("UPDATE audit_head SET last_chain_seq = last_chain_seq WHERE id = 1").execute(&mut *tx).await?;
        let head =
            sqlx::query("SELECT last_chain_seq, last_hash FROM audit_head WHERE id = 1").fetch_one(&mut *tx).await?;
        let mut chain_seq: i64 = head.try_get("last_chain_seq")?;
        let mut prev_hash: String = head.try_get("last_hash")?;
        // Under READ COMMITTED (MySQL) or the write lock (SQLite) this sees
        // every row committed so far, whatever order their seqs committed in.
        // No ORDER BY: with one, MariaDB walks the primary key from the
        // oldest row through every linked one; without, it reads the
        // `chain_seq IS NULL` entries of the unique index, which come in seq
        // order anyway (the index appends the primary key). Sorted below.
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT seq, {HASHED_COLUMNS} FROM audit_log WHERE chain_seq IS NULL LIMIT ?"
        )))
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        rows.sort_by_key(|row| row.try_get::<i64, _>("seq").unwrap_or_default());
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        // (seq, chain_seq, prev_hash, hash) of each row, in chain order.
        let mut links = Vec::with_capacity(rows.len());
        for row in &rows {
            chain_seq += 1;
            let hash = ChainedFields::from_row(row, chain_seq)?.hash(&prev_hash);
            links.push((row.try_get::<i64, _>("seq")?, chain_seq, prev_hash, hash.clone()));
            prev_hash = hash;
        }
        let linked = link_rows(&mut tx, &links).await?;
        if linked != links.len() as u64 {
            // Someone else changed these rows meanwhile: leave them all for the next pass.
            tx.rollback().await?;
            return Err(DbError::Corrupt(format!("audit chainer: linked {linked} of {} rows", links.len())));
        }
        sqlx::query("UPDATE audit_head SET last_chain_seq = ?, last_hash = ? WHERE id = 1")
            .bind(chain_seq)
            .bind(&prev_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(links.len())
    }
}

/// Fills in the chain columns of every row in `links` with one `UPDATE`
/// (a `CASE` per column), only where they are still empty.
async fn link_rows(conn: &mut sqlx::AnyConnection, links: &[(i64, i64, String, String)]) -> Result<u64, DbError> {
    let case = vec!["WHEN ? THEN ?"; links.len()].join(" ");
    let sql = format!(
        "UPDATE audit_log SET chain_seq = CASE seq {case} END, prev_hash = CASE seq {case} END, \
         hash = CASE seq {case} END WHERE chain_seq IS NULL AND seq IN ({})",
        placeholders(links.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (seq, chain_seq, _, _) in links {
        query = query.bind(*seq).bind(*chain_seq);
    }
    for (seq, _, prev_hash, _) in links {
        query = query.bind(*seq).bind(prev_hash.as_str());
    }
    for (seq, _, _, hash) in links {
        query = query.bind(*seq).bind(hash.as_str());
    }
    for (seq, _, _, _) in links {
        query = query.bind(*seq);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}
