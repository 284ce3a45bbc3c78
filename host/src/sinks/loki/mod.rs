//! The Grafana Loki sink: redacted events as log lines, pushed to
//! `/loki/api/v1/push` as snappy-compressed protobuf (default) or JSON.
//! See [`encode`] for labels and entries, [`service`] for batching, retries
//! and partial failures. Shared by `wasmtel run` (this [`LokiSink`]) and the
//! Kafka → Loki worker (which uses [`service::LokiClient`] directly).

mod config;
pub mod encode;
pub mod service;

use chrono::Utc;

pub use config::{Encoding, LokiConfig, OversizedLines};

use super::{Refused, Sink};
use crate::config::Stream;
use crate::guard::Redacted;
use crate::report::Report;

/// The Loki sink for `wasmtel run`.
pub struct LokiSink {
    client: service::LokiClient,
    name: String,
    config: LokiConfig,
    runtime: tokio::runtime::Runtime,
}

impl LokiSink {
    /// Builds the sink.
    pub fn new(config: LokiConfig) -> anyhow::Result<LokiSink> {
        Ok(LokiSink {
            client: service::LokiClient::new(&config)?,
            name: config.name.clone(),
            config,
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        })
    }
}

impl Sink for LokiSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, stream: Stream) -> bool {
        stream == Stream::Events
    }

    fn send_events(&mut self, events: &[Redacted]) -> std::io::Result<Refused> {
        let (entries, mut refused) = encode::prepare(events, &self.config, Utc::now());
        let outcome = self.runtime.block_on(self.client.deliver(&entries));
        refused.extend(outcome.refused);
        refused.extend(outcome.undelivered);
        Ok(refused)
    }

    fn send_report(&mut self, _report: &Report) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
