//! HTTP on the ingest side: `POST /v1/events` for the shape popular product
//! telemetry clients send — one or many `{"event": NAME, "payload": {...}}`,
//! mapped to events (`event_type = NAME`, `metadata = payload`, `source =
//! http`) with the same validation, auth and backpressure as gRPC, answered
//! as HTTP statuses (400, 401, 403, 413, 429 with `Retry-After`, 503) — and
//! `GET /metrics` in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::MetadataMap;

use super::grpc::Ingest;
use crate::proto::ingest as pb;
use crate::queue::spool::Spool;
use crate::stats::Stats;

/// What the HTTP side needs.
#[derive(Clone)]
pub struct HttpState {
    /// The gRPC service's acceptance logic.
    pub ingest: Ingest,
    /// The spool (for the queue depth).
    pub spool: Arc<Spool>,
    /// The pipeline's counters, refreshed after every batch.
    pub stats: Arc<Mutex<Stats>>,
}

/// The router.
pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new()
        .route("/v1/events", axum::routing::post(post_events))
        .route("/metrics", axum::routing::get(metrics))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn post_events(State(state): State<HttpState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body: not valid JSON ({e})")),
    };
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => return error(StatusCode::BAD_REQUEST, "body: expected an event object or an array of them"),
    };
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(name) = item.get("event").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
            return error(StatusCode::BAD_REQUEST, &format!("events[{i}].event: expected a non-empty string"));
        };
        let payload = match item.get("payload") {
            None | Some(Value::Null) => json!({}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return error(StatusCode::BAD_REQUEST, &format!("events[{i}].payload: expected a JSON object")),
        };
        let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        events.push(pb::TelemetryEvent {
            org_id: text("org_id"),
            user_id: text("user_id"),
            device_id: text("device_id"),
            session_id: text("session_id"),
            event_type: name.to_string(),
            source: "http".into(),
            metadata: payload.to_string().into_bytes(),
            created_at: None,
        });
    }
    match state.ingest.accept(&MetadataMap::from_headers(headers), events, "events").await {
        Ok(n) => (StatusCode::OK, Json(json!({ "accepted": n }))).into_response(),
        Err(status) => {
            let code = match status.code() {
                Code::InvalidArgument if status.message().contains("maximum") => StatusCode::PAYLOAD_TOO_LARGE,
                Code::InvalidArgument => StatusCode::BAD_REQUEST,
                Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                Code::PermissionDenied => StatusCode::FORBIDDEN,
                Code::ResourceExhausted => {
                    let mut r = error(StatusCode::TOO_MANY_REQUESTS, status.message());
                    r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
                    return r;
                }
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            error(code, status.message())
        }
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let stats = state.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    counter("wasmtel_events_received_total", "Events read by the pipeline.", &[(String::new(), stats.events_in)]);
    counter("wasmtel_events_delivered_total", "Events every sink took.", &[(String::new(), stats.events_out)]);
    counter(
        "wasmtel_events_dead_lettered_total",
        "Events in the dead-letter store, by stage.",
        &[
            ("{stage=\"source\"}".into(), stats.dead_source),
            ("{stage=\"redact\"}".into(), stats.dead_redact),
            ("{stage=\"sink\"}".into(), stats.dead_sink),
        ],
    );
    let findings: Vec<(String, u64)> =
        stats.findings.iter().map(|(rule, n)| (format!("{{rule=\"{rule}\"}}"), *n)).collect();
    counter("wasmtel_redaction_findings_total", "Spans redacted, by rule.", &findings);
    let failures: Vec<(String, u64)> =
        stats.guest_failures.iter().map(|(kind, n)| (format!("{{kind=\"{kind}\"}}"), *n)).collect();
    counter("wasmtel_guest_failures_total", "Redactor calls that failed closed, by kind.", &failures);
    let (buckets, sum, count) = crate::runtime::redactor::GUEST_CALL_LATENCY.snapshot();
    let _ = writeln!(
        out,
        "# HELP wasmtel_guest_call_seconds Latency of redactor guest calls.\n# TYPE wasmtel_guest_call_seconds histogram"
    );
    let bounds = crate::runtime::redactor::LATENCY_BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_string()]);
    for (bound, n) in bounds.zip(&buckets) {
        let _ = writeln!(out, "wasmtel_guest_call_seconds_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "wasmtel_guest_call_seconds_sum {sum}\nwasmtel_guest_call_seconds_count {count}");
    let sent: Vec<(String, u64)> =
        stats.per_sink.iter().map(|(sink, (ok, _))| (format!("{{sink=\"{sink}\"}}"), *ok)).collect();
    let refused: Vec<(String, u64)> =
        stats.per_sink.iter().map(|(sink, (_, dead))| (format!("{{sink=\"{sink}\"}}"), *dead)).collect();
    let mut counter = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    counter("wasmtel_sink_events_sent_total", "Events a sink took, by sink.", &sent);
    counter("wasmtel_sink_events_dead_lettered_total", "Events a sink refused, by sink.", &refused);
    let _ = writeln!(
        out,
        "# HELP wasmtel_queue_depth Events accepted and not yet processed.\n# TYPE wasmtel_queue_depth gauge\nwasmtel_queue_depth {}",
        state.spool.waiting()
    );
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}
