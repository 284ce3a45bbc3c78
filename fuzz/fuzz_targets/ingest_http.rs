//! Ingest over HTTP: any body of `POST /v1/events` is read and checked as
//! `serve` does; whatever passes must be storable and come back unchanged.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use wasmtel::event::limits::EventLimits;
use wasmtel::sources::ingest::grpc::check_events;
use wasmtel::sources::ingest::http::events_from_body;

fuzz_target!(|data: &[u8]| {
    let limits = EventLimits::default();
    let Ok(events) = events_from_body(data) else { return };
    if let Ok(events) = check_events(events, "events", None, &limits, common::now()) {
        common::accepted_events_are_durable(&events, &limits);
    }
});
