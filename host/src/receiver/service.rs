//! The TelemetryService implementation: validation (with the status codes
//! the reporter's retry policy expects), report IDs bound to system IDs, and
//! storage through [`ReceiverStore`].

use std::sync::Arc;

use chrono::Utc;
use tonic::{Request, Response, Status};

use super::store::{ReceiverStore, StoreError};
use crate::proto::zitadel as pb;
use crate::proto::zitadel::telemetry_service_server::TelemetryService;
use crate::report::{BaseInformation, CountParentType, InstanceInformation, ResourceCount};
use crate::security::tokens::Tokens;

/// Longest accepted identifier or name.
pub const MAX_TEXT: usize = 1024;

/// Limits of the receiver.
#[derive(Debug, Clone)]
pub struct ServiceLimits {
    /// Most counts in one ReportResourceCounts call.
    pub max_counts_per_request: usize,
    /// Report IDs older than this (seconds) are refused with FAILED_PRECONDITION.
    pub report_max_age_secs: i64,
    /// Accepted bearer tokens and the systems each may report for; `None`
    /// = no authentication.
    pub tokens: Option<Arc<Tokens>>,
}

/// The service.
pub struct Receiver {
    store: Arc<ReceiverStore>,
    limits: ServiceLimits,
}

impl Receiver {
    /// A service storing into `store`.
    pub fn new(store: Arc<ReceiverStore>, limits: ServiceLimits) -> Receiver {
        Receiver { store, limits }
    }

    /// Checks the caller's token and that it may report for `system_id`.
    fn authorize<T>(&self, request: &Request<T>, system_id: &str) -> Result<(), Status> {
        let Some(tokens) = &self.limits.tokens else { return Ok(()) };
        let header = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        let allowed = tokens.authorize(header).map_err(|e| Status::unauthenticated(e.to_string()))?;
        if super::may_report(&allowed, system_id) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!("this token may not report for system_id {system_id:?}")))
        }
    }
}

fn text(field: &str, value: &str, required: bool) -> Result<(), Status> {
    if required && value.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    if value.len() > MAX_TEXT {
        return Err(Status::invalid_argument(format!("{field} is longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}

fn time(field: &str, t: Option<&prost_types::Timestamp>) -> Result<chrono::DateTime<Utc>, Status> {
    let Some(t) = t else {
        return Err(Status::invalid_argument(format!("{field} is required")));
    };
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Status::invalid_argument(format!("{field}.nanos must be within 0..1e9")));
    }
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .ok_or_else(|| Status::invalid_argument(format!("{field} is out of range")))
}

/// Checks and converts a base information request.
pub fn validate_base(r: &pb::ReportBaseInformationRequest) -> Result<BaseInformation, Status> {
    text("system_id", &r.system_id, true)?;
    text("version", &r.version, false)?;
    let mut instances = Vec::with_capacity(r.instances.len());
    for (i, inst) in r.instances.iter().enumerate() {
        text(&format!("instances[{i}].id"), &inst.id, true)?;
        for (j, d) in inst.domains.iter().enumerate() {
            text(&format!("instances[{i}].domains[{j}]"), d, true)?;
        }
        instances.push(InstanceInformation {
            id: inst.id.clone(),
            domains: inst.domains.clone(),
            created_at: time(&format!("instances[{i}].created_at"), inst.created_at.as_ref())?,
        });
    }
    Ok(BaseInformation { version: r.version.clone(), instances })
}

/// Checks and converts resource counts.
pub fn validate_counts(r: &pb::ReportResourceCountsRequest, max: usize) -> Result<Vec<ResourceCount>, Status> {
    text("system_id", &r.system_id, true)?;
    if r.resource_counts.len() > max {
        return Err(Status::invalid_argument(format!(
            "{} resource_counts in one request; at most {max} are accepted (send smaller batches)",
            r.resource_counts.len()
        )));
    }
    r.resource_counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = |name: &str| format!("resource_counts[{i}].{name}");
            text(&f("instance_id"), &c.instance_id, true)?;
            text(&f("parent_id"), &c.parent_id, true)?;
            text(&f("resource_name"), &c.resource_name, true)?;
            text(&f("table_name"), &c.table_name, false)?;
            let parent_type = match pb::CountParentType::try_from(c.parent_type) {
                Ok(pb::CountParentType::Instance) => CountParentType::Instance,
                Ok(pb::CountParentType::Organization) => CountParentType::Organization,
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "{} must be INSTANCE or ORGANIZATION, found {}",
                        f("parent_type"),
                        c.parent_type
                    )));
                }
            };
            Ok(ResourceCount {
                instance_id: c.instance_id.clone(),
                parent_type,
                parent_id: c.parent_id.clone(),
                resource_name: c.resource_name.clone(),
                table_name: c.table_name.clone(),
                updated_at: time(&f("updated_at"), c.updated_at.as_ref())?,
                amount: c.amount,
            })
        })
        .collect()
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!("receiver storage failed: {e}");
    Status::unavailable("storage is temporarily unavailable; retry later")
}

#[tonic::async_trait]
impl TelemetryService for Receiver {
    async fn report_base_information(
        &self,
        request: Request<pb::ReportBaseInformationRequest>,
    ) -> Result<Response<pb::ReportBaseInformationResponse>, Status> {
        self.authorize(&request, &request.get_ref().system_id)?;
        let r = request.into_inner();
        let base = validate_base(&r)?;
        let store = self.store.clone();
        let stale = Utc::now().timestamp() - self.limits.report_max_age_secs;
        let report_id = tokio::task::spawn_blocking(move || {
            store.prune_reports(stale)?;
            store.begin_report(&r.system_id, Some(&base))
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        Ok(Response::new(pb::ReportBaseInformationResponse { report_id }))
    }

    async fn report_resource_counts(
        &self,
        request: Request<pb::ReportResourceCountsRequest>,
    ) -> Result<Response<pb::ReportResourceCountsResponse>, Status> {
        self.authorize(&request, &request.get_ref().system_id)?;
        let r = request.into_inner();
        let counts = validate_counts(&r, self.limits.max_counts_per_request)?;
        let store = self.store.clone();
        let max_age = self.limits.report_max_age_secs;
        let report_id = tokio::task::spawn_blocking(move || -> Result<Result<String, Status>, StoreError> {
            let report_id = match r.report_id.as_deref().filter(|id| !id.is_empty()) {
                None => store.begin_report(&r.system_id, None)?,
                Some(id) => match store.report_owner(id)? {
                    None => {
                        return Ok(Err(Status::failed_precondition(format!(
                            "report_id {id} is unknown: start a new report with ReportBaseInformation"
                        ))));
                    }
                    Some((owner, _)) if owner != r.system_id => {
                        return Ok(Err(Status::failed_precondition(format!(
                            "report_id {id} belongs to another system: start a new report"
                        ))));
                    }
                    Some((_, created)) if Utc::now().timestamp() - created > max_age => {
                        return Ok(Err(Status::failed_precondition(format!(
                            "report_id {id} is too old: start a new report"
                        ))));
                    }
                    Some(_) => id.to_string(),
                },
            };
            store.store_counts(&r.system_id, &report_id, &counts)?;
            Ok(Ok(report_id))
        })
        .await
        .map_err(internal)?
        .map_err(internal)??;
        Ok(Response::new(pb::ReportResourceCountsResponse { report_id }))
    }
}
