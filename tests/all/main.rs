//! wasmtel's integration tests: one binary (one link step), a module per
//! capability. Guests are real components built from `guest/` by
//! `host/build.rs`; databases are real SQLite files; the CLI tests run the
//! real `wasmtel` binary.

mod cli;
mod collector;
mod common;
mod crash;
mod dlq;
mod faults;
mod hostile;
mod hostile_input;
mod hostile_wat;
mod http_report;
mod ingest;
mod kafka;
mod loki;
mod redactor_pii;
mod reporting;
mod reporting_e2e;
mod security;
mod trust;
