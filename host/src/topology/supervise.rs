//! Starting the stages, restarting the ones that fail, and ending the run:
//! the redaction stage on its own thread, one delivery task per event sink
//! and one task per report sink on the shared tokio runtime, collectors on
//! their own thread. A failed stage is reported to [`Health`], restarted
//! after a backoff (500 ms doubling to 30 s) from its durable position, and
//! fatal after `pipeline.max_restarts` failures in a row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::collect::Collectors;
use super::delivery::{Delivery, Phase};
use super::health::Health;
use super::redaction::{Outputs, RedactionStage, STAGE, StageEnd};
use super::{Mode, StageError, Topology};
use crate::config::{self, LoadedConfig};
use crate::sinks::{self, EventSink, SinkError};
use crate::sources::jsonl::JsonlSource;
use crate::sources::kafka::KafkaSource;
use crate::sources::log::LogSource;
use crate::sources::{Source, SourceError};
use crate::stats::Stats;

/// The wait before restart number `failures`.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << failures.saturating_sub(1).min(6))).min(Duration::from_secs(30))
}

/// The sources of a mode, opened fresh (from their durable positions).
fn open_sources(
    topology_raw: Option<&Arc<crate::log::Log>>,
    loaded: &LoadedConfig,
    mode: Mode,
    stdin_taken: &AtomicBool,
) -> Result<Vec<Box<dyn Source>>, SourceError> {
    let config = &loaded.config;
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    if let Some(raw) = topology_raw {
        sources.push(Box::new(LogSource::new(Arc::clone(raw), mode != Mode::Serve)?));
    }
    let unknown = config.events.as_ref().map(|e| e.unknown_fields).unwrap_or_default();
    let stdin = || -> Result<Box<dyn Source>, SourceError> {
        if stdin_taken.swap(true, Ordering::SeqCst) {
            return Err(SourceError::Other("standard input cannot be read again after a failure".into()));
        }
        Ok(Box::new(JsonlSource::stdin(unknown, config.event_limits)))
    };
    match mode {
        Mode::Redact => sources.push(stdin()?),
        Mode::Run { .. } => match &config.events {
            Some(events) if events.path.as_os_str() == "-" => sources.push(stdin()?),
            Some(events) => {
                let checkpoint = events.checkpoint.then(|| config.state_dir.join("sources").join("events"));
                sources.push(Box::new(JsonlSource::file(&events.path, checkpoint, unknown, config.event_limits)?));
            }
            None => {}
        },
        Mode::Worker => {
            let worker = config.worker.as_ref().ok_or_else(|| SourceError::Other("no [worker] section".into()))?;
            sources.push(Box::new(KafkaSource::new(worker, config.event_limits)?));
        }
        Mode::Serve => {}
    }
    Ok(sources)
}

/// The event sinks of a mode: the configured ones, plus `[worker.loki]`.
fn sink_configs(loaded: &LoadedConfig, mode: Mode) -> Vec<config::Sink> {
    let config = &loaded.config;
    let mut out: Vec<config::Sink> = config
        .sinks
        .iter()
        .filter(|s| {
            s.accepts(config::Stream::Events) || matches!(s, config::Sink::Jsonl { .. } | config::Sink::Stdout { .. })
        })
        .filter(|s| !matches!(s, config::Sink::Zitadel(_) | config::Sink::HttpReport(_)))
        .cloned()
        .collect();
    if mode == Mode::Worker
        && let Some(loki) = config.worker.as_ref().and_then(|w| w.loki.clone())
    {
        out.push(config::Sink::Loki(loki));
    }
    out
}

fn build_sink(config: &config::Sink) -> Result<Box<dyn EventSink>, SinkError> {
    sinks::build_event_sinks(std::slice::from_ref(config))?
        .pop()
        .ok_or_else(|| SinkError::Other(format!("sink {} takes no events", config.name())))
}

/// Runs the graph; see [`Topology::run`].
pub async fn run(t: Topology, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<Stats> {
    let loaded = t.plan.loaded.clone();
    let config = &loaded.config;
    let once = matches!(t.mode, Mode::Run { once: true } | Mode::Redact);
    let health = Arc::clone(&t.health);
    let stats = Arc::clone(&t.stats);
    let stop = Arc::new(AtomicBool::new(false));
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(Phase::Running);

    // Event sinks: built now, so a broken sink config fails the start.
    let mut deliveries = Vec::new();
    for sink_config in sink_configs(&loaded, t.mode) {
        let sink = build_sink(&sink_config).with_context(|| format!("cannot start sink {}", sink_config.name()))?;
        let delivery = Delivery {
            sink,
            log: Arc::clone(&t.redacted),
            dead: Arc::clone(&t.dead),
            health: Arc::clone(&health),
            stats: Arc::clone(&stats),
            when_full: sink_config.when_full(),
        };
        deliveries.push(tokio::spawn(supervise_delivery(delivery, sink_config, phase_rx.clone())));
    }

    // Report sinks, each on its own task; collectors hand them reports.
    let (reports_stop_tx, reports_stop_rx) = tokio::sync::watch::channel(false);
    let report_sinks = match t.mode {
        Mode::Redact => Vec::new(),
        _ => {
            let opt_out = crate::installation::opt_out_reason(config.reporting.enabled);
            sinks::report::build(&config.sinks, &config.state_dir, opt_out.as_deref())?
        }
    };
    let takes_reports = t.event_sinks_take_reports();
    let mut collectors = Collectors {
        collectors: t.plan.collectors,
        inboxes: report_sinks.iter().map(|s| s.inbox()).collect(),
        redacted: takes_reports.then(|| Arc::clone(&t.redacted)),
        stats: Arc::clone(&stats),
    };
    // With `once`, collectors run first, so the report sinks' one drain
    // finds their reports.
    let collector_thread = if once {
        tokio::task::spawn_blocking(move || collectors.run_due(true)).await?.context("collectors failed")?;
        None
    } else {
        let stop = Arc::clone(&stop);
        let health = Arc::clone(&health);
        Some(std::thread::Builder::new().name("wasmtel-collectors".into()).spawn(move || {
            if let Err(e) = collectors.run(&stop) {
                health.failed("collectors", &e.to_string());
            }
        })?)
    };
    let mut reporters = Vec::new();
    for sink in report_sinks {
        let mut stop = reports_stop_rx.clone();
        reporters.push(tokio::spawn(sink.run(once, async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    return;
                }
            }
        })));
    }

    // The redaction stage.
    let threads = match config.pipeline.redaction_threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let stage = RedactionStage {
        chain: t.plan.chain.clone(),
        threads,
        outputs: Outputs {
            redacted: Arc::clone(&t.redacted),
            dead: Arc::clone(&t.dead),
            audit: Arc::clone(&t.audit),
            stats: Arc::clone(&stats),
            health: Arc::clone(&health),
        },
    };
    let (stage_done_tx, stage_done_rx) = tokio::sync::oneshot::channel();
    let stage_thread = {
        let (stop, health, raw, mode) = (Arc::clone(&stop), Arc::clone(&health), t.raw.clone(), t.mode);
        let loaded = loaded.clone();
        std::thread::Builder::new().name("wasmtel-redaction".into()).spawn(move || {
            let end =
                supervise_stage(&stage, &stop, &health, || open_sources(raw.as_ref(), &loaded, mode, &STDIN_TAKEN));
            // The receiver is gone only when the run already ended.
            if stage_done_tx.send(end).is_err() {
                tracing::debug!("the redaction stage ended after the run");
            }
        })?
    };

    // Wait for the end: input exhausted, shutdown, or a fatal failure.
    let mut health_changes = health.subscribe();
    tokio::pin!(shutdown);
    tokio::pin!(stage_done_rx);
    let mut fatal = None;
    loop {
        if let Some(reason) = health.fatal() {
            fatal = Some(reason);
            break;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            end = &mut stage_done_rx => {
                match end {
                    Ok(StageEnd::Exhausted) if once => {}
                    Ok(StageEnd::Exhausted) => tokio::select! {
                        _ = &mut shutdown => {}
                        _ = wait_fatal(&health) => {}
                    },
                    _ => {}
                }
                break;
            }
            _ = health_changes.changed() => {}
        }
    }
    stop.store(true, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || stage_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the redaction thread panicked"))?;
    let drain = match (t.mode, fatal.is_some()) {
        (_, true) => Some(Instant::now()),
        (Mode::Redact, false) => None,
        _ => Some(Instant::now() + Duration::from_millis(config.pipeline.drain_timeout_ms)),
    };
    phase_tx.send_replace(Phase::Drain { until: drain });
    for d in deliveries {
        d.await?;
    }
    if !once {
        reports_stop_tx.send_replace(true);
    }
    for r in reporters {
        r.await?;
    }
    if let Some(thread) = collector_thread {
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the collector thread panicked"))?;
    }
    let stats = stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match fatal.or_else(|| health.fatal()) {
        Some(reason) => Err(anyhow::anyhow!("{reason}; exiting so a service manager can restart wasmtel")),
        None => Ok(stats),
    }
}

/// Standard input is read by one source in the life of the process.
static STDIN_TAKEN: AtomicBool = AtomicBool::new(false);

async fn wait_fatal(health: &Health) {
    let mut changes = health.subscribe();
    while health.fatal().is_none() {
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Runs the redaction stage, restarting it with fresh sources after a
/// failure, until it ends, is stopped, or failed too often.
fn supervise_stage(
    stage: &RedactionStage,
    stop: &AtomicBool,
    health: &Health,
    open: impl Fn() -> Result<Vec<Box<dyn Source>>, SourceError>,
) -> StageEnd {
    loop {
        let result = open().map_err(StageError::from).and_then(|mut sources| stage.run(&mut sources, stop));
        let failures = match result {
            Ok(end) => return end,
            Err(StageError::Interrupted) => return StageEnd::Stopped,
            Err(e) if e.is_out_of_space() => {
                health.blocked(STAGE, &e.to_string());
                3
            }
            Err(e) => health.failed(STAGE, &e.to_string()),
        };
        if health.fatal().is_some() {
            return StageEnd::Stopped;
        }
        let until = Instant::now() + backoff(failures);
        while Instant::now() < until {
            if stop.load(Ordering::SeqCst) {
                return StageEnd::Stopped;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs one sink's delivery, rebuilding the sink after a failure.
async fn supervise_delivery(mut delivery: Delivery, config: config::Sink, phase: tokio::sync::watch::Receiver<Phase>) {
    let name = config.name().to_string();
    loop {
        let failures = match delivery.run(phase.clone()).await {
            Ok(()) => return,
            Err(e) if e.is_out_of_space() => {
                delivery.health.blocked(&name, &e.to_string());
                3
            }
            Err(e) => delivery.health.failed(&name, &e.to_string()),
        };
        if delivery.health.fatal().is_some() {
            return;
        }
        tokio::time::sleep(backoff(failures)).await;
        if matches!(*phase.borrow(), Phase::Drain { until: Some(t) } if Instant::now() >= t) {
            return;
        }
        match build_sink(&config) {
            Ok(sink) => delivery.sink = sink,
            Err(e) => tracing::error!(sink = %name, "cannot rebuild the sink: {e}"),
        }
    }
}
