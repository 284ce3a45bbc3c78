//! The Kafka sink: each redacted event becomes one message — its JSON form
//! (camelCase, as `shared/spec/ingest.md` maps it, with its `id`) as the
//! value, by default the organization id as the key, and the event id in the
//! `wasmtel-event-id` header so consumers can drop re-delivered duplicates.
//! The producer runs with `acks=all` and idempotence on; an event counts as
//! delivered only when its delivery report says the broker has it. A
//! delivery that failed because the broker is unreachable or slow is handed
//! back for a retry (the event stays in the redacted log meanwhile); one the
//! broker refuses for good (a message too large, say) is dead-lettered.

pub(crate) mod config;

use std::time::Duration;

pub use config::{KafkaConfig, KeyField};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::{BoxFuture, EventSink, Item, Sent, SinkError};
use crate::config::Stream;

/// The header carrying the event id.
pub const EVENT_ID_HEADER: &str = "wasmtel-event-id";

/// The Kafka producer sink.
pub struct KafkaSink {
    config: KafkaConfig,
    producer: FutureProducer,
}

impl KafkaSink {
    /// Creates the producer (it connects in the background).
    pub fn new(config: KafkaConfig) -> Result<KafkaSink, SinkError> {
        let producer: FutureProducer = config
            .client_config()
            .create()
            .map_err(|e| SinkError::Other(format!("cannot create the Kafka producer for {}: {e}", config.brokers)))?;
        Ok(KafkaSink { config, producer })
    }
}

/// Whether a delivery error is the broker refusing this message for good
/// (as opposed to being unreachable, slow or busy).
fn permanent(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    let code = match error {
        KafkaError::MessageProduction(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessage
            | C::InvalidMessageSize
            | C::InvalidRecord
            | C::TopicAuthorizationFailed
            | C::InvalidRequiredAcks
            | C::PolicyViolation
    )
}

impl EventSink for KafkaSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn accepts(&self, stream: Stream) -> bool {
        stream == Stream::Events
    }

    fn send<'a>(&'a mut self, items: &'a [Item]) -> BoxFuture<'a, Result<Sent, SinkError>> {
        Box::pin(async move {
            let mut sent = Sent::default();
            let mut waiting = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let Item::Event(redacted) = item else { continue };
                let value = redacted.record().to_json_line();
                let key = match self.config.key {
                    KeyField::OrgId => Some(redacted.event().org_id.as_str()),
                    KeyField::None => None,
                };
                let headers = OwnedHeaders::new().insert(Header { key: EVENT_ID_HEADER, value: Some(redacted.id()) });
                let mut record = FutureRecord::to(&self.config.topic).payload(value.as_str()).headers(headers);
                if let Some(key) = key {
                    record = record.key(key);
                }
                loop {
                    match self.producer.send_result(record) {
                        Ok(delivery) => {
                            waiting.push((index, delivery));
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            // The local queue is full: let deliveries drain, then try again.
                            record = r;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err((e, _)) if permanent(&e) => {
                            sent.refused.push((index, format!("Kafka producer refused the message: {e}")));
                            break;
                        }
                        Err((e, _)) => {
                            sent.retry.push((index, format!("Kafka producer cannot take the message now: {e}")));
                            break;
                        }
                    }
                }
            }
            for (index, delivery) in waiting {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) if permanent(&e) => sent.refused.push((index, format!("Kafka refused: {e}"))),
                    Ok(Err((e, _))) => sent.retry.push((index, format!("Kafka delivery failed: {e}"))),
                    Err(_) => sent.retry.push((index, "Kafka delivery was cancelled (producer shut down)".into())),
                }
            }
            Ok(sent)
        })
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        // Messages in flight are in the redacted log until acknowledged, so
        // a short flush is a courtesy, not a guarantee.
        if let Err(e) = self.producer.flush(Duration::from_secs(5)) {
            tracing::debug!(sink = %self.config.name, "Kafka flush on close: {e}");
        }
    }
}
