//! Where events come from: [`jsonl`] files and standard input, and the
//! [`ingest`] service (`wasmtel serve`).

pub mod ingest;
pub mod jsonl;
