//! `wasmtel receive`: a `zitadel.analytics.v2beta.TelemetryService` server.
//! It validates reports (empty system ID → INVALID_ARGUMENT; unknown, foreign
//! or stale report ID → FAILED_PRECONDITION; oversized batches and malformed
//! counts → INVALID_ARGUMENT naming the field), issues report IDs bound to a
//! system ID, and stores base information and counts in SQLite ([`store`]).
//! It also serves `grpc.health.v1`. Optional TLS (rustls) and bearer tokens.

pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use tonic::transport::{Identity, Server, ServerTlsConfig};

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
    /// Report IDs older than this many hours are refused.
    #[serde(default = "default_max_age")]
    pub report_max_age_hours: u64,
    /// Environment variable with accepted bearer tokens (comma-separated);
    /// unset = no authentication.
    #[serde(default)]
    pub tokens_env: Option<String>,
    /// PEM certificate chain for TLS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

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
        for p in [Some(&mut self.database), self.tls_cert.as_mut(), self.tls_key.as_mut()].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// Serves on `listener` until `shutdown` completes.
pub async fn serve(
    config: &ReceiverConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = Arc::new(ReceiverStore::open(&config.database).map_err(anyhow::Error::msg)?);
    let tokens = match &config.tokens_env {
        Some(var) => std::env::var(var)
            .with_context(|| format!("tokens_env: the environment variable {var} is not set"))?
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        None => Vec::new(),
    };
    let limits = ServiceLimits {
        max_counts_per_request: config.max_counts_per_request,
        report_max_age_secs: (config.report_max_age_hours * 3600) as i64,
        tokens,
    };
    let service = TelemetryServiceServer::new(Receiver::new(store, limits))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TelemetryServiceServer<Receiver>>().await;
    let mut server = Server::builder();
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let cert = std::fs::read(cert).with_context(|| format!("cannot read tls_cert {}", cert.display()))?;
        let key = std::fs::read(key).with_context(|| format!("cannot read tls_key {}", key.display()))?;
        server = server
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            .context("invalid TLS settings")?;
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
pub async fn run(config: &ReceiverConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, database = %config.database.display(), "receiver listening");
    eprintln!("wasmtel receive: listening on {addr}, storing into {}", config.database.display());
    serve(config, listener, crate::shutdown::signal()).await
}
