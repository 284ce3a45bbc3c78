//! Reporting over real sockets: the gRPC reporter against the real receiver
//! (in-process and as `wasmtel receive` processes), fault injection with
//! scripted TelemetryService servers (supplements, not replacements), the
//! receiver's validation, opt-out, and the HTTP JSON reporter.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tonic::{Code, Request, Response, Status};
use wasmtel::installation::ReportingSwitch;
use wasmtel::proto::zitadel as pb;
use wasmtel::proto::zitadel::telemetry_service_server::{TelemetryService, TelemetryServiceServer};
use wasmtel::receiver::{ReceiverConfig, ReceiverStore};
use wasmtel::report::{CountParentType, Report, ResourceCount};
use wasmtel::sinks::report::ReportSink;
use wasmtel::sinks::report::zitadel::{self, ZitadelConfig};

use crate::common::*;

/// A report with `n` counts.
pub fn report(n: usize) -> Report {
    Report {
        collector: "test".into(),
        module_sha256: "00".into(),
        collected_at: Utc::now(),
        base: Some(wasmtel::report::BaseInformation { version: "v9.9.9".into(), instances: vec![] }),
        counts: (0..n)
            .map(|i| ResourceCount {
                instance_id: "inst-1".into(),
                parent_type: CountParentType::Organization,
                parent_id: format!("org-{i}"),
                resource_name: "users".into(),
                table_name: "users14".into(),
                updated_at: Utc::now(),
                amount: i as u32,
            })
            .collect(),
    }
}

/// A sink config pointing at `addr`.
pub fn sink_config(addr: SocketAddr, extra: &str) -> ZitadelConfig {
    let text = format!(
        "endpoint = \"http://{addr}\"\nbulk_size = 10\ntimeout_ms = 2000\n[retry]\ninitial_backoff_ms = 20\nmax_backoff_ms = 100\n{extra}"
    );
    toml::from_str(&text).expect("sink config")
}

/// A tokio runtime for servers in a sync test.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Starts the real receiver on a free port; returns its address and a stopper.
pub fn start_receiver(
    rt: &tokio::runtime::Runtime,
    db: &std::path::Path,
    addr: Option<SocketAddr>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = ReceiverConfig { database: db.to_path_buf(), ..ReceiverConfig::default() };
    let listener = rt.block_on(async {
        let target = addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        // A restarted receiver may need a moment for the port to be free.
        for _ in 0..50 {
            if let Ok(l) = tokio::net::TcpListener::bind(target).await {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("cannot bind {target}");
    });
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        wasmtel::receiver::serve(std::path::Path::new("receiver.toml"), &config, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop)
}

#[test]
fn reporter_delivers_to_the_receiver_with_report_id_chaining() {
    let dir = tempdir();
    let rt = server_runtime();
    let (addr, _stop) = start_receiver(&rt, &dir.path().join("recv.db"), None);
    let mut sink = zitadel::sink(sink_config(addr, ""), &dir.path().join("state"), ReportingSwitch::default()).unwrap();
    let sent = report(27);
    send(&mut sink, &sent);
    assert_eq!(sink.stats().delivered, 1);
    assert!(sink.outbox().pending().unwrap().is_empty());

    let store = ReceiverStore::open(&dir.path().join("recv.db")).unwrap();
    let systems = store.systems().unwrap();
    assert_eq!(systems.len(), 1);
    let system_id = std::fs::read_to_string(dir.path().join("state/system-id")).unwrap();
    assert_eq!(systems[0].system_id, system_id.trim());
    assert_eq!(systems[0].version, "v9.9.9");
    let mut got = systems[0].counts.clone();
    got.sort_by_key(|c| c.amount);
    let want: Vec<_> = sent.counts.iter().map(|c| (c.parent_id.clone(), c.amount)).collect();
    assert_eq!(got.iter().map(|c| (c.parent_id.clone(), c.amount)).collect::<Vec<_>>(), want);
    // 27 counts at bulk size 10: three batches (10, 10, 7), all under one report.
    assert_eq!(store.batches().unwrap(), 3);
    assert_eq!(store.reports().unwrap(), 1, "every batch carried the report ID of the base report");

    // The same system ID next time: a second report reuses it.
    send(&mut sink, &report(10));
    assert_eq!(store.systems().unwrap().len(), 1);
    // 10 counts at bulk size 10: one full batch and an empty one ending the report.
    assert_eq!(store.batches().unwrap(), 5);
}

/// What a scripted server answers, per RPC, in order (then OK).
#[derive(Default)]
pub struct Script {
    pub base: Mutex<VecDeque<Code>>,
    pub counts: Mutex<VecDeque<Code>>,
    pub slow_counts: Mutex<VecDeque<Duration>>,
    pub base_calls: AtomicUsize,
    pub counts_calls: AtomicUsize,
    pub accepted_counts: AtomicUsize,
}

struct Scripted(Arc<Script>);

#[tonic::async_trait]
impl TelemetryService for Scripted {
    async fn report_base_information(
        &self,
        _: Request<pb::ReportBaseInformationRequest>,
    ) -> Result<Response<pb::ReportBaseInformationResponse>, Status> {
        let n = self.0.base_calls.fetch_add(1, Ordering::SeqCst);
        match self.0.base.lock().unwrap().pop_front() {
            Some(code) => Err(Status::new(code, "scripted")),
            None => Ok(Response::new(pb::ReportBaseInformationResponse { report_id: format!("r{n}") })),
        }
    }

    async fn report_resource_counts(
        &self,
        request: Request<pb::ReportResourceCountsRequest>,
    ) -> Result<Response<pb::ReportResourceCountsResponse>, Status> {
        self.0.counts_calls.fetch_add(1, Ordering::SeqCst);
        let delay = self.0.slow_counts.lock().unwrap().pop_front();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(code) = self.0.counts.lock().unwrap().pop_front() {
            return Err(Status::new(code, "scripted"));
        }
        let r = request.into_inner();
        self.0.accepted_counts.fetch_add(r.resource_counts.len(), Ordering::SeqCst);
        Ok(Response::new(pb::ReportResourceCountsResponse { report_id: r.report_id.unwrap_or_default() }))
    }
}

pub fn start_scripted(rt: &tokio::runtime::Runtime, script: Arc<Script>) -> SocketAddr {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(TelemetryServiceServer::new(Scripted(script)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

fn scripted_sink(dir: &std::path::Path, script: &Arc<Script>, rt: &tokio::runtime::Runtime, extra: &str) -> ReportSink {
    let addr = start_scripted(rt, script.clone());
    zitadel::sink(sink_config(addr, extra), dir, ReportingSwitch::default()).unwrap()
}

#[test]
fn unavailable_twice_then_ok_is_delivered_once_in_three_attempts() {
    let dir = tempdir();
    let rt = server_runtime();
    let script = Arc::new(Script::default());
    script.counts.lock().unwrap().extend([Code::Unavailable, Code::Unavailable]);
    let mut sink = scripted_sink(dir.path(), &script, &rt, "");
    send(&mut sink, &report(3));
    assert_eq!(script.counts_calls.load(Ordering::SeqCst), 3);
    assert_eq!(script.accepted_counts.load(Ordering::SeqCst), 3, "delivered once");
    assert_eq!(sink.stats().delivered, 1);
    assert!(sink.outbox().pending().unwrap().is_empty());
}

#[test]
fn invalid_argument_is_not_retried_and_kept_for_inspection() {
    let dir = tempdir();
    let rt = server_runtime();
    let script = Arc::new(Script::default());
    script.counts.lock().unwrap().push_back(Code::InvalidArgument);
    let mut sink = scripted_sink(dir.path(), &script, &rt, "");
    send(&mut sink, &report(3));
    assert_eq!(script.counts_calls.load(Ordering::SeqCst), 1);
    assert_eq!(sink.stats().rejected, 1);
    let rejected = sink.outbox().rejected().unwrap();
    assert_eq!(rejected.len(), 1);
    let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&rejected[0]).unwrap()).unwrap();
    assert!(kept["lastError"].as_str().unwrap().starts_with("INVALID_ARGUMENT"), "{kept}");
    assert_eq!(kept["report"]["counts"].as_array().unwrap().len(), 3);
    assert!(sink.outbox().pending().unwrap().is_empty());
}

#[test]
fn failed_precondition_starts_a_new_report_once() {
    let dir = tempdir();
    let rt = server_runtime();
    let script = Arc::new(Script::default());
    script.counts.lock().unwrap().push_back(Code::FailedPrecondition);
    let mut sink = scripted_sink(dir.path(), &script, &rt, "");
    send(&mut sink, &report(3));
    assert_eq!(script.base_calls.load(Ordering::SeqCst), 2, "a new base report after FAILED_PRECONDITION");
    assert_eq!(script.counts_calls.load(Ordering::SeqCst), 2);
    assert_eq!(sink.stats().delivered, 1);

    // Refused again after the new report: kept for the next run, not looped on.
    let script = Arc::new(Script::default());
    script.counts.lock().unwrap().extend([Code::FailedPrecondition, Code::FailedPrecondition]);
    let mut sink = scripted_sink(&dir.path().join("second"), &script, &rt, "");
    send(&mut sink, &report(3));
    assert_eq!(script.base_calls.load(Ordering::SeqCst), 2);
    assert_eq!(sink.stats().deferred, 1);
    assert_eq!(sink.outbox().pending().unwrap().len(), 1);
}

#[test]
fn a_slow_server_hits_the_deadline_and_is_retried() {
    let dir = tempdir();
    let rt = server_runtime();
    let script = Arc::new(Script::default());
    script.slow_counts.lock().unwrap().push_back(Duration::from_millis(1500));
    let mut config = sink_config(start_scripted(&rt, script.clone()), "");
    config.timeout_ms = 300;
    let mut sink = zitadel::sink(config, dir.path(), ReportingSwitch::default()).unwrap();
    send(&mut sink, &report(3));
    assert_eq!(script.counts_calls.load(Ordering::SeqCst), 2, "DEADLINE_EXCEEDED, then a retry");
    assert_eq!(sink.stats().delivered, 1);
}

#[test]
fn an_unreachable_endpoint_keeps_the_report_for_the_next_run() {
    let dir = tempdir();
    let rt = server_runtime();
    // Reserve a port with nothing listening on it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = sink_config(addr, "max_attempts = 2\n");
    let mut sink = zitadel::sink(config.clone(), &dir.path().join("state"), ReportingSwitch::default()).unwrap();
    send(&mut sink, &report(12));
    assert_eq!(sink.stats().deferred, 1);
    assert_eq!(sink.outbox().pending().unwrap().len(), 1);
    drop(sink);

    // Next run: the receiver is up; the kept report goes out on start-up.
    let (addr, _stop) = start_receiver(&rt, &dir.path().join("recv.db"), Some(addr));
    let mut sink = zitadel::sink(sink_config(addr, ""), &dir.path().join("state"), ReportingSwitch::default()).unwrap();
    drain(&mut sink);
    assert_eq!(sink.stats().delivered, 1);
    assert!(sink.outbox().pending().unwrap().is_empty());
    let store = ReceiverStore::open(&dir.path().join("recv.db")).unwrap();
    assert_eq!(store.systems().unwrap()[0].counts.len(), 12);
}

#[test]
fn a_receiver_restarted_between_batches_duplicates_nothing() {
    let dir = tempdir();
    let rt = server_runtime();
    let db = dir.path().join("recv.db");
    let (addr, stop) = start_receiver(&rt, &db, None);
    // Stop the receiver once two batches are stored; restart it 300 ms later
    // on the same port and database.
    let watcher_db = db.clone();
    let restarter = std::thread::spawn(move || {
        let store = ReceiverStore::open(&watcher_db).unwrap();
        while store.batches().unwrap() < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = stop.send(());
        let at_stop = store.batches().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let rt = server_runtime();
        let (_, stop2) = start_receiver(&rt, &watcher_db, Some(addr));
        (at_stop, rt, stop2)
    });
    // Retries for up to a minute (max_elapsed_ms): a guard, not a timing check.
    let mut config = sink_config(addr, "max_attempts = 100000\nmax_elapsed_ms = 60000\n");
    config.bulk_size = 3;
    let mut sink = zitadel::sink(config, &dir.path().join("state"), ReportingSwitch::default()).unwrap();
    // 300 counts at bulk size 3: 100 batches and an empty one ending the report.
    send(&mut sink, &report(300));
    let (at_stop, _rt, _stop2) = restarter.join().unwrap();
    assert!(at_stop < 101, "the receiver went down mid-report (after {at_stop} batches)");
    let why: Vec<String> = sink
        .outbox()
        .pending()
        .unwrap()
        .iter()
        .map(|p| format!("{:?}", sink.outbox().load(p).unwrap().last_error))
        .collect();
    assert_eq!(sink.stats().delivered, 1, "reporting completed across the restart (still pending: {why:?})");
    let store = ReceiverStore::open(&db).unwrap();
    assert_eq!(store.reports().unwrap(), 1, "the report ID survived the restart: no new report was needed");
    let counts = &store.systems().unwrap()[0].counts;
    let mut amounts: Vec<u32> = counts.iter().map(|c| c.amount).collect();
    amounts.sort();
    assert_eq!(amounts, (0..300).collect::<Vec<_>>(), "each count stored exactly once");
}
