//! The ZITADEL-compatible gRPC reporter: delivers collector reports to a
//! `zitadel.analytics.v2beta.TelemetryService` (ReportBaseInformation, then
//! ReportResourceCounts in bulk-size batches chained by report ID), with the
//! retry policy of `shared/spec/zitadel-telemetry.md`.
//!
//! Outbox, draining and the `Sink` glue are shared with the HTTP reporter
//! ([`super::report_sink`]); this module is the protocol.

mod client;
mod config;
mod deliver;

use std::path::Path;
use std::time::Duration;

pub use config::{DEFAULT_BULK_SIZE, DEFAULT_TIMEOUT_MS, ZitadelConfig};
pub use deliver::{Delivery, Stop, base_request, count_message};

use super::report_sink::{Deliver, ReportSink};
use crate::installation::ReportingSwitch;
use crate::queue::PendingReport;

/// The gRPC reporter sink.
pub type ZitadelSink = ReportSink<GrpcDelivery>;

/// Delivers reports over gRPC.
pub struct GrpcDelivery {
    config: ZitadelConfig,
    system_id: String,
    client: Option<client::Client>,
    runtime: tokio::runtime::Runtime,
}

impl ReportSink<GrpcDelivery> {
    /// Opens the outbox and prepares a lazily connecting client.
    pub fn new(config: ZitadelConfig, state_dir: &Path, switch: ReportingSwitch) -> anyhow::Result<ZitadelSink> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let system_id = crate::installation::system_id(state_dir)?;
        let name = config.name.clone();
        Ok(ReportSink::open(&name, GrpcDelivery { config, system_id, client: None, runtime }, state_dir, switch)?)
    }
}

impl Deliver for GrpcDelivery {
    fn deliver(
        &mut self,
        pending: &mut PendingReport,
        save: &mut dyn FnMut(&PendingReport),
    ) -> Result<(), super::report_sink::Stop> {
        if self.client.is_none() {
            // The lazily connecting channel spawns its worker on this runtime.
            let _runtime = self.runtime.enter();
            let client =
                client::build(&self.config).map_err(|e| super::report_sink::Stop::Deferred(format!("{e:#}")))?;
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
        self.runtime.block_on(delivery.run(pending, save)).map_err(|stop| match stop {
            Stop::Rejected(s) => super::report_sink::Stop::Rejected(describe(s)),
            Stop::Deferred(s) => super::report_sink::Stop::Deferred(describe(s)),
        })
    }
}
