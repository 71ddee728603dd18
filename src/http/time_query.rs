//! `from`/`to` query values: a date (a whole UTC day, inclusive) or an
//! RFC 3339 instant.

use chrono::{DateTime, NaiveDate, Utc};

/// Which end of a range a value bounds: a date as `to` means the end of that day.
#[derive(Clone, Copy)]
pub enum Bound {
    From,
    To,
}

pub fn parse_bound(raw: &str, bound: Bound) -> Result<DateTime<Utc>, &'static str> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
        return Ok(instant.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "must be a date (2026-12-01) or an RFC 3339 time (2026-12-01T09:00:00Z)")?;
    let day = match bound {
        Bound::From => date,
        Bound::To => date.succ_opt().ok_or("is out of range")?,
    };
    Ok(day.and_hms_opt(0, 0, 0).ok_or("is out of range")?.and_utc())
}

pub fn parse_instant(raw: &str) -> Result<DateTime<Utc>, &'static str> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 time such as 2026-12-01T09:00:00Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_cover_whole_utc_days() {
        let from = parse_bound("2026-12-01", Bound::From).ok();
        let to = parse_bound("2026-12-01", Bound::To).ok();
        assert_eq!(from.map(|t| t.to_rfc3339()), Some("2026-12-01T00:00:00+00:00".into()));
        assert_eq!(to.map(|t| t.to_rfc3339()), Some("2026-12-02T00:00:00+00:00".into()));
        let instant = parse_bound("2026-12-01T10:00:00+01:00", Bound::To).ok();
        assert_eq!(instant.map(|t| t.to_rfc3339()), Some("2026-12-01T09:00:00+00:00".into()));
        assert!(parse_bound("yesterday", Bound::From).is_err());
    }
}
