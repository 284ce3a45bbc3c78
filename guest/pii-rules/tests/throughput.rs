//! Rough native throughput: scans ~10 MB of synthetic ~600-byte events
//! (about ten ~60-byte fields each, ~10% of fields carrying PII) and prints
//! MB/s. Never asserts on time. For a meaningful number run
//! `cargo test -p pii-rules --release --test throughput -- --nocapture`.

use pii_rules::{FieldContext, Match, Scanner};
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const CLEAN: &[(&str, &str)] = &[
    ("message", "GET /api/v1/orders?page=2&per_page=50 returned 200 in 35ms"),
    ("message", "cache miss for key product:8812, fetching from primary db"),
    ("level", "INFO"),
    ("service", "checkout-api-7d9f8b6c5-x2x9z"),
    ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ("message", "worker 12 finished batch 20240115-0042 (1523 rows, 2.3 MB)"),
    ("user_agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36"),
    ("message", "retrying upstream call after 250 ms (attempt 2 of 5)"),
    ("timestamp", "2024-01-15T10:30:00.123Z"),
    ("message", "feature flag new_checkout enabled for tenant acme-corp"),
    ("path", "/var/log/app/2024/01/15/app.log"),
    ("message", "Connection reset by peer while reading response header"),
    ("version", "v2.16.0-rc1+build.42"),
    ("message", "scheduled job cleanup-sessions completed; removed 4211 rows"),
    ("duration_ms", "1500"),
    ("message", "Der Auftrag wurde erfolgreich verarbeitet – Status: abgeschlossen"),
];

const PII: &[(&str, &str)] = &[
    ("message", "password reset requested for john.doe@example.com from web"),
    ("message", "Accepted connection from 203.0.113.7:51234 for user 8812"),
    ("message", "customer phone +1 (415) 555-2671 updated by support agent"),
    ("message", "payment declined for card 4111 1111 1111 1111 (insufficient)"),
    ("message", "Authorization: Bearer abc123def456ghi789 rejected: expired"),
    ("message", "connecting to postgres://app:s3cr3t@db:5432/orders (pool 4)"),
    ("message", "email=alice%40example.com&plan=pro&ref=newsletter"),
    ("message", "write to john [at] example [dot] com for access requests"),
];

fn events(bytes: usize) -> Vec<Vec<(&'static str, &'static str)>> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut out = Vec::new();
    let mut total = 0;
    while total < bytes {
        let mut ev = Vec::new();
        let mut size = 0;
        while size < 600 {
            let f = if rng.below(10) == 0 { PII[rng.below(PII.len())] } else { CLEAN[rng.below(CLEAN.len())] };
            size += f.1.len();
            ev.push(f);
        }
        total += size;
        out.push(ev);
    }
    out
}

#[test]
fn throughput() {
    let target = if cfg!(debug_assertions) { 2 << 20 } else { 10 << 20 };
    let evs = events(target);
    let bytes: usize = evs.iter().flatten().map(|f| f.1.len()).sum();
    let fields: usize = evs.iter().map(Vec::len).sum();
    let scanner = Scanner::default();
    let mut out: Vec<Match> = Vec::with_capacity(64);
    let mut found = 0;
    let mut best = f64::MAX;
    for _ in 0..3 {
        found = 0;
        let t = Instant::now();
        for ev in &evs {
            for (path, text) in ev {
                out.clear();
                scanner.scan(FieldContext::value(path), text, &mut out);
                found += out.len();
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "scanned {:.1} MB in {} events / {} fields: {:.1} ms, {:.0} MB/s, {:.0} ns/field, {} matches{}",
        bytes as f64 / 1e6,
        evs.len(),
        fields,
        best * 1e3,
        bytes as f64 / 1e6 / best,
        best * 1e9 / fields as f64,
        found,
        if cfg!(debug_assertions) { " (debug build)" } else { "" },
    );
    assert!(found > 0);
}
