//! The Kafka sink: each redacted event becomes one message — its JSON form
//! (camelCase, as `shared/spec/ingest.md` maps it) as the value and, by
//! default, the organization id as the key. The producer runs with
//! `acks=all` and idempotence on; an event counts as delivered only when its
//! delivery report says the broker has it. Failed deliveries are sent again
//! (`resends`), then dead-lettered with the reason. Producer errors never
//! reach the host application.

mod config;

use std::time::Duration;

pub use config::{KafkaConfig, KeyField};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::{Refused, Sink};
use crate::config::Stream;
use crate::guard::Redacted;
use crate::report::Report;

/// The Kafka producer sink.
pub struct KafkaSink {
    config: KafkaConfig,
    producer: FutureProducer,
    runtime: tokio::runtime::Runtime,
}

impl KafkaSink {
    /// Creates the producer (it connects in the background).
    pub fn new(config: KafkaConfig) -> anyhow::Result<KafkaSink> {
        let producer: FutureProducer = config
            .client_config()
            .create()
            .map_err(|e| anyhow::anyhow!("cannot create the Kafka producer for {}: {e}", config.brokers))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(KafkaSink { config, producer, runtime })
    }

    /// Sends `payloads` (index, key, value) and waits for every delivery
    /// report; returns the ones that failed with the reason.
    async fn send_all(&self, payloads: &[(usize, Option<String>, String)]) -> Vec<(usize, String)> {
        let mut waiting = Vec::with_capacity(payloads.len());
        let mut failed = Vec::new();
        for (index, key, value) in payloads {
            let mut record = FutureRecord::to(&self.config.topic).payload(value.as_str());
            if let Some(key) = key {
                record = record.key(key.as_str());
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        waiting.push((*index, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // The local queue is full: let deliveries drain, then try again.
                        record = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        failed.push((*index, format!("Kafka producer refused the message: {e}")));
                        break;
                    }
                }
            }
        }
        for (index, delivery) in waiting {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => failed.push((index, format!("Kafka delivery failed: {e}"))),
                Err(_) => failed.push((index, "Kafka delivery was cancelled (producer shut down)".into())),
            }
        }
        failed
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn accepts(&self, stream: Stream) -> bool {
        stream == Stream::Events
    }

    fn send_events(&mut self, events: &[Redacted]) -> std::io::Result<Refused> {
        let mut payloads: Vec<(usize, Option<String>, String)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let event = e.event();
                let key = match self.config.key {
                    KeyField::OrgId => Some(event.org_id.clone()),
                    KeyField::None => None,
                };
                (i, key, event.to_json_line())
            })
            .collect();
        let mut refused = Vec::new();
        for attempt in 0..=self.config.resends {
            let failed = self.runtime.block_on(self.send_all(&payloads));
            if failed.is_empty() {
                return Ok(Vec::new());
            }
            tracing::warn!(sink = %self.config.name, failed = failed.len(), attempt, "Kafka deliveries failed: {}", failed[0].1);
            if attempt == self.config.resends {
                refused = failed;
                break;
            }
            let retry: std::collections::BTreeSet<usize> = failed.iter().map(|(i, _)| *i).collect();
            payloads.retain(|(i, _, _)| retry.contains(i));
        }
        Ok(refused)
    }

    fn send_report(&mut self, _report: &Report) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.producer
            .flush(Duration::from_millis(self.config.delivery_timeout_ms))
            .map_err(|e| std::io::Error::other(format!("Kafka flush failed: {e}")))
    }
}
