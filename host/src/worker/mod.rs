//! `wasmtel worker`: a Kafka consumer group member that moves events from a
//! topic to Loki — the scale-out path (many hosts → one Kafka → N workers).
//!
//! Each worker reads its share of the partitions, redacts what it reads with
//! the configured redactors (events on a topic may come from producers other
//! than wasmtel, so nothing leaves un-redacted), pushes batches to Loki
//! (by count, bytes or time) and commits the offsets only after Loki
//! accepted the push: at-least-once. If Loki stays down the batch is retried
//! and nothing is committed; what Loki refuses (and messages that are not
//! events) goes to the dead-letter store. Rebalances are logged; several
//! workers in one group share a topic's partitions. SIGTERM/SIGINT flush the
//! batch in flight, commit, and exit.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde::Deserialize;

use crate::config::UnknownFields;
use crate::dead_letter::{DeadLetters, Stage};
use crate::event::Event;
use crate::sinks::loki::service::LokiClient;
use crate::sinks::loki::{LokiConfig, encode};
use crate::transforms::redact::{RedactionChain, new_batch};

/// `[worker]` settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topic to read.
    pub topic: String,
    /// The consumer group: workers with the same id share the partitions.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// `session.timeout.ms`: how soon a dead worker's partitions move on.
    #[serde(default = "default_session_timeout")]
    pub session_timeout_ms: u64,
    /// Further librdkafka consumer settings.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Where the events go.
    pub loki: LokiConfig,
}

fn default_group() -> String {
    "wasmtel-loki".into()
}
fn default_session_timeout() -> u64 {
    10_000
}

/// Counters of a worker's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Messages read.
    pub consumed: u64,
    /// Events Loki accepted.
    pub delivered: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
    /// Offset commits made.
    pub commits: u64,
}

/// Logs rebalances.
struct Context;

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
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

/// One message read, not yet committed.
struct Read {
    partition: i32,
    offset: i64,
    id: String,
    payload: Result<Event, (String, String)>,
}

/// Runs until `shutdown` completes.
pub async fn run(
    config: &WorkerConfig,
    chain: &RedactionChain,
    dead: &mut DeadLetters,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<WorkerStats> {
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
    let consumer: StreamConsumer<Context> = client.create_with_context(Context)?;
    consumer.subscribe(&[&config.topic])?;
    let loki = LokiClient::new(&config.loki)?;
    let linger = Duration::from_millis(config.loki.batch_timeout_ms);
    let mut stats = WorkerStats::default();
    let mut batch: Vec<Read> = Vec::new();
    let mut deadline: Option<Instant> = None;
    tokio::pin!(shutdown);
    let mut stopping = false;
    tracing::info!(topic = %config.topic, group = %config.group_id, "worker started");
    while !stopping {
        let wait = deadline.map_or(Duration::from_secs(1), |d| d.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = &mut shutdown => stopping = true,
            received = tokio::time::timeout(wait, consumer.recv()) => match received {
                Ok(Ok(message)) => {
                    stats.consumed += 1;
                    let id = format!("{}:{}:{}", message.topic(), message.partition(), message.offset());
                    let payload = match message.payload_view::<str>() {
                        Some(Ok(text)) => Event::from_json_line(text, UnknownFields::Preserve, Utc::now()).map_err(|e| (e, text.to_string())),
                        Some(Err(_)) => Err(("message is not UTF-8".to_string(), String::new())),
                        None => Err(("message has no value".to_string(), String::new())),
                    };
                    batch.push(Read { partition: message.partition(), offset: message.offset(), id, payload });
                    deadline.get_or_insert_with(|| Instant::now() + linger);
                }
                Ok(Err(e)) => {
                    tracing::warn!("Kafka: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(_) => {}
            },
        }
        let due = deadline.is_some_and(|d| Instant::now() >= d) || batch.len() >= config.loki.batch_max_events;
        if !batch.is_empty() && (due || stopping) {
            if !deliver(&batch, chain, &loki, &config.loki, dead, &mut stats, &mut shutdown, stopping).await {
                // Shutting down with Loki unreachable: commit nothing; the
                // group's next member reads these messages again.
                break;
            }
            commit(&consumer, &config.topic, &batch, &mut stats);
            batch.clear();
            deadline = None;
        }
    }
    tracing::info!(?stats, "worker stopped");
    Ok(stats)
}

/// Delivers a batch until Loki took it; false if shutdown came first.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    batch: &[Read],
    chain: &RedactionChain,
    loki: &LokiClient,
    loki_config: &LokiConfig,
    dead: &mut DeadLetters,
    stats: &mut WorkerStats,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    mut stopping: bool,
) -> bool {
    let mut events = Vec::new();
    let mut ids = Vec::new();
    for read in batch {
        match &read.payload {
            Ok(event) => {
                events.push(event.clone());
                ids.push(read.id.clone());
            }
            Err((reason, raw)) => {
                let _ = dead.record(Stage::Source, "kafka", reason, &read.id, raw.clone().into());
                stats.dead_lettered += 1;
            }
        }
    }
    let redacted = match chain.redact(events, &ids, &mut new_batch()) {
        Ok(passed) => passed.events,
        Err(failed) => {
            for (event, id) in failed.events.iter().zip(&ids) {
                let _ = dead.record(Stage::Redact, &failed.module, &failed.failure.to_string(), id, event.to_json());
            }
            stats.dead_lettered += failed.events.len() as u64;
            let _ = dead.flush();
            return true;
        }
    };
    let (entries, refused) = encode::prepare(&redacted, loki_config, Utc::now());
    let mut wait = Duration::from_millis(loki_config.retry.initial_backoff_ms.max(50));
    loop {
        let outcome = loki.deliver(&entries).await;
        if outcome.undelivered.is_empty() {
            for (index, reason) in refused.iter().chain(&outcome.refused) {
                let _ = dead.record(
                    Stage::Sink,
                    &loki_config.name,
                    reason,
                    &ids[*index],
                    redacted[*index].event().to_json(),
                );
                stats.dead_lettered += 1;
            }
            stats.delivered += (entries.len() - outcome.refused.len()) as u64;
            let _ = dead.flush();
            return true;
        }
        tracing::warn!(
            events = entries.len(),
            "Loki unavailable ({}); retrying the batch, offsets not committed",
            outcome.undelivered[0].1
        );
        if stopping {
            return false;
        }
        tokio::select! {
            _ = shutdown.as_mut() => stopping = true,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_millis(loki_config.retry.max_backoff_ms.max(1000)));
    }
}

/// Commits the next offset of every partition in the batch.
fn commit(consumer: &StreamConsumer<Context>, topic: &str, batch: &[Read], stats: &mut WorkerStats) {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for read in batch {
        let entry = next.entry(read.partition).or_insert(read.offset + 1);
        *entry = (*entry).max(read.offset + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in next {
        if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!("cannot build the offset commit: {e}");
        }
    }
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => stats.commits += 1,
        // After a rebalance another member owns the partition and reads the
        // batch again: a duplicate, never a loss.
        Err(e) => tracing::warn!("offset commit failed (the batch may be delivered twice): {e}"),
    }
}
