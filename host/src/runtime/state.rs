//! Per-store host state: what a guest instance can reach (WASI with no
//! ambient authority, its own config values, the data sources it was
//! granted) and the limiter that enforces its memory and table caps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::collector::wasmtel::telemetry::sql::{self, QueryResult, SqlValue};
use super::bindings::{HostImports, LogLevel, PluginError};
use crate::datasource::{DataSources, SqlCell};

/// Longest guest log line kept; the rest is cut so a guest cannot flood logs.
const MAX_LOG_LINE: usize = 4096;

/// A module's budget of log lines: a token bucket of `per_second` lines
/// (bursts of as many), shared by all its instances, counting what it drops.
/// A redactor's lines (it sees raw PII) are held back in `pending` until the
/// redaction chain has redacted them ([`crate::transforms::redact`]); a
/// collector's are written at once.
pub struct LogBudget {
    enabled: bool,
    per_second: f64,
    bucket: std::sync::Mutex<(f64, std::time::Instant)>,
    dropped: std::sync::atomic::AtomicU64,
    held: Option<std::sync::Mutex<Vec<GuestLine>>>,
}

/// One guest log line waiting for redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestLine {
    /// The module that wrote it.
    pub module: Arc<str>,
    /// Its level.
    pub level: tracing::Level,
    /// The text (at most 4 KiB).
    pub message: String,
}

impl LogBudget {
    /// A budget per the module's grants (`log`, `log_per_second`); with
    /// `hold`, lines wait in [`LogBudget::take_held`] instead of being
    /// written.
    pub fn new(grants: &crate::config::ModuleGrants, hold: bool) -> LogBudget {
        let per_second = f64::from(grants.log_per_second.max(1));
        LogBudget {
            enabled: grants.log,
            per_second,
            bucket: std::sync::Mutex::new((per_second, std::time::Instant::now())),
            dropped: Default::default(),
            held: hold.then(Default::default),
        }
    }

    /// The lines held back so far, oldest first.
    pub fn take_held(&self) -> Vec<GuestLine> {
        self.held
            .as_ref()
            .map(|h| std::mem::take(&mut *h.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default()
    }

    /// Takes one line's worth; `Some(dropped)` (lines dropped since the last
    /// line that got through) when the line may be written.
    fn take(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        if self.enabled {
            let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            let refill = now.duration_since(bucket.1).as_secs_f64() * self.per_second;
            *bucket = ((bucket.0 + refill).min(self.per_second), now);
            if bucket.0 >= 1.0 {
                bucket.0 -= 1.0;
                return Some(self.dropped.swap(0, Ordering::Relaxed));
            }
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// What one guest instance may use.
#[derive(Clone)]
pub struct Grants {
    /// Module name, for logs.
    pub module: Arc<str>,
    /// Values for `config-get`.
    pub config: Arc<BTreeMap<String, String>>,
    /// Data sources the module may query, if any.
    pub sql: Option<(Arc<DataSources>, Arc<[String]>)>,
    /// Time budget of one query.
    pub query_timeout: Duration,
    /// WASI access (empty: none).
    pub wasi: crate::config::ModuleGrants,
    /// The module's log budget, shared by its instances.
    pub log: Arc<LogBudget>,
}

/// The data of a `wasmtime::Store` running a guest.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    grants: Grants,
}

impl HostState {
    /// A fresh state with only the granted WASI access and a memory cap in bytes.
    pub fn new(grants: Grants, memory_cap: usize) -> Self {
        let mut wasi = WasiCtx::builder();
        for name in &grants.wasi.env {
            if let Ok(value) = std::env::var(name) {
                wasi.env(name, value);
            }
        }
        for dir in &grants.wasi.dirs {
            if let Err(e) = wasi.preopened_dir(&dir.host, &dir.guest, wasmtime_wasi::FsPerms::ReadOnly) {
                tracing::warn!(module = %grants.module, host = %dir.host.display(), "cannot grant the folder: {e}");
            }
        }
        HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { cap: memory_cap, denied: false, table_denied: false },
            grants,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Most elements a guest table may have; the pooling allocator's table
/// slots are sized to it.
pub const MAX_TABLE_ELEMENTS: usize = 20_000;

/// Refuses memory growth past the cap and table growth past
/// [`MAX_TABLE_ELEMENTS`], and remembers which it refused, so the trap can be
/// reported as "memory cap" or "table cap" rather than a generic trap. A
/// refused growth traps (instead of `memory.grow`/`table.grow` returning -1):
/// a guest that wants more than its cap fails closed with a clear reason.
pub struct MemoryLimiter {
    cap: usize,
    /// Set once a memory growth request was refused.
    pub denied: bool,
    /// Set once a table growth request was refused.
    pub table_denied: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.denied = true;
            return Err(wasmtime::Error::msg(format!("memory cap of {} bytes reached", self.cap)));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.table_denied = true;
            return Err(wasmtime::Error::msg(format!("table cap of {MAX_TABLE_ELEMENTS} elements reached")));
        }
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.table_denied = true;
        Err(error.context(format!("table growth refused (cap {MAX_TABLE_ELEMENTS} elements)")))
    }
}

impl HostImports for HostState {
    fn log(&mut self, level: LogLevel, mut message: String) {
        let module = &*self.grants.module;
        let Some(dropped) = self.grants.log.take() else { return };
        if dropped > 0 {
            tracing::warn!(module, dropped, "guest log lines dropped (over grants.log_per_second)");
        }
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if let Some(held) = &self.grants.log.held {
            let level = match level {
                LogLevel::Debug => tracing::Level::DEBUG,
                LogLevel::Info => tracing::Level::INFO,
                LogLevel::Warn => tracing::Level::WARN,
                LogLevel::Error => tracing::Level::ERROR,
            };
            let line = GuestLine { module: Arc::clone(&self.grants.module), level, message };
            held.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            return;
        }
        match level {
            LogLevel::Debug => tracing::debug!(module, "{message}"),
            LogLevel::Info => tracing::info!(module, "{message}"),
            LogLevel::Warn => tracing::warn!(module, "{message}"),
            LogLevel::Error => tracing::error!(module, "{message}"),
        }
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.grants.config.get(&key).cloned()
    }
}

impl super::bindings::redactor::wasmtel::telemetry::types::Host for HostState {}

impl super::bindings::redactor::wasmtel::telemetry::redaction::Host for HostState {}

impl sql::Host for HostState {
    fn query(&mut self, source: String, statement: String, params: Vec<SqlValue>) -> Result<QueryResult, PluginError> {
        let Some((sources, granted)) = &self.grants.sql else {
            return Err(PluginError::QueryFailed(
                "this module has no data sources granted (add `sources = [...]` to its config)".into(),
            ));
        };
        if !granted.contains(&source) {
            return Err(PluginError::QueryFailed(format!(
                "data source {source:?} is not granted to this module (granted: {})",
                granted.join(", ")
            )));
        }
        let params: Vec<SqlCell> = params.into_iter().map(from_wit).collect();
        let result = sources
            .query(&source, &statement, &params, self.grants.query_timeout)
            .map_err(|e| PluginError::QueryFailed(e.to_string()))?;
        Ok(QueryResult {
            columns: result.columns,
            rows: result.rows.into_iter().map(|row| row.into_iter().map(to_wit).collect()).collect(),
        })
    }
}

fn from_wit(v: SqlValue) -> SqlCell {
    match v {
        SqlValue::Null => SqlCell::Null,
        SqlValue::Integer(i) => SqlCell::Integer(i),
        SqlValue::Real(f) => SqlCell::Real(f),
        SqlValue::Text(s) => SqlCell::Text(s),
        SqlValue::Blob(b) => SqlCell::Blob(b),
    }
}

fn to_wit(v: SqlCell) -> SqlValue {
    match v {
        SqlCell::Null => SqlValue::Null,
        SqlCell::Integer(i) => SqlValue::Integer(i),
        SqlCell::Real(f) => SqlValue::Real(f),
        SqlCell::Text(s) => SqlValue::Text(s),
        SqlCell::Blob(b) => SqlValue::Blob(b),
    }
}
