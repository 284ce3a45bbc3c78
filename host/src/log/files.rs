//! Segment files on disk: this module owns opening a log folder
//! ([`Log::open`]: create it 0700 or tighten it, list the segments, scan only
//! the last one, cut a torn tail and report it in [`Recovery`], work out the
//! next seq so seqs never go backwards even when every segment is gone),
//! starting a new segment (roll), removing consumed segments (retention's
//! file work), and the helpers that keep files and folders private.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use super::segment::{self, segment_name};
use super::{Active, CURSORS_DIR, Inner, Log, LogError, LogOptions, NO_CURSOR, Recovery, Shared, Watermark};
use super::{cursor, io_err, lock, sync_dir};

impl Log {
    /// Opens (creating if needed) the log in `dir`: lists the segments, scans
    /// the last one and cuts a torn tail. Corrupt regions elsewhere are left
    /// for readers to report.
    pub fn open(dir: &Path, options: LogOptions) -> Result<(Log, Recovery), LogError> {
        make_private_dir(dir).map_err(io_err("create folder", dir))?;
        let cursors_dir = dir.join(CURSORS_DIR);
        make_private_dir(&cursors_dir).map_err(io_err("create folder", &cursors_dir))?;
        let max_cursor = cursor::scan_folder(&cursors_dir)?;
        let mut segments = list_segments(dir)?;
        let mut recovery = Recovery::default();
        let mut end_seq = 0;
        if let Some((&base, _)) = segments.last_key_value() {
            let path = dir.join(segment_name(base));
            let scan = segment::scan_segment(&path).map_err(io_err("scan", &path))?;
            recovery.records = scan.records;
            end_seq = scan.end_seq.unwrap_or(base);
            if let Some((offset, reason)) = scan.torn {
                tracing::warn!(segment = %path.display(), offset, bytes = scan.file_len - offset, %reason,
                    "cutting a torn tail off the log");
                segment::cut_tail(&path, offset).map_err(io_err("cut torn tail of", &path))?;
                recovery.truncated_bytes = scan.file_len - offset;
                recovery.truncated_at = Some((path.clone(), offset));
                segments.insert(base, offset);
            }
            if scan.corrupt_regions > 0 {
                tracing::warn!(segment = %path.display(), regions = scan.corrupt_regions,
                    "corrupt regions in the last segment; readers will report them");
            }
        }
        // Seqs never go backwards, even when every segment is gone.
        let next_seq = end_seq.max(max_cursor);
        let mut active = None;
        if let Some((&base, &len)) = segments.last_key_value() {
            let path = dir.join(segment_name(base));
            if end_seq == next_seq {
                let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_err("open", &path))?;
                if options.sync {
                    file.sync_data().map_err(io_err("sync", &path))?;
                }
                active = Some(Active { base, file: Arc::new(file), end_seq });
            } else if len == 0 {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                segments.remove(&base);
                sync_dir(dir)?;
            }
        }
        recovery.segments = segments.len();
        let durable = match segments.last_key_value() {
            Some((&seg_base, &seg_len)) => Watermark { seq: next_seq, seg_base, seg_len },
            None => Watermark { seq: next_seq, seg_base: next_seq, seg_len: 0 },
        };
        let disk_bytes = segments.values().sum();
        let inner = Inner { segments, active, next_seq, disk_bytes, frames: Vec::new() };
        let shared = Shared {
            dir: dir.to_path_buf(),
            cursors_dir,
            options,
            inner: Mutex::new(inner),
            sync_turn: Mutex::new(()),
            durable: Mutex::new(durable),
            durable_changed: Condvar::new(),
            durable_seq: AtomicU64::new(next_seq),
            watch: tokio::sync::watch::Sender::new(next_seq),
            cursors: Mutex::new(HashMap::new()),
            min_cursor: AtomicU64::new(NO_CURSOR),
            poisoned: OnceLock::new(),
            syncs: AtomicU64::new(0),
        };
        Ok((Log { shared: Arc::new(shared) }, recovery))
    }
}

impl Shared {
    /// Seals the active segment (synced) and starts a new, empty one whose
    /// first seq is `base`. Once the file exists it is the active segment,
    /// even if a later step fails (the error is returned all the same).
    pub(super) fn roll(&self, inner: &mut Inner, base: u64) -> Result<(u64, Arc<File>), LogError> {
        let sync = self.options.sync;
        if let (Some(old), true) = (&inner.active, sync) {
            let path = self.segment_path(old.base);
            old.file.sync_data().map_err(|e| self.poison_io("sync", &path, e))?;
        }
        let path = self.segment_path(base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("create segment", &path))?;
        tracing::debug!(segment = %path.display(), "new log segment");
        let file = Arc::new(file);
        inner.segments.insert(base, 0);
        inner.active = Some(Active { base, file: Arc::clone(&file), end_seq: base });
        // Explicitly, whatever the umask.
        file.set_permissions(Permissions::from_mode(0o600)).map_err(io_err("set mode of", &path))?;
        if sync {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.poison_io("sync folder", &self.dir, e))?;
        }
        Ok((base, file))
    }

    /// Writes `frames` at `offset` of segment `base`. On failure (ENOSPC...)
    /// cuts the file back to `offset`; if even that fails, poisons the log.
    pub(super) fn write_frames(&self, file: &File, base: u64, offset: u64, frames: &[u8]) -> Result<(), LogError> {
        let Err(e) = file.write_all_at(frames, offset) else { return Ok(()) };
        let path = self.segment_path(base);
        if let Err(t) = file.set_len(offset) {
            self.poison(format!("write to {} failed ({e}) and cutting it back failed ({t})", path.display()));
            return Err(LogError::Io { op: "cut back after a failed write", path, source: t });
        }
        Err(LogError::Io { op: "write", path, source: e })
    }

    /// Removes the segments whose every record has a seq below `min` (the
    /// smallest open cursor position), never the last (active) one, and syncs
    /// the folder.
    pub(super) fn remove_segments_below(&self, min: u64) -> Result<(), LogError> {
        let mut removed = 0;
        {
            let mut inner = lock(&self.inner);
            loop {
                let mut it = inner.segments.iter();
                let (Some((&first, &len)), Some((&second, _))) = (it.next(), it.next()) else { break };
                // Every record of `first` has a seq < `second`; the last
                // (active) segment is never removed.
                if second > min {
                    break;
                }
                let path = self.segment_path(first);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        tracing::warn!(segment = %path.display(), "log segment already gone");
                    }
                    Err(e) => return Err(LogError::Io { op: "remove", path, source: e }),
                }
                inner.segments.remove(&first);
                inner.disk_bytes -= len;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::debug!(removed, below = min, "removed consumed log segments");
            if self.options.sync {
                sync_dir(&self.dir)?;
            }
        }
        Ok(())
    }
}

/// Creates `dir` (and missing parents) with mode 0700, and tightens it to
/// 0700 if it already exists with another mode.
pub(super) fn make_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    tighten(dir, &fs::metadata(dir)?, 0o700)
}

pub(super) fn tighten(path: &Path, meta: &fs::Metadata, mode: u32) -> io::Result<()> {
    if meta.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Base seq → length of the segment files in `dir`, tightened to 0600.
fn list_segments(dir: &Path) -> Result<BTreeMap<u64, u64>, LogError> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let Some(base) = entry.file_name().to_str().and_then(segment::parse_segment_name) else { continue };
        let path = entry.path();
        let meta = entry.metadata().map_err(io_err("stat", &path))?;
        if meta.is_file() {
            tighten(&path, &meta, 0o600).map_err(io_err("set mode of", &path))?;
            out.insert(base, meta.len());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Item, segment::HEADER_LEN};
    use super::*;
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    fn opts() -> LogOptions {
        LogOptions { segment_bytes: 1 << 20, ..LogOptions::default() }
    }

    fn records(log: &Log) -> Vec<(u64, Vec<u8>)> {
        let (mut reader, mut out) = (log.reader(0), Vec::new());
        while reader.read(100, 1 << 20, &mut out).unwrap() > 0 {}
        out.into_iter()
            .map(|item| match item {
                Item::Record { seq, payload } => (seq, payload),
                corrupt => panic!("unexpected {corrupt:?}"),
            })
            .collect()
    }

    fn seg0(dir: &Path) -> PathBuf {
        dir.join(segment_name(0))
    }

    #[test]
    fn torn_tail_from_garbage_is_cut_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), opts()).unwrap();
        log.append(&[b"a", b"bb", b"ccc"]).unwrap();
        drop(log);
        let good_len = fs::metadata(seg0(dir.path())).unwrap().len();
        let file = OpenOptions::new().write(true).open(seg0(dir.path())).unwrap();
        file.write_all_at(b"not a record at all", good_len).unwrap();
        let (log, recovery) = Log::open(dir.path(), opts()).unwrap();
        assert_eq!(recovery.truncated_bytes, 19);
        assert_eq!(recovery.truncated_at, Some((seg0(dir.path()), good_len)));
        assert_eq!((recovery.segments, recovery.records), (1, 3));
        assert_eq!(fs::metadata(seg0(dir.path())).unwrap().len(), good_len);
        assert_eq!(log.append(&[b"dddd"]).unwrap(), 3..4);
        let got = records(&log);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!((&got[2].1[..], &got[3].1[..]), (&b"ccc"[..], &b"dddd"[..]));
    }

    #[test]
    fn record_cut_mid_way_is_cut_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), opts()).unwrap();
        log.append(&[b"first", b"second"]).unwrap();
        drop(log);
        let cut_at = (HEADER_LEN + 5 + HEADER_LEN + 3) as u64; // inside the second payload
        File::options().write(true).open(seg0(dir.path())).unwrap().set_len(cut_at).unwrap();
        let (log, recovery) = Log::open(dir.path(), opts()).unwrap();
        let first_end = (HEADER_LEN + 5) as u64;
        assert_eq!(recovery.truncated_at, Some((seg0(dir.path()), first_end)));
        assert_eq!((recovery.truncated_bytes, recovery.records), (cut_at - first_end, 1));
        assert_eq!(log.next_seq(), 1);
        assert_eq!(log.append(&[b"again"]).unwrap(), 1..2);
        assert_eq!(records(&log), [(0, b"first".to_vec()), (1, b"again".to_vec())]);
    }

    #[test]
    fn seqs_stay_monotonic_after_all_segments_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let small = LogOptions { segment_bytes: 64, ..opts() };
        let (log, _) = Log::open(dir.path(), small.clone()).unwrap();
        for _ in 0..10 {
            log.append(&[&[7; 40]]).unwrap();
        }
        let mut cursor = log.cursor("sink").unwrap();
        cursor.commit(10, 0).unwrap();
        // Retention leaves only the active segment; reopening keeps the seq.
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
        drop((cursor, log));
        let (log, _) = Log::open(dir.path(), small.clone()).unwrap();
        assert_eq!(log.next_seq(), 10);
        drop(log);
        // Even with every segment file gone, the cursor keeps seqs monotonic.
        for base in list_segments(dir.path()).unwrap().keys() {
            fs::remove_file(dir.path().join(segment_name(*base))).unwrap();
        }
        let (log, recovery) = Log::open(dir.path(), small).unwrap();
        assert_eq!((recovery.segments, log.next_seq(), log.first_seq()), (0, 10, 10));
        assert_eq!(log.append(&[b"x"]).unwrap(), 10..11);
        assert_eq!(records(&log), [(10, b"x".to_vec())]);
        assert_eq!(log.cursor("sink").unwrap().position(), 10);
    }

    #[test]
    fn empty_segment_whose_base_is_behind_the_cursors_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), opts()).unwrap();
        log.append(&[b"a", b"b"]).unwrap();
        log.cursor("c").unwrap().commit(2, 0).unwrap();
        drop(log);
        File::options().write(true).open(seg0(dir.path())).unwrap().set_len(0).unwrap();
        let (log, recovery) = Log::open(dir.path(), opts()).unwrap();
        assert_eq!((recovery.segments, log.next_seq()), (0, 2));
        assert!(!seg0(dir.path()).exists());
        assert_eq!(log.append(&[b"c"]).unwrap(), 2..3);
    }

    #[test]
    fn files_and_folders_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("log");
        fs::create_dir_all(log_dir.join("cursors")).unwrap();
        for d in [&log_dir, &log_dir.join("cursors")] {
            fs::set_permissions(d, Permissions::from_mode(0o755)).unwrap();
        }
        let (log, _) = Log::open(&log_dir, opts()).unwrap();
        log.append(&[b"a"]).unwrap();
        log.cursor("c").unwrap().commit(1, 0).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&log_dir), 0o700);
        assert_eq!(mode(&log_dir.join("cursors")), 0o700);
        assert_eq!(mode(&seg0(&log_dir)), 0o600);
        assert_eq!(mode(&log_dir.join("cursors/c")), 0o600);
        // A segment left with a looser mode is tightened at open.
        drop(log);
        fs::set_permissions(seg0(&log_dir), Permissions::from_mode(0o644)).unwrap();
        drop(Log::open(&log_dir, opts()).unwrap());
        assert_eq!(mode(&seg0(&log_dir)), 0o600);
    }

    #[test]
    fn a_write_that_cannot_be_cut_back_poisons_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), opts()).unwrap();
        log.append(&[b"a"]).unwrap();
        let read_only = File::open(seg0(dir.path())).unwrap(); // write and set_len both fail
        let err = log.shared.write_frames(&read_only, 0, 0, b"frames").unwrap_err();
        assert!(matches!(err, LogError::Io { op: "cut back after a failed write", .. }), "{err:?}");
        assert!(matches!(log.append(&[b"b"]), Err(LogError::Poisoned { .. })));
        drop(log);
        let (log, _) = Log::open(dir.path(), opts()).unwrap();
        assert_eq!(log.append(&[b"b"]).unwrap(), 1..2);
    }
}
