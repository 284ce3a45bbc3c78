//! Per-rule timing on a fixed set of typical log fields (development aid):
//! `cargo run --release -p pii-rules --example bench_rules`.
use pii_rules::{FieldContext, Rule, RuleSet, Scanner};
use std::time::Instant;

fn main() {
    let fields: Vec<&str> = vec![
        "GET /api/v1/orders?page=2&per_page=50 returned 200 in 35ms",
        "cache miss for key product:8812, fetching from primary db",
        "INFO",
        "checkout-api-7d9f8b6c5-x2x9z",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "worker 12 finished batch 20240115-0042 (1523 rows, 2.3 MB)",
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36",
        "retrying upstream call after 250 ms (attempt 2 of 5)",
        "2024-01-15T10:30:00.123Z",
        "feature flag new_checkout enabled for tenant acme-corp",
        "/var/log/app/2024/01/15/app.log",
        "Connection reset by peer while reading response header",
        "v2.16.0-rc1+build.42",
        "scheduled job cleanup-sessions completed; removed 4211 rows",
        "1500",
        "Der Auftrag wurde erfolgreich verarbeitet – Status: abgeschlossen",
        "password reset requested for john.doe@example.com from web",
        "Accepted connection from 203.0.113.7:51234 for user 8812",
    ];
    let bytes: usize = fields.iter().map(|f| f.len()).sum::<usize>() * 20000;
    let mut out = Vec::with_capacity(64);
    let mut sets: Vec<(String, RuleSet)> =
        Rule::ALL.iter().map(|r| (r.id().to_string(), RuleSet::empty().with(*r))).collect();
    sets.push(("all".into(), RuleSet::all()));
    for (name, set) in sets {
        let s = Scanner::new(set);
        let t = Instant::now();
        let mut n = 0;
        for _ in 0..20000 {
            for f in &fields {
                out.clear();
                s.scan(FieldContext::value("metadata.request.message"), f, &mut out);
                n += out.len();
            }
        }
        let dt = t.elapsed().as_secs_f64();
        println!("{name:>15}: {:>7.0} MB/s ({n})", bytes as f64 / 1e6 / dt);
    }
}
