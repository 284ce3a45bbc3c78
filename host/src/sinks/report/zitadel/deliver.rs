//! The reporting flow for one pending report:
//! ReportBaseInformation → report ID → ReportResourceCounts in batches of
//! the bulk size, each carrying the latest report ID, a batch shorter than
//! the bulk size ending the report (an empty one when the counts divide
//! evenly). Every call goes through the retry policy; FAILED_PRECONDITION
//! (report ID unknown or too old) starts a new report, once. Progress is
//! saved after each accepted call, so an interrupted report resumes.

use std::time::{Duration, Instant};

use tonic::{Code, Status};

use super::client::{Client, request, with_deadline};
use crate::proto::zitadel as pb;
use crate::report::{BaseInformation, CountParentType, ResourceCount};
use crate::retry::{Decision, RetryPolicy, code_name};
use crate::sinks::report::{PendingReport, Save};

/// Why a delivery stopped.
#[derive(Debug)]
pub enum Stop {
    /// The receiver refused the report as invalid: keep it for inspection,
    /// do not retry.
    Rejected(Status),
    /// Not delivered now (retries exhausted, endpoint misconfigured, ...):
    /// keep it and try again on the next run.
    Deferred(Status),
}

/// What a call's failure means for the flow.
enum CallError {
    NewReport(Status),
    Stop(Stop),
}

/// Settings of one delivery.
pub struct Delivery<'a> {
    /// The client.
    pub client: &'a Client,
    /// Retry policy.
    pub policy: &'a RetryPolicy,
    /// Our system ID.
    pub system_id: &'a str,
    /// Counts per call.
    pub bulk_size: usize,
    /// Deadline per call.
    pub timeout: Duration,
}

impl Delivery<'_> {
    /// Delivers `pending`, calling `save` after every accepted call.
    pub async fn run(&mut self, pending: &mut PendingReport, save: Save<'_>) -> Result<(), Stop> {
        let mut restarted = false;
        loop {
            match self.attempt(pending, save).await {
                Ok(()) => return Ok(()),
                Err(CallError::Stop(stop)) => return Err(stop),
                Err(CallError::NewReport(status)) if !restarted => {
                    tracing::warn!(
                        code = code_name(status.code()),
                        "receiver refused the report ID ({}); starting a new report",
                        status.message()
                    );
                    restarted = true;
                    pending.report_id = None;
                    pending.batches_sent = 0;
                    save(pending);
                }
                Err(CallError::NewReport(status)) => return Err(Stop::Deferred(status)),
            }
        }
    }

    async fn attempt(&mut self, pending: &mut PendingReport, save: Save<'_>) -> Result<(), CallError> {
        // Without base information the first counts batch goes without a
        // report ID and the receiver issues one.
        if let (None, 0, Some(base)) = (&pending.report_id, pending.batches_sent, &pending.report.base) {
            let message = base_request(self.system_id, base);
            let response = self
                .call(pending, |mut client, timeout| {
                    let message = message.clone();
                    async move { client.report_base_information(request(message, timeout)).await }
                })
                .await?;
            pending.report_id = Some(response.report_id);
            save(pending);
        }
        // A batch shorter than the bulk size ends the report: when the counts
        // divide evenly, an empty batch ends it.
        let n = pending.report.counts.len();
        let total = n.div_ceil(self.bulk_size) + usize::from(n.is_multiple_of(self.bulk_size));
        while pending.batches_sent < total {
            let start = (pending.batches_sent * self.bulk_size).min(n);
            let end = (start + self.bulk_size).min(n);
            let counts: Vec<pb::ResourceCount> = pending.report.counts[start..end].iter().map(count_message).collect();
            let message = pb::ReportResourceCountsRequest {
                system_id: self.system_id.to_string(),
                report_id: pending.report_id.clone(),
                resource_counts: counts,
            };
            let response = self
                .call(pending, |mut client, timeout| {
                    let message = message.clone();
                    async move { client.report_resource_counts(request(message, timeout)).await }
                })
                .await?;
            pending.report_id = Some(response.report_id);
            pending.batches_sent += 1;
            save(pending);
        }
        Ok(())
    }

    /// One call under the retry policy.
    async fn call<T, F, Fut>(&mut self, pending: &mut PendingReport, mut f: F) -> Result<T, CallError>
    where
        F: FnMut(Client, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            pending.attempts += 1;
            let status = match with_deadline(self.timeout, f(self.client.clone(), self.timeout)).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => status,
            };
            match self.policy.decide(effective_code(&status), attempt, started.elapsed()) {
                Decision::Retry(wait) => {
                    tracing::debug!(
                        code = code_name(status.code()),
                        attempt,
                        "report call failed, retrying in {wait:?}: {}",
                        status.message()
                    );
                    tokio::time::sleep(wait).await;
                }
                Decision::NewReport => return Err(CallError::NewReport(status)),
                Decision::GiveUp if status.code() == Code::InvalidArgument => {
                    return Err(CallError::Stop(Stop::Rejected(status)));
                }
                Decision::GiveUp => return Err(CallError::Stop(Stop::Deferred(status))),
            }
        }
    }
}

/// The code a failed call is judged by. A status the client library made
/// up from a transport failure (it carries the underlying error as its
/// source: a connection reset or closed mid-call, as when the receiver
/// restarts) comes as UNKNOWN or CANCELLED although the receiver never
/// answered; it is retried like UNAVAILABLE. Codes the receiver sent
/// (no source) are taken as they are.
fn effective_code(status: &Status) -> Code {
    match status.code() {
        Code::Unknown | Code::Cancelled if std::error::Error::source(status).is_some() => Code::Unavailable,
        code => code,
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// The ReportBaseInformation request for `base`.
pub fn base_request(system_id: &str, base: &BaseInformation) -> pb::ReportBaseInformationRequest {
    pb::ReportBaseInformationRequest {
        system_id: system_id.to_string(),
        version: base.version.clone(),
        instances: base
            .instances
            .iter()
            .map(|i| pb::InstanceInformation {
                id: i.id.clone(),
                domains: i.domains.clone(),
                created_at: Some(timestamp(i.created_at)),
            })
            .collect(),
    }
}

/// The protobuf form of a count.
pub fn count_message(c: &ResourceCount) -> pb::ResourceCount {
    pb::ResourceCount {
        instance_id: c.instance_id.clone(),
        parent_type: match c.parent_type {
            CountParentType::Instance => pb::CountParentType::Instance,
            CountParentType::Organization => pb::CountParentType::Organization,
        } as i32,
        parent_id: c.parent_id.clone(),
        resource_name: c.resource_name.clone(),
        table_name: c.table_name.clone(),
        updated_at: Some(timestamp(c.updated_at)),
        amount: c.amount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_retried_like_unavailable_and_answers_are_not() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let from_transport = Status::from_error(Box::new(reset));
        assert!(matches!(from_transport.code(), Code::Unknown | Code::Cancelled | Code::Unavailable));
        assert_eq!(effective_code(&from_transport), Code::Unavailable);
        assert_eq!(effective_code(&Status::unknown("the receiver said so")), Code::Unknown);
        assert_eq!(effective_code(&Status::cancelled("the receiver said so")), Code::Cancelled);
        assert_eq!(effective_code(&Status::invalid_argument("bad")), Code::InvalidArgument);
    }
}
