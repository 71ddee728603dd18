//! API tests: the real server over HTTPS on a random port, on SQLite and
//! on MariaDB, a fresh database per test.

#![allow(clippy::unwrap_used)]

mod accounts;
mod cli;
mod errors;
mod helpers;
mod sessions;
mod transport;
