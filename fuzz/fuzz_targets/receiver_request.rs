//! The receiver (`wasmtel receive`): any request body decoded as
//! `ReportBaseInformation` or `ReportResourceCounts` and checked as the
//! service checks it; what passes must be within the configured count limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use wasmtel::proto::zitadel as pb;
use wasmtel::receiver::service::{validate_base, validate_counts};

const MAX_COUNTS: usize = 64;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = pb::ReportBaseInformationRequest::decode(data) {
        let _ = validate_base(&request);
    }
    if let Ok(request) = pb::ReportResourceCountsRequest::decode(data) {
        if let Ok(counts) = validate_counts(&request, MAX_COUNTS) {
            assert!(counts.len() <= MAX_COUNTS, "more counts passed than the limit");
            assert_eq!(counts.len(), request.resource_counts.len(), "counts were dropped silently");
        }
    }
});
