//! Session tokens: HS256 JWTs naming a session row. The token alone never
//! grants access; the row must still be live.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::{SessionId, UserId};

/// Scopes the token to API sessions, so a token minted for another purpose
/// (say, a password reset) can never be used here.
const AUDIENCE: &str = "consulta:session";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub sid: SessionId,
    pub iat: i64,
    pub exp: i64,
    pub aud: String,
    pub iss: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not valid")]
    Invalid,
    #[error("the token could not be signed")]
    Signing,
}

/// Cheap to clone: `AppState` (and so these keys) is cloned for every
/// request and every open socket, and a deep copy of the keys and the
/// validation's claim sets is about a dozen allocations.
#[derive(Clone)]
pub struct TokenKeys {
    inner: Arc<Keys>,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("issuer", &self.inner.issuer).finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 5;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        let keys = Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
        };
        Self { inner: Arc::new(keys) }
    }

    pub fn issue(&self, user: UserId, session: SessionId, iat: i64, exp: i64) -> Result<String, TokenError> {
        let claims =
            Claims { sub: user, sid: session, iat, exp, aud: AUDIENCE.to_owned(), iss: self.inner.issuer.clone() };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.inner.encoding)
            .map_err(|_| TokenError::Signing)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, &self.inner.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], "https://localhost:8443")
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let now = chrono::Utc::now().timestamp();
        let (user, session) = (UserId::new(), SessionId::new());
        let token = keys().issue(user, session, now, now + 60).unwrap_or_default();
        let claims = keys().verify(&token).ok();
        assert_eq!(claims.map(|c| (c.sub, c.sid)), Some((user, session)));

        let other = TokenKeys::new(&[8u8; 32], "https://localhost:8443");
        assert!(other.verify(&token).is_err(), "another secret must not verify");
        let foreign_issuer = TokenKeys::new(&[7u8; 32], "https://evil.example");
        assert!(foreign_issuer.verify(&token).is_err(), "another issuer must not verify");
    }

    #[test]
    fn expired_tokens_are_refused() {
        let now = chrono::Utc::now().timestamp();
        let token = keys().issue(UserId::new(), SessionId::new(), now - 120, now - 60).unwrap_or_default();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        // {"alg":"none"} with valid-looking claims.
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({"sub": UserId::new(), "sid": SessionId::new(), "iat": now, "exp": now + 60,
            "aud": AUDIENCE, "iss": "https://localhost:8443"});
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), b64.encode(claims.to_string()));
        assert!(keys().verify(&token).is_err());
    }
}
