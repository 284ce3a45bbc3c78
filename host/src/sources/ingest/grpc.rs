//! The gRPC ingest service: validation (all or nothing, `INVALID_ARGUMENT`
//! naming the index and field), bearer tokens mapped to organizations, and
//! acceptance into the spool (`RESOURCE_EXHAUSTED` when it is full).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::event::Event;
use crate::proto::ingest as pb;
use crate::proto::ingest::telemetry_service_server::TelemetryService;
use crate::queue::spool::{Spool, SpoolError};

/// The service.
#[derive(Clone)]
pub struct Ingest {
    spool: Arc<Spool>,
    max_batch: usize,
    /// Bearer token → organization id; empty = no authentication.
    tokens: Arc<BTreeMap<String, String>>,
}

impl Ingest {
    /// A service accepting into `spool`.
    pub fn new(spool: Arc<Spool>, max_batch: usize, tokens: BTreeMap<String, String>) -> Ingest {
        Ingest { spool, max_batch, tokens: Arc::new(tokens) }
    }

    /// The organization the caller's token stands for (`None` without auth).
    fn authorize(&self, metadata: &MetadataMap) -> Result<Option<String>, Status> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let header = metadata.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>` metadata"))?;
        self.tokens
            .get(token)
            .cloned()
            .map(Some)
            .ok_or_else(|| Status::unauthenticated("the bearer token is not accepted"))
    }

    /// Validates and spools `events`; `field` names them in errors.
    pub async fn accept(
        &self,
        metadata: &MetadataMap,
        events: Vec<pb::TelemetryEvent>,
        field: &str,
    ) -> Result<u32, Status> {
        if events.len() > self.max_batch {
            return Err(Status::invalid_argument(format!(
                "a batch of {} events exceeds the maximum of {}; split it",
                events.len(),
                self.max_batch
            )));
        }
        let org = self.authorize(metadata)?;
        let now = Utc::now();
        let mut converted = Vec::with_capacity(events.len());
        for (i, e) in events.into_iter().enumerate() {
            let at =
                |name: &str| if field == "event" { format!("event.{name}") } else { format!("{field}[{i}].{name}") };
            converted.push(convert(e, now, org.as_deref(), &at)?);
        }
        let n = converted.len() as u32;
        let spool = self.spool.clone();
        match tokio::task::spawn_blocking(move || spool.append(&converted)).await {
            Ok(Ok(())) => Ok(n),
            Ok(Err(SpoolError::Full { waiting })) => Err(Status::resource_exhausted(format!(
                "the pipeline is full ({waiting} events waiting); retry with backoff"
            ))),
            Ok(Err(SpoolError::Io(e))) => {
                tracing::error!("cannot spool events: {e}");
                Err(Status::unavailable("events cannot be stored right now; retry later"))
            }
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }
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
