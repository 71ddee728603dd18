//! Browser tests: the real server over HTTPS and a headless Chromium
//! driving the pages as a person would. Skipped (with a `SKIPPED:` line)
//! when Chromium or chromedriver is missing, except under `CI=true`.
//!
//! Screenshots land in `<target dir>/screenshots/`.

#![allow(clippy::unwrap_used)]

mod account;
mod admin;
mod appointments;
mod availability;
mod driver;
mod forms;
// The API suite's `spawn_app()`; this suite uses only part of it.
#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;
mod patient;
mod room;
mod steps;
