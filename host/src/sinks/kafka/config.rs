//! `[[sinks]] kind = "kafka"`: settings of the Kafka producer sink.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Which event field becomes the message key.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyField {
    /// The organization id: one organization's events stay in order on one partition.
    #[default]
    OrgId,
    /// No key: the producer spreads messages over partitions.
    None,
}

/// Settings of a Kafka sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Name for logs.
    #[serde(default = "default_name")]
    pub name: String,
    /// `bootstrap.servers`, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// The topic (it must exist).
    pub topic: String,
    /// The message key.
    #[serde(default)]
    pub key: KeyField,
    /// `compression.type`: `none`, `lz4` (default), `zstd`, `snappy` or `gzip`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// `linger.ms`: how long the producer waits to fill a batch.
    #[serde(default = "default_linger")]
    pub linger_ms: u64,
    /// `batch.size` in bytes.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// `message.timeout.ms`: how long the producer keeps retrying one message
    /// (across broker outages) before reporting it failed.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout_ms: u64,
    /// When the redacted log is full because this sink is behind: `block`
    /// (default: ingest answers with a retryable status until it catches
    /// up) or `dead_letter` (its oldest events move to the dead-letter store,
    /// counted and replayable, so the other sinks go on).
    #[serde(default)]
    pub when_full: crate::config::WhenFull,
    /// Further librdkafka settings, passed through.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_name() -> String {
    "kafka".into()
}
fn default_compression() -> String {
    "lz4".into()
}
fn default_linger() -> u64 {
    5
}
fn default_batch_bytes() -> usize {
    1 << 20
}
fn default_delivery_timeout() -> u64 {
    120_000
}

impl KafkaConfig {
    /// The librdkafka producer settings: `acks=all` and idempotence always on.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "wasmtel")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", &self.compression)
            .set("linger.ms", self.linger_ms.to_string())
            .set("batch.size", self.batch_bytes.to_string())
            .set("message.timeout.ms", self.delivery_timeout_ms.to_string());
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}
