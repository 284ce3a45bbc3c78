//! Reading a log folder without opening the log: for `wasmtel status` and
//! `wasmtel dlq list|show`, which may run while another process owns the
//! log and appends to it. Nothing is written or repaired: a torn or
//! still-being-written tail just ends the scan of its segment.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::segment::{decode_record, parse_segment_name};
use super::{CURSORS_DIR, LogError, io_err};

/// What a log folder holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Segment files: base seq and bytes.
    pub segments: BTreeMap<u64, u64>,
    /// Saved cursors: name → (position, aux). Corrupt ones are left out.
    pub cursors: BTreeMap<String, (u64, u64)>,
    /// One past the last readable record (the base of the first segment if
    /// none can be read).
    pub next_seq: u64,
}

impl Summary {
    /// Total bytes of the segment files.
    pub fn bytes(&self) -> u64 {
        self.segments.values().sum()
    }

    /// The oldest retained seq.
    pub fn first_seq(&self) -> u64 {
        self.segments.keys().next().copied().unwrap_or(self.next_seq)
    }
}

/// Lists the segments and cursors of the log in `dir` and finds its end.
pub fn summary(dir: &Path) -> Result<Summary, LogError> {
    let mut out = Summary::default();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.segments.insert(base, entry.metadata().map_err(io_err("stat", &entry.path()))?.len());
        }
    }
    let cursors = dir.join(CURSORS_DIR);
    if cursors.exists() {
        for entry in fs::read_dir(&cursors).map_err(io_err("list", &cursors))? {
            let entry = entry.map_err(io_err("list", &cursors))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains('~') {
                continue;
            }
            if let Some(saved) = fs::read(entry.path()).ok().and_then(|b| super::cursor::decode_file(&b)) {
                out.cursors.insert(name, saved);
            }
        }
    }
    out.next_seq = out.segments.keys().next_back().copied().unwrap_or(0);
    if let Some(&base) = out.segments.keys().next_back() {
        scan(dir, base, |seq, _| {
            out.next_seq = seq + 1;
            true
        })?;
    }
    let max_cursor = out.cursors.values().map(|(p, _)| *p).max().unwrap_or(0);
    out.next_seq = out.next_seq.max(max_cursor);
    Ok(out)
}

/// Calls `each(seq, payload)` for every readable record of every segment,
/// oldest first, until it returns false.
pub fn records(dir: &Path, mut each: impl FnMut(u64, &[u8]) -> bool) -> Result<(), LogError> {
    let summary = summary(dir)?;
    for &base in summary.segments.keys() {
        if !scan(dir, base, &mut each)? {
            break;
        }
    }
    Ok(())
}

/// Scans one segment; returns false if `each` asked to stop.
fn scan(dir: &Path, base: u64, mut each: impl FnMut(u64, &[u8]) -> bool) -> Result<bool, LogError> {
    let path = dir.join(super::segment::segment_name(base));
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        // Removed by retention since it was listed.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(LogError::Io { op: "read", path, source: e }),
    };
    let mut at = 0;
    while at < bytes.len() {
        match decode_record(&bytes[at..]) {
            Ok((seq, payload, len)) => {
                if !each(seq, payload) {
                    return Ok(false);
                }
                at += len;
            }
            Err(_) => break,
        }
    }
    Ok(true)
}
