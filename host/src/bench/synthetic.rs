//! Deterministic synthetic events (~600 bytes of JSON each, about a third
//! carrying PII) for benchmarks.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::event::{Event, Record};

/// A small deterministic generator (xorshift), so every run sees the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const MESSAGES: &[&str] = &[
    "user signed in from web console after password check",
    "request served for tenant dashboard with cached projections",
    "payment failed for card 4111 1111 1111 1111, customer notified",
    "contact jane.doe@example.com about the renewal of plan enterprise",
    "callback to +49 151 23456789 scheduled by support agent",
    "connection to postgres://app:s3cr3t@db.internal:5432/main refused",
    "build 2.16.0-rc1 deployed to pod api-7d9f8b6c5-x2x9z in 1500ms",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7 sampled",
];

/// `n` events, the same for the same `n`.
pub fn events(n: usize) -> Vec<Event> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let base: DateTime<Utc> = DateTime::from_timestamp(1_763_700_000, 0).unwrap();
    (0..n)
        .map(|i| {
            let pii = rng.next().is_multiple_of(3);
            let metadata = json!({
                "full_method": rng.pick(&["/zitadel.user.v2.UserService/GetUser", "/zitadel.session.v2.SessionService/CreateSession", "/grpc.health.v1.Health/Check"]),
                "status_code": rng.pick(&["OK", "NOT_FOUND", "UNAVAILABLE"]),
                "duration_ms": rng.next() % 900,
                "client_ip": if pii { "203.0.113.57".to_string() } else { format!("pod-{}", rng.next() % 100) },
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
                "message": rng.pick(MESSAGES),
                "request_id": format!("{:016x}{:016x}", rng.next(), rng.next()),
                "headers": {
                    "x-request-id": format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", rng.next() as u32, rng.next() as u16, rng.next() % 4096, rng.next() % 4096, rng.next() % (1 << 48)),
                    "accept-language": "en-US,en;q=0.9,de;q=0.8",
                },
                "build": {"version": "v4.2.1", "commit": format!("{:040x}", u128::from(rng.next()) << 64 | u128::from(rng.next()))},
            });
            let user = if pii { format!("user{}@example.com", i % 997) } else { format!("{:x}", rng.next()) };
            Event {
                org_id: format!("org-{}", rng.next() % 50),
                user_id: user,
                device_id: format!("dev-{:x}", rng.next() % 100_000),
                session_id: format!("sess-{:x}", rng.next()),
                event_type: rng.pick(&["grpc_request", "login", "page_view"]).to_string(),
                source: rng.pick(&["grpc_interceptor", "sdk"]).to_string(),
                created_at: base + chrono::Duration::milliseconds(i as i64 * 37),
                metadata: metadata.as_object().cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// [`events`] as records with ids `bench:<n>`.
pub fn records(n: usize) -> Vec<Record> {
    events(n).into_iter().enumerate().map(|(i, event)| Record { id: format!("bench:{i}"), event }).collect()
}
