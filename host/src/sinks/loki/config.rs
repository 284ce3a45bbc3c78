//! `[[sinks]] kind = "loki"` (and `[worker.loki]`): settings of the Loki sink.

use serde::Deserialize;

use crate::retry::RetryPolicy;

/// How pushes are encoded.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Snappy block-compressed `logproto.PushRequest` (smaller, faster).
    #[default]
    Protobuf,
    /// `{"streams":[...]}`, gzip-compressed when `gzip = true`.
    Json,
}

/// What to do with a line longer than `max_line_bytes`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OversizedLines {
    /// Cut it to the limit (on a character boundary).
    Truncate,
    /// Send the event to the dead-letter store instead.
    #[default]
    DeadLetter,
}

/// Settings of a Loki sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LokiConfig {
    /// Name for logs.
    #[serde(default = "default_name")]
    pub name: String,
    /// Loki's base URL, e.g. `http://127.0.0.1:3100` (`/loki/api/v1/push` is appended).
    pub endpoint: String,
    /// Value of the constant `job` label.
    #[serde(default = "default_job")]
    pub job: String,
    /// Encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// Gzip JSON bodies.
    #[serde(default)]
    pub gzip: bool,
    /// `X-Scope-OrgID` tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Basic auth user (password from `basic_password_env`).
    #[serde(default)]
    pub basic_user: Option<String>,
    /// Environment variable holding the basic auth password.
    #[serde(default)]
    pub basic_password_env: Option<String>,
    /// Environment variable holding a bearer token.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// Event fields sent as structured metadata (Loki 3): any of `event_id`
    /// (the event's id, for de-duplication), `user_id`, `session_id`,
    /// `device_id`, or `metadata.<key>` for a top-level metadata value.
    /// High-cardinality values belong here, never in labels. Default
    /// `["event_id"]`; set `[]` for a Loki without structured metadata.
    #[serde(default = "default_structured")]
    pub structured_metadata: Vec<String>,
    /// When the redacted log is full because this sink is behind: `block`
    /// (default: ingest answers with a retryable status until it catches
    /// up) or `dead_letter` (its oldest events move to the dead-letter store,
    /// counted and replayable, so the other sinks go on).
    #[serde(default)]
    pub when_full: crate::config::WhenFull,
    /// Longest line Loki accepts (its `max_line_size`).
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
    /// What to do with longer lines.
    #[serde(default)]
    pub oversized_lines: OversizedLines,
    /// Entries older than this many hours are not sent (Loki's
    /// `reject_old_samples_max_age`) but dead-lettered.
    #[serde(default = "default_max_age")]
    pub reject_older_than_hours: u64,
    /// Most entries per push.
    #[serde(default = "default_batch_events")]
    pub batch_max_events: usize,
    /// Most line bytes per push.
    #[serde(default = "default_batch_bytes")]
    pub batch_max_bytes: usize,
    /// Unused since every sink is driven by the same delivery loop (it
    /// sends what the redacted log holds); accepted so older configs load.
    #[serde(default = "default_batch_timeout")]
    pub batch_timeout_ms: u64,
    /// Deadline of one push, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Retries of 429, 5xx and network errors.
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// Most hours `reject_older_than_hours` may be (ten years).
const MAX_AGE_HOURS: u64 = 87_600;

impl LokiConfig {
    /// Checks ranges (`section` is this sink's key path, e.g. `sinks[1]`):
    /// no value can make a push loop, overflow or wait forever.
    pub fn validate(&self, file: &std::path::Path, section: &str) -> Result<(), crate::config::ConfigError> {
        let ranges = [
            ("batch_max_events", self.batch_max_events as u64, 1_000_000),
            ("batch_max_bytes", self.batch_max_bytes as u64, 1 << 30),
            ("max_line_bytes", self.max_line_bytes as u64, 1 << 30),
            ("reject_older_than_hours", self.reject_older_than_hours, MAX_AGE_HOURS),
            ("timeout_ms", self.timeout_ms, 3_600_000),
        ];
        for (key, value, max) in ranges {
            if value == 0 || value > max {
                return Err(crate::config::ConfigError::new(
                    file,
                    format!("{section}.{key}"),
                    format!("found {value}, expected 1 to {max}"),
                ));
            }
        }
        Ok(())
    }
}

fn default_name() -> String {
    "loki".into()
}
fn default_structured() -> Vec<String> {
    vec!["event_id".into()]
}
fn default_job() -> String {
    "wasmtel".into()
}
fn default_max_line() -> usize {
    256 * 1024
}
fn default_max_age() -> u64 {
    168
}
fn default_batch_events() -> usize {
    1000
}
fn default_batch_bytes() -> usize {
    1 << 20
}
fn default_batch_timeout() -> u64 {
    1000
}
fn default_timeout() -> u64 {
    10_000
}
