//! Wires the stages together for `run` and `redact`: source → redaction
//! chain (which seals events for the egress guard) → sinks, with the audit
//! trail and the dead-letter store beside it, and collectors feeding reports
//! to the same sinks. Failures are counted and contained; nothing accepted is
//! dropped: it reaches the sinks or the dead-letter store.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;

use crate::audit::AuditLog;
use crate::config::{ConfigError, LoadedConfig, Stream, UnknownFields};
use crate::datasource::DataSources;
use crate::dead_letter::{DeadLetters, Stage};
use crate::event::Event;
use crate::report::Report;
use crate::runtime::collector::CollectorModule;
use crate::runtime::redactor::{Batch, RedactorModule};
use crate::runtime::{ModuleSource, Runtime, RuntimeOptions};
use crate::schedule::Schedule;
use crate::sinks::{self, Sink};
use crate::sources::jsonl::JsonlSource;
use crate::stats::Stats;
use crate::transforms::redact::{self, FindingSource, RedactionChain};

/// A collector and when it is next due.
struct ScheduledCollector {
    module: CollectorModule,
    schedule: Schedule,
    next: chrono::DateTime<Utc>,
}

/// Everything a run needs, built from the configuration.
pub struct Pipeline {
    chain: RedactionChain,
    batch_size: usize,
    unknown_fields: UnknownFields,
    collectors: Vec<ScheduledCollector>,
    sinks: Vec<Box<dyn Sink>>,
    audit: AuditLog,
    dead: DeadLetters,
    scratch: Batch,
    stats: Stats,
}

/// Module config values: the `config` table plus `config_from_env`.
fn module_config(
    file: &std::path::Path,
    key: &str,
    table: &BTreeMap<String, crate::config::ConfigValue>,
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

/// Reports a module that cannot be loaded at `<key>.module` of the config.
fn at_module<'a>(file: &'a std::path::Path, key: &'a str) -> impl Fn(anyhow::Error) -> ConfigError + 'a {
    move |e| ConfigError::new(file, format!("{key}.module"), format!("{e:#}"))
}

/// The configured `[[redactors]]`, loaded, as a chain.
pub fn redaction_chain(loaded: &LoadedConfig, runtime: &Arc<Runtime>) -> anyhow::Result<RedactionChain> {
    let (config, file) = (&loaded.config, loaded.file.as_path());
    let mut redactors: Vec<Arc<dyn FindingSource>> = Vec::new();
    for (i, r) in config.redactors.iter().enumerate() {
        let key = format!("redactors[{i}]");
        let values = module_config(file, &key, &r.config, &r.config_from_env)?;
        let source = ModuleSource::resolve(&r.name, &r.module, r.sha256.as_deref()).map_err(at_module(file, &key))?;
        let module = RedactorModule::with_grants(
            runtime.clone(),
            source,
            r.limits.apply(config.limits),
            values,
            r.grants.clone(),
        )
        .map_err(at_module(file, &key))?;
        redactors.push(Arc::new(module));
    }
    Ok(RedactionChain::new(redactors))
}

impl Pipeline {
    /// Loads modules, opens data sources, sinks, the audit trail and the
    /// dead-letter store.
    pub fn build(loaded: &LoadedConfig) -> anyhow::Result<Pipeline> {
        let (config, file) = (&loaded.config, loaded.file.as_path());
        if config.events.is_some() && config.redactors.is_empty() {
            return Err(ConfigError::new(file, "redactors", "events are configured but no redactor is: add a [[redactors]] entry (e.g. module = \"builtin:redactor-pii\") so un-redacted events never reach a sink").into());
        }
        std::fs::create_dir_all(&config.state_dir)
            .with_context(|| format!("cannot create the state folder {}", config.state_dir.display()))?;
        let runtime = runtime_for(loaded)?;
        let chain = redaction_chain(loaded, &runtime)?;
        let batch_size = config.redactor_batch_size();

        let data = Arc::new(DataSources::open(file, &config.data_sources)?);
        let mut collectors = Vec::new();
        for (i, c) in config.collectors.iter().enumerate() {
            let key = format!("collectors[{i}]");
            let values = module_config(file, &key, &c.config, &c.config_from_env)?;
            let source =
                ModuleSource::resolve(&c.name, &c.module, c.sha256.as_deref()).map_err(at_module(file, &key))?;
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
                Schedule::parse(&c.schedule).map_err(|e| ConfigError::new(file, format!("{key}.schedule"), e))?;
            let next = schedule.first(Utc::now());
            collectors.push(ScheduledCollector { module, schedule, next });
        }

        Ok(Pipeline {
            chain,
            batch_size,
            unknown_fields: config.events.as_ref().map(|e| e.unknown_fields).unwrap_or_default(),
            collectors,
            sinks: sinks::build(
                &config.sinks,
                &config.state_dir,
                crate::installation::opt_out_reason(config.reporting.enabled).as_deref(),
            )?,
            audit: AuditLog::open(&config.state_dir)?,
            dead: DeadLetters::open(&config.state_dir)?,
            scratch: redact::new_batch(),
            stats: Stats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Where dead letters go.
    pub fn dead_letter_path(&self) -> &std::path::Path {
        self.dead.path()
    }

    /// Where audit records go.
    pub fn audit_path(&self) -> &std::path::Path {
        self.audit.path()
    }

    /// Runs every collector that is due now (or every collector, with
    /// `all`) and delivers its report.
    pub fn run_collectors(&mut self, all: bool) -> anyhow::Result<()> {
        let now = Utc::now();
        for i in 0..self.collectors.len() {
            if !all && self.collectors[i].next > now {
                continue;
            }
            let c = &mut self.collectors[i];
            c.next = c.schedule.next_after(now);
            let module = &self.collectors[i].module;
            let name = module.source().name.to_string();
            let collected_at = Utc::now();
            match module.collect() {
                Ok(collected) => {
                    let report = Report {
                        collector: name,
                        module_sha256: module.source().sha256.to_string(),
                        collected_at,
                        base: collected.base,
                        counts: collected.counts,
                    };
                    self.stats.reports += 1;
                    self.stats.counts_reported += report.counts.len() as u64;
                    for sink in self.sinks.iter_mut().filter(|s| s.accepts(Stream::Reports)) {
                        sink.send_report(&report)
                            .and_then(|()| sink.flush())
                            .with_context(|| format!("sink {} failed to take a report", sink.name()))?;
                    }
                }
                Err(failure) => {
                    self.stats.collector_failures += 1;
                    tracing::error!(collector = %name, kind = failure.kind(), "collection failed: {failure}");
                }
            }
        }
        Ok(())
    }

    /// Flushes every sink; report sinks retry what earlier runs left in
    /// their outbox.
    pub fn flush_sinks(&mut self) -> anyhow::Result<()> {
        for sink in &mut self.sinks {
            sink.flush().with_context(|| format!("sink {} failed to flush", sink.name()))?;
        }
        Ok(())
    }

    /// How long until the next collector is due (`None` without collectors).
    pub fn next_collection_in(&self) -> Option<Duration> {
        self.collectors.iter().map(|c| (c.next - Utc::now()).to_std().unwrap_or(Duration::ZERO)).min()
    }

    /// Reads every event from `reader`, redacts and delivers them.
    pub fn process_events<R: BufRead>(&mut self, reader: R, source_name: &str) -> anyhow::Result<()> {
        let mut events = Vec::with_capacity(self.batch_size);
        let mut ids = Vec::with_capacity(self.batch_size);
        for line in JsonlSource::new(reader, source_name, self.unknown_fields) {
            let line = line.with_context(|| format!("reading events from {source_name} failed"))?;
            match line.event {
                Ok(event) => {
                    events.push(event);
                    ids.push(line.id);
                }
                Err((reason, raw)) => {
                    self.dead.record(Stage::Source, source_name, &reason, &line.id, raw.into())?;
                    self.stats.events_in += 1;
                    self.stats.dead_source += 1;
                }
            }
            if events.len() == self.batch_size {
                self.process_batch(std::mem::take(&mut events), std::mem::take(&mut ids))?;
            }
        }
        if !events.is_empty() {
            self.process_batch(events, ids)?;
        }
        for sink in &mut self.sinks {
            sink.flush().with_context(|| format!("sink {} failed to flush", sink.name()))?;
        }
        self.dead.flush()?;
        Ok(())
    }

    /// Redacts one batch and hands it to the sinks, or dead-letters it.
    pub fn process_batch(&mut self, events: Vec<Event>, ids: Vec<String>) -> anyhow::Result<()> {
        self.stats.events_in += events.len() as u64;
        match self.chain.redact(events, &ids, &mut self.scratch) {
            Ok(passed) => {
                self.audit.write(&passed.audit)?;
                for (rule, n) in passed.findings_per_rule {
                    *self.stats.findings.entry(rule).or_default() += n;
                }
                let mut delivered = vec![true; passed.events.len()];
                for sink in self.sinks.iter_mut().filter(|s| s.accepts(Stream::Events)) {
                    let refused = match sink.send_events(&passed.events) {
                        Ok(refused) => refused,
                        Err(e) => {
                            (0..passed.events.len()).map(|i| (i, format!("sink {} failed: {e}", sink.name()))).collect()
                        }
                    };
                    let entry = self.stats.per_sink.entry(sink.name().to_string()).or_default();
                    entry.0 += (passed.events.len() - refused.len()) as u64;
                    entry.1 += refused.len() as u64;
                    // What a sink did not take is kept (redacted) with the reason.
                    for (i, reason) in refused {
                        if let (Some(event), Some(id)) = (passed.events.get(i), ids.get(i)) {
                            self.dead.record(Stage::Sink, sink.name(), &reason, id, event.event().to_json())?;
                            self.stats.dead_sink += 1;
                            delivered[i] = false;
                        }
                    }
                }
                self.stats.events_out += delivered.iter().filter(|d| **d).count() as u64;
            }
            Err(failed) => {
                tracing::warn!(module = %failed.module, kind = failed.failure.kind(), events = failed.events.len(), "redaction failed closed: {}", failed.failure);
                *self.stats.guest_failures.entry(failed.failure.kind().to_string()).or_default() += 1;
                let reason = failed.failure.to_string();
                for (event, id) in failed.events.iter().zip(&ids) {
                    self.dead.record(Stage::Redact, &failed.module, &reason, id, event.to_json())?;
                }
                self.stats.dead_redact += failed.events.len() as u64;
            }
        }
        self.dead.flush()?;
        Ok(())
    }
}
