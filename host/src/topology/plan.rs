//! What a configuration asks for, loaded and checked before any state is
//! touched: the sandbox runtime, the redactor chain, the collectors with
//! their data sources. `wasmtel check` stops here; every mode builds its
//! stage graph from a [`Plan`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;

use super::collect::ScheduledCollector;
use crate::config::{ConfigError, ConfigValue, LoadedConfig};
use crate::datasource::DataSources;
use crate::runtime::collector::CollectorModule;
use crate::runtime::redactor::RedactorModule;
use crate::runtime::{ModuleSource, Runtime, RuntimeOptions};
use crate::schedule::Schedule;
use crate::transforms::redact::{ChainLink, RedactionChain};

/// A loaded configuration, its modules ready to run.
pub struct Plan {
    /// The configuration.
    pub loaded: LoadedConfig,
    /// The redactors, in order.
    pub chain: RedactionChain,
    /// The collectors and their schedules.
    pub collectors: Vec<ScheduledCollector>,
    /// Every module loaded (redactors, then collectors, in config order)
    /// with its provenance: builtin, unsigned, or signed by which key.
    pub modules: Vec<ModuleSource>,
}

/// Module config values: the `config` table plus `config_from_env`.
fn module_config(
    file: &Path,
    key: &str,
    table: &BTreeMap<String, ConfigValue>,
    from_env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out: BTreeMap<String, String> = table.iter().map(|(k, v)| (k.clone(), v.as_text())).collect();
    for (name, var) in from_env {
        let value = std::env::var(var).map_err(|_| {
            ConfigError::new(
                file,
                format!("{key}.config_from_env.{name}"),
                format!("the environment variable {var} is not set"),
            )
        })?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Reports a module that cannot be loaded at `<key>.module` of the config.
fn at_module<'a>(file: &'a Path, key: &'a str) -> impl Fn(anyhow::Error) -> ConfigError + 'a {
    move |e| ConfigError::new(file, format!("{key}.module"), format!("{e:#}"))
}

impl Plan {
    /// Loads every module (compiling or taking it from the cache in the
    /// state folder) and opens the collectors' data sources.
    pub fn build(loaded: &LoadedConfig) -> anyhow::Result<Plan> {
        let (config, file) = (&loaded.config, loaded.file.as_path());
        let trust = config.trust.policy(file)?;
        let load = |key: &str, name: &str, module: &str, pin: Option<&str>| -> Result<ModuleSource, ConfigError> {
            let source = ModuleSource::resolve(name, module, pin).map_err(at_module(file, key))?;
            trust.check(source).map_err(|e| ConfigError::new(file, format!("{key}.module"), e.to_string()))
        };
        let runtime = runtime_for(loaded)?;
        let mut modules = Vec::new();
        let mut links = Vec::new();
        for (i, r) in config.redactors.iter().enumerate() {
            let key = format!("redactors[{i}]");
            let values = module_config(file, &key, &r.config, &r.config_from_env)?;
            let source = load(&key, &r.name, &r.module, r.sha256.as_deref())?;
            modules.push(source.clone());
            let module = RedactorModule::with_grants(
                runtime.clone(),
                source,
                r.limits.apply(config.limits),
                values,
                r.grants.clone(),
            )
            .map_err(at_module(file, &key))?;
            links.push(ChainLink { source: Arc::new(module), max_events: r.batch_size, max_bytes: r.batch_bytes });
        }
        let data = Arc::new(DataSources::open(file, &config.data_sources)?);
        let mut collectors = Vec::new();
        for (i, c) in config.collectors.iter().enumerate() {
            let key = format!("collectors[{i}]");
            let values = module_config(file, &key, &c.config, &c.config_from_env)?;
            let source = load(&key, &c.name, &c.module, c.sha256.as_deref())?;
            modules.push(source.clone());
            let module = CollectorModule::new(
                runtime.clone(),
                source,
                c.limits.apply(config.limits),
                values,
                data.clone(),
                c.sources.clone(),
                c.grants.clone(),
            )
            .map_err(at_module(file, &key))?;
            let schedule =
                Schedule::parse(&c.schedule).map_err(|e| ConfigError::new(file, format!("{key}.schedule"), e.0))?;
            let next = schedule.first(Utc::now());
            collectors.push(ScheduledCollector { module, schedule, next });
        }
        Ok(Plan { loaded: loaded.clone(), chain: RedactionChain::with_links(links), collectors, modules })
    }
}

/// The sandbox runtime for a config: the compiled-module cache in the state
/// folder, the pool sized for the largest memory cap.
pub fn runtime_for(loaded: &LoadedConfig) -> anyhow::Result<Arc<Runtime>> {
    let config = &loaded.config;
    let max_memory = config
        .redactors
        .iter()
        .map(|r| r.limits.apply(config.limits).memory_mib)
        .chain(config.collectors.iter().map(|c| c.limits.apply(config.limits).memory_mib))
        .max()
        .unwrap_or(config.limits.memory_mib);
    Runtime::new(RuntimeOptions {
        cache_dir: Some(config.state_dir.join("cache")),
        max_memory_mib: max_memory,
        ..RuntimeOptions::default()
    })
}
