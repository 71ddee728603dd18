//! The `appointments` and `idempotency_keys` tables, and `availability`.
//!
//! Functions taking `&mut AnyConnection` run inside the caller's
//! transaction; see `scheduling` for the transaction shape.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::users::user_from_row;
use super::{Db, DbError, from_millis, to_millis};
use crate::domain::{Appointment, AppointmentId, AppointmentStatus, Party, User, UserId};

const SELECT: &str = "SELECT a.id, a.doctor_id, d.name AS doctor_name, a.patient_id, p.name AS patient_name, \
     a.start_at, a.end_at, a.status, a.reason, a.cancel_reason, a.cancelled_by, a.sequence, a.created_at, a.updated_at \
     FROM appointments a JOIN users d ON d.id = a.doctor_id JOIN users p ON p.id = a.patient_id";

fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, DbError> {
    raw.parse().map_err(|_| DbError::Corrupt(format!("id {raw}")))
}

fn appointment_from_row(row: &AnyRow) -> Result<Appointment, DbError> {
    let status: String = row.try_get("status")?;
    let cancelled_by: Option<String> = row.try_get("cancelled_by")?;
    Ok(Appointment {
        id: parse_id(&row.try_get::<String, _>("id")?)?,
        doctor: Party { id: parse_id(&row.try_get::<String, _>("doctor_id")?)?, name: row.try_get("doctor_name")? },
        patient: Party { id: parse_id(&row.try_get::<String, _>("patient_id")?)?, name: row.try_get("patient_name")? },
        start: from_millis(row.try_get("start_at")?)?,
        end: from_millis(row.try_get("end_at")?)?,
        cancelled: status == "cancelled",
        reason: row.try_get("reason")?,
        cancel_reason: row.try_get("cancel_reason")?,
        cancelled_by: cancelled_by.as_deref().map(parse_id).transpose()?,
        sequence: row.try_get("sequence")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

/// A new appointment row.
pub struct NewAppointment<'a> {
    pub id: AppointmentId,
    pub doctor_id: UserId,
    pub patient_id: UserId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// What `appointments_of` returns.
pub struct AppointmentQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub status: Option<AppointmentStatus>,
    pub limit: u32,
    pub offset: u32,
}

/// Takes the write locks that serialise bookings: the first statement of
/// a booking transaction must be this write (see docs/architecture.md).
/// Returns how many of `users` exist.
///
/// One statement for all rows: InnoDB walks an `IN` list over the primary
/// key in ascending order, so two transactions still take shared rows in
/// the same (id) order and never wait on each other crosswise (and a
/// deadlock, should one happen, is retried like any other).
pub async fn lock_users(conn: &mut AnyConnection, users: &[UserId]) -> Result<u64, DbError> {
    let mut ids: Vec<String> = users.iter().map(ToString::to_string).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!("UPDATE users SET lock_version = lock_version + 1 WHERE id IN ({})", placeholders(ids.len()));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// `?, ?, …` for `n` values.
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The two participants of a change and the doctor's stored availability,
/// read in one round trip inside the change's transaction.
#[derive(Clone, Debug)]
pub struct Parties {
    pub doctor: Option<User>,
    pub patient: Option<User>,
    /// The doctor's availability JSON, if published.
    pub rules: Option<String>,
}

/// Reads both users with the doctor's availability (a `LEFT JOIN`, so a
/// doctor without availability still comes back).
pub async fn parties_in(conn: &mut AnyConnection, doctor: UserId, patient: UserId) -> Result<Parties, DbError> {
    let rows = sqlx::query(
        "SELECT u.id, u.email, u.name, u.role, u.timezone, av.rules FROM users u \
         LEFT JOIN availability av ON av.doctor_id = u.id WHERE u.id IN (?, ?)",
    )
    .bind(doctor.to_string())
    .bind(patient.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut parties = Parties { doctor: None, patient: None, rules: None };
    for row in &rows {
        let user = user_from_row(row)?;
        if user.id == doctor {
            parties.rules = row.try_get("rules")?;
            parties.doctor = Some(user.clone());
        }
        if user.id == patient {
            parties.patient = Some(user);
        }
    }
    Ok(parties)
}

/// Scheduled appointments of a doctor and of a patient overlapping
/// `[from, to)`, in one round trip: `(doctor's, patient's)`.
pub async fn busy_of_both(
    conn: &mut AnyConnection,
    doctor: UserId,
    patient: UserId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    except: Option<AppointmentId>,
) -> Result<(Vec<(DateTime<Utc>, DateTime<Utc>)>, Vec<(DateTime<Utc>, DateTime<Utc>)>), DbError> {
    // A UNION ALL rather than `doctor_id = ? OR patient_id = ?`: each half
    // uses its own index, and an appointment of this doctor with this
    // patient is counted on both sides, as two separate queries would.
    let rows = sqlx::query(
        "SELECT 'd' AS side, start_at, end_at FROM appointments WHERE doctor_id = ? AND status = 'scheduled' \
         AND start_at < ? AND end_at > ? AND id <> ? \
         UNION ALL SELECT 'p' AS side, start_at, end_at FROM appointments WHERE patient_id = ? \
         AND status = 'scheduled' AND start_at < ? AND end_at > ? AND id <> ?",
    )
    .bind(doctor.to_string())
    .bind(to_millis(to))
    .bind(to_millis(from))
    .bind(except.map(|e| e.to_string()).unwrap_or_default())
    .bind(patient.to_string())
    .bind(to_millis(to))
    .bind(to_millis(from))
    .bind(except.map(|e| e.to_string()).unwrap_or_default())
    .fetch_all(&mut *conn)
    .await?;
    let (mut doctors, mut patients) = (Vec::new(), Vec::new());
    for row in &rows {
        let side: String = row.try_get("side")?;
        let interval = (from_millis(row.try_get("start_at")?)?, from_millis(row.try_get("end_at")?)?);
        if side == "d" { doctors.push(interval) } else { patients.push(interval) }
    }
    doctors.sort();
    patients.sort();
    Ok((doctors, patients))
}

/// Scheduled appointments of `user` (on either side) overlapping `[from, to)`.
pub async fn busy_intervals(
    conn: &mut AnyConnection,
    column: BusyColumn,
    user: UserId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    except: Option<AppointmentId>,
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, DbError> {
    let sql = match column {
        BusyColumn::Doctor => {
            "SELECT start_at, end_at FROM appointments WHERE doctor_id = ? AND status = 'scheduled' \
             AND start_at < ? AND end_at > ? AND id <> ? ORDER BY start_at"
        }
        BusyColumn::Patient => {
            "SELECT start_at, end_at FROM appointments WHERE patient_id = ? AND status = 'scheduled' \
             AND start_at < ? AND end_at > ? AND id <> ? ORDER BY start_at"
        }
    };
    let rows = sqlx::query(sql)
        .bind(user.to_string())
        .bind(to_millis(to))
        .bind(to_millis(from))
        .bind(except.map(|e| e.to_string()).unwrap_or_default())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| Ok((from_millis(r.try_get("start_at")?)?, from_millis(r.try_get("end_at")?)?))).collect()
}

#[derive(Clone, Copy, Debug)]
pub enum BusyColumn {
    Doctor,
    Patient,
}

pub async fn insert_appointment(conn: &mut AnyConnection, new: &NewAppointment<'_>) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO appointments (id, doctor_id, patient_id, start_at, end_at, active_start, status, reason, sequence, \
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'scheduled', ?, 0, ?, ?)",
    )
    .bind(new.id.to_string())
    .bind(new.doctor_id.to_string())
    .bind(new.patient_id.to_string())
    .bind(to_millis(new.start))
    .bind(to_millis(new.end))
    .bind(to_millis(new.start))
    .bind(new.reason)
    .bind(to_millis(new.now))
    .bind(to_millis(new.now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn appointment_in(conn: &mut AnyConnection, id: AppointmentId) -> Result<Option<Appointment>, DbError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE a.id = ?")))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(appointment_from_row).transpose()
}

pub async fn set_cancelled(
    conn: &mut AnyConnection,
    id: AppointmentId,
    by: UserId,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE appointments SET status = 'cancelled', active_start = NULL, cancel_reason = ?, cancelled_by = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(reason)
    .bind(by.to_string())
    .bind(to_millis(now))
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_times(
    conn: &mut AnyConnection,
    id: AppointmentId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE appointments SET start_at = ?, end_at = ?, active_start = ?, sequence = sequence + 1, updated_at = ? \
         WHERE id = ?",
    )
    .bind(to_millis(start))
    .bind(to_millis(end))
    .bind(to_millis(start))
    .bind(to_millis(now))
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The appointment and fingerprint an idempotency key was used for.
pub async fn idempotency_key(
    conn: &mut AnyConnection,
    patient: UserId,
    key: &str,
) -> Result<Option<(AppointmentId, String)>, DbError> {
    let row =
        sqlx::query("SELECT appointment_id, fingerprint FROM idempotency_keys WHERE patient_id = ? AND idem_key = ?")
            .bind(patient.to_string())
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| Ok((parse_id(&r.try_get::<String, _>("appointment_id")?)?, r.try_get("fingerprint")?))).transpose()
}

pub async fn insert_idempotency_key(
    conn: &mut AnyConnection,
    patient: UserId,
    key: &str,
    fingerprint: &str,
    appointment: AppointmentId,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO idempotency_keys (patient_id, idem_key, fingerprint, appointment_id, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(patient.to_string())
    .bind(key)
    .bind(fingerprint)
    .bind(appointment.to_string())
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored availability JSON of a doctor.
pub async fn availability_in(conn: &mut AnyConnection, doctor: UserId) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT rules FROM availability WHERE doctor_id = ?")
        .bind(doctor.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get("rules")).transpose()?)
}

impl Db {
    pub async fn appointment(&self, id: AppointmentId) -> Result<Option<Appointment>, DbError> {
        let mut conn = self.pool().acquire().await?;
        appointment_in(&mut conn, id).await
    }

    /// The appointments where `user` is doctor or patient, by start time.
    pub async fn appointments_of(
        &self,
        user: UserId,
        query: &AppointmentQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, DbError> {
        let mut sql = format!("{SELECT} WHERE (a.doctor_id = ? OR a.patient_id = ?)");
        if query.from.is_some() {
            sql.push_str(" AND a.end_at > ?");
        }
        if query.to.is_some() {
            sql.push_str(" AND a.start_at < ?");
        }
        match query.status {
            Some(AppointmentStatus::Cancelled) => sql.push_str(" AND a.status = 'cancelled'"),
            Some(AppointmentStatus::Scheduled) => sql.push_str(" AND a.status = 'scheduled' AND a.end_at > ?"),
            Some(AppointmentStatus::Completed) => sql.push_str(" AND a.status = 'scheduled' AND a.end_at <= ?"),
            None => {}
        }
        sql.push_str(" ORDER BY a.start_at, a.id LIMIT ? OFFSET ?");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.to_string()).bind(user.to_string());
        if let Some(from) = query.from {
            q = q.bind(to_millis(from));
        }
        if let Some(to) = query.to {
            q = q.bind(to_millis(to));
        }
        if matches!(query.status, Some(AppointmentStatus::Scheduled | AppointmentStatus::Completed)) {
            q = q.bind(to_millis(now));
        }
        let rows = q.bind(i64::from(query.limit)).bind(i64::from(query.offset)).fetch_all(self.pool()).await?;
        rows.iter().map(appointment_from_row).collect()
    }

    pub async fn availability(&self, doctor: UserId) -> Result<Option<String>, DbError> {
        let mut conn = self.pool().acquire().await?;
        availability_in(&mut conn, doctor).await
    }

    /// Replaces a doctor's availability (existing appointments are untouched).
    pub async fn put_availability(&self, doctor: UserId, rules: &str, now: DateTime<Utc>) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE availability SET rules = ?, updated_at = ? WHERE doctor_id = ?")
            .bind(rules)
            .bind(to_millis(now))
            .bind(doctor.to_string())
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO availability (doctor_id, rules, updated_at) VALUES (?, ?, ?)")
                .bind(doctor.to_string())
                .bind(rules)
                .bind(to_millis(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Scheduled intervals of a doctor overlapping `[from, to)`, for the slot list.
    pub async fn doctor_busy(
        &self,
        doctor: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, DbError> {
        let mut conn = self.pool().acquire().await?;
        busy_intervals(&mut conn, BusyColumn::Doctor, doctor, from, to, None).await
    }
}
