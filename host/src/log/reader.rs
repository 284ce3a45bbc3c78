//! Sequential reading: this module owns [`Reader`], which walks the log from a
//! seq onwards, segment after segment, keeping the open file, the offset and a
//! large read buffer between calls. It returns only durable records (seq below
//! `durable_seq`, bytes below the durable end of the segment being written),
//! never a record whose crc does not match, and reports every run of bytes that
//! is not a valid record as one [`Item::Corrupt`] before carrying on.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::segment::{HEADER_LEN, Scanned, Scanner};
use super::{LogError, Shared, io_err, lock};

/// One item returned by [`Reader::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A valid record.
    Record {
        /// Its seq.
        seq: u64,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// Bytes that are not a valid record; records inside them are lost.
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Offset of the region in the file.
        offset: u64,
        /// Length of the region.
        len: u64,
        /// Why the bytes at `offset` are not a record.
        reason: String,
        /// The region's first bytes, at most 64 KiB.
        bytes: Vec<u8>,
    },
}

/// Reads the log sequentially; see [`super::Log::reader`].
pub struct Reader {
    shared: Arc<Shared>,
    position: u64,
    segment: Option<OpenSegment>,
}

struct OpenSegment {
    base: u64,
    path: PathBuf,
    scanner: Scanner,
    /// Length once known to be sealed (no longer appended to).
    sealed_len: Option<u64>,
}

impl Reader {
    pub(super) fn new(shared: Arc<Shared>, from: u64) -> Reader {
        let first = shared.first_seq();
        if from < first {
            tracing::debug!(from, first, "reader starts at the oldest retained record");
        }
        let position = from.max(first);
        Reader { shared, position, segment: None }
    }

    /// The next seq it will return.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Pushes up to `max_records` items and about `max_bytes` payload bytes
    /// (at least one record when one is available) to `out` without blocking;
    /// returns how many items it pushed (0 when it is at the durable end).
    pub fn read(&mut self, max_records: usize, max_bytes: usize, out: &mut Vec<Item>) -> Result<usize, LogError> {
        let (mut pushed, mut records, mut bytes) = (0, 0, 0);
        while pushed < max_records {
            let durable = self.shared.durable();
            if self.position >= durable.seq {
                break;
            }
            if self.segment.is_none() && !self.open_segment(None)? {
                break;
            }
            let Some(seg) = self.segment.as_mut() else { break };
            let limit = if seg.base == durable.seg_base {
                durable.seg_len
            } else if seg.base < durable.seg_base {
                match seg.sealed_len {
                    Some(len) => len,
                    None => {
                        let len = seg.scanner.file_len().map_err(io_err("stat", &seg.path))?;
                        *seg.sealed_len.insert(len)
                    }
                }
            } else {
                0 // appended after the durable end: nothing readable yet
            };
            match seg.scanner.next(limit).map_err(io_err("read", &seg.path))? {
                Scanned::Record { seq, offset, len } => {
                    if seq < self.position {
                        continue; // positioning: before the requested start
                    }
                    let size = (len - HEADER_LEN as u64) as usize;
                    if seq >= durable.seq || (records > 0 && bytes + size > max_bytes) {
                        seg.scanner.set_offset(offset);
                        break;
                    }
                    out.push(Item::Record { seq, payload: seg.scanner.payload().to_vec() });
                    (pushed, records, bytes) = (pushed + 1, records + 1, bytes + size);
                    self.position = seq + 1;
                }
                Scanned::Invalid { offset, len, reason, next_seq } => {
                    if next_seq.is_some_and(|s| s <= self.position) {
                        continue; // hides only seqs before the requested start
                    }
                    let region = seg.scanner.region_bytes(offset, len, limit).map_err(io_err("read", &seg.path))?;
                    tracing::warn!(segment = %seg.path.display(), offset, len, %reason, "corrupt region in the log");
                    out.push(Item::Corrupt {
                        segment: seg.path.clone(),
                        offset,
                        len,
                        reason: reason.to_string(),
                        bytes: region,
                    });
                    pushed += 1;
                }
                Scanned::End if seg.base < durable.seg_base => {
                    let after = seg.base;
                    self.segment = None;
                    if !self.open_segment(Some(after))? {
                        break;
                    }
                }
                Scanned::End => break,
            }
        }
        Ok(pushed)
    }

    /// Opens the segment holding `position` among those after `after`; false
    /// when there is none.
    fn open_segment(&mut self, after: Option<u64>) -> Result<bool, LogError> {
        let mut missing = None;
        loop {
            let Some(base) = self.shared.pick_segment(self.position, after) else { return Ok(false) };
            let path = self.shared.segment_path(base);
            match File::open(&path) {
                Ok(file) => {
                    if base > self.position && after.is_none() {
                        tracing::warn!(from = self.position, to = base, "reader skipped removed log segments");
                        self.position = base;
                    }
                    let scanner = Scanner::new(file, 0);
                    self.segment = Some(OpenSegment { base, path, scanner, sealed_len: None });
                    return Ok(true);
                }
                // Retention removed it meanwhile: pick again, unless it is
                // still listed (then it vanished behind our back).
                Err(e) if e.kind() == io::ErrorKind::NotFound && missing != Some(base) => missing = Some(base),
                Err(e) => return Err(LogError::Io { op: "open", path, source: e }),
            }
        }
    }
}

impl Shared {
    /// Among segments with a base above `after`: the one with the largest
    /// base <= `position`, else the first.
    pub(super) fn pick_segment(&self, position: u64, after: Option<u64>) -> Option<u64> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let inner = lock(&self.inner);
        let low = after.map_or(Unbounded, Excluded);
        let below = match after {
            Some(a) if a >= position => None,
            _ => inner.segments.range((low, Included(position))).next_back(),
        };
        below.or_else(|| inner.segments.range((low, Unbounded)).next()).map(|(&base, _)| base)
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("position", &self.position).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Log, LogOptions, segment};
    use super::*;
    use std::fs::OpenOptions;
    use std::os::unix::fs::FileExt;

    fn options(segment_bytes: u64) -> LogOptions {
        LogOptions { segment_bytes, ..LogOptions::default() }
    }

    fn read_all(reader: &mut Reader) -> Vec<Item> {
        let mut out = Vec::new();
        while reader.read(7, 1 << 20, &mut out).unwrap() > 0 {}
        out
    }

    fn seqs(items: &[Item]) -> Vec<u64> {
        items.iter().filter_map(|i| if let Item::Record { seq, .. } = i { Some(*seq) } else { None }).collect()
    }

    #[test]
    fn corrupt_region_is_reported_with_its_bytes_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), options(1 << 20)).unwrap();
        let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        log.append(&refs).unwrap();
        let path = dir.path().join(segment::segment_name(0));
        let frame = (HEADER_LEN + 10) as u64;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(b"XX", 2 * frame + 5).unwrap(); // damage record 2
        let items = read_all(&mut log.reader(0));
        assert_eq!(seqs(&items), [0, 1, 3, 4]);
        let on_disk = std::fs::read(&path).unwrap();
        match &items[2] {
            Item::Corrupt { segment, offset, len, bytes, .. } => {
                assert_eq!((segment, *offset, *len), (&path, 2 * frame, frame));
                assert_eq!(bytes[..], on_disk[(2 * frame) as usize..(3 * frame) as usize]);
            }
            other => panic!("expected a corrupt region, got {other:?}"),
        }
        assert_eq!(items[3], Item::Record { seq: 3, payload: vec![3; 10] });
    }

    #[test]
    fn bytes_past_the_durable_end_are_not_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), options(1 << 20)).unwrap();
        log.append(&[b"one", b"two"]).unwrap();
        let path = dir.path().join(segment::segment_name(0));
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        file.write_all_at(b"WLT1 half-written frame", len).unwrap();
        let items = read_all(&mut log.reader(0));
        assert_eq!(seqs(&items), [0, 1]);
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn reads_across_segments_from_any_position_and_follows_growth() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), options(100)).unwrap();
        for i in 0..20u8 {
            log.append(&[&[i; 30]]).unwrap();
        }
        assert!(log.shared.inner.lock().unwrap().segments.len() > 3);
        let mut reader = log.reader(7);
        assert_eq!(seqs(&read_all(&mut reader)), (7..20).collect::<Vec<_>>());
        assert_eq!(reader.read(10, 10, &mut Vec::new()).unwrap(), 0);
        log.append(&[b"late", b"later"]).unwrap();
        let items = read_all(&mut reader);
        assert_eq!(seqs(&items), [20, 21]);
        assert_eq!(items[1], Item::Record { seq: 21, payload: b"later".to_vec() });
        assert_eq!(reader.position(), 22);
    }

    #[test]
    fn limits_records_and_bytes_but_returns_at_least_one() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), options(1 << 20)).unwrap();
        log.append(&[&[1; 100], &[2; 100], &[3; 100]]).unwrap();
        let mut reader = log.reader(0);
        let mut out = Vec::new();
        assert_eq!(reader.read(10, 10, &mut out).unwrap(), 1);
        assert_eq!(reader.read(10, 250, &mut out).unwrap(), 2);
        assert_eq!(reader.read(1, 1000, &mut out).unwrap(), 0);
        assert_eq!(seqs(&out), [0, 1, 2]);
    }
}
