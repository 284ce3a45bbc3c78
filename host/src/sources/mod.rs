//! Where events come from. Today: [`jsonl`] files and standard input.

pub mod jsonl;
