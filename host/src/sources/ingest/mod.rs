//! `wasmtel serve`: the ingest service. Applications send events over gRPC
//! (`wasmtel.ingest.v1.TelemetryService`: `EmitTelemetryEvent`,
//! `BatchEmitTelemetry`) or HTTP JSON; each request is validated ([`grpc`])
//! and appended to the raw log (group commit) before the client hears OK.
//! The stage graph ([`crate::topology`]) redacts and delivers from there;
//! collectors run on their schedules in the same process. A full log
//! answers `RESOURCE_EXHAUSTED`; a failed stage `UNAVAILABLE` (and health
//! says `NOT_SERVING`). Also serves `grpc.health.v1` and server reflection,
//! with per-request deadlines, message size and concurrent stream limits,
//! optional TLS (also on HTTP, optionally with client certificates),
//! bearer tokens ([`crate::security::tokens`]), the request-telemetry [`interceptor`], and [`http`] (JSON
//! ingest, `/metrics`, `/health`, `/ready`).

pub mod grpc;
pub mod http;
pub mod interceptor;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tonic::transport::Server;

use crate::config::{ConfigError, LoadedConfig};
use crate::proto::ingest::telemetry_service_server::TelemetryServiceServer;
use crate::security::tokens::Tokens;
use crate::topology::{Mode, Topology};

/// `[ingest]` settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Most events per `BatchEmitTelemetry`.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Environment variable with accepted tokens, `token=org_id` pairs
    /// separated by commas. With neither this nor `tokens_file` set, ingest
    /// needs no authentication (default).
    #[serde(default)]
    pub tokens_env: Option<String>,
    /// File with accepted tokens, `token=org_id` per line (or separated by
    /// commas), re-read within a second of a change; unset by default.
    #[serde(default)]
    pub tokens_file: Option<std::path::PathBuf>,
    /// Deprecated: the same as `[log] max_events` (most events waiting),
    /// which it sets when given.
    #[serde(default)]
    pub queue_capacity: Option<u64>,
    /// Most bytes per message.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Deadline of one request, in milliseconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// Most concurrent HTTP/2 streams per connection.
    #[serde(default = "default_streams")]
    pub max_concurrent_streams: u32,
    /// Record every served RPC as a `grpc_request` event.
    #[serde(default = "yes")]
    pub request_telemetry: bool,
    /// Full method names not recorded (default: the health check).
    #[serde(default = "default_skip")]
    pub request_telemetry_skip: Vec<String>,
    /// Address for HTTP JSON ingest (`POST /v1/events`) and `GET /metrics`;
    /// unset = no HTTP listener.
    #[serde(default)]
    pub http_listen: Option<String>,
    /// PEM certificate chain for TLS on the gRPC and HTTP listeners (with
    /// `tls_key`; neither = plaintext, the default).
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for TLS (with `tls_cert`).
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
    /// PEM CA certificates: when set, clients must present a certificate
    /// issued by one of them (mutual TLS) on both listeners; unset = no
    /// client certificates asked for.
    #[serde(default)]
    pub client_ca: Option<std::path::PathBuf>,
}

impl IngestConfig {
    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        for p in
            [&mut self.tls_cert, &mut self.tls_key, &mut self.client_ca, &mut self.tokens_file].into_iter().flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks ranges and keys that need each other (`file` names the config
    /// in errors).
    pub fn validate(&self, file: &std::path::Path) -> Result<(), ConfigError> {
        let positive = [
            ("ingest.max_batch", self.max_batch as u64, 100_000),
            ("ingest.max_message_bytes", self.max_message_bytes as u64, 1 << 30),
            ("ingest.request_timeout_ms", self.request_timeout_ms, 3_600_000),
            ("ingest.max_concurrent_streams", u64::from(self.max_concurrent_streams), 1 << 20),
        ];
        for (key, value, max) in positive {
            if value == 0 || value > max {
                return Err(ConfigError::new(file, key, format!("found {value}, expected 1 to {max}")));
            }
        }
        self.tls(file).map(|_| ())
    }

    /// The listeners' TLS files, checked (`None` = plaintext).
    pub fn tls(&self, file: &std::path::Path) -> Result<Option<crate::security::tls::TlsFiles>, ConfigError> {
        crate::security::tls::TlsFiles::from_config(
            file,
            "ingest",
            self.tls_cert.as_ref(),
            self.tls_key.as_ref(),
            self.client_ca.as_ref(),
        )
    }

    /// Where the accepted tokens come from.
    pub fn token_sources(&self) -> crate::security::tokens::TokenSources {
        crate::security::tokens::TokenSources { env: self.tokens_env.clone(), file: self.tokens_file.clone() }
    }
}

fn yes() -> bool {
    true
}
fn default_skip() -> Vec<String> {
    interceptor::DEFAULT_SKIP.iter().map(|s| s.to_string()).collect()
}

fn default_listen() -> String {
    "127.0.0.1:4317".into()
}
fn default_max_batch() -> usize {
    500
}
fn default_max_message() -> usize {
    4 << 20
}
fn default_timeout() -> u64 {
    10_000
}
fn default_streams() -> u32 {
    256
}

/// Serves on `listener` until `shutdown` completes, then lets the sinks
/// drain what the redacted log holds (up to `pipeline.drain_timeout_ms`).
pub async fn serve(
    loaded: &LoadedConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let plan = crate::topology::Plan::build(loaded)?;
    serve_plan(plan, listener, shutdown).await
}

/// [`serve`] with a plan already built (`bench ingest` swaps in a redactor
/// with no rules to measure what redaction costs).
pub(crate) async fn serve_plan(
    plan: crate::topology::Plan,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let topology = Topology::open(plan, Mode::Serve)?;
    serve_topology(topology, listener, shutdown).await
}

/// Serves on `listener` with an open topology (which holds the state
/// folder's lock).
async fn serve_topology(
    topology: Topology,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let loaded = topology.loaded().clone();
    let file = &loaded.file;
    let config = loaded
        .config
        .ingest
        .clone()
        .ok_or_else(|| ConfigError::new(file, "ingest", "`wasmtel serve` needs an [ingest] section"))?;
    let tokens = Tokens::load(file, "ingest", &config.token_sources(), "an org_id")?;
    let tls = config.tls(file)?;
    let raw = Arc::clone(topology.raw().expect("serve has a raw log"));
    let health = Arc::clone(topology.health());
    let ingest =
        grpc::Ingest::new(raw, Arc::clone(&health), config.max_batch, loaded.config.event_limits, tokens.clone());
    let recorder = interceptor::RequestTelemetry::new(
        config.request_telemetry,
        ingest.clone(),
        config.request_telemetry_skip.clone(),
        tokens,
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    if let Some(http_listen) = &config.http_listen {
        let listener = tokio::net::TcpListener::bind(http_listen)
            .await
            .with_context(|| format!("cannot listen on {http_listen}"))?;
        tracing::info!(addr = %listener.local_addr()?, "HTTP ingest, /metrics, /health and /ready listening");
        let app = http::router(http::HttpState {
            ingest: ingest.clone(),
            stats: Arc::clone(topology.stats()),
            health: Arc::clone(&health),
            redacted: Arc::clone(topology.redacted()),
        });
        let done = stopped(stop_rx.clone());
        match &tls {
            Some(tls) => {
                let listener = crate::security::tls::TlsListener::new(listener, tls.rustls()?)?;
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(done).await {
                        tracing::error!("the HTTPS listener stopped: {e}");
                    }
                });
            }
            None => {
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(done).await {
                        tracing::error!("the HTTP listener stopped: {e}");
                    }
                });
            }
        }
    }
    let service = TelemetryServiceServer::new(ingest)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let (reporter, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(mirror_health(Arc::clone(&health), reporter));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the reflection service")?;
    let mut builder = Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.tonic()?).context("invalid TLS settings")?;
    }
    let server = builder
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .max_concurrent_streams(config.max_concurrent_streams)
        .layer(recorder)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            stopped(stop_rx.clone()),
        );
    let server = tokio::spawn(server);
    // The graph runs until the shutdown signal, or until a stage failed too
    // often; then the listeners stop first, and the sinks drain.
    let stop_tx = Arc::new(stop_tx);
    let stopper = Arc::clone(&stop_tx);
    let graph = topology.run(async move {
        shutdown.await;
        stopper.send_replace(true);
    });
    let result = graph.await;
    // Also when the graph ended on its own (a stage failed too often).
    stop_tx.send_replace(true);
    let served = server.await?;
    served.context("the ingest server stopped with an error")?;
    result.map(|_| ())
}

/// Keeps `grpc.health.v1` in line with the stages: `SERVING` while every
/// stage works, `NOT_SERVING` while one has failed.
async fn mirror_health(health: Arc<crate::topology::health::Health>, reporter: tonic_health::server::HealthReporter) {
    let mut changes = health.subscribe();
    loop {
        let status = match health.ready() {
            Ok(()) => tonic_health::ServingStatus::Serving,
            Err(_) => tonic_health::ServingStatus::NotServing,
        };
        reporter.set_service_status("", status).await;
        reporter
            .set_service_status(<TelemetryServiceServer<grpc::Ingest> as tonic::server::NamedService>::NAME, status)
            .await;
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Takes the state folder (its lock first: a second process on the same
/// folder is refused before it listens), binds `[ingest] listen` and
/// serves until SIGINT/SIGTERM.
pub async fn run(loaded: &LoadedConfig) -> anyhow::Result<()> {
    let listen = loaded.config.ingest.as_ref().map(|i| i.listen.clone()).unwrap_or_else(default_listen);
    let topology = Topology::open(crate::topology::Plan::build(loaded)?, Mode::Serve)?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("wasmtel serve: listening on {}", listener.local_addr()?);
    serve_topology(topology, listener, crate::shutdown::signal()).await
}
