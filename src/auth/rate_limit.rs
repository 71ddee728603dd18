//! Sign-in throttling per client IP and per account (GCRA via governor).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How long the caller should wait before trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
}

#[derive(Clone)]
pub struct SignInLimits {
    by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    by_account: Arc<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for SignInLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLimits").finish_non_exhaustive()
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

fn check<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), RateLimited> {
    limiter
        .check_key(key)
        .map_err(|not_until| RateLimited { retry_after: not_until.wait_time_from(DefaultClock::default().now()) })
}

impl SignInLimits {
    pub fn new(ip_per_minute: u32, account_per_minute: u32) -> Self {
        Self {
            by_ip: Arc::new(RateLimiter::keyed(per_minute(ip_per_minute))),
            by_account: Arc::new(RateLimiter::keyed(per_minute(account_per_minute))),
        }
    }

    /// Counts an attempt from `ip` (sign-in or registration).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), RateLimited> {
        check(&self.by_ip, &ip)
    }

    /// Counts an attempt on the account `email` (lower-cased), whoever makes it.
    pub fn check_account(&self, email: &str) -> Result<(), RateLimited> {
        check(&self.by_account, &email.to_owned())
    }

    /// Forgets keys whose limits have fully recovered, so memory stays
    /// bounded under a spray of addresses.
    pub fn shrink(&self) {
        self.by_ip.retain_recent();
        self.by_account.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_account.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_is_the_per_minute_figure_then_it_refuses() {
        let limits = SignInLimits::new(3, 100);
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(limits.check_ip(ip).is_ok());
        }
        let refused = limits.check_ip(ip).err();
        assert!(refused.is_some_and(|r| r.retry_after > Duration::ZERO));
        assert!(limits.check_ip([10, 0, 0, 2].into()).is_ok(), "other clients are unaffected");
    }
}
