//! wasmtel: a telemetry host that runs sandboxed WebAssembly collectors and
//! redactors and delivers what they produce without leaking PII.
//!
//! The data flow is the module tree:
//!
//! - [`sources`]: where events come from (ingest service, JSONL files,
//!   stdin, Kafka), each checking [`event::limits`];
//! - [`log`]: the durable logs events wait in (raw, then redacted), with a
//!   cursor per reader;
//! - [`transforms::redact`]: packing events, running redactor modules,
//!   validating and applying their findings, isolating failures;
//! - [`guard`]: the [`guard::Redacted`] type, the only thing sinks accept;
//! - [`sinks`]: where redacted events and reports go;
//! - [`topology`]: the one stage graph `run`, `serve`, `worker` and
//!   `redact` build, its supervision and health;
//! - [`runtime`]: the wasmtime sandbox (deadlines, memory caps, cache, pool);
//! - [`datasource`]: read-only SQL for collectors;
//! - [`audit`] and [`dead_letter`]: what was redacted, and what could not be
//!   delivered, with the reason.

pub mod audit;
pub mod bench;
pub mod config;
pub mod datasource;
pub mod dead_letter;
pub mod devtools;
pub mod event;
pub mod guard;
pub mod installation;
pub mod jsonl;
pub mod log;
pub mod metrics;
pub mod proto;
pub mod receiver;
pub mod report;
pub mod retry;
pub mod runtime;
pub mod schedule;
pub mod security;
pub mod shutdown;
pub mod sinks;
pub mod sources;
pub mod stats;
pub mod status;
pub mod topology;
pub mod transforms;
pub mod vectors;

/// Paths (and, for builtins, bytes) of the guest components built by
/// `host/build.rs` from `guest/`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
