//! `consulta audit verify`: walks the chain in `chain_seq` order and
//! reports the first place it does not hold, and rows the chainer has left
//! unlinked for too long (see [`super::audit_chain`] for what is hashed).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::audit_chain::{ChainedFields, GENESIS, HASHED_COLUMNS};
use super::{Db, DbError, to_millis};

/// Rows read per round trip while verifying.
const PAGE: i64 = 1000;

/// The first place the chain does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    /// The chain position that fails (for a truncated tail: the first
    /// missing one).
    pub chain_seq: i64,
    /// The `seq` of the row at that position; `None` when it is missing.
    pub seq: Option<i64>,
    pub reason: String,
}

/// Rows appended but not yet linked into the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unchained {
    /// All of them (normally the last second's worth while a server runs).
    pub pending: u64,
    /// Those older than the grace period: the chainer is not running, or
    /// failing (its errors are in the server log). Until linked, these rows
    /// are not protected by the chain.
    pub overdue: u64,
    /// The oldest overdue row's `seq`.
    pub oldest_overdue_seq: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Chained rows whose hash was checked and held.
    pub verified: u64,
    /// Rows written before the chain began (no hash to check).
    pub before_chain: u64,
    pub unchained: Unchained,
    pub broken: Option<BrokenLink>,
}

impl Db {
    /// Walks the chain up to the head as it is when the walk starts (rows
    /// a running server links meanwhile are left for the next run), and
    /// counts unchained rows, calling those written before `now - grace`
    /// overdue.
    pub async fn verify_audit_chain(
        &self,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<ChainReport, DbError> {
        let head = sqlx::query("SELECT last_chain_seq, last_hash, chain_from FROM audit_head WHERE id = 1")
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| DbError::Corrupt("the audit_head row is missing".to_owned()))?;
        let head_seq: i64 = head.try_get("last_chain_seq")?;
        let head_hash: String = head.try_get("last_hash")?;
        let chain_from: i64 = head.try_get("chain_from")?;

        // Migration 0006 marked them with chain_seq = -seq.
        let before_chain: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE chain_seq < 0").fetch_one(self.pool()).await?;
        let mut report = ChainReport {
            verified: 0,
            before_chain: u64::try_from(before_chain).unwrap_or_default(),
            unchained: self.unchained_audit(now - grace).await?,
            broken: None,
        };
        let broken = |chain_seq: i64, seq: Option<i64>, reason: String| Some(BrokenLink { chain_seq, seq, reason });
        let mut expected = chain_from;
        let mut prev_hash = GENESIS.to_owned();
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT seq, chain_seq, {HASHED_COLUMNS}, prev_hash, hash FROM audit_log \
                 WHERE chain_seq >= ? AND chain_seq <= ? ORDER BY chain_seq LIMIT ?"
            )))
            .bind(expected)
            .bind(head_seq)
            .bind(PAGE)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                let chain_seq: i64 = row.try_get("chain_seq")?;
                if chain_seq != expected {
                    report.broken = broken(
                        expected,
                        None,
                        format!("chain position {expected} is missing (the next is {chain_seq}, seq {seq})"),
                    );
                    return Ok(report);
                }
                let stored_prev: Option<String> = row.try_get("prev_hash")?;
                let stored_hash: Option<String> = row.try_get("hash")?;
                if stored_prev.as_deref() != Some(prev_hash.as_str()) {
                    report.broken =
                        broken(chain_seq, Some(seq), "its prev_hash does not match the row before it".to_owned());
                    return Ok(report);
                }
                let hash = ChainedFields::from_row(row, chain_seq)?.hash(&prev_hash);
                if stored_hash.as_deref() != Some(hash.as_str()) {
                    report.broken = broken(chain_seq, Some(seq), "its contents do not match its hash".to_owned());
                    return Ok(report);
                }
                report.verified += 1;
                expected += 1;
                prev_hash = hash;
            }
        }
        if expected - 1 < head_seq {
            report.broken =
                broken(expected, None, format!("chain positions {expected}..={head_seq} are missing from the end"));
        } else if prev_hash != head_hash {
            report.broken = broken(head_seq, None, "the chain's head does not match its last row".to_owned());
        }
        Ok(report)
    }

    async fn unchained_audit(&self, overdue_before: DateTime<Utc>) -> Result<Unchained, DbError> {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE chain_seq IS NULL").fetch_one(self.pool()).await?;
        let overdue = sqlx::query(
            "SELECT COUNT(*) AS overdue, MIN(seq) AS oldest FROM audit_log WHERE chain_seq IS NULL AND at < ?",
        )
        .bind(to_millis(overdue_before))
        .fetch_one(self.pool())
        .await?;
        Ok(Unchained {
            pending: u64::try_from(pending).unwrap_or_default(),
            overdue: u64::try_from(overdue.try_get::<i64, _>("overdue")?).unwrap_or_default(),
            oldest_overdue_seq: overdue.try_get("oldest")?,
        })
    }
}
