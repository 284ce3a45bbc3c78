//! Per-field timing (development aid).
use pii_rules::{FieldContext, Scanner};
use std::time::Instant;

fn main() {
    let fields: &[(&str, &str)] = &[
        (
            "message",
            "GET /api/v1/orders?page=2&per_page=50 returned 200 in 35ms",
        ),
        (
            "message",
            "cache miss for key product:8812, fetching from primary db",
        ),
        ("level", "INFO"),
        ("service", "checkout-api-7d9f8b6c5-x2x9z"),
        ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        (
            "message",
            "worker 12 finished batch 20240115-0042 (1523 rows, 2.3 MB)",
        ),
        (
            "user_agent",
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36",
        ),
        (
            "message",
            "retrying upstream call after 250 ms (attempt 2 of 5)",
        ),
        ("timestamp", "2024-01-15T10:30:00.123Z"),
        (
            "message",
            "feature flag new_checkout enabled for tenant acme-corp",
        ),
        ("path", "/var/log/app/2024/01/15/app.log"),
        (
            "message",
            "Connection reset by peer while reading response header",
        ),
        ("version", "v2.16.0-rc1+build.42"),
        (
            "message",
            "scheduled job cleanup-sessions completed; removed 4211 rows",
        ),
        ("duration_ms", "1500"),
        (
            "message",
            "Der Auftrag wurde erfolgreich verarbeitet – Status: abgeschlossen",
        ),
        (
            "message",
            "password reset requested for john.doe@example.com from web",
        ),
        (
            "message",
            "Accepted connection from 203.0.113.7:51234 for user 8812",
        ),
        (
            "message",
            "customer phone +1 (415) 555-2671 updated by support agent",
        ),
        (
            "message",
            "payment declined for card 4111 1111 1111 1111 (insufficient)",
        ),
        (
            "message",
            "Authorization: Bearer abc123def456ghi789 rejected: expired",
        ),
        (
            "message",
            "connecting to postgres://app:s3cr3t@db:5432/orders (pool 4)",
        ),
        (
            "message",
            "email=alice%40example.com&plan=pro&ref=newsletter",
        ),
        (
            "message",
            "write to john [at] example [dot] com for access requests",
        ),
    ];
    let s = Scanner::default();
    let mut out = Vec::with_capacity(64);
    for (p, f) in fields {
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            out.clear();
            s.scan(FieldContext::value(p), std::hint::black_box(f), &mut out);
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        println!("{ns:>7.0} ns {:>5.0} MB/s  {f}", f.len() as f64 / ns * 1e3);
    }
}
