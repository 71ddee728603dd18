//! bcrypt, kept off the async runtime: each hash takes ~200 ms of CPU, so it
//! runs in `spawn_blocking` behind a semaphore that leaves a core for
//! everything else.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::domain::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("password hashing task failed")]
    Join(#[from] tokio::task::JoinError),
    #[error("password hasher is shut down")]
    Closed,
}

#[derive(Clone, Debug)]
pub struct PasswordHasher {
    cost: u32,
    permits: Arc<Semaphore>,
    /// Verified against when an email is unknown, so that answer takes as
    /// long as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub async fn new(cost: u32) -> Result<Self, HashError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let permits = Arc::new(Semaphore::new(cores.saturating_sub(1).max(1)));
        let dummy_hash = tokio::task::spawn_blocking(move || bcrypt::hash("consulta timing-equaliser", cost)).await??;
        Ok(Self { cost, permits, dummy_hash: dummy_hash.into() })
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Closed)?;
        let password = password.expose().to_owned();
        let cost = self.cost;
        Ok(tokio::task::spawn_blocking(move || bcrypt::hash(password, cost)).await??)
    }

    /// `false` for a wrong password and for a missing hash alike, after the
    /// same amount of work.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, HashError> {
        // bcrypt ignores bytes past 72; a longer candidate can never be a
        // password we accepted, so it must not match a 72-byte prefix.
        let too_long = password.len() > 72;
        let known = hash.is_some() && !too_long;
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let password: String = password.chars().take(72).collect();
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Closed)?;
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash)).await?;
        Ok(known && matches.unwrap_or(false))
    }
}
