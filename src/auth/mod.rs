//! Who is calling: password hashing, signed tokens, sessions, the filter
//! that turns a request into a signed-in user, and sign-in rate limits.

mod current_user;
mod password_hasher;
mod rate_limit;
pub mod second_factor;
mod tokens;

pub use current_user::{CurrentUser, SESSION_COOKIE, authenticate, clear_session_cookie, session_cookie};
pub use password_hasher::{HashError, PasswordHasher};
pub use rate_limit::{RateLimited, SignInLimits};
pub use tokens::{Claims, TokenError, TokenKeys};
