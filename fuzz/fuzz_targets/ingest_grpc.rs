//! Ingest over gRPC: any request body is decoded as the protobuf messages of
//! `EmitTelemetryEvent` and `BatchEmitTelemetry` and checked as `serve` checks
//! them; whatever passes must be storable in the log and come back unchanged.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use wasmtel::event::limits::EventLimits;
use wasmtel::proto::ingest as pb;
use wasmtel::sources::ingest::grpc::check_events;

fuzz_target!(|data: &[u8]| {
    let limits = EventLimits::default();
    let org = data.first().filter(|b| **b & 1 == 1).map(|_| "org-of-token");
    if let Ok(batch) = pb::BatchEmitTelemetryRequest::decode(data) {
        if let Ok(events) = check_events(batch.events, "events", org, &limits, common::now()) {
            let records = common::accepted_events_are_durable(&events, &limits);
            if let Some(org) = org {
                assert!(records.iter().all(|r| r.event.org_id == org), "an event escaped its token's organization");
            }
        }
    }
    if let Ok(single) = pb::EmitTelemetryEventRequest::decode(data) {
        if let Ok(events) = check_events(single.event.into_iter().collect(), "event", None, &limits, common::now()) {
            common::accepted_events_are_durable(&events, &limits);
        }
    }
});
