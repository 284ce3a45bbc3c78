//! `collector-sql`: a wasmtel collector that computes ZITADEL-style resource
//! counts with SQL taken from its module configuration.
//!
//! The component implements the `collector` world of
//! `wasmtel:telemetry@0.2.0`. On every `collect` call it reads its settings
//! through `host.config-get`, runs one read-only `SELECT` per configured
//! resource through `sql.query`, and turns every returned row into a
//! `resource-count`. Optionally it also reports base information (system
//! version and instances).
//!
//! # Configuration keys
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `source` | no (default `main`) | data source passed to `sql.query` |
//! | `resources` | yes | comma-separated resource names, e.g. `organizations,users` |
//! | `resource.<name>.sql` | yes, per resource | `SELECT` returning `instance_id`, `parent_type`, `parent_id`, `amount` |
//! | `resource.<name>.table` | no (default `<name>`) | `table-name` reported with each count |
//! | `version` | no | system version reported in the base information |
//! | `base.instances_sql` | no | `SELECT` returning `id`, `created_at`, `domains`; enables base information |
//!
//! Columns are matched by name (exactly, else ASCII case-insensitively), so
//! their order does not matter and extra columns are ignored.

mod collect;
mod rows;
mod time;

wit_bindgen::generate!({
    world: "collector",
    path: "../../wit",
});

use wasmtel::telemetry::host::{self, LogLevel};
use wasmtel::telemetry::sql::{self, QueryResult};
use wasmtel::telemetry::types::Timestamp;

/// The component's export: `collect` delegates to [`collect::collect`] with
/// the real host imports.
struct Component;

impl Guest for Component {
    /// Computes the counts now, using the configuration the host holds for
    /// this module.
    fn collect() -> Result<Collection, PluginError> {
        collect::collect(&WasiHost)
    }
}

export!(Component);

/// The capabilities the collector needs from its surroundings.
///
/// Abstracted behind a trait so that the collection logic can be exercised
/// natively in unit tests with a fake host.
pub(crate) trait Host {
    /// Reads a configuration value; `None` when the key is not set.
    fn config_get(&self, key: &str) -> Option<String>;
    /// Runs one read-only statement without parameters against `source`.
    fn query(&self, source: &str, statement: &str) -> Result<QueryResult, PluginError>;
    /// Writes a line to the host log.
    fn log(&self, level: LogLevel, message: &str);
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// [`Host`] backed by the component's imports.
struct WasiHost;

impl Host for WasiHost {
    /// Forwards to `host.config-get`.
    fn config_get(&self, key: &str) -> Option<String> {
        host::config_get(key)
    }

    /// Forwards to `sql.query` with no parameters.
    fn query(&self, source: &str, statement: &str) -> Result<QueryResult, PluginError> {
        sql::query(source, statement, &[])
    }

    /// Forwards to `host.log`.
    fn log(&self, level: LogLevel, message: &str) {
        host::log(level, message);
    }

    /// Reads the WASI wall clock.
    fn now(&self) -> Timestamp {
        time::now()
    }
}
