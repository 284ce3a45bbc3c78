//! The one stage graph `run`, `serve`, `worker` and `redact` build — they
//! differ only in their source:
//!
//! ```text
//! source ─► [raw log] ─► redaction (WASM chain, on every core) ─► [redacted log] ─┬─► sink (own cursor, own task)
//!   serve: gRPC/HTTP ingest → raw log             dead letters · audit beside       ├─► sink
//!   run: JSONL file/stdin   worker: Kafka                                          └─► ...
//! collectors (schedule) ─► report outboxes ─► report sinks (own tasks; never block events)
//! ```
//!
//! [`Topology::open`] takes the state folder's lock and opens the logs and
//! stores; [`Topology::run`] starts every stage under supervision
//! ([`health`]: a failed stage is restarted with backoff, reported, and
//! fatal after `pipeline.max_restarts` failures in a row) and runs until
//! the source is exhausted (`run --once`, `redact`) or shutdown, then lets
//! the sinks drain what the redacted log holds.

pub mod collect;
pub mod delivery;
pub mod health;
mod migrate;
pub mod plan;
pub mod redaction;
mod supervise;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

pub use plan::Plan;

use crate::audit::AuditLog;
use crate::config::{LoadedConfig, LogConfig, Stream};
use crate::dead_letter::{DeadLetterError, DeadLetterStore};
use crate::log::{Log, LogError, LogOptions, StateLock};
use crate::sinks::SinkError;
use crate::sources::SourceError;
use crate::stats::Stats;
use health::Health;

/// Which command runs the graph; it decides the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `wasmtel run`: the `[events]` file or stdin; with `once`, collectors
    /// run once and the run ends when the input does.
    Run {
        /// Run once and exit.
        once: bool,
    },
    /// `wasmtel serve`: events the ingest service accepted.
    Serve,
    /// `wasmtel worker`: a Kafka topic.
    Worker,
    /// `wasmtel redact`: stdin to the configured sinks, logs in a temporary
    /// folder, no collectors, no raw log.
    Redact,
}

/// A stage's failure; the supervisor restarts the stage.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A sink failed (not its destination: that is retried).
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The dead-letter store failed.
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    /// Other I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
    /// A shutdown came first.
    #[error("interrupted by shutdown")]
    Interrupted,
}

impl StageError {
    /// Whether the failure clears by itself (the disk is full): the stage
    /// is retried without counting towards `max_restarts`.
    pub fn is_out_of_space(&self) -> bool {
        let io = match self {
            StageError::Log(LogError::Io { source, .. }) | StageError::Io { source, .. } => Some(source),
            StageError::DeadLetter(DeadLetterError::Log(LogError::Io { source, .. })) => Some(source),
            StageError::DeadLetter(DeadLetterError::Io { source, .. }) => Some(source),
            StageError::Sink(SinkError::Io { source, .. }) => Some(source),
            _ => None,
        };
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28))
    }
}

/// The folder of the raw or the redacted log.
pub fn log_dir(state_dir: &Path, which: &str) -> PathBuf {
    state_dir.join("log").join(which)
}

fn log_options(config: &LogConfig, sync: bool) -> LogOptions {
    LogOptions { segment_bytes: config.segment_bytes, max_bytes: config.max_bytes, max_events: config.max_events, sync }
}

/// Opens the raw log of a state folder (for ingest, and for `dlq replay`).
pub fn open_raw_log(state_dir: &Path, config: &LogConfig) -> Result<Log, LogError> {
    let (log, recovery) = Log::open(&log_dir(state_dir, "raw"), log_options(config, true))?;
    report_recovery("raw", &recovery);
    Ok(log)
}

fn report_recovery(which: &str, recovery: &crate::log::Recovery) {
    if recovery.truncated_bytes > 0 {
        tracing::warn!(
            log = which,
            bytes = recovery.truncated_bytes,
            "cut a torn tail left by a crash (records never acknowledged)"
        );
        crate::metrics::LOG_TAILS_CUT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The state folder, 0700, created if needed.
pub fn make_state_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the state folder {}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make the state folder {} private", dir.display()))
}

/// The stage graph, its logs and stores open.
pub struct Topology {
    plan: Plan,
    mode: Mode,
    _lock: StateLock,
    /// A temporary folder for `redact`'s logs, removed at the end.
    _temp: Option<TempDir>,
    raw: Option<Arc<Log>>,
    redacted: Arc<Log>,
    dead: Arc<DeadLetterStore>,
    audit: Arc<Mutex<AuditLog>>,
    health: Arc<Health>,
    stats: Arc<Mutex<Stats>>,
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), "cannot remove a temporary folder: {e}");
        }
    }
}

impl Topology {
    /// Takes the state folder's lock (a second process gets a clear
    /// error), opens the logs, the dead-letter store and the audit trail.
    pub fn open(plan: Plan, mode: Mode) -> anyhow::Result<Topology> {
        let config = &plan.loaded.config;
        let has_events = !matches!(mode, Mode::Run { .. }) || config.events.is_some();
        if plan.chain.is_empty() && has_events {
            return Err(crate::config::ConfigError::new(
                &plan.loaded.file,
                "redactors",
                "events must be redacted before any sink sees them: add a [[redactors]] entry (e.g. module = \"builtin:redactor-pii\")",
            )
            .into());
        }
        let state = &config.state_dir;
        make_state_dir(state)?;
        let lock = StateLock::acquire(state)?;
        let (temp, redacted_dir) = match mode {
            Mode::Redact => {
                let dir = std::env::temp_dir().join(format!(
                    "wasmtel-redact-{}-{}",
                    std::process::id(),
                    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
                ));
                (Some(TempDir(dir.clone())), dir)
            }
            _ => (None, log_dir(state, "redacted")),
        };
        let (redacted, recovery) = Log::open(&redacted_dir, log_options(&config.log, temp.is_none()))?;
        report_recovery("redacted", &recovery);
        let raw = match mode {
            Mode::Redact => None,
            _ => Some(Arc::new(open_raw_log(state, &config.log)?)),
        };
        let dead = Arc::new(DeadLetterStore::open(state, config.dead_letter)?);
        if let Some(raw) = &raw {
            migrate::old_state(state, raw, &dead)?;
        }
        let audit = Arc::new(Mutex::new(AuditLog::open_with(state, config.audit)?));
        Ok(Topology {
            health: Arc::new(Health::new(config.pipeline.max_restarts)),
            plan,
            mode,
            _lock: lock,
            _temp: temp,
            raw,
            redacted: Arc::new(redacted),
            dead,
            audit,
            stats: Arc::new(Mutex::new(Stats::default())),
        })
    }

    /// The raw log ingest appends to (`None` for `redact`).
    pub fn raw(&self) -> Option<&Arc<Log>> {
        self.raw.as_ref()
    }

    /// The redacted log.
    pub fn redacted(&self) -> &Arc<Log> {
        &self.redacted
    }

    /// Every stage's health.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<Mutex<Stats>> {
        &self.stats
    }

    /// The loaded configuration.
    pub fn loaded(&self) -> &LoadedConfig {
        &self.plan.loaded
    }

    /// Where the audit trail goes.
    pub fn audit_path(&self) -> PathBuf {
        self.plan.loaded.config.state_dir.join("audit.jsonl")
    }

    /// Whether an event sink also takes reports (they then go through the
    /// redacted log too).
    fn event_sinks_take_reports(&self) -> bool {
        self.plan.loaded.config.sinks.iter().any(|s| {
            s.accepts(Stream::Reports)
                && matches!(s, crate::config::Sink::Stdout { .. } | crate::config::Sink::Jsonl { .. })
        })
    }

    /// Runs every stage until the input is exhausted (`run --once`,
    /// `redact`) or `shutdown` completes, then drains the sinks; returns the
    /// counters. A stage failing `max_restarts` times in a row is an error.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<Stats> {
        supervise::run(self, shutdown).await
    }
}
