//! Running redactor components: a pool of live instances per module, each
//! call under a deadline and a memory cap. A call that traps poisons its
//! instance, which is dropped; the next call gets a fresh one from the same
//! pre-instantiated component.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::redactor::{Redactor, RedactorPre};
use super::failure::describe_plugin_error;
use super::state::{Grants, HostState};
use super::{GuestFailure, ModuleSource, Runtime};
use crate::config::Limits;

pub use super::bindings::redactor::wasmtel::telemetry::redaction::{Batch, Field, FieldPart, Finding, PathStep};

/// Upper bounds (seconds) of the guest call latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

/// Latency of every redactor call in this process: a Prometheus-style
/// histogram (cumulative counts per bucket, +Inf last), sum in nanoseconds, count.
pub struct LatencyHistogram {
    buckets: [std::sync::atomic::AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: std::sync::atomic::AtomicU64,
}

/// The process-wide guest call latency histogram.
pub static GUEST_CALL_LATENCY: LatencyHistogram = LatencyHistogram {
    buckets: [const { std::sync::atomic::AtomicU64::new(0) }; LATENCY_BUCKETS.len() + 1],
    sum_nanos: std::sync::atomic::AtomicU64::new(0),
};

impl LatencyHistogram {
    fn record(&self, elapsed: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let secs = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(elapsed.as_nanos() as u64, Relaxed);
    }

    /// Cumulative counts per bucket (the last is +Inf), sum in seconds, count.
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut total = 0;
        let cumulative = self.buckets.iter().map(|b| {
            total += b.load(Relaxed);
            total
        });
        let cumulative: Vec<u64> = cumulative.collect();
        (cumulative, self.sum_nanos.load(Relaxed) as f64 / 1e9, total)
    }
}

/// Most idle instances kept per module.
const MAX_IDLE: usize = 8;

/// A live instance and its store.
struct Live {
    store: Store<HostState>,
    bindings: Redactor,
}

/// A loaded redactor component, ready to be called from many threads.
pub struct RedactorModule {
    source: ModuleSource,
    runtime: Arc<Runtime>,
    pre: RedactorPre<HostState>,
    limits: Limits,
    grants: Grants,
    idle: Mutex<Vec<Live>>,
}

impl RedactorModule {
    /// Compiles (or loads from cache) and links the module, and instantiates
    /// it once so a broken module fails at start-up, not on the first event.
    pub fn new(
        runtime: Arc<Runtime>,
        source: ModuleSource,
        limits: Limits,
        config: BTreeMap<String, String>,
    ) -> anyhow::Result<RedactorModule> {
        Self::with_grants(runtime, source, limits, config, Default::default())
    }

    /// Like [`RedactorModule::new`], with WASI access granted.
    pub fn with_grants(
        runtime: Arc<Runtime>,
        source: ModuleSource,
        limits: Limits,
        config: BTreeMap<String, String>,
        wasi: crate::config::ModuleGrants,
    ) -> anyhow::Result<RedactorModule> {
        let component = source.compile(&runtime)?;
        let mut linker = Linker::<HostState>::new(runtime.engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Redactor::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
        let pre =
            linker.instantiate_pre(&component).and_then(RedactorPre::new).map_err(anyhow::Error::from).with_context(
                || {
                    format!(
                        "module {:?} ({}) does not implement the `redactor` world of wasmtel:telemetry@0.2.0",
                        source.name, source.origin
                    )
                },
            )?;
        let grants = Grants {
            module: source.name.clone(),
            config: Arc::new(config),
            sql: None,
            query_timeout: Duration::from_millis(limits.deadline_ms),
            log: Arc::new(super::state::LogBudget::new(&wasi, true)),
            wasi,
        };
        let module = RedactorModule { source, runtime, pre, limits, grants, idle: Mutex::new(Vec::new()) };
        let live = module.instantiate().map_err(|e| {
            let source = &module.source;
            anyhow::anyhow!("module {:?} ({}) cannot be instantiated: {e}", source.name, source.origin)
        })?;
        module.idle.lock().unwrap().push(live);
        Ok(module)
    }

    /// The module's name, origin and digest.
    pub fn source(&self) -> &ModuleSource {
        &self.source
    }

    /// Log lines the module wrote, held back until they are redacted.
    pub fn take_log_lines(&self) -> Vec<super::state::GuestLine> {
        self.grants.log.take_held()
    }

    /// The limits calls run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn instantiate(&self) -> Result<Live, GuestFailure> {
        let memory_cap = (self.limits.memory_mib as usize) << 20;
        let mut store = Store::new(self.runtime.engine(), HostState::new(self.grants.clone(), memory_cap));
        store.limiter(|s| &mut s.limiter);
        Runtime::arm_deadline(&mut store, &self.limits);
        match self.pre.instantiate(&mut store) {
            Ok(bindings) => Ok(Live { store, bindings }),
            Err(e) => Err(classify(&store, &self.limits, e)),
        }
    }

    /// Scans one batch. Any failure leaves no trace in the module: a poisoned
    /// instance is dropped and the next call starts fresh.
    pub fn redact(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut live = match pooled {
            Some(live) => live,
            None => self.instantiate()?,
        };
        Runtime::arm_deadline(&mut live.store, &self.limits);
        let started = std::time::Instant::now();
        let outcome = live.bindings.call_redact(&mut live.store, batch);
        GUEST_CALL_LATENCY.record(started.elapsed());
        match outcome {
            Ok(result) => {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(live);
                }
                drop(idle);
                result.map_err(|e| GuestFailure::PluginError(describe_plugin_error(&e)))
            }
            Err(e) => Err(classify(&live.store, &self.limits, e)),
        }
    }
}

/// Turns a wasmtime error into the failure an operator can act on.
pub(super) fn classify(store: &Store<HostState>, limits: &Limits, error: wasmtime::Error) -> GuestFailure {
    if store.data().limiter.denied {
        return GuestFailure::MemoryCap { cap_mib: limits.memory_mib };
    }
    if store.data().limiter.table_denied {
        return GuestFailure::Trap(format!(
            "table cap: the guest tried to grow a table past {} elements",
            super::state::MAX_TABLE_ELEMENTS
        ));
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => GuestFailure::Timeout { deadline_ms: limits.deadline_ms },
        Some(trap) => GuestFailure::Trap(trap.to_string()),
        None => GuestFailure::Trap(format!("{error:#}")),
    }
}
