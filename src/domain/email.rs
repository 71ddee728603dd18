use std::fmt;

/// An email address, trimmed and lower-cased so that lookups agree on every
/// database (MariaDB compares case-insensitively, SQLite does not).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("is required")]
    Empty,
    #[error("must be at most 254 characters")]
    TooLong,
    #[error("is not a valid email address")]
    Invalid,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.len() > 254 {
            return Err(EmailError::TooLong);
        }
        // Quoted local parts and IP-literal domains are legal but only ever
        // seen in attacks; a clinic's patients have plain addresses.
        let plain = !email.contains(['"', '[', ']', '(', ')', '\\', ' ', '<', '>'])
            && email.rsplit_once('@').is_some_and(|(_, d)| d.contains('.'));
        if !plain || !email_address::EmailAddress::is_valid(&email) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(Email::parse("  Ada.Lovelace@Example.ORG ").map(|e| e.0), Ok("ada.lovelace@example.org".to_owned()));
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in ["", "   ", "ada", "ada@", "@example.org", "a b@example.org", "ada@localhost", "\"x\"@example.org"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }
}
