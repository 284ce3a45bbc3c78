//! Reading events from a JSONL file or standard input, one event per line.
//!
//! Blank lines are skipped; a line that is not a valid event (not JSON, not
//! UTF-8, over the event limits, longer than twice `max_event_bytes`) comes
//! back as [`Input::Malformed`] with the reason and the raw text. Each event
//! gets the id from its `id` field, or `<file name>:<line number>`.
//!
//! A file's position is kept in a checkpoint (`<state_dir>/sources/<name>`:
//! byte offset, line number, the file's identity and an epoch counting the
//! files seen), written once a batch is durable downstream, so a restarted
//! run goes on where the last one stopped; a replaced or shorter file is
//! read from the start under a new epoch. An event's origin is the epoch and
//! the offset after its line, so the redacted log can tell which of its
//! events came from the current file. With `checkpoint = false` every run
//! reads the whole file.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DIRECT_ORIGIN, Input, Poll, Source, SourceBatch, SourceError};
use crate::config::UnknownFields;
use crate::event::id_part;
use crate::event::limits::EventLimits;

/// Where a file source stands, as saved in its checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    /// Bytes consumed.
    offset: u64,
    /// Lines consumed.
    line: u64,
    /// The file's inode, so a replaced file is read from the start.
    inode: u64,
    /// Counts the files this source has read (a new inode, a truncation).
    #[serde(default)]
    epoch: u64,
}

/// Bits of an origin that hold the byte offset (1 TiB); the epoch sits above.
const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// A JSONL file or standard input.
pub struct JsonlSource {
    name: String,
    id_prefix: String,
    reader: Box<dyn BufRead + Send>,
    at: Position,
    unknown: UnknownFields,
    limits: EventLimits,
    /// Where the checkpoint goes (files with `checkpoint = true` only).
    checkpoint: Option<PathBuf>,
    /// Position after each batch handed out and not yet committed.
    pending: Vec<(u64, Position)>,
    next_token: u64,
}

impl JsonlSource {
    /// Reads standard input (no checkpoint).
    pub fn stdin(unknown: UnknownFields, limits: EventLimits) -> JsonlSource {
        JsonlSource::new("stdin", Box::new(BufReader::with_capacity(1 << 16, std::io::stdin())), unknown, limits)
    }

    /// Reads any reader (no checkpoint); `name` prefixes the event ids.
    pub fn new(
        name: &str,
        reader: Box<dyn BufRead + Send>,
        unknown: UnknownFields,
        limits: EventLimits,
    ) -> JsonlSource {
        JsonlSource {
            name: name.to_string(),
            id_prefix: id_part(name, 64),
            reader,
            at: Position::default(),
            unknown,
            limits,
            checkpoint: None,
            pending: Vec::new(),
            next_token: 0,
        }
    }

    /// Reads `path`; with `checkpoint` set, starts where the checkpoint
    /// file says and keeps it up to date.
    pub fn file(
        path: &Path,
        checkpoint: Option<PathBuf>,
        unknown: UnknownFields,
        limits: EventLimits,
    ) -> Result<JsonlSource, SourceError> {
        let context = || format!("cannot open the events file {}", path.display());
        let file = File::open(path).map_err(|source| SourceError::Io { context: context(), source })?;
        let meta = file.metadata().map_err(|source| SourceError::Io { context: context(), source })?;
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "events".into());
        let mut source = JsonlSource::new(&name, Box::new(BufReader::with_capacity(1 << 16, file)), unknown, limits);
        source.at.inode = inode;
        if let Some(cp) = &checkpoint {
            let saved: Option<Position> = std::fs::read(cp).ok().and_then(|b| serde_json::from_slice(&b).ok());
            match saved {
                Some(p) if p.inode == inode && p.offset <= meta.len() => {
                    tracing::info!(file = %path.display(), line = p.line, "resuming after the checkpoint");
                    source.at.epoch = p.epoch;
                    source.skip_to(source.origin_at(p.offset))?;
                }
                Some(p) => {
                    tracing::info!(file = %path.display(), "the file changed since the checkpoint; reading it from the start");
                    source.at.epoch = p.epoch + 1;
                    write_checkpoint(cp, &source.at)?;
                }
                None => {}
            }
        }
        source.checkpoint = checkpoint;
        Ok(source)
    }

    /// The origin of the position `offset` of the current file.
    fn origin_at(&self, offset: u64) -> u64 {
        DIRECT_ORIGIN | ((self.at.epoch << OFFSET_BITS) & !DIRECT_ORIGIN) | (offset & OFFSET_MASK)
    }

    /// Reads one line (without its newline), at most `max` bytes of it;
    /// `None` at the end. A longer line is consumed and reported as such.
    fn read_line(&mut self, max: usize) -> Result<Option<Result<Vec<u8>, usize>>, SourceError> {
        let mut line = Vec::new();
        let mut too_long = 0usize;
        loop {
            let buf = self
                .reader
                .fill_buf()
                .map_err(|source| SourceError::Io { context: format!("cannot read {}", self.name), source })?;
            if buf.is_empty() {
                if line.is_empty() && too_long == 0 {
                    return Ok(None);
                }
                break;
            }
            let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(p) => (&buf[..p], p + 1),
                None => (buf, buf.len()),
            };
            let newline = done > chunk.len();
            if too_long > 0 || line.len() + chunk.len() > max {
                too_long += line.len() + chunk.len();
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
            self.reader.consume(done);
            self.at.offset += done as u64;
            if newline {
                break;
            }
        }
        self.at.line += 1;
        Ok(Some(if too_long > 0 { Err(too_long) } else { Ok(line) }))
    }

    /// Turns one line into an input (parsed later, on a worker).
    fn parse(&self, line: Result<Vec<u8>, usize>) -> Option<Input> {
        let id = format!("{}:{}", self.id_prefix, self.at.line);
        let malformed = |reason: String, raw: String| Some(Input::Malformed { id: id.clone(), reason, raw });
        let bytes = match line {
            Ok(bytes) => bytes,
            Err(len) => {
                return malformed(
                    format!("line of {len} bytes is longer than twice event_limits.max_event_bytes"),
                    String::new(),
                );
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => return malformed("line is not valid UTF-8".into(), String::from_utf8_lossy(e.as_bytes()).into()),
        };
        if text.trim().is_empty() {
            return None;
        }
        let rules = LineRules { unknown: self.unknown, limits: self.limits };
        Some(Input::Line { text, id, origin: self.origin_at(self.at.offset), rules })
    }
}

impl Source for JsonlSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_batch(&mut self, max: usize, _wait: Duration) -> Result<Poll, SourceError> {
        let limit = self.limits.max_event_bytes.saturating_mul(2);
        let mut inputs = Vec::with_capacity(max);
        let start = self.at.offset;
        // A batch stops at `max` lines or about 4 MiB, whichever comes first.
        while inputs.len() < max && self.at.offset - start < 4 << 20 {
            match self.read_line(limit)? {
                None => break,
                Some(line) => inputs.extend(self.parse(line)),
            }
        }
        if inputs.is_empty() {
            return Ok(Poll::End);
        }
        let token = self.next_token;
        self.next_token += 1;
        self.pending.push((token, self.at));
        Ok(Poll::Batch(SourceBatch { inputs, token }))
    }

    fn commit(&mut self, token: u64) -> Result<(), SourceError> {
        let Some(i) = self.pending.iter().position(|(t, _)| *t == token) else { return Ok(()) };
        let position = self.pending[i].1;
        self.pending.drain(..=i);
        if let Some(path) = &self.checkpoint {
            write_checkpoint(path, &position)?;
        }
        Ok(())
    }

    fn skip_to(&mut self, origin: u64) -> Result<(), SourceError> {
        let target = origin & OFFSET_MASK;
        while self.at.offset < target {
            if self.read_line(usize::MAX)?.is_none() {
                break;
            }
        }
        Ok(())
    }

    fn owns(&self, origin: u64) -> bool {
        self.checkpoint.is_some()
            && origin != crate::event::codec::NO_ORIGIN
            && origin & !OFFSET_MASK == self.origin_at(0) & !OFFSET_MASK
    }
}

/// How a JSONL line is parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRules {
    /// Policy for unknown top-level fields.
    pub unknown: UnknownFields,
    /// What an event may contain.
    pub limits: EventLimits,
}

/// Saves a position atomically.
fn write_checkpoint(path: &Path, position: &Position) -> Result<(), SourceError> {
    let io = |source| SourceError::Io { context: format!("cannot write the checkpoint {}", path.display()), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(position).expect("a position serializes")).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    use crate::event::{Event, Record};
    use crate::transforms::redact::LineRecord;

    fn source(text: &'static str) -> JsonlSource {
        JsonlSource::new("in", Box::new(text.as_bytes()), UnknownFields::Preserve, EventLimits::default())
    }

    /// Inputs as the redaction stage sees them (lines checked, and read
    /// into events here so the tests can look inside).
    fn parsed(inputs: Vec<Input>) -> Vec<Input> {
        inputs
            .into_iter()
            .map(|i| match i {
                Input::Line { text, id, origin, rules } => {
                    match LineRecord::parse(&text, id.clone(), rules.unknown, &rules.limits) {
                        Ok(line) => {
                            let (_, event) =
                                Event::from_json_line_with_id(line.text(), rules.unknown, Utc::now()).unwrap();
                            Input::Event { record: Record { id: line.id().to_string(), event }, origin }
                        }
                        Err(reason) => Input::Malformed { id, reason, raw: text.trim().to_string() },
                    }
                }
                other => other,
            })
            .collect()
    }

    fn all(mut s: JsonlSource) -> Vec<Input> {
        let mut out = Vec::new();
        while let Poll::Batch(b) = s.next_batch(2, Duration::ZERO).unwrap() {
            out.extend(parsed(b.inputs));
        }
        out
    }

    #[test]
    fn numbers_lines_takes_given_ids_and_reports_bad_ones() {
        let inputs = all(source("{\"orgId\":\"a\"}\n\nnot json\n{\"id\":\"mine-1\",\"orgId\":\"b\"}\n"));
        let ids: Vec<String> = inputs
            .iter()
            .map(|i| match i {
                Input::Event { record, .. } => record.id.clone(),
                Input::Malformed { id, .. } | Input::Encoded { id, .. } | Input::Line { id, .. } => id.clone(),
            })
            .collect();
        assert_eq!(ids, ["in:1", "in:3", "mine-1"]);
        let Input::Malformed { reason, raw, .. } = &inputs[1] else { panic!("not malformed") };
        assert!(reason.contains("JSON"));
        assert_eq!(raw, "not json");
    }

    #[test]
    fn over_limit_events_and_lines_are_malformed() {
        let deep = format!("{{\"metadata\":{}1{}}}\n", "{\"a\":".repeat(70), "}".repeat(70));
        let text: &'static str =
            Box::leak(format!("{deep}{{\"createdAt\":\"9999-12-31T23:59:59Z\"}}\n").into_boxed_str());
        let inputs = all(source(text));
        assert!(
            matches!(&inputs[0], Input::Malformed { reason, .. } if reason.contains("deeper than 64")),
            "{inputs:?}"
        );
        assert!(matches!(&inputs[1], Input::Event { .. }));
        let limits = EventLimits { max_event_bytes: 300, ..Default::default() };
        let long: &'static str = Box::leak(format!("{{\"userId\":\"{}\"}}\n{{}}\n", "x".repeat(1000)).into_boxed_str());
        let mut s = JsonlSource::new("in", Box::new(long.as_bytes()), UnknownFields::Preserve, limits);
        let Poll::Batch(b) = s.next_batch(10, Duration::ZERO).unwrap() else { panic!() };
        let inputs = parsed(b.inputs);
        assert!(matches!(&inputs[0], Input::Malformed { reason, .. } if reason.contains("longer than twice")));
        assert!(
            matches!(&inputs[1], Input::Event { record, .. } if record.id == "in:2"),
            "the next line is read normally"
        );
    }

    #[test]
    fn a_file_resumes_after_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ev.jsonl");
        std::fs::write(&file, "{\"orgId\":\"a\"}\n{\"orgId\":\"b\"}\n{\"orgId\":\"c\"}\n").unwrap();
        let cp = dir.path().join("sources/events");
        let open =
            || JsonlSource::file(&file, Some(cp.clone()), UnknownFields::Reject, EventLimits::default()).unwrap();
        let mut s = open();
        let Poll::Batch(b) = s.next_batch(2, Duration::ZERO).unwrap() else { panic!() };
        assert_eq!(b.inputs.len(), 2);
        s.commit(b.token).unwrap();
        let mut again = open();
        let Poll::Batch(b) = again.next_batch(10, Duration::ZERO).unwrap() else { panic!() };
        let inputs = parsed(b.inputs);
        let Input::Event { record, .. } = &inputs[0] else { panic!() };
        assert_eq!((record.id.as_str(), record.event.org_id.as_str()), ("ev.jsonl:3", "c"));
        let Input::Event { origin: old_origin, .. } = inputs[0] else { panic!("an event") };
        assert!(again.owns(old_origin));
        assert!(matches!(again.next_batch(10, Duration::ZERO).unwrap(), Poll::End));

        // A new, shorter file: read from the start, and events the redacted
        // log holds from the old file are not taken for this one's.
        std::fs::write(&file, "{\"orgId\":\"z\"}\n").unwrap();
        let mut fresh = open();
        assert!(!fresh.owns(old_origin), "an origin of the old file");
        let Poll::Batch(b) = fresh.next_batch(10, Duration::ZERO).unwrap() else { panic!("the new file is read") };
        assert!(matches!(&parsed(b.inputs)[0], Input::Event { record, .. } if record.event.org_id == "z"));
    }
}
