//! The JSONL sink: one JSON object per line to a file (appended) or to
//! standard output. Events are written in their JSON form with their id
//! first (`{"id": ..., "orgId": ...}`) or, with `shape = "as_read"`, those
//! read from a JSONL source as they were read (redacted in place); reports
//! as `{"report": {...}}`, so both can share one stream.
//!
//! A file sink writes no duplicate after a crash: the file's length is saved
//! beside the sink's cursor after every batch, and on start the complete
//! lines found past that length (written just before the crash, before the
//! cursor moved) are counted as delivered instead of being written again; a
//! torn last line is cut off. With `sync = true` (the default) each batch is
//! flushed to disk before the cursor moves.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{BoxFuture, EventSink, Item, Sent, SinkError};
use crate::config::{Shape, Stream};

/// Where the lines go.
enum Out {
    Stdout,
    File { path: PathBuf, file: Option<File>, sync: bool },
}

/// A JSONL writer.
pub struct JsonlSink {
    name: String,
    streams: Vec<Stream>,
    shape: Shape,
    out: Out,
    /// The file's length after the last batch.
    len: u64,
}

impl JsonlSink {
    /// Writes to standard output.
    pub fn stdout(name: &str, streams: Vec<Stream>, shape: Shape) -> JsonlSink {
        JsonlSink { name: name.to_string(), streams, shape, out: Out::Stdout, len: 0 }
    }

    /// Appends to `path`, creating it and its folder if needed; `sync`
    /// flushes every batch to disk.
    pub fn file(
        name: &str,
        path: &Path,
        streams: Vec<Stream>,
        sync: bool,
        shape: Shape,
    ) -> Result<JsonlSink, SinkError> {
        let context = || format!("cannot open the sink file {}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(SinkError::io(context()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(SinkError::io(context()))?;
        let len = file.metadata().map_err(SinkError::io(context()))?.len();
        Ok(JsonlSink {
            name: name.to_string(),
            streams,
            shape,
            out: Out::File { path: path.to_path_buf(), file: Some(file), sync },
            len,
        })
    }
}

/// The lines for `items`.
fn render(items: &[Item]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(items.len() * 512);
    for item in items {
        match item {
            Item::Event(e) => serde_json::to_writer(&mut bytes, e.record()),
            Item::Line(l) => {
                bytes.extend_from_slice(l.text().as_bytes());
                Ok(())
            }
            Item::Report(r) => serde_json::to_writer(&mut bytes, &serde_json::json!({ "report": r })),
        }
        .expect("records and reports always serialize");
        bytes.push(b'\n');
    }
    bytes
}

impl EventSink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, stream: Stream) -> bool {
        self.streams.contains(&stream)
    }

    fn takes_lines(&self) -> bool {
        self.shape == Shape::AsRead
    }

    fn send<'a>(&'a mut self, items: &'a [Item]) -> BoxFuture<'a, Result<Sent, SinkError>> {
        Box::pin(async move {
            let bytes = render(items);
            match &mut self.out {
                Out::Stdout => {
                    tokio::task::spawn_blocking(move || {
                        let mut out = std::io::stdout().lock();
                        out.write_all(&bytes).and_then(|()| out.flush())
                    })
                    .await
                    .map_err(|e| SinkError::Other(format!("the stdout writer stopped: {e}")))?
                    .map_err(SinkError::io("cannot write to standard output"))?;
                }
                Out::File { path, file, sync } => {
                    let mut handle = file.take().ok_or_else(|| SinkError::Other("the sink file is closed".into()))?;
                    let sync = *sync;
                    let n = bytes.len() as u64;
                    let (handle, result) = tokio::task::spawn_blocking(move || {
                        let result =
                            handle.write_all(&bytes).and_then(|()| if sync { handle.sync_data() } else { Ok(()) });
                        (handle, result)
                    })
                    .await
                    .map_err(|e| SinkError::Other(format!("the file writer stopped: {e}")))?;
                    *file = Some(handle);
                    result.map_err(SinkError::io(format!("cannot write to {}", path.display())))?;
                    self.len += n;
                }
            }
            Ok(Sent::default())
        })
    }

    fn resume(&mut self, saved: u64) -> Result<u64, SinkError> {
        let Out::File { path, file: Some(file), .. } = &mut self.out else { return Ok(0) };
        let context = format!("cannot check {} for lines written before a restart", path.display());
        let len = file.metadata().map_err(SinkError::io(context.clone()))?.len();
        if len < saved {
            tracing::warn!(sink = %self.name, file = %path.display(), "the file is shorter than when the cursor was saved (rotated or truncated?); appending from here");
            self.len = len;
            return Ok(0);
        }
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(saved)).map_err(SinkError::io(context.clone()))?;
        file.read_to_end(&mut tail).map_err(SinkError::io(context.clone()))?;
        let complete = tail.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        if complete < tail.len() {
            // A torn line from a crash: cut it off so the next line starts clean.
            file.set_len(saved + complete as u64).map_err(SinkError::io(context.clone()))?;
            file.sync_data().map_err(SinkError::io(context))?;
            tracing::warn!(sink = %self.name, bytes = tail.len() - complete, "cut a torn last line from the sink file");
        }
        self.len = saved + complete as u64;
        let lines = tail[..complete].iter().filter(|b| **b == b'\n').count() as u64;
        if lines > 0 {
            tracing::info!(sink = %self.name, lines, "lines written before a restart are kept and not written again");
        }
        Ok(lines)
    }

    fn checkpoint(&self) -> u64 {
        self.len
    }
}
