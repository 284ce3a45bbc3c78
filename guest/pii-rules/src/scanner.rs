//! The [`Scanner`]: runs the pipeline for one field —
//! 1. key-aware secrets (the value of a `password`/`token`/... key is one
//!    `secret-value` match; an `authorization` value is a `bearer-token` or
//!    `jwt` match after its scheme word),
//! 2. the raw scan (every enabled rule on the original bytes),
//! 3. the normalised scan (only when the text has an obfuscation trigger),
//!    mapped back onto the original bytes,
//! 4. the merge (sort, resolve overlaps by length then rule priority, snap to
//!    char boundaries).

use crate::bytes::{Summary, starts_ic};
use crate::keys::{Hints, KeyKind, path_info};
use crate::normalize::{self, Normalized};
use crate::rule::{Rule, RuleSet};
use crate::{FieldContext, Match, rules};
use core::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Per-scan configuration handed to every rule scanner.
pub(crate) struct Cx {
    /// Enabled rules.
    pub rules: RuleSet,
    /// Hints from the field path.
    pub hints: Hints,
    /// Prefilter summary of the bytes being scanned.
    pub sum: Summary,
}

impl Cx {
    /// Whether `r` is enabled.
    #[inline]
    pub fn on(&self, r: Rule) -> bool {
        self.rules.contains(r)
    }
}

/// A configured PII scanner. Cheap to create, immutable, `Send + Sync`.
#[derive(Clone, Copy, Debug)]
pub struct Scanner {
    rules: RuleSet,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new(RuleSet::all())
    }
}

impl Scanner {
    /// A scanner running the rules in `rules`.
    pub fn new(rules: RuleSet) -> Scanner {
        Scanner { rules }
    }

    /// The enabled rules.
    pub fn rules(&self) -> RuleSet {
        self.rules
    }

    /// Appends the matches in `text` to `out`: sorted by start, non-overlapping, on char boundaries.
    /// Existing elements of `out` are left alone; nothing is allocated when
    /// nothing is found (and `out` has spare capacity for what is found).
    pub fn scan(&self, ctx: FieldContext<'_>, text: &str, out: &mut Vec<Match>) {
        let base = out.len();
        if text.is_empty() || self.rules.is_empty() {
            return;
        }
        let (kind, hints) = if ctx.is_key { (None, Hints::default()) } else { cached_path_info(ctx.path) };
        // Key-based secrets apply to nested fields (`metadata.password`);
        // a top-level name such as the event's `sessionId` is an identifier.
        let nested = ctx.path.contains(['.', '[']);
        if let Some(kind) = kind.filter(|_| nested && self.rules.contains(Rule::SecretValue)) {
            if let Some(m) = whole_value(kind, text, self.rules) {
                out.push(m);
            }
            return;
        }
        let b = text.as_bytes();
        if hints.trace && is_trace_id(b) {
            // W3C trace (32) and span (16) ids are random hex: all-digit ones
            // pass Luhn or look like account numbers by chance.
            return;
        }
        let sum = Summary::of(b);
        let cx = Cx { rules: self.rules, hints, sum };
        rules::scan_all(b, &cx, out);
        if normalize::needed(b, &sum) {
            // Reuse a per-thread scratch view; fall back to a fresh one if it
            // is somehow busy.
            SCRATCH.with(|cell| match cell.try_borrow_mut() {
                Ok(mut view) => scan_view(&mut view, b, &sum, &cx, out),
                Err(_) => scan_view(&mut Normalized::new(), b, &sum, &cx, out),
            });
        }
        merge(text, out, base);
    }

    /// Convenience: scan and return the matches in a new vector.
    pub fn find(&self, ctx: FieldContext<'_>, text: &str) -> Vec<Match> {
        let mut v = Vec::new();
        self.scan(ctx, text, &mut v);
        v
    }
}

/// A W3C trace-context id as text: 16 or 32 hex digits, optionally `0x`.
fn is_trace_id(b: &[u8]) -> bool {
    let digits = b.strip_prefix(b"0x").unwrap_or(b);
    matches!(digits.len(), 16 | 32) && digits.iter().all(u8::is_ascii_hexdigit)
}

std::thread_local! {
    static SCRATCH: RefCell<Normalized> = const { RefCell::new(Normalized::new()) };
    static PATHS: RefCell<PathCache> = RefCell::new(PathCache::default());
}

/// Most paths remembered per thread; the cache starts over when full.
const PATH_CACHE_ENTRIES: usize = 4096;
/// Longest path remembered (longer ones are classified every time).
const PATH_CACHE_KEY_BYTES: usize = 128;

/// What [`path_info`] said about recent paths: telemetry repeats a small
/// set of field names, and classifying one costs more than scanning a
/// short value, so each is classified once per thread.
#[derive(Default)]
struct PathCache {
    map: HashMap<Box<str>, (Option<KeyKind>, Hints), BuildHasherDefault<Fnv>>,
}

/// FNV-1a: a fast hash for short keys (no HashDoS concern: the cache is
/// bounded and per thread).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// [`path_info`] through the per-thread cache.
fn cached_path_info(path: &str) -> (Option<KeyKind>, Hints) {
    if path.len() > PATH_CACHE_KEY_BYTES {
        return path_info(path);
    }
    PATHS.with(|cell| {
        let Ok(mut cache) = cell.try_borrow_mut() else { return path_info(path) };
        if let Some(info) = cache.map.get(path) {
            return *info;
        }
        let info = path_info(path);
        if cache.map.len() >= PATH_CACHE_ENTRIES {
            cache.map.clear();
        }
        cache.map.insert(path.into(), info);
        info
    })
}

/// Build the normalised view of `b` into `view`, scan it and append the
/// matches mapped back onto `b`.
fn scan_view(view: &mut Normalized, b: &[u8], sum: &Summary, cx: &Cx, out: &mut Vec<Match>) {
    view.rebuild(b, sum);
    let k = out.len();
    let vcx = Cx { sum: Summary::of(&view.bytes), rules: cx.rules, hints: cx.hints };
    rules::scan_all(&view.bytes, &vcx, out);
    view.map_back(&mut out[k..]);
}

/// The match for the whole value of a secret-ish key, if any.
fn whole_value(kind: KeyKind, text: &str, rules: RuleSet) -> Option<Match> {
    let b = text.as_bytes();
    let mut start = 0;
    let mut end = b.len();
    while start < end && b[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && b[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    let v = &b[start..end];
    const EMPTY: &[&[u8]] = &[b"", b"null", b"true", b"false", b"none", b"undefined"];
    if EMPTY.iter().any(|e| v.eq_ignore_ascii_case(e)) {
        return None;
    }
    if kind == KeyKind::Authorization {
        // Keep the scheme word: `Bearer <TOKEN>`.
        const SCHEMES: &[&[u8]] =
            &[b"bearer ", b"basic ", b"token ", b"digest ", b"negotiate ", b"ntlm ", b"apikey ", b"aws4-hmac-sha256 "];
        if let Some(s) = SCHEMES.iter().find(|s| starts_ic(b, start, s)) {
            let mut p = start + s.len();
            while p < end && b[p] == b' ' {
                p += 1;
            }
            if p < end {
                start = p;
            }
        }
        // An auth header value is a token: report it as such.
        let rule = if rules.contains(Rule::Jwt) && rules::jwt_at(b, start) == Some(end) {
            Rule::Jwt
        } else if rules.contains(Rule::BearerToken) {
            Rule::BearerToken
        } else {
            Rule::SecretValue
        };
        return Some(Match { start, end, rule });
    }
    Some(Match { start, end, rule: Rule::SecretValue })
}

/// Sort, de-overlap and sanitise `out[base..]` in place.
pub(crate) fn merge(text: &str, out: &mut Vec<Match>, base: usize) {
    let len = text.len();
    // Sanitise: clamp, snap to char boundaries, drop empties.
    let mut w = base;
    for r in base..out.len() {
        let mut m = out[r];
        m.end = m.end.min(len);
        if m.start >= m.end {
            continue;
        }
        while !text.is_char_boundary(m.start) {
            m.start -= 1;
        }
        while !text.is_char_boundary(m.end) {
            m.end += 1;
        }
        out[w] = m;
        w += 1;
    }
    out.truncate(w);
    if out.len() - base <= 1 {
        return;
    }
    out[base..].sort_unstable_by(|a, b| {
        a.start.cmp(&b.start).then(b.end.cmp(&a.end)).then(b.rule.priority().cmp(&a.rule.priority()))
    });
    let mut w = base + 1;
    for r in base + 1..out.len() {
        let m = out[r];
        let last = out[w - 1];
        if m.start < last.end {
            let better = m.len() > last.len() || (m.len() == last.len() && m.rule.priority() > last.rule.priority());
            if better {
                out[w - 1] = m;
            }
        } else {
            out[w] = m;
            w += 1;
        }
    }
    out.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(start: usize, end: usize, rule: Rule) -> Match {
        Match { start, end, rule }
    }

    #[test]
    fn merge_prefers_longer_then_priority() {
        let text = "0123456789abcdefghij";
        let mut v = vec![
            m(0, 1, Rule::Email),
            m(5, 10, Rule::Phone),
            m(2, 8, Rule::Ipv4),
            m(12, 15, Rule::Phone),
            m(12, 15, Rule::Jwt),
        ];
        merge(text, &mut v, 1);
        assert_eq!(v, vec![m(0, 1, Rule::Email), m(2, 8, Rule::Ipv4), m(12, 15, Rule::Jwt)]);
    }

    #[test]
    fn whole_value_for_secret_keys() {
        let s = Scanner::default();
        let v = s.find(FieldContext::value("user.password"), "hunter2");
        assert_eq!(v, vec![m(0, 7, Rule::SecretValue)]);
        let v = s.find(FieldContext::value("metadata.headers.authorization"), "Bearer abc.def");
        assert_eq!(v, vec![m(7, 14, Rule::BearerToken)]);
        assert!(s.find(FieldContext::value("a.password_reset_required"), "yes").is_empty());
        assert!(s.find(FieldContext::value("a.password"), "null").is_empty());
        assert!(
            s.find(FieldContext::value("sessionId"), "ses-acme-1-001").is_empty(),
            "top-level event ids are not secrets"
        );
        assert_eq!(s.find(FieldContext::value("metadata.session_id"), "ses-acme-1-001").len(), 1);
        // Keys only get content rules.
        assert!(s.find(FieldContext::key("a.password"), "hunter2").is_empty());
    }

    #[test]
    fn cached_path_classification_matches_a_fresh_one() {
        let s = Scanner::default();
        // Past the cache's size it starts over; answers never change.
        for i in 0..PATH_CACHE_ENTRIES + 10 {
            let path = format!("metadata.k{i}");
            assert!(s.find(FieldContext::value(&path), "hunter2").is_empty());
            assert_eq!(cached_path_info(&path).0, path_info(&path).0);
        }
        for _ in 0..2 {
            assert_eq!(s.find(FieldContext::value("metadata.password"), "hunter2"), vec![m(0, 7, Rule::SecretValue)]);
            assert!(s.find(FieldContext::value("metadata.note"), "hunter2").is_empty());
        }
        let long = format!("metadata.{}.password", "x".repeat(PATH_CACHE_KEY_BYTES));
        assert_eq!(s.find(FieldContext::value(&long), "hunter2").len(), 1, "long paths are classified too");
    }

    #[test]
    fn trace_and_span_ids_are_not_cards() {
        let s = Scanner::default();
        // All-digit hex ids that pass Luhn, as random span ids do by chance.
        for path in ["metadata.span_id", "metadata.spanId", "metadata.parent_span_id", "a.trace_id", "a.traceId"] {
            assert!(s.find(FieldContext::value(path), "4111111111111111").is_empty(), "{path}");
            assert!(s.find(FieldContext::value(path), "0x4111111111111111").is_empty(), "{path}");
            assert!(s.find(FieldContext::value(path), "41111111111111114111111111111111").is_empty(), "{path}");
        }
        // The same digits elsewhere, or more than an id under the id key, are still cards.
        assert_eq!(s.find(FieldContext::value("metadata.note"), "4111111111111111").len(), 1);
        assert_eq!(s.find(FieldContext::value("metadata.span_id"), "card 4111111111111111").len(), 1);
    }
}
