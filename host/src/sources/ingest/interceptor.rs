//! The request-telemetry interceptor: every RPC the ingest server serves
//! becomes a `grpc_request` event (`source = grpc_interceptor`, metadata
//! `{full_method, status_code, duration_ms, client_ip}`, and the caller's
//! organization when it authenticated), appended to the raw log like any
//! other event, after the RPC has answered. It never fails or delays the
//! RPC: when the log refuses, the event is dropped and logged. Methods on the skip list (default: the
//! health check) are not recorded.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use chrono::Utc;
use serde_json::json;
use tonic::transport::server::TcpConnectInfo;

use super::grpc::Ingest;
use crate::event::{Event, Record};

/// Default skip list.
pub const DEFAULT_SKIP: &[&str] = &["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"];

/// The layer.
#[derive(Clone)]
pub struct RequestTelemetry {
    enabled: bool,
    ingest: Ingest,
    skip: Arc<Vec<String>>,
    tokens: Arc<BTreeMap<String, String>>,
}

impl RequestTelemetry {
    /// Records through `ingest` (when `enabled`), except methods in `skip`.
    pub fn new(enabled: bool, ingest: Ingest, skip: Vec<String>, tokens: BTreeMap<String, String>) -> RequestTelemetry {
        RequestTelemetry { enabled, ingest, skip: Arc::new(skip), tokens: Arc::new(tokens) }
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
        let client_ip = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(|i| i.remote_addr())
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let org = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .and_then(|t| self.telemetry.tokens.get(t).cloned())
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
            tokio::spawn(async move {
                if let Err(e) = telemetry.ingest.append(vec![record]).await {
                    tracing::warn!("request telemetry dropped ({})", e.message());
                }
            });
            response
        })
    }
}
