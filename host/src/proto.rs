//! Generated protobuf and gRPC code (from `proto/`, compiled by
//! `host/build.rs` with protox and tonic-prost-build).

/// `zitadel.analytics.v2beta`: the TelemetryService wasmtel reports to and
/// serves (`wasmtel receive`).
#[allow(missing_docs, clippy::all)]
pub mod zitadel {
    tonic::include_proto!("zitadel.analytics.v2beta");
}

/// `logproto`: Loki's push request, sent by the Loki sink and decoded by the
/// Loki stand-in used in tests and benchmarks.
#[allow(missing_docs, clippy::all)]
pub mod logproto {
    tonic::include_proto!("logproto");
}

/// `wasmtel.ingest.v1`: the ingest service applications send events to.
#[allow(missing_docs, clippy::all)]
pub mod ingest {
    tonic::include_proto!("wasmtel.ingest.v1");
}

/// Encoded descriptors of every proto above, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
