//! The gRPC ingest service: validation (all or nothing, `INVALID_ARGUMENT`
//! naming the index, the field and the limit), bearer tokens mapped to
//! organizations, and acceptance into the raw log — OK only once the events
//! are on disk (group commit); `RESOURCE_EXHAUSTED` when the log is full;
//! `UNAVAILABLE` while a stage has failed or the disk refuses.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::event::codec::{NO_ORIGIN, RawEvent, event_bytes};
use crate::event::limits::{EventLimits, check_time};
use crate::event::{Event, Record, STRING_FIELDS, valid_id};
use crate::log::{Log, LogError};
use crate::proto::ingest as pb;
use crate::proto::ingest::telemetry_service_server::TelemetryService;
use crate::security::tokens::Tokens;
use crate::topology::health::Health;
use crate::transforms::redact::line::metadata_within;

/// The name ingest reports its own health under.
pub const STAGE: &str = "ingest";

/// The service.
#[derive(Clone)]
pub struct Ingest {
    raw: Arc<Log>,
    health: Arc<Health>,
    max_batch: usize,
    limits: EventLimits,
    /// Bearer token → organization id; `None` = no authentication.
    tokens: Option<Arc<Tokens>>,
    /// KiB of request metadata being parsed right now (bounds memory).
    inflight: Arc<tokio::sync::Semaphore>,
    counters: Arc<Counters>,
}

/// What the gRPC port turned away or could not record, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls without an accepted token (not recorded as request telemetry).
    pub unauthenticated: std::sync::atomic::AtomicU64,
    /// Calls to a method this server does not serve (not recorded).
    pub unknown_method: std::sync::atomic::AtomicU64,
    /// Request-telemetry events dropped (queue full or log refused).
    pub telemetry_dropped: std::sync::atomic::AtomicU64,
}

/// KiB of request metadata parsed at once, across all requests (64 MiB):
/// the JSON tree of a request takes several times its text.
const INFLIGHT_KIB: usize = 64 * 1024;

/// The protobuf name of a field an [`EventLimits`] error names.
fn proto_name(field: &str) -> String {
    let top = [
        ("orgId", "org_id"),
        ("userId", "user_id"),
        ("deviceId", "device_id"),
        ("sessionId", "session_id"),
        ("eventType", "event_type"),
        ("createdAt", "created_at"),
        ("event", "metadata"),
    ];
    top.iter().find(|(json, _)| *json == field).map_or_else(|| field.to_string(), |(_, proto)| proto.to_string())
}

impl Ingest {
    /// A service accepting into the raw log `raw`.
    pub fn new(
        raw: Arc<Log>,
        health: Arc<Health>,
        max_batch: usize,
        limits: EventLimits,
        tokens: Option<Arc<Tokens>>,
    ) -> Ingest {
        Ingest {
            raw,
            health,
            max_batch,
            limits,
            tokens,
            inflight: Arc::new(tokio::sync::Semaphore::new(INFLIGHT_KIB)),
            counters: Arc::default(),
        }
    }

    /// The raw log events are accepted into.
    pub fn raw(&self) -> &Arc<Log> {
        &self.raw
    }

    /// The organization the caller's token stands for (`None` without auth).
    pub fn authorize(&self, metadata: &MetadataMap) -> Result<Option<String>, Status> {
        let Some(tokens) = &self.tokens else { return Ok(None) };
        let header = metadata.get("authorization").and_then(|v| v.to_str().ok());
        tokens.authorize(header).map(Some).map_err(|e| Status::unauthenticated(e.to_string()))
    }

    /// What the port turned away or could not record.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The accepted tokens (`None` = no authentication).
    pub fn tokens(&self) -> Option<&Arc<Tokens>> {
        self.tokens.as_ref()
    }

    /// Validates and durably accepts `events`; `field` names them in errors.
    /// The JSON parsing of metadata is bounded: at most `inflight` bytes of
    /// metadata are worked on at once across all requests.
    pub async fn accept(
        &self,
        metadata: &MetadataMap,
        events: Vec<pb::TelemetryEvent>,
        field: &str,
    ) -> Result<u32, Status> {
        if events.len() > self.max_batch {
            return Err(Status::invalid_argument(format!(
                "{field}: a batch of {} events exceeds the limit of {} (max_batch); split it",
                events.len(),
                self.max_batch
            )));
        }
        let org = self.authorize(metadata)?;
        let bytes: usize = events.iter().map(|e| e.metadata.len() + 256).sum();
        let _permit = self.acquire(bytes).await?;
        if let Err(why) = self.health.ready_except(STAGE) {
            return Err(Status::unavailable(format!(
                "events cannot be delivered right now ({why}); retry with backoff"
            )));
        }
        let events = check_events(events, field, org.as_deref(), &self.limits, Utc::now())?;
        self.append_encoded(events.len(), move || events.iter().map(RawEvent::to_bytes).collect()).await
    }

    /// Waits for room to parse `bytes` of metadata.
    async fn acquire(&self, bytes: usize) -> Result<tokio::sync::SemaphorePermit<'_>, Status> {
        let permits = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX).min(INFLIGHT_KIB as u32);
        self.inflight
            .acquire_many(permits)
            .await
            .map_err(|_| Status::unavailable("the ingest service is shutting down"))
    }

    /// Appends checked records to the raw log.
    pub async fn append(&self, records: Vec<Record>) -> Result<u32, Status> {
        self.append_encoded(records.len(), move || records.iter().map(|r| event_bytes(r, NO_ORIGIN)).collect()).await
    }

    /// Appends `n` checked events, encoded by `encode` off the async
    /// threads, to the raw log.
    async fn append_encoded(
        &self,
        n: usize,
        encode: impl FnOnce() -> Vec<Vec<u8>> + Send + 'static,
    ) -> Result<u32, Status> {
        let n = n as u32;
        if n == 0 {
            return Ok(0);
        }
        let raw = Arc::clone(&self.raw);
        let appended = tokio::task::spawn_blocking(move || {
            let payloads = encode();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            raw.append(&refs)
        })
        .await
        .map_err(|e| Status::internal(format!("the log writer stopped: {e}")))?;
        match appended {
            Ok(_) => {
                self.health.ok(STAGE);
                Ok(n)
            }
            Err(LogError::Full { .. }) => Err(Status::resource_exhausted(
                "the pipeline is full (the raw log is at log.max_bytes or log.max_events); retry with backoff",
            )),
            Err(e @ LogError::Poisoned { .. }) => {
                self.health.fatal_now(&format!("the raw log cannot be written: {e}"));
                Err(Status::unavailable("events cannot be stored right now; retry later"))
            }
            Err(e) => {
                self.health.blocked(STAGE, &format!("cannot append to the raw log: {e}"));
                Err(Status::unavailable(format!("events cannot be stored right now ({e}); retry later")))
            }
        }
    }
}

/// Checks a batch of protobuf events and turns them into raw-log entries:
/// ids valid (or generated), metadata a JSON object, timestamps in range,
/// the organization matching the token's (`org`), and every event within
/// `limits`. `field` names the events in errors (`event` or `events`). The
/// metadata is scanned, not parsed, and stored as it was sent; an event the
/// scan does not pass goes through the event model, which says why it is
/// refused (or, where the scan was stricter, counting a key given twice
/// twice, takes it and stores it re-serialized).
/// This is everything `accept` does to a request short of authentication,
/// backpressure and the append, so the fuzz targets drive it directly.
pub fn check_events(
    events: Vec<pb::TelemetryEvent>,
    field: &str,
    org: Option<&str>,
    limits: &EventLimits,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<RawEvent>, Status> {
    let mut accepted = Vec::with_capacity(events.len());
    for (i, mut e) in events.into_iter().enumerate() {
        let at = |name: &str| if field == "event" { format!("event.{name}") } else { format!("{field}[{i}].{name}") };
        let id = match e.id.as_str() {
            "" => crate::event::new_id(),
            given if valid_id(given) => given.to_string(),
            _ => {
                return Err(Status::invalid_argument(format!(
                    "{}: expected 1 to {} characters of [A-Za-z0-9._:@/+=-]",
                    at("id"),
                    crate::event::MAX_ID_BYTES
                )));
            }
        };
        e.org_id = match org_of(org, std::mem::take(&mut e.org_id), &at) {
            Ok(org_id) => org_id,
            // What is malformed is said first, as the event model checks it.
            Err(denied) => {
                convert(e, now, &at)?;
                return Err(denied);
            }
        };
        if let Some(created_at) = fast_check(&e, limits, now) {
            let bytes = std::mem::take(&mut e.metadata);
            match String::from_utf8(if bytes.is_empty() { b"{}".to_vec() } else { bytes }) {
                Ok(metadata) => {
                    let fields = [e.org_id, e.user_id, e.device_id, e.session_id, e.event_type, e.source];
                    let (seconds, nanos) = (created_at.timestamp(), created_at.timestamp_subsec_nanos());
                    accepted.push(RawEvent { origin: NO_ORIGIN, id, seconds, nanos, fields, metadata });
                    continue;
                }
                // fast_check read it as UTF-8; were that ever not so, the
                // event model decides.
                Err(err) => e.metadata = err.into_bytes(),
            }
        }
        // The event model says what is wrong, in its words; or takes what
        // the scan was stricter about (a metadata key given twice).
        let event = convert(e, now, &at)?;
        limits.check(&event).map_err(|err| {
            Status::invalid_argument(format!("{}: {} (see [event_limits])", at(&proto_name(&err.field)), err.message))
        })?;
        accepted.push(RawEvent::from_record(&Record { id, event }, NO_ORIGIN));
    }
    Ok(accepted)
}

/// The organization of an event: the token's (`org`), which a given one
/// must match, or the given one without authentication.
fn org_of(org: Option<&str>, given: String, at: &dyn Fn(&str) -> String) -> Result<String, Status> {
    match (org, given.as_str()) {
        (Some(org), "") => Ok(org.to_string()),
        (Some(org), g) if g != org => Err(Status::permission_denied(format!(
            "{}: {g:?} does not match the organization of the token",
            at("org_id")
        ))),
        _ => Ok(given),
    }
}

/// Every check of [`convert`] and [`EventLimits::check`] on the protobuf
/// event as it is, its metadata scanned instead of parsed: the event's
/// `createdAt` if it passes them all. `None` leaves the event to the event
/// model, which says why it is refused.
fn fast_check(e: &pb::TelemetryEvent, limits: &EventLimits, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let created_at = match &e.created_at {
        None => now,
        Some(t) if (0..1_000_000_000).contains(&t.nanos) => DateTime::from_timestamp(t.seconds, t.nanos as u32)?,
        Some(_) => return None,
    };
    check_time(created_at).ok()?;
    let fields = [&e.org_id, &e.user_id, &e.device_id, &e.session_id, &e.event_type, &e.source];
    let mut size = 64;
    for ((name, _), value) in STRING_FIELDS.iter().zip(fields) {
        if value.len() > limits.max_value_bytes {
            return None;
        }
        size += value.len() + name.len() + 6;
    }
    if e.metadata.is_empty() {
        return (size <= limits.max_event_bytes).then_some(created_at);
    }
    // Stored as sent: whitespace the limits do not count must not make it
    // bigger than an event may be (the event model stores it compact).
    if e.metadata.len() > limits.max_event_bytes {
        return None;
    }
    let text = std::str::from_utf8(&e.metadata).ok()?;
    metadata_within(text, limits, size).map(|_| created_at)
}

/// One protobuf event as an [`Event`], checked.
fn convert(e: pb::TelemetryEvent, now: chrono::DateTime<Utc>, at: &dyn Fn(&str) -> String) -> Result<Event, Status> {
    let metadata = if e.metadata.is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&e.metadata) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return Err(Status::invalid_argument(format!(
                    "{}: expected a JSON object, found {}",
                    at("metadata"),
                    crate::event::kind(&other)
                )));
            }
            Err(err) => return Err(Status::invalid_argument(format!("{}: not valid JSON ({err})", at("metadata")))),
        }
    };
    let created_at = match e.created_at {
        None => now,
        Some(t) => {
            if !(0..1_000_000_000).contains(&t.nanos) {
                return Err(Status::invalid_argument(format!("{}: nanos must be within 0..1e9", at("created_at"))));
            }
            chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
                .ok_or_else(|| Status::invalid_argument(format!("{}: out of range", at("created_at"))))?
        }
    };
    Ok(Event {
        org_id: e.org_id,
        user_id: e.user_id,
        device_id: e.device_id,
        session_id: e.session_id,
        event_type: e.event_type,
        source: e.source,
        created_at,
        metadata,
    })
}

#[tonic::async_trait]
impl TelemetryService for Ingest {
    async fn emit_telemetry_event(
        &self,
        request: Request<pb::EmitTelemetryEventRequest>,
    ) -> Result<Response<pb::EmitTelemetryEventResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        if let Some(event) = message.event {
            self.accept(&metadata, vec![event], "event").await?;
        }
        Ok(Response::new(pb::EmitTelemetryEventResponse {}))
    }

    async fn batch_emit_telemetry(
        &self,
        request: Request<pb::BatchEmitTelemetryRequest>,
    ) -> Result<Response<pb::BatchEmitTelemetryResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let accepted = self.accept(&metadata, message.events, "events").await?;
        Ok(Response::new(pb::BatchEmitTelemetryResponse { accepted }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::codec::{Entry, decode};

    fn event(metadata: &str) -> pb::TelemetryEvent {
        pb::TelemetryEvent { org_id: "o".into(), metadata: metadata.as_bytes().to_vec(), ..Default::default() }
    }

    fn check(events: Vec<pb::TelemetryEvent>) -> Result<Vec<RawEvent>, Status> {
        check_events(events, "events", None, &EventLimits::default(), Utc::now())
    }

    #[test]
    fn metadata_is_stored_as_sent_and_reads_back_as_the_event_model_does() {
        let sent = r#"{ "b": [1, 2.50], "a": {"x": "\u00e9"} }"#;
        let raw = check(vec![event(sent), event("")]).unwrap();
        assert_eq!(raw[0].metadata, sent, "scanned, not parsed and re-serialized");
        assert_eq!(raw[1].metadata, "{}");
        let Entry::Event { record, .. } = decode(&raw[0].to_bytes()).unwrap() else { panic!("an event") };
        let expected: serde_json::Map<String, Value> = serde_json::from_str(sent).unwrap();
        assert_eq!(record.event.metadata, expected);
    }

    #[test]
    fn what_the_scan_refuses_is_judged_by_the_event_model() {
        // A key given twice is kept as sent (both are redacted later); read
        // back, the event model keeps the last one.
        let raw = check(vec![event(r#"{"k":1,"k":2}"#)]).unwrap();
        assert_eq!(raw[0].metadata, r#"{"k":1,"k":2}"#);
        let Entry::Event { record, .. } = decode(&raw[0].to_bytes()).unwrap() else { panic!("an event") };
        assert_eq!(record.event.metadata["k"], 2);
        let err = check(vec![event("{}"), event("[1]")]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("events[1].metadata: expected a JSON object"), "{}", err.message());
        let deep = format!("{}1{}", "{\"a\":".repeat(70), "}".repeat(70));
        let err = check(vec![event(&deep)]).unwrap_err();
        assert!(err.message().contains("deeper than 64"), "{}", err.message());
        let mut far = event("{}");
        far.created_at = Some(prost_types::Timestamp { seconds: 253_402_300_800, nanos: 0 });
        assert!(check(vec![far]).unwrap_err().message().contains("events[0].created_at"));
    }

    #[test]
    fn a_token_binds_the_organization() {
        let mut other = event("{}");
        other.org_id = "p".into();
        let err = check_events(vec![other], "events", Some("o"), &EventLimits::default(), Utc::now()).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        let mut blank = event("{}");
        blank.org_id.clear();
        let raw = check_events(vec![blank], "events", Some("o"), &EventLimits::default(), Utc::now()).unwrap();
        assert_eq!(raw[0].fields[0], "o");
    }
}
