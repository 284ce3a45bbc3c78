//! Record framing and segment files: this module owns the on-disk record format
//! (encoding and decoding one CRC-framed record), segment file naming, the
//! `Scanner` that walks a segment file record by record and classifies bytes
//! that are not a valid record as a corrupt region (a valid record follows) or
//! a torn tail (nothing valid follows), and tail repair at open.
//!
//! Record layout, all integers little endian:
//! `magic u32 | len u32 | seq u64 | version u8 | crc u32 | payload [len]`,
//! where the crc32c covers `len`, `seq`, `version` and the payload.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Magic number at the start of every record: the bytes `WLT1`.
pub const MAGIC: u32 = 0x3154_4C57;
/// Record format version written by this module.
pub const VERSION: u8 = 1;
/// Size of a record header in bytes.
pub const HEADER_LEN: usize = 21;
/// Largest payload a record may carry: 64 MiB.
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// Most bytes of a corrupt region copied into a report: 64 KiB.
pub const CORRUPT_BYTES_CAP: usize = 64 << 10;
/// Bytes read from a segment file at a time.
const CHUNK: usize = 1 << 20;

/// Why the bytes at some offset are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The header or payload runs past the end of the readable bytes.
    #[error("truncated record: {need} bytes needed, {have} available")]
    Truncated {
        /// Bytes the record needs.
        need: u64,
        /// Bytes available.
        have: u64,
    },
    /// The first four bytes are not [`MAGIC`].
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    /// The length field exceeds [`MAX_RECORD_BYTES`].
    #[error("payload length {0} exceeds the maximum of {MAX_RECORD_BYTES} bytes")]
    TooLong(u32),
    /// The version byte is not [`VERSION`].
    #[error("unknown format version {0}")]
    BadVersion(u8),
    /// The stored crc does not match the header and payload.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc {
        /// Crc stored in the header.
        stored: u32,
        /// Crc computed over the bytes read.
        computed: u32,
    },
}

/// A decoded record header (its crc not yet checked against the payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length in bytes.
    pub len: u32,
    /// Sequence number of the record.
    pub seq: u64,
    /// Stored crc32c.
    pub crc: u32,
}

/// Appends the frame of one record to `out`. The caller keeps `payload`
/// within [`MAX_RECORD_BYTES`] (the log refuses larger appends before encoding).
pub fn encode_record(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_RECORD_BYTES);
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    header[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[16] = VERSION;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[4..17]), payload);
    header[17..21].copy_from_slice(&crc.to_le_bytes());
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}

/// Decodes and checks a header (magic, length bound, version); the crc is
/// checked by [`check_crc`] once the payload is available.
pub fn decode_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return Err(DecodeError::Truncated { need: HEADER_LEN as u64, have: bytes.len() as u64 });
    };
    let word = |r: std::ops::Range<usize>| u32::from_le_bytes(h[r].try_into().unwrap_or_default());
    let magic = word(0..4);
    if magic != MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    let len = word(4..8);
    if len as usize > MAX_RECORD_BYTES {
        return Err(DecodeError::TooLong(len));
    }
    if h[16] != VERSION {
        return Err(DecodeError::BadVersion(h[16]));
    }
    let seq = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
    Ok(Header { len, seq, crc: word(17..21) })
}

/// Checks the crc of a record given its header bytes and payload.
pub fn check_crc(header_bytes: &[u8], stored: u32, payload: &[u8]) -> Result<(), DecodeError> {
    let Some(covered) = header_bytes.get(4..17) else {
        return Err(DecodeError::Truncated { need: HEADER_LEN as u64, have: header_bytes.len() as u64 });
    };
    let computed = crc32c::crc32c_append(crc32c::crc32c(covered), payload);
    if computed == stored { Ok(()) } else { Err(DecodeError::BadCrc { stored, computed }) }
}

/// Decodes the record at the start of `bytes`: returns its seq, its payload
/// and the length of its frame.
pub fn decode_record(bytes: &[u8]) -> Result<(u64, &[u8], usize), DecodeError> {
    let h = decode_header(bytes)?;
    let end = HEADER_LEN + h.len as usize;
    let Some(payload) = bytes.get(HEADER_LEN..end) else {
        return Err(DecodeError::Truncated { need: end as u64, have: bytes.len() as u64 });
    };
    check_crc(bytes, h.crc, payload)?;
    Ok((h.seq, payload, end))
}

/// File name of the segment whose first record has seq `base`.
pub fn segment_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// The base seq of a segment file name, if `name` is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One step of a [`Scanner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// A valid record; its payload is [`Scanner::payload`] until the next call.
    Record { seq: u64, offset: u64, len: u64 },
    /// Bytes that are not a valid record. `next_seq` is the seq of the valid
    /// record that follows (a corrupt region), `None` when nothing valid
    /// follows before the limit (a torn tail).
    Invalid { offset: u64, len: u64, reason: DecodeError, next_seq: Option<u64> },
    /// The scan reached the limit.
    End,
}

/// Walks the records of one segment file with positioned reads through a
/// buffer of at least 1 MiB. Only bytes below the `limit` passed to each call
/// are ever read or buffered, so bytes still being written are never seen.
pub(crate) struct Scanner {
    file: File,
    buf: Vec<u8>,
    buf_start: u64,
    offset: u64,
    payload: (u64, usize),
}

impl Scanner {
    /// Starts scanning `file` at byte `offset`.
    pub(crate) fn new(file: File, offset: u64) -> Scanner {
        Scanner { file, buf: Vec::new(), buf_start: 0, offset, payload: (0, 0) }
    }

    /// Current length of the file.
    pub(crate) fn file_len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Moves the scan to `offset` (used to give back a record not yet consumed).
    pub(crate) fn set_offset(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// Payload of the record last returned by [`Scanner::next`].
    pub(crate) fn payload(&self) -> &[u8] {
        let start = (self.payload.0 - self.buf_start) as usize;
        &self.buf[start..start + self.payload.1]
    }

    /// Decodes the next record below `limit`, or classifies the invalid bytes
    /// at the current offset.
    pub(crate) fn next(&mut self, limit: u64) -> io::Result<Scanned> {
        let offset = self.offset;
        if offset >= limit {
            return Ok(Scanned::End);
        }
        match self.decode_at(offset, limit)? {
            Ok(h) => {
                let len = HEADER_LEN as u64 + u64::from(h.len);
                self.payload = (offset + HEADER_LEN as u64, h.len as usize);
                self.offset = offset + len;
                Ok(Scanned::Record { seq: h.seq, offset, len })
            }
            Err(reason) => {
                let (end, next_seq) = match self.find_valid(offset + 1, limit)? {
                    Some((at, seq)) => (at, Some(seq)),
                    None => (limit, None),
                };
                self.offset = end;
                Ok(Scanned::Invalid { offset, len: end - offset, reason, next_seq })
            }
        }
    }

    /// Copies the first bytes (at most [`CORRUPT_BYTES_CAP`]) of a region.
    pub(crate) fn region_bytes(&mut self, offset: u64, len: u64, limit: u64) -> io::Result<Vec<u8>> {
        let n = len.min(CORRUPT_BYTES_CAP as u64) as usize;
        if self.fill(offset, n, limit)? { Ok(self.slice(offset, n).to_vec()) } else { Ok(Vec::new()) }
    }

    /// Validates the record at `offset` fully (header, bounds and crc).
    fn decode_at(&mut self, offset: u64, limit: u64) -> io::Result<Result<Header, DecodeError>> {
        let have = limit.saturating_sub(offset);
        if !self.fill(offset, HEADER_LEN, limit)? {
            return Ok(Err(DecodeError::Truncated { need: HEADER_LEN as u64, have }));
        }
        let h = match decode_header(self.slice(offset, HEADER_LEN)) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e)),
        };
        let total = HEADER_LEN + h.len as usize;
        if !self.fill(offset, total, limit)? {
            return Ok(Err(DecodeError::Truncated { need: total as u64, have }));
        }
        let frame = self.slice(offset, total);
        Ok(check_crc(frame, h.crc, &frame[HEADER_LEN..]).map(|()| h))
    }

    /// Searches forward from `from` for the first offset holding a fully
    /// valid record below `limit`; returns it with the record's seq.
    fn find_valid(&mut self, mut from: u64, limit: u64) -> io::Result<Option<(u64, u64)>> {
        let magic = MAGIC.to_le_bytes();
        while from + HEADER_LEN as u64 <= limit {
            let n = (limit - from).min(CHUNK as u64) as usize;
            if !self.fill(from, n, limit)? {
                return Ok(None);
            }
            match self.slice(from, n).windows(4).position(|w| w == magic) {
                Some(i) => {
                    let at = from + i as u64;
                    if let Ok(h) = self.decode_at(at, limit)? {
                        return Ok(Some((at, h.seq)));
                    }
                    from = at + 1;
                }
                None => from += (n - 3) as u64,
            }
        }
        Ok(None)
    }

    fn slice(&self, offset: u64, n: usize) -> &[u8] {
        let start = (offset - self.buf_start) as usize;
        &self.buf[start..start + n]
    }

    /// Makes sure bytes `[offset, offset + n)` are buffered; false when they
    /// reach past `limit` or past the end of the file.
    fn fill(&mut self, offset: u64, n: usize, limit: u64) -> io::Result<bool> {
        let end = offset + n as u64;
        if end > limit {
            return Ok(false);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if offset >= self.buf_start && end <= buf_end {
            return Ok(true);
        }
        if offset >= self.buf_start && offset <= buf_end {
            self.buf.drain(..(offset - self.buf_start) as usize);
        } else {
            self.buf.clear();
        }
        if self.buf.capacity() > 4 * CHUNK && n <= CHUNK {
            self.buf.shrink_to(CHUNK);
        }
        self.buf_start = offset;
        let want = (limit.min(end.max(offset + CHUNK as u64)) - offset) as usize;
        let mut have = self.buf.len();
        self.buf.resize(want, 0);
        while have < n {
            match self.file.read_at(&mut self.buf[have..], offset + have as u64) {
                Ok(0) => break,
                Ok(got) => have += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(have);
        Ok(have >= n)
    }
}

/// What a full scan of a segment file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TailScan {
    /// Valid records found.
    pub(crate) records: u64,
    /// One past the highest seq found.
    pub(crate) end_seq: Option<u64>,
    /// Corrupt regions found (a valid record follows each).
    pub(crate) corrupt_regions: u64,
    /// Offset and reason of a torn tail.
    pub(crate) torn: Option<(u64, DecodeError)>,
    /// Length of the file when scanned.
    pub(crate) file_len: u64,
}

/// Scans a whole segment file.
pub(crate) fn scan_segment(path: &Path) -> io::Result<TailScan> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut scanner = Scanner::new(file, 0);
    let mut out = TailScan { file_len, ..TailScan::default() };
    loop {
        match scanner.next(file_len)? {
            Scanned::Record { seq, .. } => {
                out.records += 1;
                out.end_seq = Some(out.end_seq.unwrap_or(0).max(seq + 1));
            }
            Scanned::Invalid { next_seq: Some(_), .. } => out.corrupt_regions += 1,
            Scanned::Invalid { offset, reason, next_seq: None, .. } => {
                out.torn = Some((offset, reason));
                return Ok(out);
            }
            Scanned::End => return Ok(out),
        }
    }
}

/// Cuts a segment file at `offset` (dropping a torn tail) and syncs it.
pub(crate) fn cut_tail(path: &Path, offset: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(offset)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn frames(payloads: &[&[u8]], first_seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            encode_record(first_seq + i as u64, p, &mut out);
        }
        out
    }

    fn scan_all(bytes: &[u8]) -> Vec<Scanned> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let mut s = Scanner::new(f, 0);
        let mut out = Vec::new();
        loop {
            match s.next(bytes.len() as u64).unwrap() {
                Scanned::End => return out,
                item => out.push(item),
            }
        }
    }

    #[test]
    fn framing_round_trip() {
        for (seq, payload) in [(0u64, &b""[..]), (7, b"hello"), (u64::MAX - 1, &[0xAB; 5000][..])] {
            let mut buf = Vec::new();
            encode_record(seq, payload, &mut buf);
            assert_eq!(buf.len(), HEADER_LEN + payload.len());
            assert_eq!(&buf[..4], b"WLT1");
            assert_eq!(decode_record(&buf).unwrap(), (seq, payload, buf.len()));
        }
    }

    #[test]
    fn decode_rejects_every_kind_of_damage() {
        let mut good = Vec::new();
        encode_record(3, b"payload", &mut good);
        let damaged = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            decode_record(&b).map(|(s, p, l)| (s, p.to_vec(), l))
        };
        assert!(matches!(damaged(0, 0), Err(DecodeError::BadMagic(_))));
        assert!(matches!(damaged(16, 2), Err(DecodeError::BadVersion(2))));
        assert!(matches!(damaged(9, 1), Err(DecodeError::BadCrc { .. })));
        assert!(matches!(damaged(HEADER_LEN + 2, b'X'), Err(DecodeError::BadCrc { .. })));
        assert!(matches!(damaged(7, 0x7F), Err(DecodeError::TooLong(_))));
        assert!(matches!(decode_record(&good[..good.len() - 1]), Err(DecodeError::Truncated { .. })));
        assert!(matches!(decode_record(&good[..10]), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
    }

    #[test]
    fn scanner_reports_corrupt_region_then_torn_tail() {
        let mut bytes = frames(&[b"a", b"bb"], 10);
        let bad_at = bytes.len() as u64;
        bytes.extend_from_slice(b"garbage!");
        let next_at = bytes.len() as u64;
        bytes.extend_from_slice(&frames(&[b"ccc"], 12));
        let tail_at = bytes.len() as u64;
        bytes.extend_from_slice(&frames(&[b"dddd"], 13)[..10]);
        let items = scan_all(&bytes);
        assert_eq!(items.len(), 5);
        assert!(matches!(items[1], Scanned::Record { seq: 11, .. }));
        match &items[2] {
            Scanned::Invalid { offset, len, reason: DecodeError::BadMagic(_), next_seq: Some(12) } => {
                assert_eq!((*offset, *len), (bad_at, next_at - bad_at));
            }
            other => panic!("expected a corrupt region, got {other:?}"),
        }
        assert!(matches!(items[3], Scanned::Record { seq: 12, .. }));
        match &items[4] {
            Scanned::Invalid { offset, len: 10, next_seq: None, .. } => assert_eq!(*offset, tail_at),
            other => panic!("expected a torn tail, got {other:?}"),
        }
    }

    #[test]
    fn magic_inside_garbage_does_not_fool_the_search() {
        let mut bytes = frames(&[b"one"], 0);
        let mut fake = frames(&[b"two"], 1);
        fake[HEADER_LEN] ^= 0xFF; // a header that looks right, crc wrong
        bytes.extend_from_slice(&fake);
        bytes.extend_from_slice(&frames(&[b"three"], 2));
        let items = scan_all(&bytes);
        assert!(matches!(items[1], Scanned::Invalid { next_seq: Some(2), .. }));
        assert!(matches!(items[2], Scanned::Record { seq: 2, .. }));
    }
}
