//! The JSONL sink: one JSON object per line to a file (appended) or to
//! standard output. Events are written in their JSON form; reports as
//! `{"report": {...}}` so both can share one stream.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::Sink;
use crate::config::Stream;
use crate::guard::Redacted;
use crate::report::Report;

/// A JSONL writer.
pub struct JsonlSink {
    name: String,
    streams: Vec<Stream>,
    out: BufWriter<Box<dyn Write + Send>>,
}

impl JsonlSink {
    /// Writes to standard output.
    pub fn stdout(streams: Vec<Stream>) -> JsonlSink {
        JsonlSink { name: "stdout".into(), streams, out: BufWriter::new(Box::new(std::io::stdout())) }
    }

    /// Appends to `path`, creating it and its folder if needed.
    pub fn file(path: &Path, streams: Vec<Stream>) -> std::io::Result<JsonlSink> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open sink file {}: {e}", path.display())))?;
        Ok(JsonlSink {
            name: path.display().to_string(),
            streams,
            out: BufWriter::with_capacity(64 * 1024, Box::new(file)),
        })
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, stream: Stream) -> bool {
        self.streams.contains(&stream)
    }

    fn send_events(&mut self, events: &[Redacted]) -> std::io::Result<super::Refused> {
        for e in events {
            serde_json::to_writer(&mut self.out, &e.event().to_json())?;
            self.out.write_all(b"\n")?;
        }
        Ok(Vec::new())
    }

    fn send_report(&mut self, report: &Report) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, &serde_json::json!({ "report": report }))?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
