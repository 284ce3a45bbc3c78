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
    /// Further librdkafka settings, passed through — except those that
    /// would weaken delivery (`acks` other than `all`, idempotence off,
    /// `max.in.flight.requests.per.connection` above 5, `retries = 0`) or
    /// that have their own key here, which are refused when the config is
    /// loaded.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// librdkafka producer properties wasmtel sets itself, and why.
const PRODUCER_RESERVED: &[(&str, &str)] = &[
    ("bootstrap.servers", "set `brokers` instead"),
    ("metadata.broker.list", "set `brokers` instead"),
    ("compression.type", "set `compression` instead"),
    ("compression.codec", "set `compression` instead"),
    ("linger.ms", "set `linger_ms` instead"),
    ("queue.buffering.max.ms", "set `linger_ms` instead"),
    ("batch.size", "set `batch_bytes` instead"),
    ("message.timeout.ms", "set `delivery_timeout_ms` instead"),
    ("delivery.timeout.ms", "set `delivery_timeout_ms` instead"),
    ("transactional.id", "wasmtel does not use Kafka transactions"),
];

/// Refuses `properties` entries that are reserved (`reserved`: key and
/// what to do instead) or fail `weakens` (which says why a value would
/// weaken delivery); `section` is the key path of the table.
pub(crate) fn check_properties(
    file: &std::path::Path,
    section: &str,
    properties: &BTreeMap<String, String>,
    reserved: &[(&str, &str)],
    weakens: impl Fn(&str, &str) -> Option<&'static str>,
) -> Result<(), crate::config::ConfigError> {
    for (key, value) in properties {
        let path = format!("{section}.properties.{key:?}");
        if let Some((_, instead)) = reserved.iter().find(|(k, _)| k.eq_ignore_ascii_case(key.trim())) {
            return Err(crate::config::ConfigError::new(file, path, format!("wasmtel sets {key} itself: {instead}")));
        }
        if let Some(why) = weakens(&key.trim().to_ascii_lowercase(), value.trim()) {
            return Err(crate::config::ConfigError::new(file, path, format!("found {value:?}: {why}")));
        }
    }
    Ok(())
}

/// Why a producer property value would weaken "counted only once the
/// broker has it", if it would.
fn producer_weakens(key: &str, value: &str) -> Option<&'static str> {
    match key {
        "acks" | "request.required.acks" | "topic.request.required.acks"
            if !matches!(value.to_ascii_lowercase().as_str(), "all" | "-1") =>
        {
            Some("expected `all` (or -1): every in-sync replica must have an event before it counts as delivered")
        }
        "enable.idempotence" if !value.eq_ignore_ascii_case("true") => {
            Some("expected `true`: without idempotence a retried send can duplicate or reorder events")
        }
        "max.in.flight.requests.per.connection" | "max.in.flight"
            if !value.parse::<u32>().is_ok_and(|n| (1..=5).contains(&n)) =>
        {
            Some("expected 1 to 5: more in-flight requests break the idempotent producer's ordering guarantee")
        }
        "retries" | "message.send.max.retries" if value.parse::<u64>().is_ok_and(|n| n == 0) => {
            Some("expected at least 1: with no retries a broker hiccup fails events that could have been delivered")
        }
        _ => None,
    }
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
    /// Checks `properties` (see there); `section` is this sink's key path,
    /// e.g. `sinks[0]`.
    pub fn validate(&self, file: &std::path::Path, section: &str) -> Result<(), crate::config::ConfigError> {
        if self.linger_ms > 900_000 || self.batch_bytes == 0 || self.delivery_timeout_ms == 0 {
            return Err(crate::config::ConfigError::new(
                file,
                format!("{section}.linger_ms"),
                "expected linger_ms up to 900000, batch_bytes and delivery_timeout_ms of at least 1",
            ));
        }
        check_properties(file, section, &self.properties, PRODUCER_RESERVED, producer_weakens)
    }

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
