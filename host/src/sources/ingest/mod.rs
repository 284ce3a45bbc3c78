//! `wasmtel serve`: the ingest service. Applications send events over gRPC
//! (`wasmtel.ingest.v1.TelemetryService`: `EmitTelemetryEvent`,
//! `BatchEmitTelemetry`); each request is validated ([`grpc`]) and written to
//! the spool ([`crate::queue::spool`]) before the client hears OK, and a
//! pipeline thread redacts and delivers from the spool to the configured
//! sinks (collectors run on their schedules in the same thread). A full
//! spool answers `RESOURCE_EXHAUSTED`. Also serves `grpc.health.v1` and
//! server reflection, with per-request deadlines, message size and
//! concurrent stream limits, optional TLS, the request-telemetry
//! [`interceptor`], and [`http`] (JSON ingest and `/metrics`).

pub mod grpc;
pub mod http;
pub mod interceptor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::config::{ConfigError, LoadedConfig};
use crate::pipeline::Pipeline;
use crate::proto::ingest::telemetry_service_server::TelemetryServiceServer;
use crate::queue::spool::Spool;

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
    /// Most events waiting in the spool before requests are refused.
    #[serde(default = "default_capacity")]
    pub queue_capacity: u64,
    /// Environment variable with accepted tokens, `token=org_id` pairs
    /// separated by commas; unset = no authentication.
    #[serde(default)]
    pub tokens_env: Option<String>,
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
    /// PEM certificate chain for TLS (with `tls_key`).
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for TLS.
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
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
fn default_capacity() -> u64 {
    50_000
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

/// Parses `token=org,token2=org2`.
pub fn parse_tokens(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(t, o)| (t.trim().to_string(), o.trim().to_string()))
                .filter(|(t, o)| !t.is_empty() && !o.is_empty())
                .ok_or_else(|| "expected token=org_id pairs separated by commas".to_string())
        })
        .collect()
}

/// Serves on `listener` until `shutdown` completes, then lets the pipeline
/// finish the batch in hand.
pub async fn serve(
    loaded: &LoadedConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    serve_with(loaded, listener, shutdown, false).await
}

/// [`serve`], optionally without redactors (only `bench ingest` measures that).
pub(crate) async fn serve_with(
    loaded: &LoadedConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    allow_unredacted: bool,
) -> anyhow::Result<()> {
    let file = &loaded.file;
    let config = loaded
        .config
        .ingest
        .clone()
        .ok_or_else(|| ConfigError::new(file, "ingest", "`wasmtel serve` needs an [ingest] section"))?;
    if loaded.config.redactors.is_empty() && !allow_unredacted {
        return Err(ConfigError::new(
            file,
            "redactors",
            "ingested events must be redacted: add a [[redactors]] entry (e.g. module = \"builtin:redactor-pii\")",
        )
        .into());
    }
    let tokens = match &config.tokens_env {
        Some(var) => {
            let text = std::env::var(var).map_err(|_| {
                ConfigError::new(file, "ingest.tokens_env", format!("the environment variable {var} is not set"))
            })?;
            parse_tokens(&text).map_err(|e| ConfigError::new(file, "ingest.tokens_env", format!("{var}: {e}")))?
        }
        None => BTreeMap::new(),
    };
    std::fs::create_dir_all(&loaded.config.state_dir)?;
    let spool = Arc::new(Spool::open(&loaded.config.state_dir, config.queue_capacity)?);
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(std::sync::Mutex::new(crate::stats::Stats::default()));
    let worker = start_pipeline(loaded.clone(), spool.clone(), stop.clone(), stats.clone())?;

    let recorder = interceptor::RequestTelemetry::new(
        config.request_telemetry,
        spool.clone(),
        config.request_telemetry_skip.clone(),
        tokens.clone(),
    );
    let ingest = grpc::Ingest::new(spool.clone(), config.max_batch, tokens);
    if let Some(http_listen) = &config.http_listen {
        let listener = tokio::net::TcpListener::bind(http_listen)
            .await
            .with_context(|| format!("cannot listen on {http_listen}"))?;
        tracing::info!(addr = %listener.local_addr()?, "HTTP ingest and /metrics listening");
        let app = http::router(http::HttpState { ingest: ingest.clone(), spool: spool.clone(), stats: stats.clone() });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("the HTTP listener stopped: {e}");
            }
        });
    }
    let service = TelemetryServiceServer::new(ingest)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TelemetryServiceServer<grpc::Ingest>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the reflection service")?;
    let mut builder = Server::builder();
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let cert = std::fs::read(cert).with_context(|| format!("cannot read tls_cert {}", cert.display()))?;
        let key = std::fs::read(key).with_context(|| format!("cannot read tls_key {}", key.display()))?;
        builder = builder
            .tls_config(
                tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(cert, key)),
            )
            .context("invalid TLS settings")?;
    }
    let served = builder
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .max_concurrent_streams(config.max_concurrent_streams)
        .layer(recorder)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    stop.store(true, Ordering::SeqCst);
    let pipeline = tokio::task::spawn_blocking(move || worker.join()).await?;
    served.context("the ingest server stopped with an error")?;
    match pipeline {
        Ok(result) => result,
        Err(_) => anyhow::bail!("the pipeline thread panicked"),
    }
}

/// The pipeline thread: spool → redaction → sinks; collectors when due.
fn start_pipeline(
    loaded: LoadedConfig,
    spool: Arc<Spool>,
    stop: Arc<AtomicBool>,
    stats: Arc<std::sync::Mutex<crate::stats::Stats>>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new().name("wasmtel-pipeline".into()).spawn(move || -> anyhow::Result<()> {
        let mut pipeline = match Pipeline::build(&loaded) {
            Ok(p) => {
                let _ = ready_tx.send(Ok(()));
                p
            }
            Err(e) => {
                let message = format!("{e:#}");
                let _ = ready_tx.send(Err(e));
                anyhow::bail!(message);
            }
        };
        pipeline.flush_sinks()?;
        let batch = loaded.config.redactor_batch_size();
        loop {
            pipeline.run_collectors(false)?;
            match spool.next_batch(batch, Duration::from_millis(200))? {
                Some(batch) => {
                    let (n, offset) = (batch.events.len(), batch.offset);
                    let (ids, events): (Vec<String>, Vec<_>) = batch.events.into_iter().unzip();
                    if !events.is_empty() {
                        pipeline.process_batch(events, ids)?;
                        pipeline.flush_sinks()?;
                    }
                    spool.commit(offset, n)?;
                    *stats.lock().unwrap_or_else(|p| p.into_inner()) = pipeline.stats().clone();
                }
                None if stop.load(Ordering::SeqCst) => return Ok(()),
                None => {}
            }
        }
    })?;
    ready_rx.recv().context("the pipeline thread ended early")??;
    Ok(handle)
}

/// Binds `[ingest] listen` and serves until SIGINT/SIGTERM.
pub async fn run(loaded: &LoadedConfig) -> anyhow::Result<()> {
    let listen = loaded.config.ingest.as_ref().map(|i| i.listen.clone()).unwrap_or_else(default_listen);
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("wasmtel serve: listening on {}", listener.local_addr()?);
    serve(loaded, listener, crate::shutdown::signal()).await
}
