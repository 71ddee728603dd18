//! Query-string parameters parsed into typed values, collecting every
//! problem under the parameter's name (422 with field errors).

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::domain::FieldErrors;
use crate::error::ApiError;

pub struct QueryParams<'a> {
    raw: &'a HashMap<String, String>,
    errors: FieldErrors,
}

impl<'a> QueryParams<'a> {
    /// Any parameter not in `allowed` is an error (a typo would otherwise
    /// silently widen the answer).
    pub fn new(raw: &'a HashMap<String, String>, allowed: &[&str]) -> Self {
        let mut errors = FieldErrors::new();
        for key in raw.keys().filter(|k| !allowed.contains(&k.as_str())) {
            errors.add(key.clone(), "is not an accepted parameter");
        }
        Self { raw, errors }
    }

    /// `key` parsed by `parse`; `None` when absent or invalid (recorded).
    pub fn parsed<T, E: Display>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Option<T> {
        let value = self.raw.get(key)?;
        self.errors.check(key, parse(value))
    }

    /// A whole number in `range`, `default` when absent.
    pub fn number<T>(&mut self, key: &str, range: RangeInclusive<T>, default: T) -> T
    where
        T: std::str::FromStr + PartialOrd + Display + Copy,
    {
        let message = format!("must be a whole number from {} to {}", range.start(), range.end());
        self.parsed(key, |v| v.parse::<T>().ok().filter(|n| range.contains(n)).ok_or(message)).unwrap_or(default)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        self.errors.into_result().map_err(ApiError::Validation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_unknown_invalid_and_out_of_range_parameters() {
        let raw: HashMap<String, String> = [("limit", "500"), ("colour", "red"), ("after", "x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut q = QueryParams::new(&raw, &["limit", "after", "status"]);
        assert_eq!(q.number("limit", 1..=100u32, 50), 50);
        assert_eq!(q.parsed("after", |v| v.parse::<i64>()), None);
        assert_eq!(q.parsed("status", |v| Ok::<_, String>(v.to_owned())), None);
        let Err(ApiError::Validation(errors)) = q.finish() else { panic!("expected field errors") };
        assert!(errors.get("limit").is_some() && errors.get("colour").is_some() && errors.get("after").is_some());
    }
}
