//! `wasmtel bench ...`: benchmarks that print figures and a ratio against a
//! baseline measured in the same run. Timing lives here, never in tests.

pub mod delivery;
pub mod ingest;
pub mod load;
pub mod log;
pub mod redact;
pub mod report;
pub mod synthetic;
