//! # pii-rules
//!
//! Finds PII in short UTF-8 texts — one telemetry field at a time: a JSON
//! string value, a number's text, or an object key — and returns byte spans.
//! Shared by the `redactor-pii` WebAssembly guest and the host's native
//! baseline, so it is std-only (no threads, no I/O) and hand-written for
//! speed: byte scanners, one-pass prefilters, an ASCII fast path and no
//! allocation per field when nothing is found.
//!
//! ```
//! use pii_rules::{FieldContext, Scanner, RuleSet, redact_with_placeholders};
//! let scanner = Scanner::new(RuleSet::all());
//! let ctx = FieldContext { path: "message", is_key: false };
//! let text = "login by john.doe@example.com from 192.0.2.10";
//! let mut found = Vec::new();
//! scanner.scan(ctx, text, &mut found);
//! assert_eq!(redact_with_placeholders(text, &found), "login by <EMAIL> from <IPV4>");
//! ```
//!
//! Files:
//! - `lib.rs` — public types ([`Match`], [`FieldContext`]) and [`redact_with_placeholders`].
//! - `rule.rs` — [`Rule`] and [`RuleSet`].
//! - `scanner.rs` — [`Scanner`]: the pipeline (key-aware secrets, raw scan,
//!   normalised scan, merge).
//! - `normalize.rs` — the de-obfuscated view and its offset map.
//! - `bytes.rs` — byte classes, the prefilter summary, small search helpers.
//! - `keys.rs` — secret-ish key names and path hints.
//! - `pseudonym.rs` — [`pseudonym`] (HMAC-SHA256).
//! - `rules/*` — one scanner per family of rules (see `rules/mod.rs`).
//!
//! Spans are byte offsets into the scanned text, sorted, non-overlapping and
//! on char boundaries. Obfuscated forms (`john%40example.com`, `＋４９ …`,
//! zero-width characters, `john [at] example [dot] com`) are found through a
//! normalised view and reported as the original obfuscated substring.
//! Key-aware rules use [`FieldContext::path`]: the whole value of a
//! `password` / `api_key` / `authorization` / ... field is one match.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod bytes;
mod keys;
mod normalize;
mod pseudonym;
mod rule;
mod rules;
mod scanner;

pub use pseudonym::{hmac_sha256, pseudonym};
pub use rule::{Rule, RuleSet};
pub use scanner::Scanner;

/// One match: byte span [start,end) in the scanned text, always on char boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    /// Start byte offset (inclusive).
    pub start: usize,
    /// End byte offset (exclusive).
    pub end: usize,
    /// The rule that matched.
    pub rule: Rule,
}

impl Match {
    /// Length of the span in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the span is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Where a text sits, so key-aware rules can use it.
#[derive(Clone, Copy, Debug)]
pub struct FieldContext<'a> {
    /// Dotted path of the field, e.g. `metadata.headers.authorization`; for
    /// an object key, the path of the object holding it.
    pub path: &'a str,
    /// Whether the text is an object key (only content rules run on keys).
    pub is_key: bool,
}

impl<'a> FieldContext<'a> {
    /// A value at `path`.
    pub fn value(path: &'a str) -> Self {
        FieldContext { path, is_key: false }
    }

    /// An object key inside the object at `path`.
    pub fn key(path: &'a str) -> Self {
        FieldContext { path, is_key: true }
    }
}

/// `replacement` for the matched `text`, unless it contains that text (a
/// value such as `OKEN>` under an `authorization` key is matched whole,
/// and `<TOKEN>` contains it): then as many `*` as `text` has characters,
/// or `#` when `text` is all `*`. A replacement that kept the text would be
/// no redaction, and the host refuses such findings.
pub fn safe_replacement(replacement: String, text: &str) -> String {
    if text.is_empty() || !replacement.contains(text) {
        return replacement;
    }
    let fill = if text.chars().all(|c| c == '*') { "#" } else { "*" };
    fill.repeat(text.chars().count())
}

/// Replace matches with placeholders (helper for tests and the native
/// baseline): returns the redacted string. `matches` should be sorted and
/// non-overlapping (as [`Scanner::scan`] produces); spans that overlap an
/// earlier one, fall outside `text` or off char boundaries are skipped.
pub fn redact_with_placeholders(text: &str, matches: &[Match]) -> String {
    let mut out = String::with_capacity(text.len() + 16 * matches.len());
    let mut pos = 0;
    for m in matches {
        if m.start < pos
            || m.end < m.start
            || m.end > text.len()
            || !text.is_char_boundary(m.start)
            || !text.is_char_boundary(m.end)
        {
            continue;
        }
        out.push_str(&text[pos..m.start]);
        out.push_str(&safe_replacement(m.rule.placeholder().to_string(), &text[m.start..m.end]));
        pos = m.end;
    }
    out.push_str(&text[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_never_contains_the_text_it_replaces() {
        assert_eq!(safe_replacement("<TOKEN>".into(), "abc@x"), "<TOKEN>");
        assert_eq!(safe_replacement("<TOKEN>".into(), "OKEN>"), "*****");
        assert_eq!(safe_replacement("<TOKEN>".into(), "é"), "<TOKEN>");
        assert_eq!(safe_replacement("***".into(), "**"), "##");
        let s = Scanner::default();
        let text = "OKEN>";
        let m = s.find(FieldContext::value("metadata.headers.authorization"), text);
        assert!(!m.is_empty(), "the whole authorization value is a match");
        assert!(!redact_with_placeholders(text, &m).contains(text));
    }

    #[test]
    fn redact_skips_bad_spans() {
        let t = "héllo world";
        let ms = [
            Match { start: 0, end: 1, rule: Rule::Email },
            Match { start: 0, end: 3, rule: Rule::Email },
            Match { start: 2, end: 3, rule: Rule::Phone },
            Match { start: 7, end: 12, rule: Rule::Ipv4 },
        ];
        assert_eq!(redact_with_placeholders(t, &ms), "<EMAIL>éllo <IPV4>");
    }
}
