//! The WebAssembly sandbox.
//!
//! One [`Runtime`] per process owns the wasmtime `Engine` (component model,
//! pooling allocator, epoch interruption driven by a 1 ms ticker thread) and
//! the on-disk cache of precompiled components. [`redactor::RedactorModule`]
//! and [`collector::CollectorModule`] load a component through it and run
//! calls under a deadline and a memory cap, each in a store with no ambient
//! authority (see [`state`]). Which module files may run at all is decided
//! by [`trust`] (signatures), and the cache verifies a keyed digest of each
//! precompiled artifact before loading it.

pub mod bindings;
mod cache;
pub mod collector;
mod failure;
mod module;
pub mod redactor;
pub mod state;
pub mod trust;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

pub use failure::GuestFailure;
pub use module::ModuleSource;

use crate::config::Limits;

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Settings of the runtime as a whole.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Folder for precompiled components (`None`, the default: compile in
    /// memory each time). The key of the artifacts' digests is kept in its
    /// parent folder, as `cache.key` (see the `cache` module).
    pub cache_dir: Option<PathBuf>,
    /// The largest memory cap any module will use, in MiB (sizes the pool).
    pub max_memory_mib: u64,
    /// How many instances may be live at once.
    pub max_instances: u32,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { cache_dir: None, max_memory_mib: crate::config::DEFAULT_MEMORY_MIB, max_instances: 64 }
    }
}

/// The process-wide engine plus its epoch ticker and component cache.
pub struct Runtime {
    engine: Engine,
    cache: Option<cache::ComponentCache>,
    stop_ticker: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Arc<Runtime>> {
        let mut pool = PoolingAllocationConfig::default();
        let instances = options.max_instances.max(1);
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 8)
            .max_memories_per_module(2)
            .table_elements(state::MAX_TABLE_ELEMENTS)
            .max_memory_size((options.max_memory_mib as usize).max(1) << 20);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(anyhow::Error::from).context("cannot create the WebAssembly engine")?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("wasmtel-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .context("cannot start the epoch ticker thread")?;
        let cache = options.cache_dir.as_deref().and_then(|dir| {
            cache::ComponentCache::open(dir)
                .inspect_err(|e| tracing::warn!("the component cache is off (compiling each run instead): {e}"))
                .ok()
        });
        Ok(Arc::new(Runtime { engine, cache, stop_ticker }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Arms the store's deadline for one call under `limits`.
    pub(crate) fn arm_deadline<T>(store: &mut Store<T>, limits: &Limits) {
        let ticks = limits.deadline_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1);
        store.set_epoch_deadline(ticks);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}
