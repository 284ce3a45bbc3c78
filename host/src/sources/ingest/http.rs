//! HTTP on the ingest side: `POST /v1/events` for the shape popular product
//! telemetry clients send — one or many `{"event": NAME, "payload": {...}}`,
//! mapped to events (`event_type = NAME`, `metadata = payload`, `source =
//! http`) with the same validation, auth and backpressure as gRPC, answered
//! as HTTP statuses (400, 401, 403, 413, 429 with `Retry-After`, 503 with
//! `Retry-After`) — `GET /metrics` in the Prometheus text format, `GET
//! /health` (liveness: the process answers) and `GET /ready` (readiness:
//! 200 while every stage works, else 503 saying which stage and why).

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
use crate::log::Log;
use crate::proto::ingest as pb;
use crate::stats::Stats;
use crate::topology::health::{Health, StageState};

/// What the HTTP side needs.
#[derive(Clone)]
pub struct HttpState {
    /// The gRPC service's acceptance logic.
    pub ingest: Ingest,
    /// The pipeline's counters.
    pub stats: Arc<Mutex<Stats>>,
    /// Every stage's health.
    pub health: Arc<Health>,
    /// The redacted log (for the sinks' lag).
    pub redacted: Arc<Log>,
}

/// The router.
pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new()
        .route("/v1/events", axum::routing::post(post_events))
        .route("/metrics", axum::routing::get(metrics))
        .route("/health", axum::routing::get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/ready", axum::routing::get(ready))
        .with_state(state)
}

/// 200 with every stage's state while all work; 503 naming the failed ones.
async fn ready(State(state): State<HttpState>) -> Response {
    let stages: serde_json::Map<String, Value> = state
        .health
        .stages()
        .into_iter()
        .map(|(name, s)| {
            let v = match s {
                StageState::Ok => json!({"state": "ok"}),
                StageState::Degraded(why) => json!({"state": "degraded", "reason": why}),
                StageState::Failed { reason, failures } => {
                    json!({"state": "failed", "reason": reason, "failures": failures})
                }
            };
            (name, v)
        })
        .collect();
    match state.health.ready() {
        Ok(()) => (StatusCode::OK, Json(json!({"ready": true, "stages": stages}))).into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false, "reason": why.0, "stages": stages})))
            .into_response(),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Why a `POST /v1/events` body was refused before validation (HTTP 400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadBody(pub String);

/// Reads a `POST /v1/events` body (one event object or an array of them)
/// into protobuf events, the form every ingest path validates.
pub fn events_from_body(body: &[u8]) -> Result<Vec<pb::TelemetryEvent>, BadBody> {
    let value: Value = serde_json::from_slice(body).map_err(|e| BadBody(format!("body: not valid JSON ({e})")))?;
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => return Err(BadBody("body: expected an event object or an array of them".into())),
    };
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(name) = item.get("event").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
            return Err(BadBody(format!("events[{i}].event: expected a non-empty string")));
        };
        let payload = match item.get("payload") {
            None | Some(Value::Null) => json!({}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return Err(BadBody(format!("events[{i}].payload: expected a JSON object"))),
        };
        let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        events.push(pb::TelemetryEvent {
            id: text("id"),
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
    Ok(events)
}

async fn post_events(State(state): State<HttpState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let events = match events_from_body(&body) {
        Ok(events) => events,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.0),
    };
    match state.ingest.accept(&MetadataMap::from_headers(headers), events, "events").await {
        Ok(n) => (StatusCode::OK, Json(json!({ "accepted": n }))).into_response(),
        Err(status) => {
            let code = match status.code() {
                Code::InvalidArgument if status.message().contains("(max_batch)") => StatusCode::PAYLOAD_TOO_LARGE,
                Code::InvalidArgument => StatusCode::BAD_REQUEST,
                Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                Code::PermissionDenied => StatusCode::FORBIDDEN,
                Code::ResourceExhausted => {
                    let mut r = error(StatusCode::TOO_MANY_REQUESTS, status.message());
                    r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
                    return r;
                }
                _ => {
                    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, status.message());
                    r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("5"));
                    return r;
                }
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
        stats.per_sink.iter().map(|(sink, s)| (format!("{{sink=\"{sink}\"}}"), s.sent)).collect();
    let refused: Vec<(String, u64)> =
        stats.per_sink.iter().map(|(sink, s)| (format!("{{sink=\"{sink}\"}}"), s.dead_lettered)).collect();
    let retries: Vec<(String, u64)> =
        stats.per_sink.iter().map(|(sink, s)| (format!("{{sink=\"{sink}\"}}"), s.retries)).collect();
    let mut counter = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    counter("wasmtel_sink_events_sent_total", "Events a sink took, by sink.", &sent);
    counter("wasmtel_sink_events_dead_lettered_total", "Events a sink refused, by sink.", &refused);
    counter("wasmtel_sink_retries_total", "Sends retried because the destination was unavailable.", &retries);
    let raw = state.ingest.raw();
    let mut gauge = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    gauge("wasmtel_queue_depth", "Events accepted and not yet redacted.", &[(String::new(), raw.live_events())]);
    let log_bytes = [
        ("{log=\"raw\"}".to_string(), raw.disk_bytes()),
        ("{log=\"redacted\"}".to_string(), state.redacted.disk_bytes()),
    ];
    gauge("wasmtel_log_bytes", "Bytes of log segment files.", &log_bytes);
    let summary = crate::log::peek::summary(state.redacted.dir()).unwrap_or_default();
    let next = state.redacted.next_seq();
    let lag: Vec<(String, u64)> = summary
        .cursors
        .iter()
        .map(|(sink, (pos, _))| (format!("{{sink=\"{sink}\"}}"), next.saturating_sub(*pos)))
        .collect();
    gauge("wasmtel_sink_lag_events", "Events in the redacted log a sink has not taken yet.", &lag);
    let ready = u64::from(state.health.ready().is_ok());
    gauge("wasmtel_ready", "1 while every stage works.", &[(String::new(), ready)]);
    let c = state.ingest.counters();
    let tokens = state.ingest.tokens();
    let load = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
    let counters = [
        (
            "wasmtel_log_torn_tails_total",
            "Torn log tails cut when a log was opened.",
            load(&crate::metrics::LOG_TAILS_CUT),
        ),
        (
            "wasmtel_ingest_unauthenticated_calls_total",
            "gRPC calls without an accepted token (not recorded).",
            load(&c.unauthenticated),
        ),
        (
            "wasmtel_ingest_unknown_method_calls_total",
            "gRPC calls to methods not served (not recorded).",
            load(&c.unknown_method),
        ),
        (
            "wasmtel_request_telemetry_dropped_total",
            "Request-telemetry events dropped (queue full or log refused).",
            load(&c.telemetry_dropped),
        ),
        ("wasmtel_token_reloads_total", "Reloads of a changed tokens_file.", tokens.map_or(0, |t| t.reloads())),
        (
            "wasmtel_token_reload_failures_total",
            "Failed reloads of tokens_file (old tokens kept).",
            tokens.map_or(0, |t| t.reload_failures()),
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}
