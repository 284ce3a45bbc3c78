//! Reading events from a JSONL file or standard input, one event per line.
//! Blank lines are skipped; a line that is not a valid event comes back as
//! an error with the reason and the raw text (for the dead-letter store).
//! Each event gets the id `<source>:<line number>`.

use std::io::BufRead;

use chrono::Utc;

use crate::config::UnknownFields;
use crate::event::Event;

/// One line of input.
#[derive(Debug)]
pub struct Line {
    /// `<source>:<line number>`.
    pub id: String,
    /// The event, or why the line is not one plus the raw text.
    pub event: Result<Event, (String, String)>,
}

/// Iterates over the events of a JSONL stream.
pub struct JsonlSource<R> {
    reader: R,
    name: String,
    line_no: u64,
    unknown: UnknownFields,
    buf: String,
}

impl<R: BufRead> JsonlSource<R> {
    /// Reads from `reader`; `name` prefixes the event ids.
    pub fn new(reader: R, name: &str, unknown: UnknownFields) -> Self {
        JsonlSource { reader, name: name.to_string(), line_no: 0, unknown, buf: String::new() }
    }
}

impl<R: BufRead> Iterator for JsonlSource<R> {
    type Item = std::io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    // Not UTF-8: skip the rest of the line and report it.
                    self.line_no += 1;
                    let mut junk = Vec::new();
                    let _ = self.reader.read_until(b'\n', &mut junk);
                    let id = format!("{}:{}", self.name, self.line_no);
                    return Some(Ok(Line { id, event: Err(("line is not valid UTF-8".into(), String::new())) }));
                }
                Err(e) => return Some(Err(e)),
            }
            self.line_no += 1;
            let line = self.buf.trim();
            if line.is_empty() {
                continue;
            }
            let id = format!("{}:{}", self.name, self.line_no);
            let event =
                Event::from_json_line(line, self.unknown, Utc::now()).map_err(|reason| (reason, line.to_string()));
            return Some(Ok(Line { id, event }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lines_and_reports_bad_ones() {
        let input = "{\"orgId\":\"a\"}\n\nnot json\n{\"orgId\":\"b\"}\n";
        let lines: Vec<Line> =
            JsonlSource::new(input.as_bytes(), "in", UnknownFields::Preserve).map(Result::unwrap).collect();
        let ids: Vec<_> = lines.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["in:1", "in:3", "in:4"]);
        assert!(lines[0].event.is_ok());
        let (reason, raw) = lines[1].event.as_ref().unwrap_err();
        assert!(reason.contains("JSON"));
        assert_eq!(raw, "not json");
    }
}
