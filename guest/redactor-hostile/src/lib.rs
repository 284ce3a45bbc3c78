//! `redactor-hostile`: a misbehaving redactor used only by the host's tests.
//!
//! Its `behavior` config key picks how it misbehaves, so one component covers
//! every failure the host must contain:
//!
//! - `loop`: spins forever (the per-call deadline must stop it);
//! - `hog`: allocates until the memory cap refuses (must trap, not grow);
//! - `panic`: panics (a trap);
//! - `out-of-range`: returns a span past the end of the field;
//! - `overlap`: returns two overlapping spans;
//! - `mid-char`: returns a span that splits the first multi-byte character;
//! - `bad-field`: names a field index that does not exist;
//! - `error`: returns a `plugin-error`;
//! - `probe`: returns a `plugin-error` saying what it can reach (an
//!   environment variable, a file in a granted folder, the root folder);
//! - `panic-on-marker`: behaves (redacts the word `secret`) unless a field
//!   contains `PANIC`, then panics — to show one bad batch does not poison the
//!   next;
//! - `markers`: behaves (redacts `secret`) unless a field contains one of
//!   the markers `PANIC` (panics), `SPIN` (loops until the deadline), `HOG`
//!   (allocates until the memory cap) or `BADSPAN` (returns a span past the
//!   end of that field) — to show that only the events carrying a marker are
//!   dead-lettered and every other event in the batch is delivered;
//! - anything else / unset: redacts every occurrence of `secret`.

wit_bindgen::generate!({
    world: "redactor",
    path: "../../wit",
});

use wasmtel::telemetry::host::config_get;

/// The component.
struct Hostile;

/// Finds every `secret` in the batch (the well-behaved path).
fn redact_word(batch: &Batch) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, f) in batch.fields.iter().enumerate() {
        let text = &batch.buffer[f.text_start as usize..(f.text_start + f.text_len) as usize];
        let mut at = 0;
        while let Some(pos) = text[at..].windows(6).position(|w| w == b"secret") {
            let start = at + pos;
            out.push(Finding {
                field: i as u32,
                start: start as u32,
                end: start as u32 + 6,
                rule_id: "word".into(),
                replacement: "<WORD>".into(),
            });
            at = start + 6;
        }
    }
    out
}

/// A finding with the given field and span.
fn finding(field: u32, start: u32, end: u32) -> Finding {
    Finding { field, start, end, rule_id: "bad".into(), replacement: "<X>".into() }
}

impl Guest for Hostile {
    fn redact(batch: Batch) -> Result<Vec<Finding>, PluginError> {
        let first_len = batch.fields.first().map(|f| f.text_len).unwrap_or(0);
        match config_get("behavior").as_deref() {
            Some("loop") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("hog") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            Some("panic") => panic!("hostile guest panics on purpose"),
            Some("out-of-range") => Ok(vec![finding(0, 0, first_len + 10)]),
            Some("overlap") => Ok(vec![finding(0, 0, 2), finding(0, 1, 3)]),
            Some("mid-char") => {
                // Ends one byte into the first multi-byte character.
                for (i, f) in batch.fields.iter().enumerate() {
                    let text = &batch.buffer[f.text_start as usize..(f.text_start + f.text_len) as usize];
                    if let Some(p) = text.iter().position(|b| *b >= 0x80) {
                        return Ok(vec![finding(i as u32, p as u32, p as u32 + 1)]);
                    }
                }
                Ok(vec![finding(0, 0, 1)])
            }
            Some("bad-field") => Ok(vec![finding(batch.fields.len() as u32 + 5, 0, 0)]),
            Some("error") => Err(PluginError::Internal("hostile guest refuses on purpose".into())),
            // Reports what it can reach, to test the sandbox's grants.
            Some("probe") => Err(PluginError::Internal(format!(
                "env={:?} file={:?} root={:?}",
                std::env::var("CARGO_PKG_NAME").ok(),
                std::fs::read_to_string("/grant/secret.txt").ok(),
                std::fs::read_dir("/").ok().map(|d| d.count()),
            ))),
            Some("panic-on-marker") => {
                if batch.buffer.windows(5).any(|w| w == b"PANIC") {
                    panic!("marker seen");
                }
                Ok(redact_word(&batch))
            }
            Some("markers") => {
                let has = |marker: &[u8]| batch.buffer.windows(marker.len()).any(|w| w == marker);
                if has(b"PANIC") {
                    panic!("marker seen");
                }
                if has(b"SPIN") {
                    let mut n: u64 = 0;
                    loop {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                }
                if has(b"HOG") {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                    }
                }
                let mut out = redact_word(&batch);
                for (i, f) in batch.fields.iter().enumerate() {
                    let text = &batch.buffer[f.text_start as usize..(f.text_start + f.text_len) as usize];
                    if text.windows(7).any(|w| w == b"BADSPAN") {
                        out.push(finding(i as u32, 0, f.text_len + 10));
                    }
                }
                Ok(out)
            }
            _ => Ok(redact_word(&batch)),
        }
    }
}

export!(Hostile);
