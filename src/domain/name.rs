use std::fmt;

/// A person's display name: 1–100 characters, no control characters (they
/// would break mail headers and terminal logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("is required")]
    Empty,
    #[error("must be at most 100 characters")]
    TooLong,
    #[error("must not contain control characters such as line breaks")]
    ControlCharacter,
}

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.chars().count() > 100 {
            return Err(NameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_from_any_script() {
        assert!(PersonName::parse("Dr. Zoë Ñúñez-O'Brien").is_ok());
        assert!(PersonName::parse("李小龍").is_ok());
        assert_eq!(PersonName::parse(&"é".repeat(100)).map(|n| n.0.chars().count()), Ok(100));
    }

    #[test]
    fn rejects_empty_long_and_control_characters() {
        assert_eq!(PersonName::parse("  "), Err(NameError::Empty));
        assert_eq!(PersonName::parse(&"a".repeat(101)), Err(NameError::TooLong));
        assert_eq!(PersonName::parse("Eve\r\nBcc: x@y.z"), Err(NameError::ControlCharacter));
    }
}
