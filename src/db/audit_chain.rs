//! The audit trail's hash chain: what each row's hash covers, and the
//! check that walks the whole table (`consulta audit verify`).
//!
//! `hash = SHA-256(prev_hash ‖ JSON [seq, at, user_id, role, action,
//! appointment_id, outcome, client_ip, request_id])`, hex-encoded. The
//! first chained row has 64 zeros as its `prev_hash`. `audit_head` keeps
//! the last seq and hash, so dropping rows from the end is caught too.

use sha2::{Digest as _, Sha256};
use sqlx::Row;

use super::{Db, DbError};

/// The `prev_hash` of the first chained row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows read per round trip while verifying.
const PAGE: i64 = 1000;

/// Exactly the fields a row's hash covers, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainedFields {
    pub seq: i64,
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
            self.seq,
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

/// The first place the chain does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    /// The seq of the first row that fails (for a truncated tail: the
    /// first missing seq).
    pub seq: i64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Chained rows whose hash was checked and held.
    pub verified: u64,
    /// Rows written before the chain began (no hash to check).
    pub before_chain: u64,
    pub broken: Option<BrokenLink>,
}

impl Db {
    /// Walks the audit trail in seq order and reports the first broken link.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, DbError> {
        let head = sqlx::query("SELECT last_seq, last_hash, chain_from FROM audit_head WHERE id = 1")
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::Corrupt("the audit_head row is missing".to_owned()))?;
        let head_seq: i64 = head.try_get("last_seq")?;
        let head_hash: String = head.try_get("last_hash")?;
        let chain_from: i64 = head.try_get("chain_from")?;

        let mut report = ChainReport { verified: 0, before_chain: 0, broken: None };
        let broken = |seq: i64, reason: String| Some(BrokenLink { seq, reason });
        let mut expected_seq = chain_from;
        let mut prev_hash = GENESIS.to_owned();
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, user_id, role, action, appointment_id, outcome, client_ip, request_id, prev_hash, \
                 hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("seq")?;
            for row in &rows {
                let fields = ChainedFields {
                    seq: row.try_get("seq")?,
                    at: row.try_get("at")?,
                    user_id: row.try_get("user_id")?,
                    role: row.try_get("role")?,
                    action: row.try_get("action")?,
                    appointment_id: row.try_get("appointment_id")?,
                    outcome: row.try_get("outcome")?,
                    client_ip: row.try_get("client_ip")?,
                    request_id: row.try_get("request_id")?,
                };
                if fields.seq < chain_from {
                    report.before_chain += 1;
                    continue;
                }
                let stored_prev: Option<String> = row.try_get("prev_hash")?;
                let stored_hash: Option<String> = row.try_get("hash")?;
                if fields.seq != expected_seq {
                    let found = fields.seq;
                    report.broken =
                        broken(expected_seq, format!("row {expected_seq} is missing (the next row is {found})"));
                    return Ok(report);
                }
                if stored_prev.as_deref() != Some(prev_hash.as_str()) {
                    report.broken = broken(fields.seq, "its prev_hash does not match the row before it".to_owned());
                    return Ok(report);
                }
                let hash = fields.hash(&prev_hash);
                if stored_hash.as_deref() != Some(hash.as_str()) {
                    report.broken = broken(fields.seq, "its contents do not match its hash".to_owned());
                    return Ok(report);
                }
                report.verified += 1;
                expected_seq += 1;
                prev_hash = hash;
            }
        }
        if expected_seq - 1 < head_seq {
            report.broken = broken(expected_seq, format!("rows {expected_seq}..={head_seq} are missing from the end"));
        } else if expected_seq - 1 > head_seq || prev_hash != head_hash {
            report.broken = broken(head_seq, "the chain's head does not match its last row".to_owned());
        }
        Ok(report)
    }
}
