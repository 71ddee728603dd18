use std::fmt;

/// A new password that bcrypt can hash faithfully and that is not easy to
/// guess. Never printed: `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("must be at least 8 characters")]
    TooShort,
    #[error("must be at most 72 bytes: longer passwords would be silently cut at 72 bytes by the hashing scheme")]
    TooLong,
    #[error("is too easy to guess{0}")]
    Weak(String),
}

impl Password {
    /// `user_inputs` are the user's own email and name: a password built
    /// from them is weak however long it is.
    pub fn parse(raw: &str, user_inputs: &[&str]) -> Result<Self, PasswordError> {
        if raw.chars().count() < 8 {
            return Err(PasswordError::TooShort);
        }
        if raw.len() > 72 {
            return Err(PasswordError::TooLong);
        }
        let estimate = zxcvbn::zxcvbn(raw, user_inputs);
        if (estimate.score() as u8) < 3 {
            let hint = estimate
                .feedback()
                .and_then(|f| f.warning().map(|w| w.to_string()))
                .filter(|w| !w.is_empty())
                .map(|w| format!(": {w}"))
                .unwrap_or_else(|| ": add more words or characters".to_owned());
            return Err(PasswordError::Weak(hint));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_checked_in_bytes_for_the_upper_bound() {
        assert_eq!(Password::parse("short", &[]).err(), Some(PasswordError::TooShort));
        let seventy_three = "correct horse battery staple ".repeat(3);
        assert!(seventy_three.len() > 72);
        assert_eq!(Password::parse(&seventy_three, &[]).err(), Some(PasswordError::TooLong));
        // 25 three-byte characters are 75 bytes though only 25 characters.
        assert_eq!(Password::parse(&"€".repeat(25), &[]).err(), Some(PasswordError::TooLong));
    }

    #[test]
    fn common_and_personal_passwords_are_weak() {
        assert!(matches!(Password::parse("password123", &[]), Err(PasswordError::Weak(_))));
        assert!(matches!(
            Password::parse("ada.lovelace@example.org", &["ada.lovelace@example.org"]),
            Err(PasswordError::Weak(_))
        ));
        assert!(Password::parse("violet-harbour-tangent-42", &[]).is_ok());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::parse("violet-harbour-tangent-42", &[]).ok();
        assert!(!format!("{p:?}").contains("violet"));
    }
}
