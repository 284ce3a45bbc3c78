//! The ingest spool: events accepted by the ingest service, on disk before
//! the client hears OK, until the pipeline has processed them. A crash (even
//! `kill -9`) loses nothing that was acknowledged: on start the spool
//! replays what the pipeline had not finished.
//!
//! One append-only JSONL file (`<state_dir>/spool/events.jsonl`, synced to
//! disk per accepted request) and the byte offset the pipeline has consumed
//! (`consumed`, written atomically after each processed batch). When the
//! pipeline has caught up, the file is emptied. The number of events waiting
//! is the backpressure signal: past `capacity`, new requests are refused so
//! clients back off instead of memory or disk growing without bound.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::config::UnknownFields;
use crate::event::Event;

/// Why events were not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum SpoolError {
    /// Too many events are waiting: back off and retry.
    Full {
        /// Events waiting.
        waiting: u64,
    },
    /// The disk refused.
    Io(String),
}

/// Events read from the spool, to [`Spool::commit`] once processed.
#[derive(Debug)]
pub struct Batch {
    /// Event ids and events.
    pub events: Vec<(String, Event)>,
    /// The byte offset after them.
    pub offset: u64,
}

struct State {
    file: File,
    /// Events appended and not yet consumed.
    waiting: u64,
    /// Bytes in the file.
    len: u64,
    /// Bytes consumed.
    consumed: u64,
    next_id: u64,
}

/// The spool.
pub struct Spool {
    dir: PathBuf,
    capacity: u64,
    state: Mutex<State>,
    ready: Condvar,
}

fn io(e: std::io::Error) -> SpoolError {
    SpoolError::Io(e.to_string())
}

impl Spool {
    /// Opens (creating) the spool in `<state_dir>/spool`, counting what an
    /// earlier run left unprocessed.
    pub fn open(state_dir: &Path, capacity: u64) -> std::io::Result<Spool> {
        let dir = state_dir.join("spool");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("events.jsonl");
        let file = OpenOptions::new().create(true).append(true).read(true).open(&path)?;
        let len = file.metadata()?.len();
        let consumed = std::fs::read_to_string(dir.join("consumed"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
            .min(len);
        let mut reader = BufReader::new(File::open(&path)?);
        reader.seek(SeekFrom::Start(consumed))?;
        let waiting = reader.lines().map_while(Result::ok).filter(|l| !l.is_empty()).count() as u64;
        let next_id = Utc::now().timestamp_millis() as u64 * 1000;
        Ok(Spool {
            dir,
            capacity,
            state: Mutex::new(State { file, waiting, len, consumed, next_id }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Events waiting to be processed.
    pub fn waiting(&self) -> u64 {
        self.lock().waiting
    }

    /// Appends `events` and syncs them to disk; all or nothing.
    pub fn append(&self, events: &[Event]) -> Result<(), SpoolError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        if state.waiting + events.len() as u64 > self.capacity {
            return Err(SpoolError::Full { waiting: state.waiting });
        }
        let mut bytes = Vec::with_capacity(events.len() * 512);
        for event in events {
            state.next_id += 1;
            serde_json::to_writer(
                &mut bytes,
                &json!({"id": format!("ingest:{}", state.next_id), "event": event.to_json()}),
            )
            .map_err(|e| SpoolError::Io(e.to_string()))?;
            bytes.push(b'\n');
        }
        let before = state.len;
        if let Err(e) = state.file.write_all(&bytes).and_then(|()| state.file.sync_data()) {
            // Cut a partial write so the spool stays line-aligned.
            let _ = state.file.set_len(before);
            return Err(io(e));
        }
        state.len += bytes.len() as u64;
        state.waiting += events.len() as u64;
        self.ready.notify_all();
        Ok(())
    }

    /// Up to `max` events after the consumed offset (waiting up to `wait`
    /// for some to arrive), with their ids and the offset after them.
    pub fn next_batch(&self, max: usize, wait: Duration) -> std::io::Result<Option<Batch>> {
        let start = {
            let mut state = self.lock();
            if state.waiting == 0 {
                state = self.ready.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0;
            }
            if state.waiting == 0 {
                return Ok(None);
            }
            state.consumed
        };
        let mut reader = BufReader::new(File::open(self.dir.join("events.jsonl"))?);
        reader.seek(SeekFrom::Start(start))?;
        let (mut out, mut offset, mut line) = (Vec::new(), start, String::new());
        while out.len() < max {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            offset += n as u64;
            let value: serde_json::Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(_) => continue,
            };
            let id = value["id"].as_str().unwrap_or("ingest:?").to_string();
            if let Ok(event) = Event::from_json(value["event"].clone(), UnknownFields::Preserve, Utc::now()) {
                out.push((id, event));
            }
        }
        Ok(Some(Batch { events: out, offset }))
    }

    /// Records that everything before `offset` (`count` events) was
    /// processed; empties the file once the pipeline has caught up.
    pub fn commit(&self, offset: u64, count: usize) -> std::io::Result<()> {
        let mut state = self.lock();
        state.consumed = offset;
        state.waiting = state.waiting.saturating_sub(count as u64);
        if state.consumed == state.len {
            state.file.set_len(0)?;
            state.file.sync_data()?;
            state.len = 0;
            state.consumed = 0;
            state.waiting = 0;
        }
        let tmp = self.dir.join("consumed.tmp");
        std::fs::write(&tmp, state.consumed.to_string())?;
        std::fs::rename(&tmp, self.dir.join("consumed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(org: &str) -> Event {
        Event::from_json(json!({"orgId": org}), UnknownFields::Reject, Utc::now()).unwrap()
    }

    #[test]
    fn replays_what_was_not_consumed_and_applies_backpressure() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 3).unwrap();
        spool.append(&[event("a"), event("b")]).unwrap();
        assert_eq!(spool.append(&[event("c"), event("d")]), Err(SpoolError::Full { waiting: 2 }), "all or nothing");
        let batch = spool.next_batch(1, Duration::ZERO).unwrap().unwrap();
        assert_eq!(batch.events[0].1.org_id, "a");
        spool.commit(batch.offset, 1).unwrap();
        drop(spool);
        // A new process sees only what was not processed.
        let spool = Spool::open(dir.path(), 3).unwrap();
        assert_eq!(spool.waiting(), 1);
        let batch = spool.next_batch(10, Duration::ZERO).unwrap().unwrap();
        assert_eq!(batch.events.iter().map(|(_, e)| e.org_id.as_str()).collect::<Vec<_>>(), ["b"]);
        spool.commit(batch.offset, 1).unwrap();
        assert_eq!(spool.waiting(), 0);
        assert_eq!(
            std::fs::metadata(dir.path().join("spool/events.jsonl")).unwrap().len(),
            0,
            "emptied when caught up"
        );
        assert!(spool.next_batch(10, Duration::from_millis(1)).unwrap().is_none());
    }
}
