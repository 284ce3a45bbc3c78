//! `[[sinks]] kind = "zitadel"`: settings of the gRPC reporter.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::retry::RetryPolicy;

/// Default counts per ReportResourceCounts call (ZITADEL's bulk size).
pub const DEFAULT_BULK_SIZE: usize = 100;
/// Default per-call deadline in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// Settings of a `zitadel` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZitadelConfig {
    /// Name for logs and the outbox folder (default `zitadel`).
    #[serde(default = "default_name")]
    pub name: String,
    /// `http://host:port` or `https://host:port`.
    pub endpoint: String,
    /// Counts per ReportResourceCounts call.
    #[serde(default = "default_bulk")]
    pub bulk_size: usize,
    /// Deadline of each call, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// PEM file of the CA to trust for `https://` endpoints (instead of none).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Server name to verify, when it differs from the endpoint's host.
    #[serde(default)]
    pub tls_domain: Option<String>,
    /// PEM client certificate chain for a receiver that asks for one
    /// (mutual TLS; with `tls_client_key`).
    #[serde(default)]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM private key of `tls_client_cert`.
    #[serde(default)]
    pub tls_client_key: Option<PathBuf>,
    /// Environment variable holding a bearer token sent as `authorization`.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// Extra request metadata (gRPC headers).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_name() -> String {
    "zitadel".into()
}
fn default_bulk() -> usize {
    DEFAULT_BULK_SIZE
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}
