//! Rule scanners and their dispatch. Each submodule owns one family:
//! - `email` — addresses with a literal `@`; `email_obf` — spelled-out
//!   `[at]`/`dot` forms.
//! - `phone` — international and national phone numbers; `phone_words` —
//!   the keywords that gate undelimited and unusual numbers.
//! - `ip` — IPv4 and IPv6 addresses.
//! - `card` — payment cards; `iban` — bank accounts; `ssn` — US SSNs.
//! - `tokens` — JWTs, vendor API token formats and AWS access key ids
//!   (one word-start dispatch pass).
//! - `auth` — credentials after `Bearer`/`Basic`/`Token`/`Digest`.
//! - `kv` — values of secret-ish `key=value` / `key: value` / JSON pairs,
//!   cookies; `kv_values` — placeholders, prose words, cookie lists.
//! - `url` — userinfo in URLs and DSNs; `pem` — private key blocks.
//! - `words` — the single word-start pass that drives `tokens`, `auth`,
//!   `email_obf` and `iban`.
//!
//! Every scanner appends candidate matches (possibly overlapping) to the
//! output vector; the scanner pipeline merges them.

mod auth;
mod card;
mod email;
mod email_obf;
mod iban;
mod ip;
mod kv;
mod kv_values;
mod pem;
mod phone;
mod phone_words;
mod ssn;
mod tokens;
mod url;
mod words;

use crate::Match;
use crate::bytes::{F_AT, F_COLON, F_DASH, F_EQ, F_LOWER, F_QUOTE, F_SPACE, F_UPPER, digit_run};
use crate::rule::Rule;
use crate::scanner::Cx;

/// The end of the JWT starting at `i`, if one does.
pub(crate) fn jwt_at(b: &[u8], i: usize) -> Option<usize> {
    tokens::jwt(b, i)
}

/// Push a match.
#[inline]
pub(crate) fn push(out: &mut Vec<Match>, start: usize, end: usize, rule: Rule) {
    out.push(Match { start, end, rule });
}

/// Run every enabled rule whose prefilter passes on `b`.
pub(crate) fn scan_all(b: &[u8], cx: &Cx, out: &mut Vec<Match>) {
    let s = &cx.sum;
    let letters = s.any(F_UPPER | F_LOWER);
    if s.any(F_AT) {
        if cx.on(Rule::Email) {
            email::scan(b, out);
        }
        if cx.on(Rule::UrlCredential) {
            url::scan_dsn_at(b, out);
        }
    }
    // Digit rules need a long enough run of digits and separators.
    if s.digits >= 7 {
        let run = digit_run(b);
        if run >= 7 && cx.on(Rule::Phone) {
            phone::scan(b, cx, out);
        }
        if run >= 13 && cx.on(Rule::CreditCard) {
            card::scan(b, out);
        }
        if run >= 9 && cx.on(Rule::UsSsn) {
            ssn::scan(b, cx, out);
        }
    }
    if s.digits >= 4 && s.dots >= 3 && cx.on(Rule::Ipv4) {
        ip::scan_v4(b, out);
    }
    if s.colons >= 2 && cx.on(Rule::Ipv6) {
        ip::scan_v6(b, out);
    }
    if letters {
        words::scan(b, cx, out);
    }
    if letters && (s.any(F_EQ | F_COLON) || s.has(F_SPACE | F_QUOTE)) {
        kv::scan(b, cx, out);
    }
    if s.any(F_COLON) && cx.on(Rule::UrlCredential) {
        url::scan(b, out);
    }
    if s.has(F_DASH) && b.len() >= 30 && cx.on(Rule::CloudKey) {
        pem::scan(b, out);
    }
}
