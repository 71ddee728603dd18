use std::fmt;

use chrono_tz::Tz;

/// An IANA time zone name that the bundled tz database knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZone(Tz);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be an IANA time zone name such as Europe/Berlin")]
pub struct TimeZoneError;

impl TimeZone {
    pub fn parse(raw: &str) -> Result<Self, TimeZoneError> {
        raw.trim().parse::<Tz>().map(Self).map_err(|_| TimeZoneError)
    }

    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_iana_names_only() {
        assert_eq!(TimeZone::parse("Europe/Berlin").map(TimeZone::name), Ok("Europe/Berlin"));
        assert!(TimeZone::parse("Mars/Olympus_Mons").is_err());
        assert!(TimeZone::parse("").is_err());
    }
}
