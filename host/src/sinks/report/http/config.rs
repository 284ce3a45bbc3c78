//! `[[sinks]] kind = "http_report"`: settings of the HTTP JSON reporter.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::retry::RetryPolicy;

/// Settings of an `http_report` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpReportConfig {
    /// Name for logs and the outbox folder (default `http_report`).
    #[serde(default = "default_name")]
    pub name: String,
    /// The endpoint to POST to.
    pub url: String,
    /// The `application` field.
    #[serde(default = "default_application")]
    pub application: String,
    /// The `version` field (default: wasmtel's version).
    #[serde(default = "default_version")]
    pub version: String,
    /// Static metadata merged into every report's `metadata` (the report's
    /// own value wins on a shared key).
    #[serde(default)]
    pub metadata: BTreeMap<String, toml::Value>,
    /// Deadline of each request, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Environment variable holding a bearer token.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// Retry policy (5xx and 429 are retried; other 4xx are not).
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_name() -> String {
    "http_report".into()
}
fn default_application() -> String {
    "wasmtel".into()
}
fn default_version() -> String {
    env!("CARGO_PKG_VERSION").into()
}
fn default_timeout() -> u64 {
    5_000
}
