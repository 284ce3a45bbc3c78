//! The request-telemetry interceptor: every RPC the ingest server serves
//! becomes a `grpc_request` event (`source = grpc_interceptor`, metadata
//! `{full_method, status_code, duration_ms, client_ip}`, and the caller's
//! organization when it authenticated), appended to the raw log like any
//! other event, after the RPC has answered.
//!
//! Only calls that authenticated (when tokens are configured) and reached a
//! method this server serves are recorded; the others are counted
//! so that nobody without a token
//! can write into the log. Recording never fails or delays the RPC: events
//! wait in a bounded queue (1024) that one task appends in batches (group
//! commit); when the queue is full or the log refuses, the event is dropped
//! and counted. Methods on the skip list (default: the health check) are
//! not recorded. The counters are [`super::grpc::Counters`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use chrono::Utc;
use serde_json::json;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::grpc::Ingest;
use crate::event::{Event, Record};
use crate::security::tokens::Tokens;

/// Default skip list.
pub const DEFAULT_SKIP: &[&str] = &["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"];

/// The methods `wasmtel serve` serves on its gRPC port.
pub const SERVED: &[&str] = &[
    "/wasmtel.ingest.v1.TelemetryService/EmitTelemetryEvent",
    "/wasmtel.ingest.v1.TelemetryService/BatchEmitTelemetry",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
];

/// Request-telemetry events waiting to be appended, at most.
const QUEUE: usize = 1024;
/// Events appended at once, at most.
const BATCH: usize = 256;

/// The layer.
#[derive(Clone)]
pub struct RequestTelemetry {
    enabled: bool,
    skip: Arc<Vec<String>>,
    tokens: Option<Arc<Tokens>>,
    queue: tokio::sync::mpsc::Sender<Record>,
    counters: Arc<super::grpc::Counters>,
}

impl RequestTelemetry {
    /// Records through `ingest` (when `enabled`), except methods in `skip`;
    /// with `tokens`, only calls that present an accepted token. Spawns the
    /// task that appends; it ends when the last layer is dropped.
    pub fn new(enabled: bool, ingest: Ingest, skip: Vec<String>, tokens: Option<Arc<Tokens>>) -> RequestTelemetry {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Record>(QUEUE);
        let counters = Arc::clone(ingest.counters());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let n = batch.len() as u64;
                if let Err(e) = ingest.append(std::mem::take(&mut batch)).await {
                    ingest.counters().telemetry_dropped.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(events = n, "request telemetry dropped ({})", e.message());
                }
            }
        });
        RequestTelemetry { enabled, skip: Arc::new(skip), tokens, queue, counters }
    }

    /// The organization to record a call under, or `None` when the call is
    /// not to be recorded (counted instead).
    fn admit(&self, method: &str, authorization: Option<&str>) -> Option<String> {
        if !SERVED.contains(&method) {
            self.counters.unknown_method.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match &self.tokens {
            None => Some(String::new()),
            Some(tokens) => match tokens.authorize(authorization) {
                Ok(org) => Some(org),
                Err(_) => {
                    self.counters.unauthenticated.fetch_add(1, Ordering::Relaxed);
                    None
                }
            },
        }
    }
}

impl<S> tower_layer::Layer<S> for RequestTelemetry {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded { inner, telemetry: self.clone() }
    }
}

/// A service wrapped by [`RequestTelemetry`].
#[derive(Clone)]
pub struct Recorded<S> {
    inner: S,
    telemetry: RequestTelemetry,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Recorded<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_string();
        if !self.telemetry.enabled || self.telemetry.skip.contains(&method) {
            return Box::pin(self.inner.call(request));
        }
        let authorization = request.headers().get("authorization").and_then(|v| v.to_str().ok());
        let Some(org) = self.telemetry.admit(&method, authorization) else {
            return Box::pin(self.inner.call(request));
        };
        let extensions = request.extensions();
        let client_ip = extensions
            .get::<TcpConnectInfo>()
            .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().map(|i| i.get_ref()))
            .and_then(|i| i.remote_addr())
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let started = Instant::now();
        let telemetry = self.telemetry.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            // Errors are "trailers-only" responses: the status is a header.
            // A success carries grpc-status 0 in the trailers.
            let code = match &response {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                Err(_) => 2,
            };
            let event = Event {
                org_id: org,
                user_id: String::new(),
                device_id: String::new(),
                session_id: String::new(),
                event_type: "grpc_request".into(),
                source: "grpc_interceptor".into(),
                created_at: Utc::now(),
                metadata: json!({
                    "full_method": method,
                    "status_code": crate::retry::code_name(tonic::Code::from_i32(code)),
                    "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
                    "client_ip": client_ip,
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            };
            let record = Record { id: crate::event::new_id(), event };
            if telemetry.queue.try_send(record).is_err() {
                telemetry.counters.telemetry_dropped.fetch_add(1, Ordering::Relaxed);
            }
            response
        })
    }
}
