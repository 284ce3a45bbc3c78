//! A durable, segmented, CRC-framed append-only log with group commit and
//! per-consumer durable cursors. This module owns the [`Log`] itself:
//! all-or-nothing appends with group commit (many concurrent appenders share
//! one `fdatasync`), the durable watermark and its notifications, the byte and
//! event limits, and retention (removing whole segments that every cursor open
//! in this process has moved past). Record framing is in [`segment`], segment
//! files on disk in `files.rs`, cursors in `cursor.rs`, the sequential reader
//! in `reader.rs` and the state folder lock in `lock.rs`.
//!
//! A log folder (mode 0700) holds segment files `{base_seq:020}.seg` (0600)
//! and a `cursors/` folder (0700) with one file per named cursor.

mod cursor;
mod files;
mod lock;
pub mod peek;
mod reader;
pub mod segment;
#[cfg(test)]
mod tests;

pub use cursor::Cursor;
pub use lock::{LockError, StateLock};
pub use reader::{Item, Reader};

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use segment::{HEADER_LEN, MAX_RECORD_BYTES, encode_record, segment_name};

const CURSORS_DIR: &str = "cursors";
const NO_CURSOR: u64 = u64::MAX;

/// Options of a [`Log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Start a new segment when the active one reaches this many bytes.
    /// Default 64 MiB.
    pub segment_bytes: u64,
    /// Refuse appends that would make the segment files exceed this many
    /// bytes in total. Default 1 GiB.
    pub max_bytes: u64,
    /// Refuse appends that would make the live records (not yet consumed by
    /// every cursor) exceed this many. Default 1 000 000.
    pub max_events: u64,
    /// `true`: [`Log::append`] returns only after `fdatasync` (group commit).
    /// `false`: appends stay in the page cache, for ephemeral logs.
    /// Default `true`.
    pub sync: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { segment_bytes: 64 << 20, max_bytes: 1 << 30, max_events: 1_000_000, sync: true }
    }
}

/// Errors of the log, its cursors and readers.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file system operation failed.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// One record is larger than any append could ever accept.
    #[error("record of {len} bytes is larger than the maximum of {max} bytes")]
    RecordTooLarge {
        /// Payload length of the record.
        len: u64,
        /// Largest payload accepted: [`segment::MAX_RECORD_BYTES`], or less when
        /// `max_bytes` is smaller.
        max: u64,
    },
    /// The append would exceed `max_bytes` or `max_events`. Also returned for
    /// a batch of several records that exceeds `max_bytes` on its own (split
    /// it); a single record that can never fit is [`LogError::RecordTooLarge`].
    #[error(
        "log full: {bytes} + {adding_bytes} bytes against max_bytes {max_bytes}, \
         {events} + {adding_events} live events against max_events {max_events}; \
         consumers must catch up (commit their cursors)"
    )]
    Full {
        /// Bytes of the segment files now.
        bytes: u64,
        /// Live events now.
        events: u64,
        /// Bytes the refused append would add.
        adding_bytes: u64,
        /// Events the refused append would add.
        adding_events: u64,
        /// The configured byte limit.
        max_bytes: u64,
        /// The configured event limit.
        max_events: u64,
    },
    /// A cursor name outside `[A-Za-z0-9_.-]{1,100}`.
    #[error("bad cursor name {name:?}: use 1 to 100 characters of A-Z a-z 0-9 _ . -")]
    BadCursorName {
        /// The name given.
        name: String,
    },
    /// A cursor of that name is already open in this process.
    #[error("cursor {name:?} is already open")]
    CursorInUse {
        /// The name given.
        name: String,
    },
    /// A cursor commit past the end of the log.
    #[error("cursor {name:?} cannot move to {position}: the log ends at {next_seq}")]
    CursorBeyondEnd {
        /// The cursor.
        name: String,
        /// The position given.
        position: u64,
        /// The log's next seq.
        next_seq: u64,
    },
    /// An earlier write or sync failure left the log in an unknown state.
    #[error("the log refuses appends after an earlier failure ({reason}); reopen it")]
    Poisoned {
        /// The earlier failure.
        reason: String,
    },
}

/// What [`Log::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from the end of the last segment (a torn tail); 0 if none.
    pub truncated_bytes: u64,
    /// The segment cut and the offset it was cut at.
    pub truncated_at: Option<(PathBuf, u64)>,
    /// Segment files present after opening.
    pub segments: usize,
    /// Valid records found by the scan of the last segment.
    pub records: u64,
}

/// A durable append-only log. `Send + Sync`; share it behind an `Arc`.
pub struct Log {
    shared: Arc<Shared>,
}

/// Where the durable watermark is: every record with seq < `seq` is durable,
/// and the durable bytes of segment `seg_base` end at `seg_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watermark {
    seq: u64,
    seg_base: u64,
    seg_len: u64,
}

/// State shared by the log, its cursors and readers.
struct Shared {
    dir: PathBuf,
    cursors_dir: PathBuf,
    options: LogOptions,
    inner: Mutex<Inner>,
    /// Held by the appender doing a group commit.
    sync_turn: Mutex<()>,
    durable: Mutex<Watermark>,
    durable_changed: Condvar,
    durable_seq: AtomicU64,
    watch: tokio::sync::watch::Sender<u64>,
    /// Positions of the cursors open in this process.
    cursors: Mutex<HashMap<String, u64>>,
    /// Smallest of `cursors`, [`NO_CURSOR`] when none is open.
    min_cursor: AtomicU64,
    poisoned: OnceLock<String>,
    /// `fdatasync` calls made by group commits.
    syncs: AtomicU64,
}

/// Segment bookkeeping, under the append mutex.
struct Inner {
    /// Base seq → byte length of every segment file.
    segments: BTreeMap<u64, u64>,
    /// The segment appended to (always the last one), if any.
    active: Option<Active>,
    next_seq: u64,
    disk_bytes: u64,
    frames: Vec<u8>,
}

struct Active {
    base: u64,
    file: Arc<File>,
    /// One past the last seq written into it.
    end_seq: u64,
}

impl Log {
    /// Appends `payloads` as consecutive records, all or nothing, and returns
    /// the seqs assigned. With `sync`, returns once they are durable. A failed
    /// write is cut back before the error returns; a failed `fdatasync`
    /// returns an error and poisons the log (the records were written but
    /// their durability is unknown; reopen the log to go on).
    pub fn append(&self, payloads: &[&[u8]]) -> Result<Range<u64>, LogError> {
        let s = &*self.shared;
        s.check_poisoned()?;
        let max = s.max_payload();
        let mut adding_bytes = 0;
        for p in payloads {
            if p.len() as u64 > max {
                return Err(LogError::RecordTooLarge { len: p.len() as u64, max });
            }
            adding_bytes += (HEADER_LEN + p.len()) as u64;
        }
        let range = {
            let mut guard = lock(&s.inner);
            let inner = &mut *guard;
            let start = inner.next_seq;
            if payloads.is_empty() {
                return Ok(start..start);
            }
            s.check_room(inner, adding_bytes, payloads.len() as u64)?;
            let current = inner
                .active
                .as_ref()
                .filter(|a| a.end_seq == start && inner.segments[&a.base] < s.options.segment_bytes);
            let (base, file) = match current {
                Some(a) => (a.base, Arc::clone(&a.file)),
                None => s.roll(inner, start)?,
            };
            let old_len = inner.segments[&base];
            inner.frames.clear();
            for (i, p) in payloads.iter().enumerate() {
                encode_record(start + i as u64, p, &mut inner.frames);
            }
            s.write_frames(&file, base, old_len, &inner.frames)?;
            if inner.frames.capacity() > 8 << 20 {
                inner.frames = Vec::new();
            }
            let end = start + payloads.len() as u64;
            let new_len = old_len + adding_bytes;
            inner.segments.insert(base, new_len);
            inner.disk_bytes += adding_bytes;
            inner.next_seq = end;
            if let Some(a) = inner.active.as_mut() {
                a.end_seq = end;
            }
            if !s.options.sync {
                s.publish(Watermark { seq: end, seg_base: base, seg_len: new_len });
            }
            start..end
        };
        if s.options.sync {
            s.group_commit(range.end)?;
        }
        Ok(range)
    }

    /// The seq the next append gets.
    pub fn next_seq(&self) -> u64 {
        lock(&self.shared.inner).next_seq
    }

    /// Every record with a seq below this is durable (synced when `sync`,
    /// written when not).
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// The oldest retained seq (the base of the first segment).
    pub fn first_seq(&self) -> u64 {
        self.shared.first_seq()
    }

    /// The base seq of every segment file, oldest first.
    pub fn segment_bases(&self) -> Vec<u64> {
        lock(&self.shared.inner).segments.keys().copied().collect()
    }

    /// Total bytes of the segment files.
    pub fn disk_bytes(&self) -> u64 {
        lock(&self.shared.inner).disk_bytes
    }

    /// Records not yet consumed by every cursor open in this process (all
    /// retained records when none is open).
    pub fn live_events(&self) -> u64 {
        self.shared.live_events(&lock(&self.shared.inner))
    }

    /// Whether an append of one empty record would be refused as full.
    pub fn is_full(&self) -> bool {
        let inner = lock(&self.shared.inner);
        self.shared.check_room(&inner, HEADER_LEN as u64, 1).is_err()
    }

    /// Opens or creates the durable cursor `name`; see [`Cursor`].
    pub fn cursor(&self, name: &str) -> Result<Cursor, LogError> {
        cursor::open(&self.shared, name)
    }

    /// A reader starting at seq `from` (or at [`Log::first_seq`] if older).
    pub fn reader(&self, from: u64) -> Reader {
        Reader::new(Arc::clone(&self.shared), from)
    }

    /// Blocks until `durable_seq() > after` or `timeout` passes; returns
    /// `durable_seq()`.
    pub fn wait_durable(&self, after: u64, timeout: Duration) -> u64 {
        let s = &*self.shared;
        let deadline = Instant::now().checked_add(timeout);
        let mut durable = lock(&s.durable);
        while durable.seq <= after {
            durable = match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                Some(Duration::ZERO) => break,
                Some(left) => s.durable_changed.wait_timeout(durable, left).unwrap_or_else(PoisonError::into_inner).0,
                None => s.durable_changed.wait(durable).unwrap_or_else(PoisonError::into_inner),
            };
        }
        durable.seq
    }

    /// Updates of `durable_seq()`, for async consumers.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.watch.subscribe()
    }

    /// The log folder.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("dir", &self.shared.dir).field("durable_seq", &self.durable_seq()).finish()
    }
}

impl Shared {
    fn segment_path(&self, base: u64) -> PathBuf {
        self.dir.join(segment_name(base))
    }

    fn first_seq(&self) -> u64 {
        let inner = lock(&self.inner);
        inner.segments.keys().next().copied().unwrap_or(inner.next_seq)
    }

    fn live_events(&self, inner: &Inner) -> u64 {
        let first = inner.segments.keys().next().copied().unwrap_or(inner.next_seq);
        let from = match self.min_cursor.load(Ordering::Acquire) {
            NO_CURSOR => first,
            min => min.max(first),
        };
        inner.next_seq.saturating_sub(from)
    }

    fn max_payload(&self) -> u64 {
        (MAX_RECORD_BYTES as u64).min(self.options.max_bytes.saturating_sub(HEADER_LEN as u64))
    }

    fn check_room(&self, inner: &Inner, adding_bytes: u64, adding_events: u64) -> Result<(), LogError> {
        let (bytes, events) = (inner.disk_bytes, self.live_events(inner));
        let o = &self.options;
        if bytes + adding_bytes > o.max_bytes || events + adding_events > o.max_events {
            return Err(LogError::Full {
                bytes,
                events,
                adding_bytes,
                adding_events,
                max_bytes: o.max_bytes,
                max_events: o.max_events,
            });
        }
        Ok(())
    }

    fn check_poisoned(&self) -> Result<(), LogError> {
        match self.poisoned.get() {
            Some(reason) => Err(LogError::Poisoned { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    fn poison(&self, reason: String) {
        tracing::error!(dir = %self.dir.display(), %reason, "log poisoned");
        if self.poisoned.set(reason).is_err() {
            tracing::debug!("log was already poisoned");
        }
    }

    fn poison_io(&self, op: &'static str, path: &Path, source: io::Error) -> LogError {
        self.poison(format!("{op} {}: {source}", path.display()));
        LogError::Io { op, path: path.to_path_buf(), source }
    }

    /// Makes every record below `end` durable, sharing one `fdatasync` with
    /// every appender that wrote before it.
    fn group_commit(&self, end: u64) -> Result<(), LogError> {
        let _turn = lock(&self.sync_turn);
        if self.durable_seq.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        self.check_poisoned()?;
        let (mark, file) = {
            let inner = lock(&self.inner);
            // The active segment is never cleared once an append created it.
            let Some(active) = inner.active.as_ref() else { return Ok(()) };
            let seg_len = inner.segments[&active.base];
            (Watermark { seq: inner.next_seq, seg_base: active.base, seg_len }, Arc::clone(&active.file))
        };
        // Older segments were synced when they were sealed.
        file.sync_data().map_err(|e| self.poison_io("sync", &self.segment_path(mark.seg_base), e))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.publish(mark);
        Ok(())
    }

    fn publish(&self, mark: Watermark) {
        let mut durable = lock(&self.durable);
        if mark.seq <= durable.seq {
            return;
        }
        *durable = mark;
        self.durable_seq.store(mark.seq, Ordering::Release);
        self.durable_changed.notify_all();
        self.watch.send_replace(mark.seq);
    }

    fn durable(&self) -> Watermark {
        *lock(&self.durable)
    }

    /// Records a cursor position and removes the segments every open cursor
    /// has moved past.
    fn set_cursor(&self, name: &str, position: u64) -> Result<(), LogError> {
        let mut cursors = lock(&self.cursors);
        cursors.insert(name.to_owned(), position);
        let min = self.update_min(&cursors);
        self.remove_segments_below(min)
    }

    fn update_min(&self, cursors: &HashMap<String, u64>) -> u64 {
        let min = cursors.values().copied().min().unwrap_or(NO_CURSOR);
        self.min_cursor.store(min, Ordering::Release);
        min
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io { op, path: path.to_path_buf(), source }
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync folder", dir))
}
