//! The durable log's decoders: record frames as read back from a segment
//! file after a crash (any bytes: torn, corrupted, hostile), and entry
//! payloads (as a frame with a matching crc would hand them over). A decoded
//! entry must encode back to bytes that decode to the same entry, and a
//! framed payload must come back whole.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtel::event::codec::{Entry, decode, decode_raw_event, encode_event, line_bytes, report_bytes};
use wasmtel::log::segment::{HEADER_LEN, MAX_RECORD_BYTES, decode_header, decode_record, encode_record};

fuzz_target!(|data: &[u8]| {
    // Frames back to back, as the log's scanner walks a segment.
    let mut at = 0;
    while at < data.len() {
        match decode_record(&data[at..]) {
            Ok((_, payload, len)) => {
                assert!(len >= HEADER_LEN && len <= data.len() - at, "a frame length points outside the segment");
                assert_eq!(payload.len(), len - HEADER_LEN);
                at += len;
            }
            Err(_) => {
                if let Ok(h) = decode_header(&data[at..]) {
                    assert!(h.len as usize <= MAX_RECORD_BYTES, "a header passed with an oversized length");
                }
                break;
            }
        }
    }
    // A payload framed and read back is the same payload.
    let mut framed = Vec::new();
    encode_record(42, data, &mut framed);
    let (seq, payload, len) = decode_record(&framed).expect("a freshly framed record decodes");
    assert_eq!((seq, payload, len), (42, data, framed.len()));
    // Entries: decode, re-encode, decode again.
    // An event entry with its metadata left as text survives re-encoding.
    if let Ok(Some(raw)) = decode_raw_event(data) {
        let again = decode_raw_event(&raw.to_bytes()).expect("a re-encoded raw entry decodes");
        assert_eq!(again.as_ref(), Some(&raw), "a raw event entry changed when re-encoded");
    }
    if let Ok(entry) = decode(data) {
        let bytes = match &entry {
            Entry::Event { record, origin } => {
                let mut out = Vec::new();
                encode_event(record, *origin, &mut out);
                out
            }
            Entry::Report(report) => report_bytes(report),
            Entry::Line { id, text, origin, received } => line_bytes(id, text, *origin, *received),
        };
        let again = decode(&bytes).expect("a re-encoded entry decodes");
        assert_eq!(again, entry, "an entry changed on its way through the log");
    }
});
