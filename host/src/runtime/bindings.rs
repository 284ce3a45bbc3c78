//! Rust bindings generated from `wit/telemetry.wit` — the only place the
//! generated code is named. The rest of the host uses the re-exports in
//! [`super::redactor`] and [`super::collector`].

#![allow(missing_docs)]

/// Bindings for the `redactor` world (also owns the shared interfaces).
pub mod redactor {
    wasmtime::component::bindgen!({
        world: "redactor",
        path: "../wit",
    });
}

/// Bindings for the `collector` world; shares `types` and `host` with
/// [`redactor`] so the host implements each interface once.
pub mod collector {
    wasmtime::component::bindgen!({
        world: "collector",
        path: "../wit",
        with: {
            "wasmtel:telemetry/types": super::redactor::wasmtel::telemetry::types,
            "wasmtel:telemetry/host": super::redactor::wasmtel::telemetry::host,
        },
    });
}

pub use redactor::wasmtel::telemetry::host::{Host as HostImports, LogLevel};
pub use redactor::wasmtel::telemetry::types::{PluginError, Timestamp};
