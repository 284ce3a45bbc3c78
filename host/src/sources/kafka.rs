//! `wasmtel worker`'s source: a Kafka consumer group member reading a topic
//! (many hosts → one Kafka → N workers). Several workers with the same
//! `group_id` share the topic's partitions; rebalances are logged.
//!
//! Offsets are committed only once a batch's events are in the redacted log
//! (or the dead-letter store): at-least-once. A worker that dies before the
//! commit leaves its batch to be read again, with the same event ids — the
//! JSON `id` field or the `wasmtel-event-id` header wasmtel's Kafka sink
//! writes, else `<topic>:<partition>:<offset>` — so consumers can drop the
//! duplicates.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Headers;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde::Deserialize;

use super::jsonl::LineRules;
use super::{Input, Poll, Source, SourceBatch, SourceError};
use crate::config::UnknownFields;
use crate::event::codec::NO_ORIGIN;
use crate::event::limits::EventLimits;
use crate::event::valid_id;
use crate::sinks::kafka::EVENT_ID_HEADER;

/// `[worker]` settings: the topic to read and the consumer group.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topic to read.
    pub topic: String,
    /// The consumer group: workers with the same id share the partitions
    /// (default `wasmtel-loki`).
    #[serde(default = "default_group")]
    pub group_id: String,
    /// `session.timeout.ms`: how soon a dead worker's partitions move on
    /// (default 10000).
    #[serde(default = "default_session_timeout")]
    pub session_timeout_ms: u64,
    /// Further librdkafka consumer settings — except those wasmtel sets
    /// itself: offsets are committed only once events are delivered or
    /// dead-lettered, so `enable.auto.commit` and
    /// `enable.auto.offset.store` are refused, as are `group.id` and
    /// `bootstrap.servers` (own keys here).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// A Loki sink the worker delivers to, besides any `[[sinks]]`.
    #[serde(default)]
    pub loki: Option<crate::sinks::loki::LokiConfig>,
}

/// Consumer properties wasmtel sets itself, and why.
const CONSUMER_RESERVED: &[(&str, &str)] = &[
    ("enable.auto.commit", "offsets are committed only once events are delivered or dead-lettered"),
    ("enable.auto.offset.store", "offsets are stored only once events are delivered or dead-lettered"),
    ("group.id", "set `group_id` instead"),
    ("bootstrap.servers", "set `brokers` instead"),
    ("metadata.broker.list", "set `brokers` instead"),
    ("session.timeout.ms", "set `session_timeout_ms` instead"),
];

impl WorkerConfig {
    /// Checks `properties` and ranges (`file` names the config in errors).
    pub fn validate(&self, file: &std::path::Path) -> Result<(), crate::config::ConfigError> {
        if !(1_000..=3_600_000).contains(&self.session_timeout_ms) {
            return Err(crate::config::ConfigError::new(
                file,
                "worker.session_timeout_ms",
                format!("found {}, expected 1000 to 3600000", self.session_timeout_ms),
            ));
        }
        crate::sinks::kafka::config::check_properties(file, "worker", &self.properties, CONSUMER_RESERVED, |_, _| None)
    }
}

fn default_group() -> String {
    "wasmtel-loki".into()
}
fn default_session_timeout() -> u64 {
    10_000
}

/// Logs rebalances.
struct Context;

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let list: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(?list, "partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// The Kafka source.
pub struct KafkaSource {
    topic: String,
    consumer: BaseConsumer<Context>,
    unknown: UnknownFields,
    limits: EventLimits,
    /// Per batch handed out and not yet committed: the next offset per partition.
    pending: Vec<(u64, BTreeMap<i32, i64>)>,
    next_token: u64,
}

impl KafkaSource {
    /// Joins the group and subscribes to the topic.
    pub fn new(config: &WorkerConfig, limits: EventLimits) -> Result<KafkaSource, SourceError> {
        let mut client = rdkafka::ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group_id)
            .set("client.id", "wasmtel-worker")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", config.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", (config.session_timeout_ms / 3).max(100).to_string());
        for (k, v) in &config.properties {
            client.set(k, v);
        }
        let kafka = |e: rdkafka::error::KafkaError| SourceError::Other(format!("Kafka consumer: {e}"));
        let consumer: BaseConsumer<Context> = client.create_with_context(Context).map_err(kafka)?;
        consumer.subscribe(&[&config.topic]).map_err(kafka)?;
        tracing::info!(topic = %config.topic, group = %config.group_id, "worker consuming");
        Ok(KafkaSource {
            topic: config.topic.clone(),
            consumer,
            unknown: UnknownFields::Preserve,
            limits,
            pending: Vec::new(),
            next_token: 0,
        })
    }

    fn input(&self, message: &rdkafka::message::BorrowedMessage<'_>) -> Input {
        let fallback = format!("{}:{}:{}", message.topic(), message.partition(), message.offset());
        let header_id = message.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == EVENT_ID_HEADER)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .filter(|v| valid_id(v))
                .map(str::to_string)
        });
        let malformed = |reason: String, raw: String| Input::Malformed { id: fallback.clone(), reason, raw };
        let text = match message.payload_view::<str>() {
            Some(Ok(text)) => text,
            Some(Err(_)) => return malformed("message is not UTF-8".into(), String::new()),
            None => return malformed("message has no value".into(), String::new()),
        };
        // Parsed and checked on the redaction stage's workers.
        Input::Line {
            text: text.to_string(),
            id: header_id.unwrap_or(fallback),
            origin: NO_ORIGIN,
            rules: LineRules { unknown: self.unknown, limits: self.limits },
        }
    }
}

impl Source for KafkaSource {
    fn name(&self) -> &str {
        "kafka"
    }

    fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Poll, SourceError> {
        let mut inputs = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut timeout = wait;
        while inputs.len() < max {
            match self.consumer.poll(timeout) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!("Kafka: {e}");
                    break;
                }
                Some(Ok(message)) => {
                    let entry = next.entry(message.partition()).or_insert(message.offset() + 1);
                    *entry = (*entry).max(message.offset() + 1);
                    inputs.push(self.input(&message));
                }
            }
            timeout = Duration::ZERO;
        }
        if inputs.is_empty() {
            return Ok(Poll::Idle);
        }
        let token = self.next_token;
        self.next_token += 1;
        self.pending.push((token, next));
        Ok(Poll::Batch(SourceBatch { inputs, token }))
    }

    fn commit(&mut self, token: u64) -> Result<(), SourceError> {
        let Some(i) = self.pending.iter().position(|(t, _)| *t == token) else { return Ok(()) };
        let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
        for (_, batch) in self.pending.drain(..=i) {
            for (partition, offset) in batch {
                let entry = offsets.entry(partition).or_insert(offset);
                *entry = (*entry).max(offset);
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in offsets {
            tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
                .map_err(|e| SourceError::Other(format!("cannot build the offset commit: {e}")))?;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
            // After a rebalance another member owns the partition and reads
            // the batch again: a duplicate with the same ids, never a loss.
            tracing::warn!("offset commit failed (the batch may be delivered twice): {e}");
        }
        Ok(())
    }

    fn skip_to(&mut self, _origin: u64) -> Result<(), SourceError> {
        Ok(())
    }

    fn owns(&self, _origin: u64) -> bool {
        false
    }
}
