//! wasmtel: a telemetry host that runs sandboxed WebAssembly collectors and
//! redactors and delivers what they produce without leaking PII.
//!
//! The data flow is the module tree:
//!
//! - [`sources`]: where events come from (JSONL files, stdin);
//! - [`transforms::redact`]: packing events, running redactor modules,
//!   validating and applying their findings;
//! - [`guard`]: the [`guard::Redacted`] type, the only thing sinks accept;
//! - [`sinks`]: where redacted events and reports go;
//! - [`runtime`]: the wasmtime sandbox (deadlines, memory caps, cache, pool);
//! - [`datasource`]: read-only SQL for collectors;
//! - [`audit`] and [`dead_letter`]: what was redacted, and what could not be
//!   delivered, with the reason;
//! - [`pipeline`]: wiring it together for `wasmtel run` and `wasmtel redact`.

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
pub mod pipeline;
pub mod proto;
pub mod queue;
pub mod receiver;
pub mod report;
pub mod retry;
pub mod runtime;
pub mod schedule;
pub mod shutdown;
pub mod sinks;
pub mod sources;
pub mod stats;
pub mod transforms;
pub mod vectors;
pub mod worker;

/// Paths (and, for builtins, bytes) of the guest components built by
/// `host/build.rs` from `guest/`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
