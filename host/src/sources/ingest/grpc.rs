//! The gRPC ingest service: validation (all or nothing, `INVALID_ARGUMENT`
//! naming the index, the field and the limit), bearer tokens mapped to
//! organizations, and acceptance into the raw log — OK only once the events
//! are on disk (group commit); `RESOURCE_EXHAUSTED` when the log is full;
//! `UNAVAILABLE` while a stage has failed or the disk refuses.

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::event::codec::{NO_ORIGIN, event_bytes};
use crate::event::limits::EventLimits;
use crate::event::{Event, Record, valid_id};
use crate::log::{Log, LogError};
use crate::proto::ingest as pb;
use crate::proto::ingest::telemetry_service_server::TelemetryService;
use crate::security::tokens::Tokens;
use crate::topology::health::Health;

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
        let records = check_events(events, field, org.as_deref(), &self.limits, Utc::now())?;
        self.append(records).await
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
        let n = records.len() as u32;
        if n == 0 {
            return Ok(0);
        }
        let raw = Arc::clone(&self.raw);
        let appended = tokio::task::spawn_blocking(move || {
            let payloads: Vec<Vec<u8>> = records.iter().map(|r| event_bytes(r, NO_ORIGIN)).collect();
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

/// Checks a batch of protobuf events and turns them into records: ids
/// valid (or generated), metadata a JSON object, timestamps in range, the
/// organization matching the token's (`org`), and every event within
/// `limits`. `field` names the events in errors (`event` or `events`).
/// This is everything `accept` does to a request short of authentication,
/// backpressure and the append, so the fuzz targets drive it directly.
pub fn check_events(
    events: Vec<pb::TelemetryEvent>,
    field: &str,
    org: Option<&str>,
    limits: &EventLimits,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<Record>, Status> {
    let mut records = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
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
        let event = convert(e, now, org, &at)?;
        limits.check(&event).map_err(|err| {
            Status::invalid_argument(format!("{}: {} (see [event_limits])", at(&proto_name(&err.field)), err.message))
        })?;
        records.push(Record { id, event });
    }
    Ok(records)
}

/// One protobuf event as an [`Event`], checked.
fn convert(
    e: pb::TelemetryEvent,
    now: chrono::DateTime<Utc>,
    org: Option<&str>,
    at: &dyn Fn(&str) -> String,
) -> Result<Event, Status> {
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
    let org_id = match (org, e.org_id.as_str()) {
        (Some(org), "") => org.to_string(),
        (Some(org), given) if given != org => {
            return Err(Status::permission_denied(format!(
                "{}: {given:?} does not match the organization of the token",
                at("org_id")
            )));
        }
        _ => e.org_id,
    };
    Ok(Event {
        org_id,
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
