//! Exclusive lock on a state folder: this module owns the `lock` file in a
//! state folder, taken with [`File::try_lock`] (an advisory `flock`, released
//! by the kernel when the process exits, so a crash never leaves it stale) and
//! holding the pid of the process that holds it, so that a second process
//! pointed at the same folder gets a clear error naming the first one.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Name of the lock file inside the state folder.
const LOCK_FILE: &str = "lock";

/// Why [`StateLock::acquire`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another handle in this one) holds the lock.
    #[error(
        "the state folder {} is in use by another wasmtel process ({}); give each process its own state_dir",
        .dir.display(), describe_pid(*.pid)
    )]
    Held {
        /// The state folder.
        dir: PathBuf,
        /// The holder's pid, when the lock file names one.
        pid: Option<u32>,
    },
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
}

fn describe_pid(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    }
}

/// An exclusive lock on a state folder, held until dropped.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Creates `state_dir` (0700) and its `lock` file (0600) if needed, locks
    /// the file without waiting and writes our pid into it.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LockError + 'a {
            move |source| LockError::Io { op, path: path.to_path_buf(), source }
        }
        super::files::make_private_dir(state_dir).map_err(io("create folder", state_dir))?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io("open", &path))?;
        let meta = file.metadata().map_err(io("stat", &path))?;
        super::files::tighten(&path, &meta, 0o600).map_err(io("set mode of", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held { dir: state_dir.to_path_buf(), pid: read_pid(&path) });
            }
            Err(TryLockError::Error(e)) => return Err(io("lock", &path)(e)),
        }
        file.set_len(0).map_err(io("truncate", &path))?;
        file.write_all(std::process::id().to_string().as_bytes()).map_err(io("write", &path))?;
        file.flush().map_err(io("write", &path))?;
        Ok(StateLock { file, path })
    }

    /// The pid written in the lock file of `state_dir` if some process holds
    /// the lock now, else `None` (also when the folder or file is missing).
    /// Probes with a shared lock, so it never takes the lock away from anyone.
    pub fn holder(state_dir: &Path) -> Option<u32> {
        let path = state_dir.join(LOCK_FILE);
        let file = File::open(&path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(TryLockError::WouldBlock) => read_pid(&path),
            Err(TryLockError::Error(e)) => {
                tracing::debug!(lock = %path.display(), error = %e, "cannot probe the state lock");
                None
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it
        // visible at once even if the descriptor were shared.
        if let Err(e) = self.file.unlock() {
            tracing::warn!(lock = %self.path.display(), error = %e, "cannot release the state lock");
        }
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn second_acquire_in_the_same_process_is_held_with_our_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state).unwrap();
        assert_eq!(first.path(), state.join("lock"));
        let me = std::process::id();
        match StateLock::acquire(&state) {
            Err(LockError::Held { dir, pid }) => {
                assert_eq!((dir.as_path(), pid), (state.as_path(), Some(me)));
                let message = LockError::Held { dir, pid }.to_string();
                assert!(message.contains(&format!("(pid {me})")), "{message}");
                assert!(message.contains("give each process its own state_dir"), "{message}");
            }
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(StateLock::holder(&state), Some(me));
        drop(first);
        assert_eq!(StateLock::holder(&state), None);
        let again = StateLock::acquire(&state).unwrap();
        assert_eq!(StateLock::holder(&state), Some(me));
        drop(again);
    }

    #[test]
    fn folder_and_file_modes_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        let lock = StateLock::acquire(&state).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(lock.path()), 0o600);
        assert_eq!(fs::read_to_string(lock.path()).unwrap(), std::process::id().to_string());
    }

    #[test]
    fn holder_of_a_missing_folder_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StateLock::holder(&dir.path().join("nope")), None);
    }
}
