//! The `wasmtel` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wasmtel::config::{self, ConfigValue, EventsSource, LoadedConfig, RedactorModule, Shape, Sink, Stream};
use wasmtel::topology::{Mode, Plan, Topology};

/// Runs sandboxed WebAssembly collectors and redactors and delivers what
/// they produce.
#[derive(Parser)]
#[command(name = "wasmtel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run collectors on their schedule and redact and deliver events.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Run every collector once, process the events, print the summary and exit.
        #[arg(long)]
        once: bool,
    },
    /// Redact JSONL events from stdin to stdout with one module.
    Redact {
        /// A redactor component (.wasm) or `builtin:redactor-pii`.
        #[arg(long)]
        module: String,
        /// A wasmtel config: its limits, state_dir and the `config` table of
        /// the redactor using this module (or the first one) apply.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A module config value, `key=value` (repeatable; wins over --config).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Where the audit trail and dead letters go (default: the config's
        /// state_dir, or ./wasmtel-state).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Run a redactor module over golden vectors (JSONL of {"name", "input", "expect"}).
    TestModule {
        /// A redactor component (.wasm) or `builtin:redactor-pii`.
        #[arg(long)]
        module: String,
        /// The vectors file.
        #[arg(long)]
        vectors: PathBuf,
        /// A module config value, `key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Serve the ZITADEL-compatible TelemetryService and store what arrives.
    Receive {
        /// A config file with a `[receiver]` section.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides the config).
        #[arg(long)]
        listen: Option<String>,
        /// SQLite file to store reports in (overrides the config).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Serve the gRPC ingest service: accept, redact and deliver events.
    Serve {
        /// A config file with an `[ingest]` section and at least one `[[redactors]]`.
        #[arg(long)]
        config: PathBuf,
    },
    /// Consume a Kafka topic in a consumer group and push the events to Loki.
    Worker {
        /// A config file with a `[worker]` section and at least one `[[redactors]]`.
        #[arg(long)]
        config: PathBuf,
    },
    /// List what a receiver has stored.
    Reports {
        /// The receiver's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check a configuration file and exit.
    Check {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Show a state folder: logs, readers and their lag, dead letters, outboxes.
    Status {
        #[command(flatten)]
        state: StateArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect and replay the dead-letter store.
    Dlq {
        #[command(subcommand)]
        action: Dlq,
    },
    /// Generate an Ed25519 key pair for signing modules.
    Keygen {
        /// Where to write the private key (PEM, mode 0600); the public key
        /// goes to `<out>.pub`. Existing files are never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a module file: writes the detached signature `<module>.sig`.
    Sign {
        /// The private key file (from `wasmtel keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The module (.wasm) to sign.
        module: PathBuf,
    },
    /// Print benchmark figures.
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
}

/// Which state folder: a config's `state_dir`, or a folder.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct StateArgs {
    /// A config file whose `state_dir` to use.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The state folder itself.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

impl StateArgs {
    fn resolve(&self) -> anyhow::Result<(PathBuf, Option<LoadedConfig>)> {
        match (&self.config, &self.state_dir) {
            (Some(file), _) => {
                let loaded = config::load(file)?;
                Ok((loaded.config.state_dir.clone(), Some(loaded)))
            }
            (None, Some(dir)) => Ok((dir.clone(), None)),
            (None, None) => anyhow::bail!("give --config or --state-dir"),
        }
    }
}

#[derive(Subcommand)]
enum Dlq {
    /// List dead letters: id, time, stage, component, event id, reason.
    List {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        filter: FilterArgs,
        /// Print JSON lines (with the event) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one dead letter in full.
    Show {
        #[command(flatten)]
        state: StateArgs,
        /// Its id (the first column of `dlq list`).
        id: u64,
    },
    /// Send dead-lettered events through the whole path again (once each).
    Replay {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

/// Which dead letters.
#[derive(clap::Args)]
struct FilterArgs {
    /// Only those whose reason, stage or component contains this.
    #[arg(long)]
    reason: Option<String>,
    /// Only those at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<chrono::DateTime<chrono::Utc>>,
}

impl FilterArgs {
    fn filter(self) -> wasmtel::dead_letter::replay::Filter {
        wasmtel::dead_letter::replay::Filter { reason: self.reason, since: self.since }
    }
}

#[derive(Subcommand)]
enum Bench {
    /// BatchEmit from concurrent clients → logs → redaction → JSONL sink, end to end, redaction on vs off.
    Ingest {
        /// Concurrent clients, one measurement each (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        clients: Vec<usize>,
        /// Events per measurement.
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Events per batch.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// The durable log (append with group commit, read) vs write + fdatasync of the same bytes.
    Log {
        /// Records.
        #[arg(long, default_value_t = 200_000)]
        records: usize,
        /// Bytes per record.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Records per append.
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// The Kafka sink (redaction off and on) vs a bare rdkafka producer, same broker.
    Kafka {
        /// `bootstrap.servers` (start one with `scripts/kafka-broker start DIR PORT TOPIC`).
        #[arg(long)]
        brokers: String,
        /// An existing topic.
        #[arg(long, default_value = "bench")]
        topic: String,
        /// Number of synthetic events.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Events per sink call (the redactor batch size in a run).
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Loki pushes to the stand-in: snappy protobuf vs JSON.
    Loki {
        /// Number of synthetic events.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
    },
    /// Resource counts reported over loopback to the receiver, bulk 100 and 1000.
    Report {
        /// Number of organizations (one count each).
        #[arg(long, default_value_t = 10_000)]
        orgs: usize,
    },
    /// Module load: the cost of the signature and cache-digest checks, against loading without them.
    Load {
        /// Loads measured per variant.
        #[arg(long, default_value_t = 50)]
        loads: usize,
    },
    /// WASM redaction vs the same rules compiled natively.
    Redact {
        /// Number of synthetic events.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Events per guest call.
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WASMTEL_LOG").unwrap_or_else(|_| "wasmtel=info,warn".into()),
        )
        .init();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config, once } => run_config(&config::load(&config)?, once),
        Command::Redact { module, config, set, state_dir } => redact(module, config.as_deref(), &set, state_dir),
        Command::TestModule { module, vectors, set } => test_module(&module, &vectors, &set),
        Command::Receive { config, listen, db } => {
            let (file, mut receiver) = match &config {
                Some(file) => (file.clone(), config::load(file)?.config.receiver.unwrap_or_default()),
                None => ("(no --config)".into(), Default::default()),
            };
            if let Some(listen) = listen {
                receiver.listen = listen;
            }
            if let Some(db) = db {
                receiver.database = db;
            }
            tokio_runtime()?.block_on(wasmtel::receiver::run(&file, &receiver))
        }
        Command::Reports { db, json } => print_reports(&db, json),
        Command::Serve { config } => {
            let loaded = config::load(&config)?;
            tokio_runtime()?.block_on(wasmtel::sources::ingest::run(&loaded))
        }
        Command::Worker { config } => worker(&config::load(&config)?),
        Command::Check { config } => {
            let loaded = config::load(&config)?;
            let plan = Plan::build(&loaded)?;
            for m in &plan.modules {
                eprintln!("module {:?} ({}): sha256 {}, {}", m.name, m.origin, m.sha256, m.provenance);
            }
            let event_sinks: Vec<_> =
                loaded.config.sinks.iter().filter(|s| s.accepts(Stream::Events)).cloned().collect();
            let _runtime = tokio_runtime()?;
            let _enter = _runtime.enter();
            wasmtel::sinks::build_event_sinks(&event_sinks)?;
            eprintln!("{}: ok", config.display());
            Ok(())
        }
        Command::Status { state, json } => {
            let (dir, _) = state.resolve()?;
            let status = wasmtel::status::read(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{status}");
            }
            Ok(())
        }
        Command::Dlq { action } => dlq(action),
        Command::Keygen { out } => keygen(&out),
        Command::Sign { key, module } => {
            let signed = wasmtel::runtime::trust::sign_module(&key, &module)?;
            let s = &signed.signature;
            println!(
                "signed {} (sha256 {}) with key {}: {}",
                module.display(),
                s.sha256,
                s.key_id,
                signed.path.display()
            );
            Ok(())
        }
        Command::Bench { which: Bench::Kafka { brokers, topic, events, batch } } => {
            wasmtel::bench::delivery::kafka(&brokers, &topic, events, batch)
        }
        Command::Bench { which: Bench::Ingest { clients, events, batch } } => {
            wasmtel::bench::ingest::run(&clients, events, batch)
        }
        Command::Bench { which: Bench::Log { records, size, batch } } => wasmtel::bench::log::run(records, size, batch),
        Command::Bench { which: Bench::Loki { events } } => wasmtel::bench::delivery::loki(events),
        Command::Bench { which: Bench::Load { loads } } => wasmtel::bench::load::run(loads).map(drop),
        Command::Bench { which: Bench::Report { orgs } } => wasmtel::bench::report::run(orgs),
        Command::Bench { which: Bench::Redact { events, batch } } => {
            wasmtel::bench::redact::run(events, batch)?;
            Ok(())
        }
    }
}

/// `wasmtel keygen`: writes the key pair, prints the public key and its id.
fn keygen(out: &Path) -> anyhow::Result<()> {
    use wasmtel::runtime::trust::{PrivateKey, keys};
    let mut public_file = out.as_os_str().to_os_string();
    public_file.push(".pub");
    let public_file = PathBuf::from(public_file);
    if public_file.exists() {
        anyhow::bail!("{} already exists; refusing to overwrite a key", public_file.display());
    }
    let public = PrivateKey::generate(out)?.public_key();
    keys::write_public_key_file(&public_file, &public)?;
    println!("private key: {} (mode 0600; keep it secret)", out.display());
    println!("public key:  {public}");
    println!("key id:      {}", public.key_id());
    println!("public key file: {} (list it, or the key itself, in [trust] keys)", public_file.display());
    Ok(())
}

/// The runtime every command's async work runs on.
fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("wasmtel-io").build()?)
}

/// Builds the graph for `mode` and runs it until the input ends or a signal.
fn run_graph(loaded: &LoadedConfig, mode: Mode) -> anyhow::Result<(wasmtel::stats::Stats, PathBuf)> {
    let topology = Topology::open(Plan::build(loaded)?, mode)?;
    let audit = topology.audit_path();
    let stats = tokio_runtime()?.block_on(topology.run(wasmtel::shutdown::signal()))?;
    Ok((stats, audit))
}

fn run_config(loaded: &LoadedConfig, once: bool) -> anyhow::Result<()> {
    let (stats, audit) = run_graph(loaded, Mode::Run { once })?;
    eprint!("{stats}");
    eprintln!("  audit trail:      {}", audit.display());
    eprintln!(
        "  dead letters:     {} (wasmtel dlq list)",
        wasmtel::dead_letter::dir(&loaded.config.state_dir).display()
    );
    Ok(())
}

fn dlq(action: Dlq) -> anyhow::Result<()> {
    use wasmtel::dead_letter::{self, replay};
    match action {
        Dlq::List { state, filter, json } => {
            let (dir, _) = state.resolve()?;
            let filter = filter.filter();
            let done = replay::replayed(&dir)?;
            let mut shown = 0;
            let unreadable = dead_letter::read(&dir, |stored| {
                if !filter.matches(&stored) {
                    return;
                }
                shown += 1;
                let l = &stored.letter;
                if json {
                    let mut v = serde_json::to_value(l).expect("a dead letter serializes");
                    v["id"] = stored.id.into();
                    v["replayed"] = done.contains(&stored.id).into();
                    println!("{v}");
                } else {
                    let reason: String = l.reason.chars().take(80).collect();
                    let mark = if done.contains(&stored.id) { " (replayed)" } else { "" };
                    println!(
                        "{:>8}  {}  {:<6}  {:<16}  {:<40}  {reason}{mark}",
                        stored.id,
                        wasmtel::event::format_time(l.ts),
                        l.stage.as_str(),
                        l.component,
                        l.event_id
                    );
                }
            })?;
            if !json {
                eprintln!(
                    "{shown} dead letter(s){}",
                    if unreadable > 0 { format!(", {unreadable} unreadable") } else { String::new() }
                );
            }
            Ok(())
        }
        Dlq::Show { state, id } => {
            let (dir, _) = state.resolve()?;
            let mut found = None;
            dead_letter::read(&dir, |stored| {
                if stored.id == id {
                    found = Some(stored);
                }
            })?;
            let stored =
                found.ok_or_else(|| anyhow::anyhow!("no dead letter with id {id} (see `wasmtel dlq list`)"))?;
            let mut v = serde_json::to_value(&stored.letter)?;
            v["id"] = stored.id.into();
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Dlq::Replay { state, filter } => {
            let (dir, loaded) = state.resolve()?;
            let (log_config, limits) = loaded.map(|l| (l.config.log, l.config.event_limits)).unwrap_or_default();
            let _lock = wasmtel::log::StateLock::acquire(&dir).map_err(|e| {
                anyhow::anyhow!(
                    "{e}\n(replay writes into the state folder: stop the process using it, replay, then start it again)"
                )
            })?;
            let raw = wasmtel::topology::open_raw_log(&dir, &log_config)?;
            let report = replay::replay(&dir, &raw, &filter.filter(), &limits)?;
            eprintln!(
                "replayed {} event(s) into the raw log (they go through redaction and every sink on the next start); skipped {} already replayed, {} duplicate id(s), {} that still are not events",
                report.replayed, report.already_replayed, report.duplicate_ids, report.not_events
            );
            Ok(())
        }
    }
}

fn print_reports(db: &Path, json: bool) -> anyhow::Result<()> {
    if !db.exists() {
        anyhow::bail!("{} does not exist (is it the receiver's `database`?)", db.display());
    }
    let store = wasmtel::receiver::ReceiverStore::open(db)?;
    let systems = store.systems()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&systems)?);
        return Ok(());
    }
    if systems.is_empty() {
        println!("no reports received yet");
    }
    for s in &systems {
        println!(
            "system {}  version {}  last seen {}",
            s.system_id,
            if s.version.is_empty() { "-" } else { &s.version },
            wasmtel::event::format_time(s.last_seen)
        );
        for (id, domains) in &s.instances {
            println!("  instance {id}: {}", domains.join(", "));
        }
        let mut per_resource: std::collections::BTreeMap<(&str, &str), (u64, u64, chrono::DateTime<chrono::Utc>)> =
            Default::default();
        for c in &s.counts {
            let entry = per_resource.entry((&c.resource_name, &c.table_name)).or_insert((0, 0, c.updated_at));
            entry.0 += 1;
            entry.1 += u64::from(c.amount);
            entry.2 = entry.2.max(c.updated_at);
        }
        println!("  {:<16} {:<12} {:>8} {:>10}  updated", "resource", "table", "parents", "total");
        for ((resource, table), (parents, total, updated)) in per_resource {
            println!("  {resource:<16} {table:<12} {parents:>8} {total:>10}  {}", wasmtel::event::format_time(updated));
        }
    }
    Ok(())
}

fn worker(loaded: &LoadedConfig) -> anyhow::Result<()> {
    if loaded.config.worker.is_none() {
        return Err(config::ConfigError::new(
            &loaded.file,
            "worker",
            "`wasmtel worker` needs a [worker] section (brokers, topic, and [worker.loki] or [[sinks]])",
        )
        .into());
    }
    let (stats, _) = run_graph(loaded, Mode::Worker)?;
    eprint!("{stats}");
    eprintln!(
        "wasmtel worker: consumed {}, delivered {}, dead-lettered {}",
        stats.events_in,
        stats.per_sink.values().map(|s| s.sent).sum::<u64>(),
        stats.dead_lettered()
    );
    Ok(())
}

/// Parses repeated `--set key=value` flags.
fn parse_sets(set: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    set.iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--set {pair:?}: expected KEY=VALUE"))
        })
        .collect()
}

fn test_module(module: &str, vectors: &Path, set: &[String]) -> anyhow::Result<()> {
    use wasmtel::runtime::{ModuleSource, Runtime, RuntimeOptions, redactor::RedactorModule};
    let text = std::fs::read_to_string(vectors)
        .map_err(|e| anyhow::anyhow!("cannot read the vectors file {}: {e}", vectors.display()))?;
    let runtime = Runtime::new(RuntimeOptions::default())?;
    let source = ModuleSource::resolve("module-under-test", module, None)?;
    let config = parse_sets(set)?.into_iter().collect();
    let redactor = RedactorModule::new(runtime, source, config::Limits::default(), config)?;
    let report = wasmtel::vectors::run(std::sync::Arc::new(redactor), &text).map_err(anyhow::Error::msg)?;
    for m in &report.failures {
        println!("FAIL {}: {}", m.name, m.detail);
    }
    let failed = report.failures.len();
    println!("{} passed, {failed} failed", report.total - failed);
    if failed > 0 {
        anyhow::bail!("{failed} of {} vectors failed", report.total);
    }
    Ok(())
}

fn redact(
    module: String,
    config_file: Option<&Path>,
    set: &[String],
    state_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut loaded = match config_file {
        Some(file) => config::load(file)?,
        None => config::parse(Path::new("(defaults)"), "")?,
    };
    let cfg = &mut loaded.config;
    // Resolve the module path the way the config would, then keep the
    // settings of the matching redactor entry (or the first).
    let module_path = if module.starts_with("builtin:") {
        module.clone()
    } else {
        std::fs::canonicalize(&module).map(|p| p.display().to_string()).unwrap_or(module.clone())
    };
    let template = cfg
        .redactors
        .iter()
        .find(|r| {
            r.module == module_path
                || std::fs::canonicalize(&r.module).ok().map(|p| p.display().to_string()) == Some(module_path.clone())
        })
        .or(cfg.redactors.first())
        .cloned();
    let mut redactor = template.unwrap_or(RedactorModule {
        name: "redact".into(),
        module: String::new(),
        sha256: None,
        batch_size: config::DEFAULT_BATCH_SIZE,
        batch_bytes: wasmtel::transforms::redact::DEFAULT_BATCH_BYTES,
        limits: Default::default(),
        config: Default::default(),
        config_from_env: Default::default(),
        grants: Default::default(),
    });
    redactor.module = module_path;
    for (k, v) in parse_sets(set)? {
        redactor.config.insert(k, ConfigValue::String(v));
    }
    cfg.redactors = vec![redactor];
    cfg.collectors.clear();
    cfg.sinks = vec![Sink::Stdout {
        name: "stdout".into(),
        streams: vec![Stream::Events],
        when_full: Default::default(),
        shape: Shape::AsRead,
    }];
    let unknown_fields = cfg.events.as_ref().map(|e| e.unknown_fields).unwrap_or_default();
    cfg.events = Some(EventsSource { path: "-".into(), unknown_fields, checkpoint: false });
    if let Some(dir) = state_dir {
        cfg.state_dir = dir;
    } else if config_file.is_none() {
        cfg.state_dir = PathBuf::from("wasmtel-state");
    }
    let (stats, _) = run_graph(&loaded, Mode::Redact)?;
    eprintln!(
        "redact: {} in, {} out, {} dead-lettered ({}), {} findings",
        stats.events_in,
        stats.events_out,
        stats.dead_lettered(),
        wasmtel::dead_letter::dir(&loaded.config.state_dir).display(),
        stats.findings.values().sum::<u64>()
    );
    Ok(())
}
