//! API tests: the real server over HTTPS on a random port, on SQLite and
//! on MariaDB, a fresh database per test.

#![allow(clippy::unwrap_used)]

mod accounts;
mod appointments;
mod audit;
mod audit_upgrade;
mod cli;
mod concurrency;
mod database_outage;
mod errors;
mod graceful;
mod helpers;
mod hub;
mod mail;
mod migrations;
mod my_sessions;
mod password_reset;
mod rooms;
mod scheduling;
mod sessions;
#[path = "../sfu_support/mod.rs"]
mod sfu_support;
mod smtp;
mod transport;
mod two_factor;
mod web;
