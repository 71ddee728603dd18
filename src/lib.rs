//! Consulta: a self-hosted telehealth hub in one binary.
//!
//! `startup` wires the modules together; everything else owns one concern.

pub mod accounts;
pub mod audit_chainer;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod hub;
pub mod mail;
pub mod presence;
pub mod scheduling;
pub mod server;
pub mod sfu;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
