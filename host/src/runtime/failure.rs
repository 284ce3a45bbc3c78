//! How a guest call can fail, in terms an operator (and the dead-letter
//! store) can act on.

use std::fmt;

/// Why a guest call did not produce a usable result. Every variant fails the
/// work closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestFailure {
    /// The call ran past its deadline and was interrupted.
    Timeout {
        /// The deadline that was exceeded.
        deadline_ms: u64,
    },
    /// The guest tried to grow its memory past the cap.
    MemoryCap {
        /// The cap in MiB.
        cap_mib: u64,
    },
    /// The guest trapped (panic, unreachable, out-of-bounds access, ...).
    Trap(String),
    /// The guest returned a `plugin-error`.
    PluginError(String),
    /// The guest returned findings the host refuses to apply.
    InvalidFinding(String),
    /// The module could not be instantiated.
    Instantiate(String),
}

impl std::error::Error for GuestFailure {}

impl fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestFailure::Timeout { deadline_ms } => {
                write!(f, "timeout: the call exceeded its {deadline_ms} ms deadline and was interrupted")
            }
            GuestFailure::MemoryCap { cap_mib } => {
                write!(f, "memory cap: the guest tried to use more than {cap_mib} MiB")
            }
            GuestFailure::Trap(msg) => write!(f, "trap: {msg}"),
            GuestFailure::PluginError(msg) => write!(f, "plugin error: {msg}"),
            GuestFailure::InvalidFinding(msg) => write!(f, "invalid finding: {msg}"),
            GuestFailure::Instantiate(msg) => write!(f, "instantiation failed: {msg}"),
        }
    }
}

impl GuestFailure {
    /// A short stable label (`timeout`, `memory-cap`, ...) for metrics and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            GuestFailure::Timeout { .. } => "timeout",
            GuestFailure::MemoryCap { .. } => "memory-cap",
            GuestFailure::Trap(_) => "trap",
            GuestFailure::PluginError(_) => "plugin-error",
            GuestFailure::InvalidFinding(_) => "invalid-finding",
            GuestFailure::Instantiate(_) => "instantiate",
        }
    }
}

/// Formats a plugin error variant.
pub fn describe_plugin_error(e: &super::bindings::PluginError) -> String {
    use super::bindings::PluginError as P;
    match e {
        P::InvalidConfig(m) => format!("invalid config: {m}"),
        P::QueryFailed(m) => format!("query failed: {m}"),
        P::InvalidInput(m) => format!("invalid input: {m}"),
        P::Internal(m) => format!("internal: {m}"),
    }
}
