//! A Loki push receiver that decodes and validates exactly what real Loki
//! does (`shared/spec/loki.md`): snappy block + `logproto.PushRequest` for
//! any Content-Type other than `application/json`, JSON with string
//! nanosecond timestamps, optional gzip; label syntax and limits (names
//! `[a-zA-Z_][a-zA-Z0-9_]*`, at most 15, name ≤ 1024 and value ≤ 2048 bytes,
//! at least one); lines ≤ 256 KB; timestamps within 168 h in the past and
//! 10 min in the future; unordered writes up to 1 h behind a stream's newest
//! entry; exact duplicates dropped silently. Status codes as Loki's: 204,
//! 400 (whole request for label errors; per entry otherwise, with the valid
//! entries stored), 422 for an empty JSON push. It can be told to answer
//! 429/500 for fault tests.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use prost::Message;

use crate::proto::logproto;
use crate::sinks::loki::encode::try_parse_labels;

/// Loki's defaults.
const MAX_LABELS: usize = 15;
const MAX_NAME: usize = 1024;
const MAX_VALUE: usize = 2048;
const MAX_LINE: usize = 256 * 1024;
const MAX_AGE_NS: i128 = 168 * 3600 * 1_000_000_000;
const GRACE_NS: i128 = 10 * 60 * 1_000_000_000;
const WINDOW_NS: i128 = 3600 * 1_000_000_000;

/// One stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Unix nanoseconds.
    pub ts_ns: i128,
    /// The line.
    pub line: String,
    /// Structured metadata.
    pub structured: Vec<(String, String)>,
}

/// What the stand-in holds.
#[derive(Debug, Default)]
pub struct State {
    /// Entries per stream (canonical label text), in arrival order.
    pub streams: BTreeMap<String, Vec<Stored>>,
    /// Statuses to answer next (e.g. 429, 500) instead of processing.
    pub faults: VecDeque<u16>,
    /// Push requests received.
    pub requests: u64,
    /// Exact duplicates dropped.
    pub duplicates: u64,
    /// Entries refused.
    pub refused: u64,
    /// `X-Scope-OrgID` of each accepted request.
    pub tenants: Vec<Option<String>>,
    /// `Authorization` of the last request.
    pub last_authorization: Option<String>,
    /// Per stream: newest timestamp and (timestamp, line hash) of each entry,
    /// so checks cost O(1) per entry, not a scan of the stream.
    index: HashMap<String, (i128, HashSet<(i128, u64)>)>,
}

impl State {
    /// Forgets every stored entry.
    pub fn clear(&mut self) {
        self.streams.clear();
        self.index.clear();
    }

    /// Every stored line.
    pub fn lines(&self) -> Vec<&str> {
        self.streams.values().flatten().map(|e| e.line.as_str()).collect()
    }
}

/// A running stand-in.
pub struct LokiStub {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl LokiStub {
    /// Starts on a free loopback port (on the current tokio runtime).
    pub async fn start() -> std::io::Result<LokiStub> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().route(
            "/loki/api/v1/push",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { handle(&mut state.lock().unwrap_or_else(|p| p.into_inner()), &headers, &body) }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(LokiStub { addr, state })
    }

    /// Its base URL (for a sink's `endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The state.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An entry as decoded from either encoding.
struct Incoming {
    ts_ns: i128,
    line: String,
    structured: Vec<(String, String)>,
}

/// Streams (label text, entries) decoded from a push, or the answer to give.
type Decoded = Result<Vec<(String, Vec<Incoming>)>, (StatusCode, String)>;

fn bad(msg: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, msg.into())
}

/// Handles one push request.
pub fn handle(state: &mut State, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
    state.requests += 1;
    if let Some(status) = state.faults.pop_front() {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (code, format!("injected fault {status}"));
    }
    state.last_authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    let Some(content_type) = headers.get("content-type").and_then(|v| v.to_str().ok()) else {
        return bad("unsupported Content-Type: none given");
    };
    let mut raw = body.to_vec();
    if headers.get("content-encoding").and_then(|v| v.to_str().ok()) == Some("gzip") {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).is_err() {
            return bad("gzip: invalid body");
        }
        raw = out;
    }
    let streams = if content_type.starts_with("application/json") {
        match decode_json(&raw) {
            Ok(s) if s.is_empty() => return (StatusCode::UNPROCESSABLE_ENTITY, "no streams in push request".into()),
            Ok(s) => s,
            Err(e) => return e,
        }
    } else {
        match decode_protobuf(&raw) {
            Ok(s) => s,
            Err(e) => return e,
        }
    };
    // Label errors reject the whole request before anything is stored.
    let mut parsed = Vec::with_capacity(streams.len());
    for (labels, entries) in streams {
        match validate_labels(&labels) {
            Ok(canonical) => parsed.push((canonical, entries)),
            Err(e) => return e,
        }
    }
    let now = Utc::now().timestamp_nanos_opt().unwrap_or_default() as i128;
    let (mut total, mut reasons) = (0, Vec::new());
    for (labels, entries) in parsed {
        for e in entries {
            total += 1;
            let newest = state.index.get(&labels).map(|(n, _)| *n);
            let refuse = if e.line.len() > MAX_LINE {
                Some(format!("line too long: {} bytes, limit {MAX_LINE}", e.line.len()))
            } else if e.ts_ns < now - MAX_AGE_NS {
                Some("entry too old (reject_old_samples_max_age 168h)".to_string())
            } else if e.ts_ns > now + GRACE_NS {
                Some("entry too far in the future (creation_grace_period 10m)".to_string())
            } else if newest.is_some_and(|n| e.ts_ns < n - WINDOW_NS) {
                Some("entry too far behind".to_string())
            } else {
                None
            };
            if let Some(reason) = refuse {
                state.refused += 1;
                reasons
                    .push(format!("entry with timestamp {} ignored, reason: '{reason}' for stream: {labels}", e.ts_ns));
                continue;
            }
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&e.line, &mut hasher);
            let key = (e.ts_ns, std::hash::Hasher::finish(&hasher));
            let (newest, seen) = state.index.entry(labels.clone()).or_insert((e.ts_ns, HashSet::new()));
            let stream = state.streams.entry(labels.clone()).or_default();
            if seen.contains(&key) && stream.iter().any(|s| s.ts_ns == e.ts_ns && s.line == e.line) {
                state.duplicates += 1;
                continue;
            }
            seen.insert(key);
            *newest = (*newest).max(e.ts_ns);
            stream.push(Stored { ts_ns: e.ts_ns, line: e.line, structured: e.structured });
        }
    }
    if reasons.is_empty() {
        state.tenants.push(headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()).map(String::from));
        return (StatusCode::NO_CONTENT, String::new());
    }
    let n = reasons.len();
    reasons.push(format!("total ignored: {n} out of {total}"));
    bad(reasons.join("\n"))
}

fn decode_protobuf(raw: &[u8]) -> Decoded {
    let decoded = snap::raw::Decoder::new().decompress_vec(raw).map_err(|e| bad(format!("snappy: {e}")))?;
    let request = logproto::PushRequest::decode(&decoded[..]).map_err(|e| bad(format!("protobuf: {e}")))?;
    Ok(request
        .streams
        .into_iter()
        .map(|s| {
            let entries = s
                .entries
                .into_iter()
                .map(|e| {
                    let ts = e.timestamp.unwrap_or_default();
                    Incoming {
                        ts_ns: ts.seconds as i128 * 1_000_000_000 + ts.nanos as i128,
                        line: e.line,
                        structured: e.structured_metadata.into_iter().map(|p| (p.name, p.value)).collect(),
                    }
                })
                .collect();
            (s.labels, entries)
        })
        .collect())
}

fn decode_json(raw: &[u8]) -> Decoded {
    let value: serde_json::Value = serde_json::from_slice(raw).map_err(|e| bad(format!("JSON: {e}")))?;
    let streams = value.get("streams").and_then(|s| s.as_array()).ok_or_else(|| bad("JSON: missing streams"))?;
    let mut out = Vec::new();
    for s in streams {
        let labels = s.get("stream").and_then(|l| l.as_object()).ok_or_else(|| bad("JSON: stream without labels"))?;
        let text = format!(
            "{{{}}}",
            labels
                .iter()
                .map(|(k, v)| format!(
                    "{k}={}",
                    serde_json::to_string(v.as_str().unwrap_or_default()).unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut entries = Vec::new();
        for v in s.get("values").and_then(|v| v.as_array()).ok_or_else(|| bad("JSON: stream without values"))? {
            let ts = v
                .get(0)
                .and_then(|t| t.as_str())
                .ok_or_else(|| bad("JSON: timestamps must be strings of Unix nanoseconds"))?;
            let ts_ns: i128 = ts.parse().map_err(|_| bad(format!("JSON: timestamp {ts:?} is not a number")))?;
            let line = v.get(1).and_then(|l| l.as_str()).ok_or_else(|| bad("JSON: line must be a string"))?.to_string();
            let structured = v
                .get(2)
                .and_then(|m| m.as_object())
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                .unwrap_or_default();
            entries.push(Incoming { ts_ns, line, structured });
        }
        out.push((text, entries));
    }
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a label set; returns it in canonical form (sorted by name).
fn validate_labels(text: &str) -> Result<String, (StatusCode, String)> {
    let mut labels = try_parse_labels(text).ok_or_else(|| bad(format!("error parsing labels {text:?}")))?;
    if labels.is_empty() {
        return Err(bad("error at least one label pair is required per stream"));
    }
    if labels.len() > MAX_LABELS {
        return Err(bad(format!("entry for stream '{text}' has {} label names; limit {MAX_LABELS}", labels.len())));
    }
    for (name, value) in &labels {
        if !valid_name(name) {
            return Err(bad(format!("invalid label name {name:?}")));
        }
        if name.len() > MAX_NAME {
            return Err(bad(format!("label name too long: {name:?}")));
        }
        if value.len() > MAX_VALUE {
            return Err(bad(format!("label value too long for {name}: {} bytes", value.len())));
        }
    }
    labels.sort();
    Ok(format!(
        "{{{}}}",
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
