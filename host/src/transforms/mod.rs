//! Processing stages between sources and sinks. Today: [`redact`].

pub mod redact;
