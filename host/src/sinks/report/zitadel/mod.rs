//! The ZITADEL-compatible gRPC reporter: delivers collector reports to a
//! `zitadel.analytics.v2beta.TelemetryService` (ReportBaseInformation, then
//! ReportResourceCounts in bulk-size batches chained by report ID), with the
//! retry policy of `shared/spec/zitadel-telemetry.md`.
//!
//! Outbox, draining and the task are shared with the HTTP reporter
//! ([`super`]); this module is the protocol.

mod client;
mod config;
mod deliver;

use std::path::Path;
use std::time::Duration;

pub use config::{DEFAULT_BULK_SIZE, DEFAULT_TIMEOUT_MS, ZitadelConfig};
pub use deliver::{Delivery, Stop, base_request, count_message};

use super::{Deliver, PendingReport, ReportSink, Save};
use crate::installation::ReportingSwitch;
use crate::sinks::BoxFuture;

/// Delivers reports over gRPC.
pub struct GrpcDelivery {
    config: ZitadelConfig,
    system_id: String,
    client: Option<client::Client>,
}

/// The gRPC reporter sink: opens the outbox and prepares a lazily
/// connecting client.
pub fn sink(config: ZitadelConfig, state_dir: &Path, switch: ReportingSwitch) -> anyhow::Result<ReportSink> {
    let system_id = crate::installation::system_id(state_dir)?;
    let name = config.name.clone();
    let delivery = GrpcDelivery { config, system_id, client: None };
    Ok(ReportSink::open(&name, Box::new(delivery), state_dir, switch)?)
}

impl Deliver for GrpcDelivery {
    fn deliver<'a>(
        &'a mut self,
        pending: &'a mut PendingReport,
        save: Save<'a>,
    ) -> BoxFuture<'a, Result<(), super::Stop>> {
        Box::pin(async move {
            if self.client.is_none() {
                let client = client::build(&self.config).map_err(|e| super::Stop::Deferred(format!("{e:#}")))?;
                self.client = Some(client);
            }
            let client = self.client.as_ref().expect("client was just built");
            let mut delivery = Delivery {
                client,
                policy: &self.config.retry,
                system_id: &self.system_id,
                bulk_size: self.config.bulk_size,
                timeout: Duration::from_millis(self.config.timeout_ms),
            };
            let describe = |s: tonic::Status| format!("{}: {}", crate::retry::code_name(s.code()), s.message());
            delivery.run(pending, save).await.map_err(|stop| match stop {
                Stop::Rejected(s) => super::Stop::Rejected(describe(s)),
                Stop::Deferred(s) => super::Stop::Deferred(describe(s)),
            })
        })
    }
}
