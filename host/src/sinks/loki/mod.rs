//! The Grafana Loki sink: redacted events as log lines, pushed to
//! `/loki/api/v1/push` as snappy-compressed protobuf (default) or JSON.
//! See [`encode`] for labels and entries, [`service`] for batching, retries
//! and partial failures. Entries Loki refuses (a 400 naming them, or outside
//! its time window or line size) are dead-lettered; entries not delivered
//! because Loki is down or rate-limiting are handed back for a retry and stay
//! in the redacted log meanwhile.

mod config;
pub mod encode;
pub mod service;

use chrono::Utc;

pub use config::{Encoding, LokiConfig, OversizedLines};

use super::{BoxFuture, EventSink, Item, Sent, SinkError};
use crate::config::Stream;
use crate::guard::Redacted;

/// The Loki sink.
pub struct LokiSink {
    client: service::LokiClient,
    config: LokiConfig,
}

impl LokiSink {
    /// Builds the sink; secrets come from the configured environment variables.
    pub fn new(config: LokiConfig) -> Result<LokiSink, SinkError> {
        let client = service::LokiClient::new(&config).map_err(|e| SinkError::Other(format!("{e:#}")))?;
        Ok(LokiSink { client, config })
    }
}

impl EventSink for LokiSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn accepts(&self, stream: Stream) -> bool {
        stream == Stream::Events
    }

    fn send<'a>(&'a mut self, items: &'a [Item]) -> BoxFuture<'a, Result<Sent, SinkError>> {
        Box::pin(async move {
            // Loki entries index the events; map them back to item indexes.
            let mut index = Vec::with_capacity(items.len());
            let events: Vec<&Redacted> = items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Item::Event(e) => {
                        index.push(i);
                        Some(e)
                    }
                    // Lines reach only sinks that take lines: the delivery
                    // loop reads them into events for this one.
                    Item::Report(_) | Item::Line(_) => None,
                })
                .collect();
            let (entries, mut refused) = encode::prepare(&events, &self.config, Utc::now());
            let outcome = self.client.deliver(&entries).await;
            refused.extend(outcome.refused);
            let back = |list: Vec<(usize, String)>| list.into_iter().map(|(i, r)| (index[i], r)).collect();
            Ok(Sent { refused: back(refused), retry: back(outcome.undelivered) })
        })
    }
}
