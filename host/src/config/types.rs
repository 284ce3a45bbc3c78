//! Configuration types. Field docs here are the reference for every key; the
//! defaults live next to them as constants.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// Default per-call deadline for a guest, in milliseconds.
pub const DEFAULT_DEADLINE_MS: u64 = 100;
/// Default memory cap per guest instance, in MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 64;
/// Default number of events handed to a redactor in one call.
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where audit, dead-letter, cache and other state files go.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Sandbox limits applied to every module unless the module overrides them.
    #[serde(default)]
    pub limits: Limits,
    /// Where events are read from (for `run`).
    #[serde(default)]
    pub events: Option<EventsSource>,
    /// Databases modules may query, by name.
    #[serde(default)]
    pub data_sources: BTreeMap<String, DataSource>,
    /// Redactor modules, applied in order to every event.
    #[serde(default)]
    pub redactors: Vec<RedactorModule>,
    /// Collector modules.
    #[serde(default)]
    pub collectors: Vec<CollectorModule>,
    /// Where redacted events and reports go.
    #[serde(default)]
    pub sinks: Vec<Sink>,
    /// Reporting switches.
    #[serde(default)]
    pub reporting: Reporting,
    /// `wasmtel serve` settings (the ingest service).
    #[serde(default)]
    pub ingest: Option<crate::sources::ingest::IngestConfig>,
    /// `wasmtel worker` settings (Kafka → Loki).
    #[serde(default)]
    pub worker: Option<crate::sources::kafka::WorkerConfig>,
    /// `wasmtel receive` settings.
    #[serde(default)]
    pub receiver: Option<crate::receiver::ReceiverConfig>,
    /// What an accepted event may contain (every source checks it).
    #[serde(default)]
    pub event_limits: crate::event::limits::EventLimits,
    /// The durable logs (raw and redacted) in `<state_dir>/log`.
    #[serde(default)]
    pub log: LogConfig,
    /// The dead-letter store in `<state_dir>/dead-letter`.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// How the stages run.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// How much of the audit trail is kept.
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// Which keys may sign modules and whether signatures are required
    /// (default: no keys, signatures optional).
    #[serde(default)]
    pub trust: crate::runtime::trust::TrustConfig,
}

/// `[log]`: bounds of each of the two durable logs (raw events waiting for
/// redaction; redacted events waiting for every sink).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Most bytes of segment files per log (default 1 GiB); when reached,
    /// ingest answers with a retryable status.
    #[serde(default = "default_log_bytes")]
    pub max_bytes: u64,
    /// Most events waiting per log (default 1000000).
    #[serde(default = "default_log_events")]
    pub max_events: u64,
    /// Size at which a new segment file is started (default 64 MiB); a
    /// segment is removed once every reader has passed it.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
}

fn default_log_bytes() -> u64 {
    1 << 30
}
fn default_log_events() -> u64 {
    1_000_000
}
fn default_segment_bytes() -> u64 {
    64 << 20
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_bytes: default_log_bytes(),
            max_events: default_log_events(),
            segment_bytes: default_segment_bytes(),
        }
    }
}

/// `[dead_letter]`: bounds of the dead-letter store.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Most bytes kept (default 256 MiB); past it the oldest segment is
    /// removed and its records counted as dropped.
    #[serde(default = "default_dead_bytes")]
    pub max_bytes: u64,
    /// Size of one segment file (default 16 MiB), the unit of rotation.
    #[serde(default = "default_dead_segment")]
    pub segment_bytes: u64,
}

fn default_dead_bytes() -> u64 {
    256 << 20
}
fn default_dead_segment() -> u64 {
    16 << 20
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig { max_bytes: default_dead_bytes(), segment_bytes: default_dead_segment() }
    }
}

/// `[pipeline]`: how the stages run.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Threads running redactors (default 0: one per CPU core).
    #[serde(default)]
    pub redaction_threads: usize,
    /// How long `run --once` and a shutdown wait for sinks to deliver what
    /// is in the redacted log (default 30000); what is left stays in the
    /// log for the next start.
    #[serde(default = "default_drain")]
    pub drain_timeout_ms: u64,
    /// Consecutive failures of one stage after which the process exits
    /// non-zero so a service manager restarts it (default 5).
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
}

fn default_drain() -> u64 {
    30_000
}
fn default_max_restarts() -> u32 {
    5
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { redaction_threads: 0, drain_timeout_ms: default_drain(), max_restarts: default_max_restarts() }
    }
}

/// What a sink does when the redacted log is full because it is behind.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Keep everything; ingest answers with a retryable status until the
    /// sink catches up (default).
    #[default]
    Block,
    /// Move the sink's oldest events to the dead-letter store (counted,
    /// replayable) so ingest and the other sinks go on.
    DeadLetter,
}

/// `[reporting]`: whether report sinks may transmit at all.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Reporting {
    /// `false` switches every report sink off (as do `DO_NOT_TRACK=1` and
    /// `WASMTEL_DISABLE=1`).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for Reporting {
    fn default() -> Self {
        Reporting { enabled: true }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}

/// Sandbox limits.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Per-call deadline in milliseconds (enforced by epoch interruption).
    #[serde(default = "default_deadline")]
    pub deadline_ms: u64,
    /// Memory cap per instance in MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
}

fn default_deadline() -> u64 {
    DEFAULT_DEADLINE_MS
}
fn default_memory() -> u64 {
    DEFAULT_MEMORY_MIB
}

impl Default for Limits {
    fn default() -> Self {
        Limits { deadline_ms: DEFAULT_DEADLINE_MS, memory_mib: DEFAULT_MEMORY_MIB }
    }
}

/// Per-module overrides of [`Limits`].
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Overrides `limits.deadline_ms`.
    pub deadline_ms: Option<u64>,
    /// Overrides `limits.memory_mib`.
    pub memory_mib: Option<u64>,
}

impl LimitOverrides {
    /// The effective limits for a module.
    pub fn apply(&self, base: Limits) -> Limits {
        Limits {
            deadline_ms: self.deadline_ms.unwrap_or(base.deadline_ms),
            memory_mib: self.memory_mib.unwrap_or(base.memory_mib),
        }
    }
}

/// What to do with top-level fields an input event has but the model lacks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    /// Keep them under `metadata` (default).
    #[default]
    Preserve,
    /// Reject the event (dead-letter it).
    Reject,
}

/// The JSONL event input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSource {
    /// A JSONL file, or `-` for standard input.
    pub path: PathBuf,
    /// Policy for unknown top-level fields.
    #[serde(default)]
    pub unknown_fields: UnknownFields,
    /// Keep the file's position in `<state_dir>/sources/events` so the next
    /// run goes on where this one stopped (default true); `false` reads the
    /// whole file every run.
    #[serde(default = "yes")]
    pub checkpoint: bool,
}

/// A database modules may query.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// An SQLite file, opened read-only.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// An SQL script that creates the database when the file does not
        /// exist yet (for demos and tests).
        #[serde(default)]
        seed_sql: Option<PathBuf>,
        /// Most rows one query may return (default 100000).
        #[serde(default = "default_max_rows")]
        max_rows: usize,
        /// Most bytes one query's result may hold, counted while rows are
        /// read (text and blob lengths, 8 per number, 16 per row); also the
        /// longest string or blob SQLite may build (default 16 MiB, at most
        /// 1 GiB).
        #[serde(default = "default_max_result_bytes")]
        max_bytes: u64,
    },
}

fn default_max_rows() -> usize {
    crate::datasource::MAX_ROWS
}
fn default_max_result_bytes() -> u64 {
    crate::datasource::MAX_BYTES
}

impl DataSource {
    /// Checks the limits (`section` is the key path of this source).
    pub fn validate(&self, file: &Path, section: &str) -> Result<(), ConfigError> {
        let DataSource::Sqlite { max_rows, max_bytes, .. } = self;
        if *max_rows == 0 || *max_rows > crate::datasource::MAX_ROWS {
            return Err(ConfigError::new(
                file,
                format!("{section}.max_rows"),
                format!("found {max_rows}, expected 1 to {}", crate::datasource::MAX_ROWS),
            ));
        }
        if *max_bytes < 1024 || *max_bytes > 1 << 30 {
            return Err(ConfigError::new(
                file,
                format!("{section}.max_bytes"),
                format!("found {max_bytes}, expected 1024 to 1073741824"),
            ));
        }
        Ok(())
    }
}

/// Where a module comes from, and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactorModule {
    /// A name for logs, audit records and metrics.
    pub name: String,
    /// A `.wasm` component file, or `builtin:redactor-pii`.
    pub module: String,
    /// If set, the module's SHA-256 (hex) must equal this or it will not run.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Events per call.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Most bytes of packed text per call (default 4 MiB); bigger batches
    /// are split before the call.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Limit overrides.
    #[serde(default, flatten)]
    pub limits: LimitOverrides,
    /// Values the module reads with `config-get`.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Values read from environment variables: module key -> variable name.
    /// For secrets (e.g. `hmac_key`) that should not sit in the file.
    #[serde(default)]
    pub config_from_env: BTreeMap<String, String>,
    /// What the module may reach through WASI (nothing by default).
    #[serde(default)]
    pub grants: ModuleGrants,
}

fn default_batch_size() -> usize {
    DEFAULT_BATCH_SIZE
}
fn default_batch_bytes() -> usize {
    crate::transforms::redact::DEFAULT_BATCH_BYTES
}

/// A collector module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorModule {
    /// A name for logs and reports.
    pub name: String,
    /// A `.wasm` component file, or `builtin:collector-sql`.
    pub module: String,
    /// If set, the module's SHA-256 (hex) must equal this or it will not run.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Names of `data_sources` the module may query.
    #[serde(default)]
    pub sources: Vec<String>,
    /// When to run, e.g. `every 24h` or `every 15m`.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Limit overrides.
    #[serde(default, flatten)]
    pub limits: LimitOverrides,
    /// Values the module reads with `config-get`.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Values read from environment variables: module key -> variable name.
    #[serde(default)]
    pub config_from_env: BTreeMap<String, String>,
    /// What the module may reach through WASI (nothing by default).
    #[serde(default)]
    pub grants: ModuleGrants,
}

/// WASI access granted to a module. By default a module sees no files, no
/// environment and no network.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModuleGrants {
    /// Environment variables passed through by name (values from wasmtel's
    /// own environment; unset ones are skipped).
    #[serde(default)]
    pub env: Vec<String>,
    /// Host folders the module may read, each mounted at a guest path.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Whether the module's `log` calls reach the host's log (default
    /// true); `false` drops them all (counted).
    #[serde(default = "yes")]
    pub log: bool,
    /// Most log lines per second the module may write (default 10, bursts
    /// of as many); the rest are dropped and counted, and the count is
    /// logged with the next line that gets through.
    #[serde(default = "default_log_per_second")]
    pub log_per_second: u32,
}

fn default_log_per_second() -> u32 {
    10
}

impl Default for ModuleGrants {
    fn default() -> Self {
        ModuleGrants { env: Vec::new(), dirs: Vec::new(), log: true, log_per_second: default_log_per_second() }
    }
}

/// A host folder visible to a module, read-only.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The folder on the host.
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest: String,
}

fn default_schedule() -> String {
    "every 24h".into()
}

/// A module config value: any TOML scalar, handed to the guest as text.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ConfigValue {
    /// Text.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl ConfigValue {
    /// The value as the guest sees it.
    pub fn as_text(&self) -> String {
        match self {
            ConfigValue::String(s) => s.clone(),
            ConfigValue::Integer(i) => i.to_string(),
            ConfigValue::Float(f) => f.to_string(),
            ConfigValue::Bool(b) => b.to_string(),
        }
    }
}

/// What a sink receives.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Redacted events.
    Events,
    /// Collector reports (resource counts, base information).
    Reports,
}

fn default_streams() -> Vec<Stream> {
    vec![Stream::Events, Stream::Reports]
}

/// A delivery target.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sink {
    /// Standard output, one JSON object per line.
    Stdout {
        /// The sink's name (default `stdout`).
        #[serde(default = "default_stdout_name")]
        name: String,
        /// What it receives (default: events and reports).
        #[serde(default = "default_streams")]
        streams: Vec<Stream>,
        /// When the redacted log is full because this sink is behind.
        #[serde(default)]
        when_full: WhenFull,
        /// How events read from a JSONL source are written (default
        /// `event`).
        #[serde(default)]
        shape: Shape,
    },
    /// A Kafka topic (events only).
    Kafka(crate::sinks::kafka::KafkaConfig),
    /// Grafana Loki (events only).
    Loki(crate::sinks::loki::LokiConfig),
    /// The ZITADEL-compatible gRPC TelemetryService (reports only).
    Zitadel(crate::sinks::report::zitadel::ZitadelConfig),
    /// An HTTP JSON endpoint (Scout/Metriton style; reports only).
    HttpReport(crate::sinks::report::http::HttpReportConfig),
    /// A JSONL file, appended to.
    Jsonl {
        /// The sink's name (default `jsonl`).
        #[serde(default = "default_jsonl_name")]
        name: String,
        /// The file.
        path: PathBuf,
        /// What it receives (default: events and reports).
        #[serde(default = "default_streams")]
        streams: Vec<Stream>,
        /// Flush every batch to disk before moving on (default true).
        #[serde(default = "yes")]
        sync: bool,
        /// When the redacted log is full because this sink is behind.
        #[serde(default)]
        when_full: WhenFull,
        /// How events read from a JSONL source are written (default
        /// `event`).
        #[serde(default)]
        shape: Shape,
    },
}

/// How a JSONL or stdout sink writes events that were read from a JSONL
/// source.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// In the event model, like every other event: `{"id": ..., "orgId":
    /// ..., "createdAt": ..., "metadata": {...}}` (the default).
    #[default]
    Event,
    /// As the line was read, changed only where a redactor found something
    /// (key names and order, numbers, timestamps and whitespace kept), as
    /// `wasmtel redact` writes them.
    AsRead,
}

fn default_stdout_name() -> String {
    "stdout".into()
}
fn default_jsonl_name() -> String {
    "jsonl".into()
}

impl Sink {
    /// The sink's name.
    pub fn name(&self) -> &str {
        match self {
            Sink::Stdout { name, .. } | Sink::Jsonl { name, .. } => name,
            Sink::Kafka(k) => &k.name,
            Sink::Loki(l) => &l.name,
            Sink::Zitadel(z) => &z.name,
            Sink::HttpReport(h) => &h.name,
        }
    }

    /// Whether it takes `stream`.
    pub fn accepts(&self, stream: Stream) -> bool {
        match self {
            Sink::Stdout { streams, .. } | Sink::Jsonl { streams, .. } => streams.contains(&stream),
            Sink::Kafka(_) | Sink::Loki(_) => stream == Stream::Events,
            Sink::Zitadel(_) | Sink::HttpReport(_) => stream == Stream::Reports,
        }
    }

    /// Its policy when the redacted log is full (report sinks never read it).
    pub fn when_full(&self) -> WhenFull {
        match self {
            Sink::Stdout { when_full, .. } | Sink::Jsonl { when_full, .. } => *when_full,
            Sink::Kafka(k) => k.when_full,
            Sink::Loki(l) => l.when_full,
            Sink::Zitadel(_) | Sink::HttpReport(_) => WhenFull::Block,
        }
    }
}

impl Config {
    /// Events per redaction call: the smallest `batch_size` of the redactors.
    pub fn redactor_batch_size(&self) -> usize {
        self.redactors.iter().map(|r| r.batch_size).min().unwrap_or(DEFAULT_BATCH_SIZE)
    }

    /// Makes relative paths relative to `base` (the config file's folder).
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && p.as_os_str() != "-" {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.state_dir);
        self.trust.resolve_paths(base);
        if let Some(receiver) = &mut self.receiver {
            receiver.resolve_paths(base);
        }
        if let Some(ingest) = &mut self.ingest {
            ingest.resolve_paths(base);
        }
        if let Some(events) = &mut self.events {
            fix(&mut events.path);
        }
        for source in self.data_sources.values_mut() {
            match source {
                DataSource::Sqlite { path, seed_sql, .. } => {
                    fix(path);
                    if let Some(seed) = seed_sql {
                        fix(seed);
                    }
                }
            }
        }
        let fix_module = |m: &mut String| {
            if !m.starts_with("builtin:") && Path::new(m.as_str()).is_relative() {
                *m = base.join(m.as_str()).display().to_string();
            }
        };
        self.redactors.iter_mut().for_each(|r| fix_module(&mut r.module));
        self.collectors.iter_mut().for_each(|c| fix_module(&mut c.module));
        let grants =
            self.redactors.iter_mut().map(|r| &mut r.grants).chain(self.collectors.iter_mut().map(|c| &mut c.grants));
        for g in grants {
            g.dirs.iter_mut().for_each(|d| fix(&mut d.host));
        }
        for sink in &mut self.sinks {
            match sink {
                Sink::Jsonl { path, .. } => fix(path),
                Sink::Zitadel(z) => {
                    z.tls_ca.iter_mut().chain(&mut z.tls_client_cert).chain(&mut z.tls_client_key).for_each(fix);
                }
                _ => {}
            }
        }
    }

    /// Checks what serde cannot: references between sections and value ranges.
    pub(super) fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        check_limits(file, "limits", &self.limits)?;
        self.trust.validate(file)?;
        self.event_limits
            .validate()
            .map_err(|(key, message)| ConfigError::new(file, format!("event_limits.{key}"), message))?;
        let log = &self.log;
        if log.segment_bytes < 4096 || log.segment_bytes > 1 << 30 {
            return Err(ConfigError::new(file, "log.segment_bytes", "expected bytes from 4096 to 1073741824"));
        }
        if log.max_bytes < 2 * log.segment_bytes {
            return Err(ConfigError::new(
                file,
                "log.max_bytes",
                format!("expected at least twice log.segment_bytes ({} bytes)", 2 * log.segment_bytes),
            ));
        }
        if log.max_events == 0 {
            return Err(ConfigError::new(file, "log.max_events", "expected at least 1"));
        }
        if let Some(receiver) = &self.receiver {
            receiver.validate(file)?;
        }
        self.audit.validate(file)?;
        for (name, source) in &self.data_sources {
            source.validate(file, &format!("data_sources.{name}"))?;
        }
        if let Some(ingest) = &self.ingest {
            ingest.validate(file)?;
            if log.max_events < ingest.max_batch as u64 {
                return Err(ConfigError::new(
                    file,
                    "log.max_events",
                    format!(
                        "expected at least ingest.max_batch ({}), or no full batch could ever be accepted",
                        ingest.max_batch
                    ),
                ));
            }
            if log.max_bytes < 2 * ingest.max_message_bytes as u64 {
                return Err(ConfigError::new(
                    file,
                    "log.max_bytes",
                    format!(
                        "expected at least twice ingest.max_message_bytes ({} bytes)",
                        2 * ingest.max_message_bytes
                    ),
                ));
            }
        }
        let dead = &self.dead_letter;
        if dead.segment_bytes < 4096 || dead.max_bytes < 2 * dead.segment_bytes {
            return Err(ConfigError::new(
                file,
                "dead_letter.max_bytes",
                "expected at least twice dead_letter.segment_bytes, which is at least 4096",
            ));
        }
        if self.redactors.is_empty() {
            let needs = [
                ("events", self.events.is_some()),
                ("ingest", self.ingest.is_some()),
                ("worker", self.worker.is_some()),
            ];
            if let Some((section, _)) = needs.iter().find(|(_, set)| *set) {
                return Err(ConfigError::new(
                    file,
                    "redactors",
                    format!(
                        "[{section}] brings events, but no redactor is configured: add a [[redactors]] entry (e.g. module = \"builtin:redactor-pii\") so un-redacted events never reach a sink"
                    ),
                ));
            }
        }
        if let Some(worker) = &self.worker {
            worker.validate(file)?;
            if let Some(loki) = &worker.loki {
                loki.validate(file, "worker.loki")?;
            }
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            let key = format!("sinks[{i}]");
            match sink {
                Sink::Loki(l) => l.validate(file, &key)?,
                Sink::Kafka(k) => k.validate(file, &key)?,
                Sink::Zitadel(z) if z.tls_client_cert.is_some() != z.tls_client_key.is_some() => {
                    return Err(ConfigError::new(
                        file,
                        format!("{key}.tls_client_cert"),
                        format!("set both {key}.tls_client_cert and {key}.tls_client_key, or neither"),
                    ));
                }
                _ => {}
            }
        }
        if self.pipeline.max_restarts == 0 {
            return Err(ConfigError::new(file, "pipeline.max_restarts", "expected at least 1"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.redactors.iter().enumerate() {
            let key = format!("redactors[{i}]");
            if !names.insert(r.name.clone()) {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.name"),
                    format!("the name {:?} is used twice; module names must be unique", r.name),
                ));
            }
            if r.batch_bytes < 1024 || r.batch_bytes > 256 << 20 {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.batch_bytes"),
                    "expected bytes from 1024 to 268435456",
                ));
            }
            if r.batch_size == 0 || r.batch_size > 100_000 {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.batch_size"),
                    "expected a number of events from 1 to 100000",
                ));
            }
            check_limits(file, &key, &r.limits.apply(self.limits))?;
            check_pin(file, &key, r.sha256.as_deref())?;
        }
        for (i, c) in self.collectors.iter().enumerate() {
            let key = format!("collectors[{i}]");
            if !names.insert(c.name.clone()) {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.name"),
                    format!("the name {:?} is used twice; module names must be unique", c.name),
                ));
            }
            for (j, source) in c.sources.iter().enumerate() {
                if !self.data_sources.contains_key(source) {
                    let known: Vec<_> = self.data_sources.keys().map(String::as_str).collect();
                    return Err(ConfigError::new(
                        file,
                        format!("{key}.sources[{j}]"),
                        format!(
                            "no data source named {source:?}; expected one of the [data_sources] tables ({})",
                            if known.is_empty() { "none are defined".into() } else { known.join(", ") }
                        ),
                    ));
                }
            }
            crate::schedule::Schedule::parse(&c.schedule)
                .map_err(|e| ConfigError::new(file, format!("{key}.schedule"), e.0))?;
            check_limits(file, &key, &c.limits.apply(self.limits))?;
            check_pin(file, &key, c.sha256.as_deref())?;
        }
        let mut sink_names = std::collections::BTreeMap::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            let key = format!("sinks[{i}]");
            let name = sink.name();
            if name.is_empty()
                || name.len() > 64
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.name"),
                    format!("expected 1 to 64 characters of [A-Za-z0-9._-], found {name:?}"),
                ));
            }
            if let Some(first) = sink_names.insert(name.to_string(), i) {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.name"),
                    format!(
                        "the name {name:?} is already used by sinks[{first}]; give each sink its own `name` (it names the sink's place in the log)"
                    ),
                ));
            }
            match sink {
                Sink::Zitadel(z) => {
                    if !(z.endpoint.starts_with("http://") || z.endpoint.starts_with("https://")) {
                        return Err(ConfigError::new(
                            file,
                            format!("{key}.endpoint"),
                            format!("expected an http:// or https:// URL, found {:?}", z.endpoint),
                        ));
                    }
                    if z.bulk_size == 0 || z.bulk_size > 10_000 {
                        return Err(ConfigError::new(
                            file,
                            format!("{key}.bulk_size"),
                            "expected a number of counts from 1 to 10000",
                        ));
                    }
                    if z.timeout_ms == 0 {
                        return Err(ConfigError::new(
                            file,
                            format!("{key}.timeout_ms"),
                            "expected milliseconds greater than 0",
                        ));
                    }
                    check_retry(file, &key, &z.retry)?;
                }
                Sink::HttpReport(h) => {
                    if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                        return Err(ConfigError::new(
                            file,
                            format!("{key}.url"),
                            format!("expected an http:// or https:// URL, found {:?}", h.url),
                        ));
                    }
                    check_retry(file, &key, &h.retry)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn check_retry(file: &Path, key: &str, retry: &crate::retry::RetryPolicy) -> Result<(), ConfigError> {
    if retry.max_attempts == 0 {
        return Err(ConfigError::new(
            file,
            format!("{key}.retry.max_attempts"),
            "expected at least 1 (the first attempt counts)",
        ));
    }
    if retry.initial_backoff_ms > retry.max_backoff_ms {
        return Err(ConfigError::new(
            file,
            format!("{key}.retry.initial_backoff_ms"),
            "expected at most retry.max_backoff_ms",
        ));
    }
    Ok(())
}

fn check_limits(file: &Path, key: &str, limits: &Limits) -> Result<(), ConfigError> {
    if limits.deadline_ms == 0 || limits.deadline_ms > 600_000 {
        return Err(ConfigError::new(file, format!("{key}.deadline_ms"), "expected milliseconds from 1 to 600000"));
    }
    if limits.memory_mib == 0 || limits.memory_mib > 4096 {
        return Err(ConfigError::new(file, format!("{key}.memory_mib"), "expected MiB from 1 to 4096"));
    }
    Ok(())
}

fn check_pin(file: &Path, key: &str, pin: Option<&str>) -> Result<(), ConfigError> {
    match pin {
        Some(p) if p.len() != 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) => Err(ConfigError::new(
            file,
            format!("{key}.sha256"),
            "expected 64 hex characters (the output of `sha256sum module.wasm`)",
        )),
        _ => Ok(()),
    }
}
