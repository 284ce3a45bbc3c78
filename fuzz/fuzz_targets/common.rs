//! Checks shared by the fuzz targets.
#![allow(dead_code)] // each target uses a part of it

use wasmtel::event::Record;
use wasmtel::event::codec::{Entry, RawEvent, decode, decode_raw_event, event_bytes};
use wasmtel::event::limits::EventLimits;

/// A fixed clock, so a crash reproduces from its input alone.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

/// What ingest accepted (as raw-log entries, metadata as sent) is an event
/// the event model accepts within the same limits, and its entry decodes
/// to itself.
pub fn accepted_events_are_durable(events: &[RawEvent], limits: &EventLimits) -> Vec<Record> {
    let mut records = Vec::with_capacity(events.len());
    for raw in events {
        let bytes = raw.to_bytes();
        assert_eq!(decode_raw_event(&bytes).expect("an accepted entry decodes").as_ref(), Some(raw));
        let Entry::Event { record, .. } = decode(&bytes).expect("an accepted entry decodes as an event") else {
            panic!("an event decoded as something else")
        };
        records.push(record);
    }
    accepted_records_are_durable(&records, limits);
    records
}

/// What ingest accepted must survive the log: it is within the limits it was
/// checked against, and its log encoding decodes to the same record.
pub fn accepted_records_are_durable(records: &[Record], limits: &EventLimits) {
    for record in records {
        limits.check(&record.event).expect("an accepted event is within the limits it was checked against");
        let bytes = event_bytes(record, 7);
        match decode(&bytes).expect("an accepted event's log encoding decodes") {
            Entry::Event { record: back, origin } => {
                assert_eq!(&back, record, "the log changed an accepted event");
                assert_eq!(origin, 7);
            }
            _ => panic!("an event decoded as something else"),
        }
        // Sinks write the JSON form; it must parse back as an event.
        let line = record.to_json_line();
        serde_json::from_str::<serde_json::Value>(&line).expect("an accepted event's JSON line parses");
    }
}
