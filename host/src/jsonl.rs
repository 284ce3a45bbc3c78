//! Appending JSON lines to a file: the shared writer behind the JSONL sink,
//! the audit trail and the dead-letter store.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// An append-only JSONL file.
pub struct JsonlFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonlFile {
    /// Opens `path` for appending, creating it (and its folder) if needed.
    pub fn open(path: &Path) -> std::io::Result<JsonlFile> {
        Self::open_with(path, 0o644)
    }

    /// Like [`JsonlFile::open`], but a new file is readable by its owner only
    /// (for files that may hold sensitive data).
    pub fn open_private(path: &Path) -> std::io::Result<JsonlFile> {
        Self::open_with(path, 0o600)
    }

    fn open_with(path: &Path, mode: u32) -> std::io::Result<JsonlFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let file = options
            .open(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open {} for appending: {e}", path.display())))?;
        Ok(JsonlFile { path: path.to_path_buf(), out: BufWriter::with_capacity(64 * 1024, file) })
    }

    /// The file's path.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Writes one value as a line.
    pub fn write_value<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")
    }

    /// Writes one pre-rendered line (without its newline).
    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// Flushes buffered lines to the OS.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Flushes buffered lines and syncs them to disk.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}
