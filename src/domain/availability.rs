//! A clinician's recurring availability and the appointment slot grid derived from it.
//!
//! The wire shape ([`AvailabilityInput`]) is parsed exactly once into [`Availability`];
//! every later computation relies on the invariants documented on the parsed types
//! instead of re-checking them.
//!
//! All instants are UTC. Wall-clock rules (windows, exceptions) are interpreted in the
//! clinician's IANA time zone, so a 09:00 window stays 09:00 local across DST changes.

use std::fmt;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, SecondsFormat, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize, Serializer};

const MINUTES_PER_DAY: u16 = 1440;
const MAX_WEEKLY_WINDOWS: usize = 50;
const MAX_EXCEPTIONS: usize = 400;

/// Longest span, in days, that a single slot query enumerates; longer ranges are
/// truncated so a hostile `to` cannot make one request walk years of calendar.
pub const MAX_RANGE_DAYS: i64 = 400;

/// Why a single wire value was rejected. [`FieldError::field`] names the offending
/// field relative to its parent object (`start`, `end`, `weekday`, `date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("must be a time written as HH:MM between 00:00 and 23:59")]
    Start,
    #[error("must be a time written as HH:MM between 00:01 and 24:00")]
    End,
    #[error("must be later than the start time")]
    EndNotAfterStart,
    #[error("is required when an end time is given")]
    MissingStart,
    #[error("is required when a start time is given")]
    MissingEnd,
    #[error("must be a weekday number from 1 (Monday) to 7 (Sunday)")]
    Weekday,
    #[error("must be a calendar date written as YYYY-MM-DD")]
    Date,
}

impl FieldError {
    /// Name of the rejected field within its parent object.
    pub fn field(self) -> &'static str {
        match self {
            Self::Start | Self::MissingStart => "start",
            Self::End | Self::EndNotAfterStart | Self::MissingEnd => "end",
            Self::Weekday => "weekday",
            Self::Date => "date",
        }
    }
}

/// A wall-clock window within one local day.
///
/// Invariant: whole minutes, `start < end`, `start <= 23:59`, `end <= 24:00`.
/// Stored as minutes since local midnight because `NaiveTime` cannot express the
/// end-of-day value `24:00` that windows running until midnight need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalWindow {
    start: u16,
    end: u16,
}

impl LocalWindow {
    /// Builds a window from minutes since local midnight (`end` may be 1440 = 24:00).
    pub fn from_minutes(start: u16, end: u16) -> Result<Self, FieldError> {
        if start >= MINUTES_PER_DAY {
            return Err(FieldError::Start);
        }
        if end == 0 || end > MINUTES_PER_DAY {
            return Err(FieldError::End);
        }
        if start >= end {
            return Err(FieldError::EndNotAfterStart);
        }
        Ok(Self { start, end })
    }

    /// Parses wire times `"HH:MM"`; `end` may be `"24:00"`. Reports the first problem.
    pub fn parse(start: &str, end: &str) -> Result<Self, FieldError> {
        Self::from_minutes(parse_start_minute(start)?, parse_end_minute(end)?)
    }

    /// Start as a wall-clock time.
    pub fn start_time(self) -> NaiveTime {
        minute_to_time(self.start).unwrap_or_default()
    }

    /// End as a wall-clock time, or `None` when the window runs until midnight (24:00).
    pub fn end_time(self) -> Option<NaiveTime> {
        minute_to_time(self.end)
    }
}

/// A window that recurs every week on `weekday`.
///
/// Invariant: `weekday` is ISO numbering, 1 = Monday ..= 7 = Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WeeklyWindow {
    weekday: u8,
    window: LocalWindow,
}

impl WeeklyWindow {
    /// Accepts the wire weekday number (1 = Monday ..= 7 = Sunday).
    pub fn new(weekday: i64, window: LocalWindow) -> Result<Self, FieldError> {
        Ok(Self { weekday: parse_weekday(weekday)?, window })
    }

    /// ISO weekday number, 1 = Monday ..= 7 = Sunday.
    pub fn weekday_number(self) -> u8 {
        self.weekday
    }

    /// The weekday as a chrono value.
    pub fn weekday(self) -> Weekday {
        // Invariant 1..=7 makes the fallback unreachable; it only avoids a panic path.
        Weekday::try_from(self.weekday.saturating_sub(1)).unwrap_or(Weekday::Mon)
    }

    /// The wall-clock window.
    pub fn window(self) -> LocalWindow {
        self.window
    }
}

/// A dated override of the weekly rules.
///
/// `window == None` means the day is off. When any exception exists for a date, the
/// weekly windows are ignored that date and only the exceptions' windows apply, so a
/// day-off entry next to windowed entries for the same date has no further effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateException {
    date: NaiveDate,
    window: Option<LocalWindow>,
}

impl DateException {
    /// An exception for `date`; `None` marks the whole day off.
    pub fn new(date: NaiveDate, window: Option<LocalWindow>) -> Self {
        Self { date, window }
    }

    /// Parses the wire shape: `date` is `"YYYY-MM-DD"`, times are both present or both absent.
    pub fn parse(date: &str, start: Option<&str>, end: Option<&str>) -> Result<Self, FieldError> {
        let date = parse_date(date).ok_or(FieldError::Date)?;
        let window = match (start, end) {
            (None, None) => None,
            (Some(_), None) => return Err(FieldError::MissingEnd),
            (None, Some(_)) => return Err(FieldError::MissingStart),
            (Some(s), Some(e)) => Some(LocalWindow::parse(s, e)?),
        };
        Ok(Self { date, window })
    }

    /// The local date this exception applies to.
    pub fn date(self) -> NaiveDate {
        self.date
    }

    /// The window offered that date, or `None` for a day off.
    pub fn window(self) -> Option<LocalWindow> {
        self.window
    }
}

/// Wire shape of one weekly window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindowInput {
    pub weekday: i64,
    pub start: String,
    pub end: String,
}

/// Wire shape of one date exception; omit both times for a day off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DateExceptionInput {
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// Raw, unvalidated availability as sent by clients and as stored. Convert with
/// `Availability::try_from` to get a usable value. Absent optional settings take
/// their defaults during that conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityInput {
    pub timezone: String,
    pub slot_minutes: i64,
    pub weekly: Vec<WeeklyWindowInput>,
    #[serde(default)]
    pub exceptions: Vec<DateExceptionInput>,
    pub buffer_minutes: Option<i64>,
    pub min_notice_minutes: Option<i64>,
    pub horizon_days: Option<i64>,
    pub patient_cancel_notice_minutes: Option<i64>,
}

/// Every problem found in an [`AvailabilityInput`], as `(field path, message)` pairs.
///
/// Paths look like `timezone`, `weekly[2].start`, `exceptions[0].date`; messages are
/// end-user sentences meant to follow the field name ("must be ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityErrors(pub Vec<(String, String)>);

impl fmt::Display for AvailabilityErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, message)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{path}: {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AvailabilityErrors {}

/// A clinician's validated availability.
///
/// Invariants: `slot_minutes` in 5..=240, `buffer_minutes` in 0..=240,
/// `min_notice_minutes` in 0..=43200, `horizon_days` in 1..=366,
/// `patient_cancel_notice_minutes` in 0..=10080; at most 50 weekly windows, sorted by
/// (weekday, start), never overlapping within a weekday; at most 400 exceptions,
/// sorted by (date, window), windows never overlapping within a date.
///
/// Serializes to, and deserializes (with full validation) from, the
/// [`AvailabilityInput`] wire shape, so it can be stored as JSON directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AvailabilityInput", into = "AvailabilityInput")]
pub struct Availability {
    timezone: Tz,
    slot_minutes: u32,
    weekly: Vec<WeeklyWindow>,
    exceptions: Vec<DateException>,
    buffer_minutes: u32,
    min_notice_minutes: u32,
    horizon_days: u32,
    patient_cancel_notice_minutes: u32,
}

/// A half-open span of time `[start, end)`. Invariant: `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// An [`Interval`] was requested whose end is not after its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the end of a time span must be later than its start")]
pub struct EmptyInterval;

impl Interval {
    /// Requires `start < end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, EmptyInterval> {
        if start < end { Ok(Self { start, end }) } else { Err(EmptyInterval) }
    }

    /// True when the two half-open spans share any instant; touching spans do not overlap.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Widens by `minutes` on both sides (saturating at chrono's range).
    fn expanded(self, minutes: u32) -> Self {
        Self { start: plus_minutes(self.start, -i64::from(minutes)), end: plus_minutes(self.end, i64::from(minutes)) }
    }
}

/// One bookable-grid appointment slot, `[start, end)` in UTC.
///
/// Invariant: `end - start` equals the availability's `slot_minutes` of real elapsed
/// time. Serializes as `{"start": "...Z", "end": "...Z"}` (RFC 3339, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Slot {
    #[serde(serialize_with = "rfc3339_z")]
    start: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339_z")]
    end: DateTime<Utc>,
}

/// The JSON shape of a [`Slot`], for the API document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SlotView {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Slot {
    pub fn interval(&self) -> Interval {
        Interval { start: self.start, end: self.end }
    }
}

impl From<Slot> for Interval {
    fn from(slot: Slot) -> Self {
        slot.interval()
    }
}

/// Why a requested appointment start cannot be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookingRuleError {
    #[error("This time is not one of the clinician's appointment slots.")]
    NotASlot,
    #[error("This time is in the past.")]
    InPast,
    #[error("Appointments must be booked at least {min_notice_minutes} minutes in advance.")]
    InsideNotice { min_notice_minutes: u32 },
    #[error("Appointments can be booked at most {horizon_days} days in advance.")]
    BeyondHorizon { horizon_days: u32 },
    #[error("This time is no longer available.")]
    Taken,
}

impl TryFrom<AvailabilityInput> for Availability {
    type Error = AvailabilityErrors;

    fn try_from(input: AvailabilityInput) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let timezone = input.timezone.parse::<Tz>().ok();
        if timezone.is_none() {
            errors.push(("timezone".to_owned(), "must be an IANA time zone name such as Europe/Berlin".to_owned()));
        }
        let slot_minutes = SLOT_MINUTES.parse(&mut errors, Some(input.slot_minutes));
        let weekly = parse_weekly(&mut errors, &input.weekly);
        let exceptions = parse_exceptions(&mut errors, &input.exceptions);
        let buffer_minutes = BUFFER_MINUTES.parse(&mut errors, input.buffer_minutes);
        let min_notice_minutes = MIN_NOTICE_MINUTES.parse(&mut errors, input.min_notice_minutes);
        let horizon_days = HORIZON_DAYS.parse(&mut errors, input.horizon_days);
        let patient_cancel_notice_minutes =
            CANCEL_NOTICE_MINUTES.parse(&mut errors, input.patient_cancel_notice_minutes);
        match timezone {
            Some(timezone) if errors.is_empty() => Ok(Self {
                timezone,
                slot_minutes,
                weekly,
                exceptions,
                buffer_minutes,
                min_notice_minutes,
                horizon_days,
                patient_cancel_notice_minutes,
            }),
            _ => Err(AvailabilityErrors(errors)),
        }
    }
}

impl From<Availability> for AvailabilityInput {
    fn from(availability: Availability) -> Self {
        availability.to_input()
    }
}

impl Availability {
    /// The wire shape of this value; parsing it back yields an equal `Availability`.
    pub fn to_input(&self) -> AvailabilityInput {
        AvailabilityInput {
            timezone: self.timezone.name().to_owned(),
            slot_minutes: i64::from(self.slot_minutes),
            weekly: self
                .weekly
                .iter()
                .map(|w| WeeklyWindowInput {
                    weekday: i64::from(w.weekday),
                    start: format_minute(w.window.start),
                    end: format_minute(w.window.end),
                })
                .collect(),
            exceptions: self
                .exceptions
                .iter()
                .map(|x| DateExceptionInput {
                    date: x.date.format("%Y-%m-%d").to_string(),
                    start: x.window.map(|w| format_minute(w.start)),
                    end: x.window.map(|w| format_minute(w.end)),
                })
                .collect(),
            buffer_minutes: Some(i64::from(self.buffer_minutes)),
            min_notice_minutes: Some(i64::from(self.min_notice_minutes)),
            horizon_days: Some(i64::from(self.horizon_days)),
            patient_cancel_notice_minutes: Some(i64::from(self.patient_cancel_notice_minutes)),
        }
    }

    /// Sorted by (weekday, start); non-overlapping within a weekday.
    pub fn weekly(&self) -> &[WeeklyWindow] {
        &self.weekly
    }

    /// Sorted by (date, window); day-off entries sort first within a date.
    pub fn exceptions(&self) -> &[DateException] {
        &self.exceptions
    }

    /// Every grid slot whose start lies in `[from, to)`, sorted by start, ignoring
    /// bookings, notice and horizon. Ranges longer than [`MAX_RANGE_DAYS`] are truncated.
    ///
    /// Per local day, each window yields local starts `start, start + slot, ...` while
    /// `local start + slot_minutes <= window end` (a trailing remainder is dropped).
    /// Local times that do not exist (spring-forward gap) are skipped; ambiguous ones
    /// (fall-back) are used once, at their first occurrence. Each slot lasts
    /// `slot_minutes` of real time. Where a DST gap would make a slot overlap the
    /// previous slot of the same local day, the later one is dropped so the grid never
    /// offers two slots that cannot both be booked.
    ///
    /// The grid step is always `slot_minutes`: `buffer_minutes` only blocks time around
    /// booked appointments (see [`Availability::free_slots`]), so the advertised grid is
    /// stable regardless of bookings.
    pub fn slots_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
        let cap = from.checked_add_signed(TimeDelta::days(MAX_RANGE_DAYS)).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let to = to.min(cap);
        if from >= to {
            return Vec::new();
        }
        // One day of margin on each side: a transition near midnight can give an instant
        // a local date that differs from its neighbours', so widen rather than reason.
        let first = from.with_timezone(&self.timezone).date_naive();
        let first = first.pred_opt().unwrap_or(first);
        let last = to.with_timezone(&self.timezone).date_naive();
        let last = last.succ_opt().unwrap_or(last);
        let mut slots = Vec::new();
        for date in first.iter_days().take_while(|d| *d <= last) {
            self.push_day_slots(date, &mut slots);
        }
        slots.retain(|s| s.start >= from && s.start < to);
        slots.sort_unstable();
        slots.dedup_by_key(|s| s.start);
        slots
    }

    /// Grid slots in `[from, to)` that a patient may book at `now`: starting at or after
    /// `now + min_notice`, before `now + horizon_days * 24h`, and not overlapping any
    /// `booked` interval widened by `buffer_minutes` on each side. Sorted, no duplicates.
    /// Agrees exactly with [`Availability::check_bookable`].
    pub fn free_slots(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
        booked: &[Interval],
    ) -> Vec<Slot> {
        let from = from.max(self.earliest_bookable(now));
        let to = to.min(self.horizon_end(now));
        let blocked = self.blocked(booked);
        let mut slots = self.slots_between(from, to);
        slots.retain(|slot| {
            // `blocked` is sorted and disjoint, so the first span ending after the slot
            // start is the only candidate that can overlap it.
            let i = blocked.partition_point(|b| b.end <= slot.start);
            !blocked.get(i).is_some_and(|b| b.overlaps(&slot.interval()))
        });
        slots
    }

    /// The slot starting exactly at `start` if a patient may book it at `now`.
    ///
    /// Checks, in order: in the past, not a grid slot, inside minimum notice, beyond the
    /// horizon, overlapping a `booked` interval widened by `buffer_minutes`.
    pub fn check_bookable(
        &self,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        booked: &[Interval],
    ) -> Result<Slot, BookingRuleError> {
        if start < now {
            return Err(BookingRuleError::InPast);
        }
        // A grid slot's start always has the local date it was generated for, so only
        // that day's grid needs building.
        let mut day = Vec::new();
        self.push_day_slots(start.with_timezone(&self.timezone).date_naive(), &mut day);
        let slot = day.into_iter().find(|s| s.start == start).ok_or(BookingRuleError::NotASlot)?;
        if start < self.earliest_bookable(now) {
            return Err(BookingRuleError::InsideNotice { min_notice_minutes: self.min_notice_minutes });
        }
        if start >= self.horizon_end(now) {
            return Err(BookingRuleError::BeyondHorizon { horizon_days: self.horizon_days });
        }
        let wanted = slot.interval();
        if booked.iter().any(|b| b.expanded(self.buffer_minutes).overlaps(&wanted)) {
            return Err(BookingRuleError::Taken);
        }
        Ok(slot)
    }

    /// Whether a patient may still cancel or reschedule: `now + cancel notice <= start`.
    pub fn patient_may_change(&self, appointment_start: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        plus_minutes(now, i64::from(self.patient_cancel_notice_minutes)) <= appointment_start
    }

    fn earliest_bookable(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        plus_minutes(now, i64::from(self.min_notice_minutes))
    }

    fn horizon_end(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        plus_minutes(now, i64::from(self.horizon_days) * i64::from(MINUTES_PER_DAY))
    }

    /// Booked intervals widened by the buffer, sorted and merged into disjoint spans.
    fn blocked(&self, booked: &[Interval]) -> Vec<Interval> {
        let mut spans: Vec<Interval> = booked.iter().map(|b| b.expanded(self.buffer_minutes)).collect();
        spans.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(spans.len());
        for span in spans {
            match merged.last_mut() {
                Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
                _ => merged.push(span),
            }
        }
        merged
    }

    /// The windows in force on a local date, sorted by start.
    fn windows_on(&self, date: NaiveDate) -> impl Iterator<Item = LocalWindow> + '_ {
        let lo = self.exceptions.partition_point(|x| x.date < date);
        let hi = self.exceptions.partition_point(|x| x.date <= date);
        let overrides = self.exceptions.get(lo..hi).unwrap_or_default();
        let weekly = if overrides.is_empty() {
            let day = date.weekday().number_from_monday();
            let lo = self.weekly.partition_point(|w| u32::from(w.weekday) < day);
            let hi = self.weekly.partition_point(|w| u32::from(w.weekday) <= day);
            self.weekly.get(lo..hi).unwrap_or_default()
        } else {
            &[]
        };
        overrides.iter().filter_map(|x| x.window).chain(weekly.iter().map(|w| w.window))
    }

    fn push_day_slots(&self, date: NaiveDate, out: &mut Vec<Slot>) {
        // slot_minutes <= 240 by invariant, so the fallback is never taken.
        let step = u16::try_from(self.slot_minutes).unwrap_or(MINUTES_PER_DAY);
        let length = TimeDelta::minutes(i64::from(self.slot_minutes));
        let mut previous_end: Option<DateTime<Utc>> = None;
        for window in self.windows_on(date) {
            let mut minute = window.start;
            while minute + step <= window.end {
                let slot = self.resolve_local(date, minute).and_then(|start| {
                    let end = start.checked_add_signed(length)?;
                    Some(Slot { start, end })
                });
                if let Some(slot) = slot
                    && previous_end.is_none_or(|end| slot.start >= end)
                {
                    previous_end = Some(slot.end);
                    out.push(slot);
                }
                minute += step;
            }
        }
    }

    /// The first instant at which the local wall clock shows `minute` on `date`, or
    /// `None` when that wall time is skipped by a DST gap.
    fn resolve_local(&self, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let local = date.and_time(minute_to_time(minute)?);
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => None,
        }
    }
}

/// By-value accessors; each type's invariants are documented on the type itself.
macro_rules! getters {
    ($ty:ty { $($(#[$doc:meta])* $name:ident: $out:ty),* $(,)? }) => {
        impl $ty { $($(#[$doc])* pub fn $name(&self) -> $out { self.$name })* }
    };
}

getters!(LocalWindow {
    /// Minutes since local midnight, `0..=1439`.
    start: u16,
    /// Minutes since local midnight, `1..=1440` (1440 means 24:00).
    end: u16,
});
getters!(Interval { start: DateTime<Utc>, end: DateTime<Utc> });
getters!(Slot { start: DateTime<Utc>, end: DateTime<Utc> });
getters!(Availability {
    /// The clinician's zone; all wall-clock rules are read in it.
    timezone: Tz,
    /// Length of every slot and step of the grid, 5..=240.
    slot_minutes: u32,
    /// Gap kept free before and after every booked appointment, 0..=240.
    buffer_minutes: u32,
    /// Minimum lead time between "now" and a bookable slot start, 0..=43200.
    min_notice_minutes: u32,
    /// Slots starting `horizon_days * 24h` after "now" or later are not bookable, 1..=366.
    horizon_days: u32,
    /// Minimum lead time for a patient to cancel or reschedule, 0..=10080.
    patient_cancel_notice_minutes: u32,
});

type Errors = Vec<(String, String)>;

/// An optional numeric setting: its wire name, inclusive bounds and default.
struct Setting(&'static str, u32, u32, u32, &'static str);

const SLOT_MINUTES: Setting = Setting("slot_minutes", 5, 240, 30, "minutes");
const BUFFER_MINUTES: Setting = Setting("buffer_minutes", 0, 240, 0, "minutes");
const MIN_NOTICE_MINUTES: Setting = Setting("min_notice_minutes", 0, 43_200, 120, "minutes");
const HORIZON_DAYS: Setting = Setting("horizon_days", 1, 366, 60, "days");
const CANCEL_NOTICE_MINUTES: Setting = Setting("patient_cancel_notice_minutes", 0, 10_080, 120, "minutes");

impl Setting {
    fn parse(&self, errors: &mut Errors, value: Option<i64>) -> u32 {
        let Self(field, min, max, default, unit) = *self;
        let Some(value) = value else { return default };
        match u32::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => v,
            _ => {
                let message = format!("must be a whole number of {unit} from {min} to {max}");
                errors.push((field.to_owned(), message));
                default
            }
        }
    }
}

fn push_field(errors: &mut Errors, prefix: &str, error: FieldError) {
    errors.push((format!("{prefix}.{}", error.field()), error.to_string()));
}

/// Parses both times so that a client sees every bad field at once.
fn parse_window_all(errors: &mut Errors, prefix: &str, start: &str, end: &str) -> Option<LocalWindow> {
    let start = parse_start_minute(start).map_err(|e| push_field(errors, prefix, e));
    let end = parse_end_minute(end).map_err(|e| push_field(errors, prefix, e));
    let (Ok(start), Ok(end)) = (start, end) else {
        return None;
    };
    LocalWindow::from_minutes(start, end).map_err(|e| push_field(errors, prefix, e)).ok()
}

fn parse_weekly(errors: &mut Errors, input: &[WeeklyWindowInput]) -> Vec<WeeklyWindow> {
    if input.len() > MAX_WEEKLY_WINDOWS {
        // Skipping item checks bounds the work (and the error list) for oversized input.
        errors.push(("weekly".to_owned(), format!("must contain at most {MAX_WEEKLY_WINDOWS} windows")));
        return Vec::new();
    }
    let mut parsed = Vec::with_capacity(input.len());
    for (i, w) in input.iter().enumerate() {
        let prefix = format!("weekly[{i}]");
        let weekday = parse_weekday(w.weekday).map_err(|e| push_field(errors, &prefix, e));
        let window = parse_window_all(errors, &prefix, &w.start, &w.end);
        if let (Ok(weekday), Some(window)) = (weekday, window) {
            parsed.push((i, WeeklyWindow { weekday, window }));
        }
    }
    parsed.sort_unstable_by_key(|&(i, w)| (w, i));
    let keyed: Vec<_> = parsed.iter().map(|&(i, w)| (i, w.weekday, w.window)).collect();
    report_overlaps(errors, "weekly", "weekday", &keyed);
    parsed.into_iter().map(|(_, w)| w).collect()
}

fn parse_exceptions(errors: &mut Errors, input: &[DateExceptionInput]) -> Vec<DateException> {
    if input.len() > MAX_EXCEPTIONS {
        errors.push(("exceptions".to_owned(), format!("must contain at most {MAX_EXCEPTIONS} exceptions")));
        return Vec::new();
    }
    let mut parsed = Vec::with_capacity(input.len());
    for (i, x) in input.iter().enumerate() {
        let prefix = format!("exceptions[{i}]");
        let date = parse_date(&x.date);
        if date.is_none() {
            push_field(errors, &prefix, FieldError::Date);
        }
        let window = match (x.start.as_deref(), x.end.as_deref()) {
            (None, None) => Some(None),
            (Some(start), Some(end)) => parse_window_all(errors, &prefix, start, end).map(Some),
            (start, end) => {
                let bad_format = match (start, end) {
                    (Some(start), _) => parse_start_minute(start).err(),
                    (_, end) => end.and_then(|end| parse_end_minute(end).err()),
                };
                let missing = if start.is_some() { FieldError::MissingEnd } else { FieldError::MissingStart };
                for error in bad_format.into_iter().chain([missing]) {
                    push_field(errors, &prefix, error);
                }
                None
            }
        };
        if let (Some(date), Some(window)) = (date, window) {
            parsed.push((i, DateException { date, window }));
        }
    }
    parsed.sort_unstable_by_key(|&(i, x)| (x, i));
    let keyed: Vec<_> = parsed.iter().filter_map(|&(i, x)| Some((i, x.date, x.window?))).collect();
    report_overlaps(errors, "exceptions", "date", &keyed);
    parsed.into_iter().map(|(_, x)| x).collect()
}

/// `items` are `(input index, group key, window)` sorted by (key, window). Each window
/// that overlaps an earlier-sorted one in its group is reported once, against the
/// window reaching furthest so far (which catches non-adjacent overlaps too). The
/// later input index carries the error, as users fix the entry they added last.
fn report_overlaps<K: PartialEq + Copy>(
    errors: &mut Errors,
    list: &str,
    scope: &str,
    items: &[(usize, K, LocalWindow)],
) {
    let mut reach: Option<(K, u16, usize)> = None;
    for &(i, key, window) in items {
        match reach {
            Some((k, end, j)) if k == key => {
                if window.start < end {
                    let (earlier, later) = (i.min(j), i.max(j));
                    errors
                        .push((format!("{list}[{later}]"), format!("overlaps {list}[{earlier}] on the same {scope}")));
                }
                if window.end > end {
                    reach = Some((key, window.end, i));
                }
            }
            _ => reach = Some((key, window.end, i)),
        }
    }
}

fn parse_weekday(value: i64) -> Result<u8, FieldError> {
    u8::try_from(value).ok().filter(|d| (1..=7).contains(d)).ok_or(FieldError::Weekday)
}

/// Strict `HH:MM`: exactly two digits each, so "9:00" or "09:00:00" are rejected
/// rather than silently reinterpreted.
fn parse_hhmm(text: &str) -> Option<u16> {
    let &[h1, h2, b':', m1, m2] = text.as_bytes() else {
        return None;
    };
    let digit = |c: u8| c.is_ascii_digit().then(|| u16::from(c - b'0'));
    let hours = digit(h1)? * 10 + digit(h2)?;
    let minutes = digit(m1)? * 10 + digit(m2)?;
    (minutes < 60).then_some(hours * 60 + minutes)
}

fn parse_start_minute(text: &str) -> Result<u16, FieldError> {
    parse_hhmm(text).filter(|m| *m < MINUTES_PER_DAY).ok_or(FieldError::Start)
}

fn parse_end_minute(text: &str) -> Result<u16, FieldError> {
    parse_hhmm(text).filter(|m| (1..=MINUTES_PER_DAY).contains(m)).ok_or(FieldError::End)
}

/// Strict `YYYY-MM-DD`; chrono's parser alone would also accept "2027-3-5" or "+2027-03-05".
fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    shape_ok.then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()).flatten()
}

fn minute_to_time(minute: u16) -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)
}

fn format_minute(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Adds minutes, saturating at chrono's range so absurd inputs mean "never" instead
/// of panicking.
fn plus_minutes(t: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    t.checked_add_signed(TimeDelta::minutes(minutes)).unwrap_or(if minutes < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

fn rfc3339_z<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is the clearest test failure
mod tests {
    use super::*;
    use chrono::{Offset, Timelike};
    use proptest::prelude::*;
    use serde_json::json;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn z(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    fn input(
        tz: &str,
        slot: i64,
        weekly: &[(i64, &str, &str)],
        exceptions: &[(&str, Option<(&str, &str)>)],
    ) -> AvailabilityInput {
        AvailabilityInput {
            timezone: tz.to_owned(),
            slot_minutes: slot,
            weekly: weekly
                .iter()
                .map(|&(weekday, start, end)| WeeklyWindowInput {
                    weekday,
                    start: start.to_owned(),
                    end: end.to_owned(),
                })
                .collect(),
            exceptions: exceptions
                .iter()
                .map(|&(date, window)| DateExceptionInput {
                    date: date.to_owned(),
                    start: window.map(|w| w.0.to_owned()),
                    end: window.map(|w| w.1.to_owned()),
                })
                .collect(),
            buffer_minutes: None,
            min_notice_minutes: None,
            horizon_days: None,
            patient_cancel_notice_minutes: None,
        }
    }

    fn avail(
        tz: &str,
        slot: i64,
        weekly: &[(i64, &str, &str)],
        exceptions: &[(&str, Option<(&str, &str)>)],
    ) -> Availability {
        Availability::try_from(input(tz, slot, weekly, exceptions)).unwrap()
    }

    /// Slot starts in `[from, to)` as `...Z` strings.
    fn starts(a: &Availability, from: &str, to: &str) -> Vec<String> {
        a.slots_between(utc(from), utc(to)).iter().map(|s| z(s.start())).collect()
    }

    #[test]
    fn berlin_weekly_window_keeps_local_time_across_spring_forward() {
        let a = avail("Europe/Berlin", 60, &[(1, "09:00", "10:00"), (5, "09:00", "10:00")], &[]);
        assert_eq!(
            starts(&a, "2027-03-26T00:00:00Z", "2027-03-30T00:00:00Z"),
            ["2027-03-26T08:00:00Z", "2027-03-29T07:00:00Z"]
        );
    }

    #[test]
    fn berlin_spring_forward_gap_is_skipped() {
        let a = avail("Europe/Berlin", 30, &[], &[("2027-03-28", Some(("01:30", "03:30")))]);
        let slots = a.slots_between(utc("2027-03-27T00:00:00Z"), utc("2027-03-29T00:00:00Z"));
        let got: Vec<_> = slots.iter().map(|s| (z(s.start()), z(s.end()))).collect();
        // 01:30 CET = 00:30Z; 02:00 and 02:30 do not exist; 03:00 CEST = 01:00Z.
        assert_eq!(
            got,
            [
                ("2027-03-28T00:30:00Z".to_owned(), "2027-03-28T01:00:00Z".to_owned()),
                ("2027-03-28T01:00:00Z".to_owned(), "2027-03-28T01:30:00Z".to_owned()),
            ]
        );
    }

    #[test]
    fn berlin_fall_back_uses_first_occurrence_once() {
        let a = avail(
            "Europe/Berlin",
            30,
            &[(1, "09:00", "10:00"), (5, "09:00", "10:00")],
            &[("2027-10-31", Some(("02:00", "03:00")))],
        );
        // 02:00 and 02:30 CEST (UTC+2) come first; the CET repeats are not offered.
        assert_eq!(
            starts(&a, "2027-10-30T00:00:00Z", "2027-11-01T00:00:00Z"),
            ["2027-10-31T00:00:00Z", "2027-10-31T00:30:00Z"]
        );
        assert_eq!(
            starts(&a, "2027-10-29T07:00:00Z", "2027-10-29T08:00:00Z"),
            ["2027-10-29T07:00:00Z", "2027-10-29T07:30:00Z"]
        );
        assert_eq!(
            starts(&a, "2027-11-01T00:00:00Z", "2027-11-02T00:00:00Z"),
            ["2027-11-01T08:00:00Z", "2027-11-01T08:30:00Z"]
        );
    }

    #[test]
    fn slot_straddling_a_gap_suppresses_the_overlapping_next_slot() {
        let a = avail("Europe/Berlin", 45, &[], &[("2027-03-28", Some(("01:30", "05:00")))]);
        // 01:30 CET lasts until 01:15Z; 03:00 CEST (01:00Z) would overlap it and is dropped.
        assert_eq!(
            starts(&a, "2027-03-27T00:00:00Z", "2027-03-29T00:00:00Z"),
            ["2027-03-28T00:30:00Z", "2027-03-28T01:45:00Z"]
        );
    }

    #[test]
    fn new_york_transitions() {
        let a = avail(
            "America/New_York",
            30,
            &[(1, "09:00", "09:30"), (5, "09:00", "09:30")],
            &[("2027-03-14", Some(("01:00", "04:00"))), ("2027-11-07", Some(("00:30", "02:30")))],
        );
        assert_eq!(
            starts(&a, "2027-03-12T00:00:00Z", "2027-03-16T00:00:00Z"),
            [
                "2027-03-12T14:00:00Z",
                "2027-03-14T06:00:00Z",
                "2027-03-14T06:30:00Z",
                "2027-03-14T07:00:00Z",
                "2027-03-14T07:30:00Z",
                "2027-03-15T13:00:00Z",
            ]
        );
        assert_eq!(
            starts(&a, "2027-11-05T00:00:00Z", "2027-11-09T00:00:00Z"),
            [
                "2027-11-05T13:00:00Z",
                "2027-11-07T04:30:00Z",
                "2027-11-07T05:00:00Z",
                "2027-11-07T05:30:00Z",
                "2027-11-07T07:00:00Z",
                "2027-11-08T14:00:00Z",
            ]
        );
    }

    #[test]
    fn lord_howe_half_hour_dst_shift() {
        let a = avail(
            "Australia/Lord_Howe",
            15,
            &[],
            &[("2027-10-03", Some(("01:30", "03:00"))), ("2027-04-04", Some(("01:00", "02:30")))],
        );
        // Spring: 02:00 jumps to 02:30 (+10:30 -> +11:00).
        assert_eq!(
            starts(&a, "2027-10-02T00:00:00Z", "2027-10-04T00:00:00Z"),
            ["2027-10-02T15:00:00Z", "2027-10-02T15:15:00Z", "2027-10-02T15:30:00Z", "2027-10-02T15:45:00Z",]
        );
        // Autumn: 02:00 falls back to 01:30 (+11:00 -> +10:30); 01:30 and 01:45 once.
        assert_eq!(
            starts(&a, "2027-04-03T00:00:00Z", "2027-04-05T00:00:00Z"),
            [
                "2027-04-03T14:00:00Z",
                "2027-04-03T14:15:00Z",
                "2027-04-03T14:30:00Z",
                "2027-04-03T14:45:00Z",
                "2027-04-03T15:30:00Z",
                "2027-04-03T15:45:00Z",
            ]
        );
    }

    #[test]
    fn kolkata_half_hour_offset() {
        let a = avail("Asia/Kolkata", 30, &[(3, "09:00", "10:00")], &[]);
        assert_eq!(
            starts(&a, "2027-06-01T00:00:00Z", "2027-06-03T00:00:00Z"),
            ["2027-06-02T03:30:00Z", "2027-06-02T04:00:00Z"]
        );
    }

    #[test]
    fn trailing_remainder_dropped_and_midnight_end() {
        let a = avail("Europe/Berlin", 50, &[(2, "09:00", "12:00")], &[]);
        assert_eq!(
            starts(&a, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"),
            ["2026-12-01T08:00:00Z", "2026-12-01T08:50:00Z", "2026-12-01T09:40:00Z"]
        );
        let a = avail("UTC", 60, &[(2, "22:00", "24:00")], &[]);
        assert_eq!(
            starts(&a, "2026-12-01T00:00:00Z", "2026-12-03T00:00:00Z"),
            ["2026-12-01T22:00:00Z", "2026-12-01T23:00:00Z"]
        );
    }

    #[test]
    fn exceptions_override_weekly() {
        let a = avail(
            "UTC",
            60,
            &[(1, "09:00", "11:00")],
            &[
                ("2027-03-08", None),
                ("2027-03-15", Some(("14:00", "15:00"))),
                ("2027-03-15", Some(("08:00", "09:00"))),
                ("2027-03-22", None),
                ("2027-03-22", Some(("12:00", "13:00"))),
            ],
        );
        assert_eq!(
            starts(&a, "2027-03-01T00:00:00Z", "2027-03-30T00:00:00Z"),
            [
                "2027-03-01T09:00:00Z",
                "2027-03-01T10:00:00Z",
                "2027-03-15T08:00:00Z",
                "2027-03-15T14:00:00Z",
                "2027-03-22T12:00:00Z",
                "2027-03-29T09:00:00Z",
                "2027-03-29T10:00:00Z",
            ]
        );
    }

    #[test]
    fn range_is_capped() {
        let a = avail("UTC", 60, &[(1, "09:00", "10:00")], &[]);
        let slots = a.slots_between(utc("2027-01-01T00:00:00Z"), utc("2099-01-01T00:00:00Z"));
        assert!(slots.len() <= 58, "{}", slots.len());
        assert!(a.slots_between(utc("2027-01-02T00:00:00Z"), utc("2027-01-01T00:00:00Z")).is_empty());
        let far = a.slots_between(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        assert!(far.len() <= 58);
        let _ = a.free_slots(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MAX_UTC, &[]);
    }

    fn booking_fixture() -> Availability {
        let mut i = input("Europe/Berlin", 60, &[(1, "09:00", "12:00")], &[]);
        i.buffer_minutes = Some(15);
        Availability::try_from(i).unwrap()
    }

    fn interval(start: &str, end: &str) -> Interval {
        Interval::new(utc(start), utc(end)).unwrap()
    }

    #[test]
    fn free_slots_apply_notice_buffer_and_horizon() {
        let a = booking_fixture();
        let now = utc("2027-03-29T06:00:00Z");
        let booked = [
            // Widened to [06:45, 08:00): merely touches the 08:00 slot.
            interval("2027-03-29T07:00:00Z", "2027-03-29T07:45:00Z"),
            // Widened to [09:50, 10:45): overlaps the 09:00 slot.
            interval("2027-03-29T10:05:00Z", "2027-03-29T10:30:00Z"),
        ];
        let free: Vec<_> = a
            .free_slots(utc("2027-03-29T00:00:00Z"), utc("2027-04-06T00:00:00Z"), now, &booked)
            .iter()
            .map(|s| z(s.start()))
            .collect();
        assert_eq!(
            free,
            ["2027-03-29T08:00:00Z", "2027-04-05T07:00:00Z", "2027-04-05T08:00:00Z", "2027-04-05T09:00:00Z",]
        );
        let check = |t: &str| a.check_bookable(utc(t), now, &booked);
        assert_eq!(check("2027-03-29T05:00:00Z"), Err(BookingRuleError::InPast));
        assert_eq!(check("2027-03-29T05:17:00Z"), Err(BookingRuleError::InPast));
        assert_eq!(check("2027-03-29T08:30:00Z"), Err(BookingRuleError::NotASlot));
        assert_eq!(check("2027-03-29T07:00:00Z"), Err(BookingRuleError::InsideNotice { min_notice_minutes: 120 }));
        assert_eq!(check("2027-03-29T09:00:00Z"), Err(BookingRuleError::Taken));
        assert_eq!(check("2027-05-31T07:00:00Z"), Err(BookingRuleError::BeyondHorizon { horizon_days: 60 }));
        assert!(check("2027-05-24T07:00:00Z").is_ok());
        let slot = check("2027-03-29T08:00:00Z").unwrap();
        assert_eq!(z(slot.end()), "2027-03-29T09:00:00Z");
    }

    #[test]
    fn notice_and_horizon_boundaries() {
        let mut i = input("UTC", 60, &[(1, "07:00", "10:00")], &[]);
        i.min_notice_minutes = Some(60);
        i.horizon_days = Some(7);
        let a = Availability::try_from(i).unwrap();
        let now = utc("2027-03-29T07:00:00Z");
        assert!(a.check_bookable(utc("2027-03-29T08:00:00Z"), now, &[]).is_ok());
        assert!(a.check_bookable(utc("2027-03-29T07:00:00Z"), now, &[]).is_err());
        assert_eq!(
            a.check_bookable(utc("2027-04-05T07:00:00Z"), now, &[]),
            Err(BookingRuleError::BeyondHorizon { horizon_days: 7 })
        );
        let free = a.free_slots(now, utc("2027-04-06T00:00:00Z"), now, &[]);
        assert_eq!(
            free.iter().map(|s| z(s.start())).collect::<Vec<_>>(),
            ["2027-03-29T08:00:00Z", "2027-03-29T09:00:00Z"]
        );
    }

    #[test]
    fn patient_change_window() {
        let a = booking_fixture();
        let start = utc("2027-03-29T10:00:00Z");
        assert!(a.patient_may_change(start, utc("2027-03-29T08:00:00Z")));
        assert!(!a.patient_may_change(start, utc("2027-03-29T08:01:00Z")));
    }

    #[test]
    fn interval_rules() {
        assert_eq!(Interval::new(utc("2027-01-01T10:00:00Z"), utc("2027-01-01T10:00:00Z")), Err(EmptyInterval));
        let a = interval("2027-01-01T10:00:00Z", "2027-01-01T11:00:00Z");
        assert!(!a.overlaps(&interval("2027-01-01T11:00:00Z", "2027-01-01T12:00:00Z")));
        assert!(a.overlaps(&interval("2027-01-01T10:59:00Z", "2027-01-01T12:00:00Z")));
    }

    #[test]
    fn slot_serializes_as_utc_z() {
        let a = avail("Europe/Berlin", 30, &[(2, "10:00", "10:30")], &[]);
        let slots = a.slots_between(utc("2026-12-01T00:00:00Z"), utc("2026-12-02T00:00:00Z"));
        assert_eq!(
            serde_json::to_value(slots).unwrap(),
            json!([{"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T09:30:00Z"}])
        );
    }

    #[test]
    fn serde_defaults_and_wire_shape() {
        let a: Availability = serde_json::from_value(json!({
            "timezone": "Europe/Berlin",
            "slot_minutes": 30,
            "weekly": [{"weekday": 2, "start": "22:00", "end": "24:00"}, {"weekday": 1, "start": "09:00", "end": "12:00"}],
            "exceptions": [{"date": "2027-12-24"}, {"date": "2027-12-23", "start": "08:00", "end": "09:00"}]
        }))
        .unwrap();
        assert_eq!(
            (a.buffer_minutes(), a.min_notice_minutes(), a.horizon_days(), a.patient_cancel_notice_minutes()),
            (0, 120, 60, 120)
        );
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({
                "timezone": "Europe/Berlin",
                "slot_minutes": 30,
                "weekly": [{"weekday": 1, "start": "09:00", "end": "12:00"}, {"weekday": 2, "start": "22:00", "end": "24:00"}],
                "exceptions": [{"date": "2027-12-23", "start": "08:00", "end": "09:00"}, {"date": "2027-12-24"}],
                "buffer_minutes": 0,
                "min_notice_minutes": 120,
                "horizon_days": 60,
                "patient_cancel_notice_minutes": 120
            })
        );
        let unknown = serde_json::from_value::<AvailabilityInput>(json!({
            "timezone": "UTC", "slot_minutes": 30, "weekly": [], "colour": "red"
        }));
        assert!(unknown.is_err());
        let invalid = serde_json::from_value::<Availability>(json!({
            "timezone": "Mars/Base", "slot_minutes": 30, "weekly": []
        }));
        assert!(invalid.unwrap_err().to_string().contains("timezone"));
    }

    fn error_paths(value: serde_json::Value) -> Vec<String> {
        let input: AvailabilityInput = serde_json::from_value(value).unwrap();
        let errors = Availability::try_from(input).unwrap_err();
        assert!(errors.0.iter().all(|(_, m)| !m.is_empty()));
        errors.0.into_iter().map(|(path, _)| path).collect()
    }

    fn with_weekly(weekly: serde_json::Value) -> serde_json::Value {
        json!({"timezone": "Europe/Berlin", "slot_minutes": 30, "weekly": weekly})
    }

    fn with_exceptions(exceptions: serde_json::Value) -> serde_json::Value {
        json!({"timezone": "Europe/Berlin", "slot_minutes": 30, "weekly": [], "exceptions": exceptions})
    }

    #[test]
    fn validation_names_fields() {
        for tz in ["", "Mars/Base", "europe/berlin"] {
            assert_eq!(error_paths(json!({"timezone": tz, "slot_minutes": 30, "weekly": []})), ["timezone"]);
        }
        let err = Availability::try_from(input("Mars/Base", 30, &[], &[])).unwrap_err();
        assert_eq!(err.0[0].1, "must be an IANA time zone name such as Europe/Berlin");
        for slot in [4, 241, -30] {
            assert_eq!(error_paths(json!({"timezone": "UTC", "slot_minutes": slot, "weekly": []})), ["slot_minutes"]);
        }
        for (field, bad) in [
            ("buffer_minutes", 241),
            ("buffer_minutes", -1),
            ("min_notice_minutes", 43_201),
            ("horizon_days", 0),
            ("horizon_days", 367),
            ("patient_cancel_notice_minutes", 10_081),
        ] {
            let mut v = with_weekly(json!([]));
            v[field] = json!(bad);
            assert_eq!(error_paths(v), [field]);
        }
        let ok = |v| Availability::try_from(serde_json::from_value::<AvailabilityInput>(v).unwrap()).is_ok();
        assert!(ok(with_weekly(json!([{"weekday": 7, "start": "00:00", "end": "24:00"}]))));
        assert!(ok(with_weekly(json!([
            {"weekday": 1, "start": "09:00", "end": "12:00"},
            {"weekday": 1, "start": "12:00", "end": "13:00"}
        ]))));

        let weekly = with_weekly(json!([
            {"weekday": 0, "start": "09:00", "end": "10:00"},
            {"weekday": 8, "start": "09:00", "end": "10:00"},
            {"weekday": 1, "start": "9:00", "end": "10:00"},
            {"weekday": 1, "start": "10:00", "end": "24:01"},
            {"weekday": 1, "start": "24:00", "end": "24:00"},
            {"weekday": 2, "start": "10:00", "end": "10:00"},
            {"weekday": 2, "start": "10:60", "end": "ab:cd"},
            {"weekday": 3, "start": "09:00:00", "end": "10:00"}
        ]));
        assert_eq!(
            error_paths(weekly),
            [
                "weekly[0].weekday",
                "weekly[1].weekday",
                "weekly[2].start",
                "weekly[3].end",
                "weekly[4].start",
                "weekly[5].end",
                "weekly[6].start",
                "weekly[6].end",
                "weekly[7].start"
            ]
        );
        let overlap = with_weekly(json!([
            {"weekday": 1, "start": "09:00", "end": "17:00"},
            {"weekday": 1, "start": "10:00", "end": "11:00"},
            {"weekday": 2, "start": "10:00", "end": "11:00"},
            {"weekday": 1, "start": "16:30", "end": "18:00"}
        ]));
        let input: AvailabilityInput = serde_json::from_value(overlap).unwrap();
        assert_eq!(
            Availability::try_from(input).unwrap_err().0,
            [
                ("weekly[1]".to_owned(), "overlaps weekly[0] on the same weekday".to_owned()),
                ("weekly[3]".to_owned(), "overlaps weekly[0] on the same weekday".to_owned()),
            ]
        );
        let too_many: Vec<_> = (0..51).map(|_| json!({"weekday": 1, "start": "09:00", "end": "10:00"})).collect();
        assert_eq!(error_paths(with_weekly(json!(too_many))), ["weekly"]);
    }

    #[test]
    fn validation_names_exception_fields() {
        let exceptions = with_exceptions(json!([
            {"date": "2027-02-30"},
            {"date": "2027-2-3"},
            {"date": "2027-03-01", "start": "09:00"},
            {"date": "2027-03-02", "end": "09:00"},
            {"date": "2027-03-03", "start": "10:00", "end": "09:00"},
            {"date": "2027-03-04", "start": "09:00", "end": "12:00"},
            {"date": "2027-03-04", "start": "11:00", "end": "13:00"},
            {"date": "2027-03-05", "start": "09:00", "end": "12:00"},
            {"date": "2027-03-05"},
            {"date": "2027-03-06", "start": "09:00", "end": "12:00"},
            {"date": "2027-03-06", "start": "12:00", "end": "13:00"},
            {"date": "2027-03-07", "start": "9:00"},
            {"date": "2027-03-07", "end": "25:00"}
        ]));
        assert_eq!(
            error_paths(exceptions),
            [
                "exceptions[0].date",
                "exceptions[1].date",
                "exceptions[2].end",
                "exceptions[3].start",
                "exceptions[4].end",
                "exceptions[11].start",
                "exceptions[11].end",
                "exceptions[12].end",
                "exceptions[12].start",
                "exceptions[6]"
            ]
        );
        let too_many: Vec<_> = (0..401).map(|_| json!({"date": "2027-03-01"})).collect();
        assert_eq!(error_paths(with_exceptions(json!(too_many))), ["exceptions"]);
    }

    #[test]
    fn all_problems_are_collected() {
        let paths = error_paths(json!({
            "timezone": "", "slot_minutes": 0, "horizon_days": 0,
            "weekly": [{"weekday": 1, "start": "x", "end": "y"}],
            "exceptions": [{"date": "nope"}]
        }));
        assert_eq!(
            paths,
            ["timezone", "slot_minutes", "weekly[0].start", "weekly[0].end", "exceptions[0].date", "horizon_days"]
        );
    }

    #[test]
    fn typed_constructors_name_fields() {
        assert_eq!(LocalWindow::parse("10:00", "09:00").unwrap_err().field(), "end");
        assert_eq!(LocalWindow::parse("x", "09:00").unwrap_err().field(), "start");
        let w = LocalWindow::parse("09:30", "24:00").unwrap();
        assert_eq!((w.start(), w.end(), w.end_time()), (570, 1440, None));
        assert_eq!(w.start_time(), NaiveTime::from_hms_opt(9, 30, 0).unwrap());
        assert_eq!(WeeklyWindow::new(0, w).unwrap_err().field(), "weekday");
        assert_eq!(WeeklyWindow::new(7, w).unwrap().weekday(), Weekday::Sun);
        assert_eq!(DateException::parse("2027-01-01", Some("09:00"), None).unwrap_err().field(), "end");
        assert_eq!(DateException::parse("01/01/2027", None, None).unwrap_err().field(), "date");
    }

    // ---- property tests ----

    const ZONES: &[&str] = &[
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Australia/Adelaide",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "America/St_Johns",
        "America/Santiago",
        "Pacific/Chatham",
        "UTC",
    ];

    /// Instants just before DST transitions in the zones above, plus a quiet one.
    const BASES: &[&str] = &[
        "2027-03-25T00:00:00Z",
        "2027-10-28T00:00:00Z",
        "2027-03-11T00:00:00Z",
        "2027-11-04T00:00:00Z",
        "2027-09-22T00:00:00Z",
        "2027-03-31T00:00:00Z",
        "2027-04-01T00:00:00Z",
        "2027-06-15T00:00:00Z",
    ];

    #[derive(Debug, Clone)]
    struct Case {
        input: AvailabilityInput,
        now: DateTime<Utc>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        booked: Vec<Interval>,
        /// Grid slots to align `now` and extra bookings with, so edges are hit exactly.
        now_pick: (prop::sample::Index, u8),
        picks: Vec<(prop::sample::Index, u8)>,
    }

    /// Up to `max` non-overlapping windows on 5-minute boundaries.
    fn day_windows(max: usize) -> impl Strategy<Value = Vec<(u16, u16)>> {
        prop::collection::vec(0u16..=288, 0..=2 * max).prop_map(|mut cuts| {
            cuts.sort_unstable();
            cuts.dedup();
            cuts.chunks_exact(2).map(|c| (c[0] * 5, c[1] * 5)).collect()
        })
    }

    fn case(max_windows: usize, max_exceptions: usize) -> impl Strategy<Value = Case> {
        (
            prop::sample::select(ZONES),
            prop::sample::select(BASES),
            prop_oneof![5i64..=240, Just(15), Just(30), Just(45), Just(50), Just(60)],
            prop::collection::vec(day_windows(max_windows), 7),
            prop::collection::btree_map(0i64..20, day_windows(max_windows), 0..=max_exceptions),
            (0i64..=60, 0i64..=3000, 1i64..=30, 0i64..=10_080),
            (0i64..4320, 0i64..2880, 0i64..(14 * 1440)),
            prop::collection::vec((-2000i64..20_000, 5i64..=240), 0..8),
            (any::<prop::sample::Index>(), any::<u8>()),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        )
            .prop_map(|(tz, base, slot, weekly, exceptions, settings, times, booked, now_pick, picks)| {
                let base = utc(base);
                let mut input = input(tz, slot, &[], &[]);
                for (day, windows) in weekly.iter().enumerate() {
                    for &(start, end) in windows {
                        input.weekly.push(WeeklyWindowInput {
                            weekday: day as i64 + 1,
                            start: format_minute(start),
                            end: format_minute(end),
                        });
                    }
                }
                for (offset, windows) in exceptions {
                    let date = (base.date_naive() + TimeDelta::days(offset)).to_string();
                    let entry = |w: Option<(u16, u16)>| DateExceptionInput {
                        date: date.clone(),
                        start: w.map(|w| format_minute(w.0)),
                        end: w.map(|w| format_minute(w.1)),
                    };
                    if windows.is_empty() {
                        input.exceptions.push(entry(None));
                    }
                    input.exceptions.extend(windows.into_iter().map(|w| entry(Some(w))));
                }
                input.buffer_minutes = Some(settings.0);
                input.min_notice_minutes = Some(settings.1);
                input.horizon_days = Some(settings.2);
                input.patient_cancel_notice_minutes = Some(settings.3);
                let now = base + TimeDelta::minutes(times.0);
                let from = now - TimeDelta::minutes(times.1);
                let booked = booked
                    .into_iter()
                    .map(|(offset, len)| {
                        let start = now + TimeDelta::minutes(offset);
                        Interval::new(start, start + TimeDelta::minutes(len)).unwrap()
                    })
                    .collect();
                Case { input, now, from, to: from + TimeDelta::minutes(times.2), booked, now_pick, picks }
            })
    }

    fn minutes_of(text: &str) -> u16 {
        text[..2].parse::<u16>().unwrap() * 60 + text[3..].parse::<u16>().unwrap()
    }

    /// Windows for a local date, computed straight from the wire input.
    fn oracle_windows(input: &AvailabilityInput, date: NaiveDate) -> Vec<(u16, u16)> {
        let day = date.to_string();
        let overrides: Vec<_> = input.exceptions.iter().filter(|x| x.date == day).collect();
        if overrides.is_empty() {
            let weekday = i64::from(date.weekday().number_from_monday());
            input
                .weekly
                .iter()
                .filter(|w| w.weekday == weekday)
                .map(|w| (minutes_of(&w.start), minutes_of(&w.end)))
                .collect()
        } else {
            overrides
                .iter()
                .filter_map(|x| Some((minutes_of(x.start.as_ref()?), minutes_of(x.end.as_ref()?))))
                .collect()
        }
    }

    /// Moves `now` and adds bookings so that the notice, horizon and buffer edges fall
    /// exactly on grid slots, where off-by-one mistakes would hide from random data.
    fn sharpen(a: &Availability, c: &Case) -> (DateTime<Utc>, Vec<Interval>) {
        let grid = a.slots_between(c.from, c.to);
        if grid.is_empty() {
            return (c.now, c.booked.clone());
        }
        let pick = |i: &prop::sample::Index| grid[i.index(grid.len())];
        let buffer = TimeDelta::minutes(i64::from(a.buffer_minutes()));
        let s = pick(&c.now_pick.0).start();
        let notice = TimeDelta::minutes(i64::from(a.min_notice_minutes()));
        let horizon = TimeDelta::days(i64::from(a.horizon_days()));
        let minute = TimeDelta::minutes(1);
        let now = match c.now_pick.1 % 7 {
            0 => c.now,
            1 => s - notice,
            2 => s - notice + minute,
            3 => s - horizon,
            4 => s - horizon + minute,
            5 => s,
            _ => s + minute,
        };
        let mut booked = c.booked.clone();
        let len = TimeDelta::minutes(25);
        for (i, kind) in &c.picks {
            let s = pick(i);
            let (start, end) = match kind % 3 {
                0 => (s.start(), s.end()),
                1 => (s.start() - buffer - len, s.start() - buffer),
                _ => (s.end() + buffer, s.end() + buffer + len),
            };
            booked.push(Interval::new(start, end).unwrap());
        }
        (now, booked)
    }

    fn blocks(a: &Availability, booked: &[Interval], slot: &Slot) -> bool {
        let buffer = TimeDelta::minutes(i64::from(a.buffer_minutes()));
        booked.iter().any(|b| slot.start() < b.end() + buffer && b.start() - buffer < slot.end())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn free_slots_respect_rules(c in case(2, 5)) {
            let a = Availability::try_from(c.input.clone()).unwrap();
            let (now, booked) = sharpen(&a, &c);
            let grid = a.slots_between(c.from, c.to);
            let free = a.free_slots(c.from, c.to, now, &booked);
            let earliest = now + TimeDelta::minutes(i64::from(a.min_notice_minutes()));
            let horizon = now + TimeDelta::days(i64::from(a.horizon_days()));
            prop_assert!(free.windows(2).all(|p| p[0].start() < p[1].start()));
            for slot in &free {
                prop_assert!(grid.binary_search(slot).is_ok());
                prop_assert!(slot.start() >= earliest && slot.start() < horizon);
                prop_assert!(!blocks(&a, &booked, slot));
            }
        }

        #[test]
        fn free_slots_agree_with_check_bookable(c in case(2, 5)) {
            let a = Availability::try_from(c.input.clone()).unwrap();
            let (now, booked) = sharpen(&a, &c);
            let free = a.free_slots(c.from, c.to, now, &booked);
            for slot in &free {
                prop_assert_eq!(a.check_bookable(slot.start(), now, &booked), Ok(*slot));
            }
            for slot in a.slots_between(c.from, c.to) {
                if free.binary_search(&slot).is_err() {
                    prop_assert!(a.check_bookable(slot.start(), now, &booked).is_err());
                }
            }
            // Arbitrary instants: bookable exactly when they start a free slot.
            let mut t = c.from;
            while t < c.to {
                let verdict = a.check_bookable(t, now, &booked);
                prop_assert_eq!(verdict.is_ok(), free.iter().any(|s| s.start() == t));
                if t < now {
                    prop_assert_eq!(verdict, Err(BookingRuleError::InPast));
                }
                t += TimeDelta::minutes(37);
            }
        }

        #[test]
        fn single_window_grid_is_sorted_and_disjoint(c in case(1, 0)) {
            let a = Availability::try_from(c.input.clone()).unwrap();
            let grid = a.slots_between(c.from, c.to);
            let length = TimeDelta::minutes(i64::from(a.slot_minutes()));
            prop_assert!(grid.iter().all(|s| s.end() - s.start() == length));
            prop_assert!(grid.windows(2).all(|p| p[0].end() <= p[1].start()));
        }

        #[test]
        fn slots_lie_inside_local_windows(c in case(2, 5)) {
            let a = Availability::try_from(c.input.clone()).unwrap();
            let step = u16::try_from(a.slot_minutes()).unwrap();
            for slot in a.slots_between(c.from, c.to) {
                let local = slot.start().with_timezone(&a.timezone()).naive_local();
                let local_end = slot.end().with_timezone(&a.timezone()).naive_local();
                let minute = u16::try_from(local.num_seconds_from_midnight() / 60).unwrap();
                let windows = oracle_windows(&c.input, local.date());
                let inside = windows.iter().any(|&(start, end)| {
                    start <= minute && (minute - start) % step == 0 && minute + step <= end
                });
                prop_assert!(inside, "{:?} local {} not in {:?}", slot, local, windows);
                let jump = slot.start().with_timezone(&a.timezone()).offset().fix()
                    != slot.end().with_timezone(&a.timezone()).offset().fix();
                if !jump {
                    prop_assert_eq!(local_end - local, TimeDelta::minutes(i64::from(step)));
                }
            }
        }

        #[test]
        fn utc_grid_is_complete(c in case(2, 5)) {
            let mut input = c.input.clone();
            input.timezone = "UTC".to_owned();
            let a = Availability::try_from(input.clone()).unwrap();
            let step = u16::try_from(a.slot_minutes()).unwrap();
            let mut expected = Vec::new();
            for date in (c.from.date_naive()).iter_days().take_while(|d| *d <= c.to.date_naive()) {
                let mut windows = oracle_windows(&input, date);
                windows.sort_unstable();
                for (start, end) in windows {
                    let mut m = start;
                    while m + step <= end {
                        let t = date.and_time(minute_to_time(m).unwrap()).and_utc();
                        if t >= c.from && t < c.to {
                            expected.push(t);
                        }
                        m += step;
                    }
                }
            }
            let grid: Vec<_> = a.slots_between(c.from, c.to).iter().map(|s| s.start()).collect();
            prop_assert_eq!(grid, expected);
        }

        #[test]
        fn serde_round_trip(c in case(2, 5)) {
            let a = Availability::try_from(c.input.clone()).unwrap();
            let text = serde_json::to_string(&a).unwrap();
            let back: Availability = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, &a);
            prop_assert_eq!(Availability::try_from(a.to_input()).unwrap(), a);
        }
    }
}
