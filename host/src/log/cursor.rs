//! Durable named cursors: this module owns the `cursors/` folder of a log, the
//! cursor file format (position u64 LE, aux u64 LE, crc32c u32 LE over both),
//! writing it atomically (temp file + rename; not synced: see `commit`), and
//! registering open cursors with the log so retention and `live_events` see
//! their positions. A missing file starts at the log's first seq; a corrupt one
//! too, with a warning (replay means duplicates, never loss).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{LogError, Shared, io_err, lock, sync_dir};

/// Length of a cursor file.
const FILE_LEN: usize = 20;
/// Suffix of temp files; `~` cannot occur in a cursor name.
const TMP_SUFFIX: &str = "~tmp";

/// A named consumer position, persisted in `cursors/{name}` and counted by
/// retention while open. Dropping it unregisters it from retention; its
/// persisted position stays on disk.
pub struct Cursor {
    shared: Arc<Shared>,
    name: String,
    path: PathBuf,
    position: u64,
    aux: u64,
}

impl Cursor {
    /// The cursor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next seq to consume.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The opaque value saved with the position (a sink keeps its own file
    /// length here, for instance).
    pub fn aux(&self) -> u64 {
        self.aux
    }

    /// Persists `position` and `aux`, then lets retention remove the segments
    /// every open cursor has moved past. `position` may move backwards (replay)
    /// but not past the log's next seq.
    pub fn commit(&mut self, position: u64, aux: u64) -> Result<(), LogError> {
        let next_seq = lock(&self.shared.inner).next_seq;
        if position > next_seq {
            return Err(LogError::CursorBeyondEnd { name: self.name.clone(), position, next_seq });
        }
        // Not synced: a cursor that power loss sets back only means some
        // records are read again (duplicates with the same ids), never lost;
        // syncing it per batch would cost more than the data itself.
        store(&self.shared.cursors_dir, &self.path, position, aux, false)?;
        self.position = position;
        self.aux = aux;
        self.shared.set_cursor(&self.name, position)
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let mut cursors = lock(&self.shared.cursors);
        cursors.remove(&self.name);
        self.shared.update_min(&cursors);
    }
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("name", &self.name)
            .field("position", &self.position)
            .field("aux", &self.aux)
            .finish()
    }
}

/// Opens or creates cursor `name` and registers it with the log.
pub(super) fn open(shared: &Arc<Shared>, name: &str) -> Result<Cursor, LogError> {
    if !valid_name(name) {
        return Err(LogError::BadCursorName { name: name.to_owned() });
    }
    let mut cursors = lock(&shared.cursors);
    if cursors.contains_key(name) {
        return Err(LogError::CursorInUse { name: name.to_owned() });
    }
    let path = shared.cursors_dir.join(name);
    let (position, aux) = match load(&path)? {
        Some(saved) => saved,
        None => (shared.first_seq(), 0),
    };
    cursors.insert(name.to_owned(), position);
    shared.update_min(&cursors);
    Ok(Cursor { shared: Arc::clone(shared), name: name.to_owned(), path, position, aux })
}

/// Whether `name` is 1 to 100 characters of `[A-Za-z0-9_.-]`.
fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn encode(position: u64, aux: u64) -> [u8; FILE_LEN] {
    let mut out = [0u8; FILE_LEN];
    out[..8].copy_from_slice(&position.to_le_bytes());
    out[8..16].copy_from_slice(&aux.to_le_bytes());
    let crc = crc32c::crc32c(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a cursor file's bytes into (position, aux); `None` if corrupt.
pub(super) fn decode_file(bytes: &[u8]) -> Option<(u64, u64)> {
    decode(bytes)
}

fn decode(bytes: &[u8]) -> Option<(u64, u64)> {
    let bytes: &[u8; FILE_LEN] = bytes.try_into().ok()?;
    let crc = u32::from_le_bytes(bytes[16..].try_into().ok()?);
    if crc != crc32c::crc32c(&bytes[..16]) {
        return None;
    }
    Some((u64::from_le_bytes(bytes[..8].try_into().ok()?), u64::from_le_bytes(bytes[8..16].try_into().ok()?)))
}

/// The saved (position, aux); `None` when the file is missing, or corrupt
/// (with a warning).
fn load(path: &Path) -> Result<Option<(u64, u64)>, LogError> {
    match fs::read(path) {
        Ok(bytes) => {
            let saved = decode(&bytes);
            if saved.is_none() {
                tracing::warn!(cursor = %path.display(), len = bytes.len(),
                    "corrupt cursor file; starting from the oldest retained record (expect duplicates)");
            }
            Ok(saved)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::Io { op: "read cursor", path: path.to_path_buf(), source: e }),
    }
}

/// Writes a cursor file atomically: temp file, rename, folder sync.
fn store(dir: &Path, path: &Path, position: u64, aux: u64, sync: bool) -> Result<(), LogError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    file.write_all(&encode(position, aux)).map_err(io_err("write", &tmp))?;
    if sync {
        file.sync_data().map_err(io_err("sync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err("rename", &tmp))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// At open: removes stray temp files from the cursors folder and returns the
/// largest saved position (0 when there is none).
pub(super) fn scan_folder(dir: &Path) -> Result<u64, LogError> {
    let mut max = 0;
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if name.ends_with(TMP_SUFFIX) {
            tracing::debug!(file = %path.display(), "removing a stray cursor temp file");
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        } else if valid_name(&name)
            && let Some((position, _)) = load(&path)?
        {
            max = max.max(position);
        }
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::super::{Log, LogOptions};
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn open(dir: &Path) -> Log {
        Log::open(dir, LogOptions::default()).unwrap().0
    }

    #[test]
    fn positions_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        log.append(&[b"a", b"b", b"c"]).unwrap();
        let mut c = log.cursor("sink.file-1").unwrap();
        assert_eq!((c.position(), c.aux()), (0, 0));
        c.commit(2, 77).unwrap();
        drop(c);
        drop(log);
        let log = open(dir.path());
        let c = log.cursor("sink.file-1").unwrap();
        assert_eq!((c.name(), c.position(), c.aux()), ("sink.file-1", 2, 77));
        let mode = fs::metadata(dir.path().join("cursors/sink.file-1")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_or_short_file_falls_back_to_first_seq() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        log.append(&[b"a", b"b"]).unwrap();
        let path = dir.path().join("cursors/c");
        let mut bytes = encode(1, 5);
        bytes[3] ^= 1;
        fs::write(&path, bytes).unwrap();
        let c = log.cursor("c").unwrap();
        assert_eq!((c.position(), c.aux()), (log.first_seq(), 0));
        drop(c);
        fs::write(&path, &encode(1, 5)[..7]).unwrap();
        let c = log.cursor("c").unwrap();
        assert_eq!((c.position(), c.aux()), (log.first_seq(), 0));
    }

    #[test]
    fn names_are_checked_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        for bad in ["", "a/b", "..x~", "ü", &"x".repeat(101)] {
            assert!(matches!(log.cursor(bad), Err(LogError::BadCursorName { .. })), "{bad:?}");
        }
        let c = log.cursor(&"x".repeat(100)).unwrap();
        assert!(matches!(log.cursor(c.name()), Err(LogError::CursorInUse { .. })));
        drop(c);
        log.cursor(&"x".repeat(100)).unwrap();
    }

    #[test]
    fn commit_past_the_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        log.append(&[b"a"]).unwrap();
        let mut c = log.cursor("c").unwrap();
        assert!(matches!(c.commit(2, 0), Err(LogError::CursorBeyondEnd { position: 2, next_seq: 1, .. })));
        c.commit(1, 0).unwrap();
    }

    #[test]
    fn stray_temp_files_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let tmp = dir.path().join("cursors/c~tmp");
        fs::write(&tmp, b"half").unwrap();
        drop(open(dir.path()));
        assert!(!tmp.exists());
    }
}
