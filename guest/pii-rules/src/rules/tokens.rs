//! Self-identifying tokens, found in one pass over word starts with a
//! first-byte dispatch:
//! - JWTs (`eyJ` header `.` payload `.` signature, signature may be empty;
//!   JWE five-part forms too);
//! - vendor API tokens: GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/
//!   `github_pat_`, GitLab `glpat-`, Slack `xox?-` and webhook secrets,
//!   Stripe `sk_`/`rk_`/`pk_` live/test and `whsec_`, OpenAI-style `sk-`,
//!   Google `AIza` and `ya29.`, SendGrid `SG.x.y`, npm `npm_`, Twilio `SK`+32
//!   hex, Mailgun `key-`, Shopify `shpat_`…, PyPI `pypi-`, Hugging Face
//!   `hf_`, DigitalOcean `dop_v1_`;
//! - AWS access key ids (`AKIA`, `ASIA`, ... + 16) and a 40-char secret key
//!   right after one.

#[cfg(test)]
use {super::push, crate::Match};

use crate::bytes::{at, before, is_alnum, is_b64url, run_len, starts, starts_ic};
use crate::rule::Rule;
use crate::scanner::Cx;

#[inline]
fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

#[inline]
fn word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[inline]
fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

#[inline]
fn upper_alnum(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// A token `prefix` + a run of `f` with `min..=max` bytes, ending at a
/// boundary. Returns the end.
fn pref(b: &[u8], i: usize, prefix: &[u8], f: fn(u8) -> bool, min: usize, max: usize) -> Option<usize> {
    if !starts(b, i, prefix) {
        return None;
    }
    let s = i + prefix.len();
    let n = run_len(b, s, max + 1, f);
    if n < min || n > max || is_b64url(at(b, s + n)) {
        return None;
    }
    Some(s + n)
}

/// JWT starting at `i` ("eyJ"): returns the end.
pub(crate) fn jwt(b: &[u8], i: usize) -> Option<usize> {
    if !starts(b, i, b"eyJ") {
        return None;
    }
    let mut j = i;
    let mut segs = 0;
    let mut lens = [0usize; 5];
    loop {
        let n = run_len(b, j, 16384, is_b64url);
        lens[segs] = n;
        segs += 1;
        j += n;
        if segs < 5 && at(b, j) == b'.' && (segs < 2 || is_b64url(at(b, j + 1)) || segs == 2) {
            j += 1;
            continue;
        }
        break;
    }
    if lens[0] < 10 {
        return None;
    }
    let payload_json = segs >= 2 && starts(b, i + lens[0] + 1, b"eyJ");
    let ok = match segs {
        2 => lens[1] >= 4 && payload_json,
        3 | 5 => lens[1] >= 2,
        _ => false,
    };
    if !ok {
        return None;
    }
    while at(b, j) == b'=' {
        j += 1;
    }
    if is_alnum(at(b, j)) {
        return None;
    }
    Some(j)
}

fn has_digit_or_upper(s: &[u8]) -> bool {
    s.iter().any(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

const AWS_PREFIXES: [&[u8; 4]; 10] =
    [b"AKIA", b"ASIA", b"AGPA", b"AIDA", b"AROA", b"AIPA", b"ANPA", b"ANVA", b"ABIA", b"ACCA"];

/// An AWS secret access key (40 base64 chars, mixed case) shortly after `from`.
pub(crate) fn aws_secret_after(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let is_key = |c: u8| c.is_ascii_alphanumeric() || c == b'/' || c == b'+';
    let lim = (from + 80).min(b.len());
    let mut j = from;
    while j < lim {
        if !is_key(b[j]) || is_key(before(b, j)) {
            j += 1;
            continue;
        }
        let n = run_len(b, j, 41, is_key);
        let s = &b[j..j + n];
        if n == 40
            && s.iter().any(u8::is_ascii_lowercase)
            && s.iter().any(u8::is_ascii_uppercase)
            && at(b, j + n) != b'='
        {
            return Some((j, j + n));
        }
        j += n.max(1);
    }
    None
}

/// Match a token at word start `i`: (start, end, rule).
pub(crate) fn at_word(b: &[u8], i: usize, cx: &Cx) -> Option<(usize, usize, Rule)> {
    let api = |e: Option<usize>| e.map(|e| (i, e, Rule::ApiToken));
    let c = b[i];
    // Cheap second-byte gate before any prefix comparison.
    let c2 = at(b, i + 1);
    let plausible = match c {
        b'e' => c2 == b'y',
        b'g' => matches!(c2, b'h' | b'l' | b'i'),
        b'x' => matches!(c2, b'o' | b'a'),
        b's' => matches!(c2, b'k' | b'h'),
        b'r' | b'p' => matches!(c2, b'k' | b'y'),
        b'w' => c2 == b'h',
        b'A' => c2.is_ascii_uppercase(),
        b'S' => matches!(c2, b'G' | b'K'),
        b'n' => c2 == b'p',
        b'k' => c2 == b'e',
        b'h' => matches!(c2, b'f' | b'o'),
        b'd' => c2 == b'o',
        b'y' => c2 == b'a',
        _ => false,
    };
    if !plausible {
        return None;
    }
    match c {
        b'e' => jwt(b, i).map(|e| (i, e, Rule::Jwt)),
        b'g' => {
            if starts(b, i, b"gh") && matches!(at(b, i + 2), b'p' | b'o' | b'u' | b's' | b'r') && at(b, i + 3) == b'_' {
                return api(pref(b, i, &b[i..i + 4], alnum, 8, 80));
            }
            api(pref(b, i, b"github_pat_", word, 22, 255)
                .or_else(|| pref(b, i, b"glpat-", is_b64url, 8, 64))
                .or_else(|| pref(b, i, b"gldt-", is_b64url, 20, 64))
                .or_else(|| pref(b, i, b"glrt-", is_b64url, 20, 64))
                .or_else(|| pref(b, i, b"glptt-", is_b64url, 20, 64)))
        }
        b'x' => {
            if starts(b, i, b"xox")
                && matches!(at(b, i + 3), b'a' | b'b' | b'p' | b'r' | b's' | b'e' | b'o')
                && at(b, i + 4) == b'-'
            {
                let slack = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
                return api(pref(b, i, &b[i..i + 5], slack, 6, 255));
            }
            api(pref(b, i, b"xapp-", |c| c.is_ascii_alphanumeric() || c == b'-', 10, 255))
        }
        b's' | b'r' | b'p' => {
            for p in [&b"sk_live_"[..], b"sk_test_", b"rk_live_", b"rk_test_", b"pk_live_", b"pk_test_"] {
                if let Some(e) = pref(b, i, p, alnum, 4, 255) {
                    return Some((i, e, Rule::ApiToken));
                }
            }
            if starts(b, i, b"sk-") {
                let e = pref(b, i, b"sk-", is_b64url, 20, 255)?;
                return has_digit_or_upper(&b[i + 3..e]).then_some((i, e, Rule::ApiToken));
            }
            if starts(b, i, b"shp") && matches!(&b[i + 3..(i + 6).min(b.len())], b"at_" | b"ss_" | b"ca_" | b"pa_") {
                return api(pref(b, i, &b[i..i + 6], alnum, 20, 64));
            }
            api(pref(b, i, b"pypi-", is_b64url, 16, 1024))
        }
        b'w' => api(pref(b, i, b"whsec_", alnum, 8, 128)),
        b'A' => {
            if let Some(e) = pref(b, i, b"AIza", is_b64url, 20, 40) {
                return Some((i, e, Rule::ApiToken));
            }
            if cx.on(Rule::CloudKey) && AWS_PREFIXES.iter().any(|p| starts(b, i, &p[..])) {
                // Access key ids are 20 chars, other unique ids (AROA, AIDA) 21.
                let e = pref(b, i, &b[i..i + 4], upper_alnum, 16, 17)?;
                return Some((i, e, Rule::CloudKey));
            }
            None
        }
        b'S' => {
            if starts(b, i, b"SG.") {
                let n1 = run_len(b, i + 3, 128, is_b64url);
                let d = i + 3 + n1;
                if n1 >= 8 && at(b, d) == b'.' {
                    let n2 = run_len(b, d + 1, 128, is_b64url);
                    if n2 >= 8 && !is_b64url(at(b, d + 1 + n2)) {
                        return Some((i, d + 1 + n2, Rule::ApiToken));
                    }
                }
                return None;
            }
            api(pref(b, i, b"SK", hex, 32, 32))
        }
        b'n' => api(pref(b, i, b"npm_", alnum, 16, 64)),
        b'k' => api(pref(b, i, b"key-", alnum, 32, 32)),
        b'h' => {
            if let Some(e) = pref(b, i, b"hf_", alnum, 16, 64) {
                return Some((i, e, Rule::ApiToken));
            }
            if starts_ic(b, i, b"hooks.slack.com/services/") {
                let mut j = i + 25;
                for _ in 0..2 {
                    let n = run_len(b, j, 32, alnum);
                    if n == 0 || at(b, j + n) != b'/' {
                        return None;
                    }
                    j += n + 1;
                }
                let n = run_len(b, j, 64, alnum);
                return (n >= 8).then_some((j, j + n, Rule::ApiToken));
            }
            None
        }
        b'd' => api(pref(b, i, b"dop_v1_", hex, 16, 128)),
        b'y' => api(pref(b, i, b"ya29.", is_b64url, 20, 2048)),
        _ => None,
    }
}

/// Bytes that can start a token.
#[inline]
pub(crate) fn first(c: u8) -> bool {
    matches!(c, b'e' | b'g' | b'x' | b's' | b'r' | b'p' | b'w' | b'A' | b'S' | b'n' | b'k' | b'h' | b'd' | b'y')
}

/// Find self-identifying tokens (whole-text driver, used by tests).
#[cfg(test)]
pub(crate) fn scan(b: &[u8], cx: &Cx, out: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        if !word(before(b, i))
            && first(b[i])
            && let Some((s, e, rule)) = at_word(b, i, cx)
        {
            push(out, s, e, rule);
            if rule == Rule::CloudKey
                && let Some((ss, se)) = aws_secret_after(b, e)
            {
                push(out, ss, se, Rule::CloudKey);
            }
            i = e;
            continue;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Summary;
    use crate::keys::Hints;
    use crate::rule::RuleSet;

    fn found(t: &str) -> Vec<(&str, Rule)> {
        let cx = Cx { rules: RuleSet::all(), hints: Hints::default(), sum: Summary::of(t.as_bytes()) };
        let mut v = Vec::new();
        scan(t.as_bytes(), &cx, &mut v);
        v.iter().map(|m| (&t[m.start..m.end], m.rule)).collect()
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn positives() {
        let cases: Vec<(String, &str, Rule)> = vec![
            (format!("Authorization: Bearer {JWT}"), JWT, Rule::Jwt),
            ("t=eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.".into(), "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", Rule::Jwt),
            (
                "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".into(),
                "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",
                Rule::ApiToken,
            ),
            ("glpat-xXxXxXxXxXxXxXxXxXxX ok".into(), "glpat-xXxXxXxXxXxXxXxXxXxX", Rule::ApiToken),
            (
                "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx".into(),
                "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
                Rule::ApiToken,
            ),
            ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc".into(), "sk_live_4eC39HqLyjWDarjtT1zdp7dc", Rule::ApiToken),
            ("sk-proj-AbCdEf1234567890GhIjKlMn".into(), "sk-proj-AbCdEf1234567890GhIjKlMn", Rule::ApiToken),
            (
                "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe".into(),
                "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
                Rule::ApiToken,
            ),
            (
                "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".into(),
                "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",
                Rule::ApiToken,
            ),
            (
                "npm_1234567890abcdefghijABCDEFGHIJ123456".into(),
                "npm_1234567890abcdefghijABCDEFGHIJ123456",
                Rule::ApiToken,
            ),
            ("SK0123456789abcdef0123456789abcdef".into(), "SK0123456789abcdef0123456789abcdef", Rule::ApiToken),
            ("key-3ax6xnjp29jd6fds4gc373sgvjxteol0".into(), "key-3ax6xnjp29jd6fds4gc373sgvjxteol0", Rule::ApiToken),
            ("shpat_0123456789abcdef0123456789abcdef".into(), "shpat_0123456789abcdef0123456789abcdef", Rule::ApiToken),
            ("id AKIAIOSFODNN7EXAMPLE".into(), "AKIAIOSFODNN7EXAMPLE", Rule::CloudKey),
            (
                "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX".into(),
                "XXXXXXXXXXXXXXXXXXXXXXXX",
                Rule::ApiToken,
            ),
        ];
        for (t, want, rule) in &cases {
            assert_eq!(found(t), [(*want, *rule)], "{t}");
        }
        let t = "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(found(t).len(), 2);
    }

    #[test]
    fn negatives() {
        for t in [
            "eyJust a word that starts oddly",
            "task-runner-with-long-name-here",
            "sk-learn is a library name okay",
            "AKIA is a prefix but AKIATOOSHORT",
            "skeleton key-value store configured",
            "SK-0123456789abcdef0123456789abcdef",
            "base64 dGhpcyBpcyBqdXN0IGEgYmxvYg==",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
