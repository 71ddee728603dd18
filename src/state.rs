//! What every request handler may reach, built once by `startup`.

use std::sync::Arc;

use crate::auth::{PasswordHasher, SignInLimits, TokenKeys};
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::hub::Hub;
use crate::mail::MailContext;
use crate::presence::RoomPresence;
use crate::sfu::Sfu;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub hasher: PasswordHasher,
    pub tokens: TokenKeys,
    pub limits: SignInLimits,
    pub clock: Clock,
    pub presence: RoomPresence,
    pub hub: Hub,
    /// Reminder offsets and the mail worker's doorbell, for appointment changes.
    pub mail: MailContext,
    /// The media plane; receives only joins the hub has authorised.
    pub sfu: Sfu,
}
