//! `wasmtel receive`: a `zitadel.analytics.v2beta.TelemetryService` server.
//! It validates reports (empty system ID → INVALID_ARGUMENT; unknown, foreign
//! or stale report ID → FAILED_PRECONDITION; oversized batches and malformed
//! counts → INVALID_ARGUMENT naming the field), issues report IDs bound to a
//! system ID, and stores base information and counts in SQLite ([`store`]).
//! It also serves `grpc.health.v1`. Optional TLS (rustls, optionally with
//! client certificates) and bearer tokens bound to the systems they may
//! report for. Report IDs older than `report_max_age_hours` are forgotten.

pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use tonic::transport::Server;

use crate::config::ConfigError;
use crate::security::tls::TlsFiles;
use crate::security::tokens::{TokenSources, Tokens};

use crate::proto::zitadel::telemetry_service_server::TelemetryServiceServer;
pub use service::{Receiver, ServiceLimits};
pub use store::ReceiverStore;

/// `[receiver]` settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// SQLite file for received reports.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Most counts per ReportResourceCounts call.
    #[serde(default = "default_max_counts")]
    pub max_counts_per_request: usize,
    /// Most bytes per message.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Report IDs older than this many hours are refused, and forgotten
    /// (default 168, at most 87600 = ten years).
    #[serde(default = "default_max_age")]
    pub report_max_age_hours: u64,
    /// Environment variable with accepted bearer tokens, each bound to the
    /// systems it may report for: `token=system_id` or
    /// `token=system_a|system_b` (`token=*` for any system), separated by
    /// commas. With neither this nor `tokens_file`, no authentication
    /// (default).
    #[serde(default)]
    pub tokens_env: Option<String>,
    /// File with tokens in the same form, one per line, re-read within a
    /// second of a change.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// PEM certificate chain for TLS (with `tls_key`; neither = plaintext).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with `tls_cert`).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: when set, reporters must present a client
    /// certificate issued by one of them (mutual TLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// Most hours `report_max_age_hours` may be (ten years).
const MAX_AGE_HOURS: u64 = 87_600;

fn default_listen() -> String {
    "127.0.0.1:50051".into()
}
fn default_database() -> PathBuf {
    "receiver.db".into()
}
fn default_max_counts() -> usize {
    10_000
}
fn default_max_message() -> usize {
    4 << 20
}
fn default_max_age() -> u64 {
    168
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl ReceiverConfig {
    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let paths = [self.tls_cert.as_mut(), self.tls_key.as_mut(), self.client_ca.as_mut(), self.tokens_file.as_mut()];
        for p in [Some(&mut self.database)].into_iter().chain(paths).flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks ranges and keys that need each other (`file` names the config
    /// in errors).
    pub fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let ranges = [
            ("receiver.report_max_age_hours", self.report_max_age_hours, MAX_AGE_HOURS),
            ("receiver.max_counts_per_request", self.max_counts_per_request as u64, 1_000_000),
            ("receiver.max_message_bytes", self.max_message_bytes as u64, 1 << 30),
        ];
        for (key, value, max) in ranges {
            if value == 0 || value > max {
                return Err(ConfigError::new(file, key, format!("found {value}, expected 1 to {max}")));
            }
        }
        self.tls(file).map(|_| ())
    }

    /// The listener's TLS files, checked (`None` = plaintext).
    pub fn tls(&self, file: &Path) -> Result<Option<TlsFiles>, ConfigError> {
        TlsFiles::from_config(file, "receiver", self.tls_cert.as_ref(), self.tls_key.as_ref(), self.client_ca.as_ref())
    }

    /// The most age of a report ID in seconds (no overflow: validated).
    pub fn report_max_age_secs(&self) -> i64 {
        (self.report_max_age_hours.min(MAX_AGE_HOURS) * 3600) as i64
    }
}

/// What a receiver token value allows: `*` or `system|system…`.
pub const SYSTEMS: &str = "the system_id(s) the token may report for, separated by `|`, or `*` for any";

/// Whether a token bound to `allowed` may report for `system_id`.
pub fn may_report(allowed: &str, system_id: &str) -> bool {
    allowed == "*" || allowed.split('|').any(|s| s.trim() == system_id)
}

/// Serves on `listener` until `shutdown` completes. `file` is the config
/// file (for error messages).
pub async fn serve(
    file: &Path,
    config: &ReceiverConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    config.validate(file)?;
    let sources = TokenSources { env: config.tokens_env.clone(), file: config.tokens_file.clone() };
    let tokens = Tokens::load(file, "receiver", &sources, SYSTEMS)?;
    let store = Arc::new(ReceiverStore::open(&config.database)?);
    let limits = ServiceLimits {
        max_counts_per_request: config.max_counts_per_request,
        report_max_age_secs: config.report_max_age_secs(),
        tokens,
    };
    let service = TelemetryServiceServer::new(Receiver::new(store, limits))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TelemetryServiceServer<Receiver>>().await;
    let mut server = Server::builder();
    if let Some(tls) = config.tls(file)? {
        server = server.tls_config(tls.tonic()?).context("invalid TLS settings")?;
    }
    server
        .add_service(health_service)
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .context("the receiver stopped with an error")
}

/// Binds `config.listen` and serves until SIGINT/SIGTERM.
pub async fn run(file: &Path, config: &ReceiverConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, database = %config.database.display(), "receiver listening");
    eprintln!("wasmtel receive: listening on {addr}, storing into {}", config.database.display());
    serve(file, config, listener, crate::shutdown::signal()).await
}
