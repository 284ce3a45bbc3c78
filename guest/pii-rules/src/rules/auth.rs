//! Credentials after an HTTP auth scheme word — `Bearer x`, `Basic x`,
//! `Token x`, `Digest username=...` — in headers, logs, JSON-in-strings and
//! curl commands. The scheme word is kept; only the credential is reported.
//!
//! To stay clear of prose ("Bearer token expired", "Basic auth failed",
//! "token refresh failed") the credential must look like one: `Bearer`
//! needs 6+ token chars that are not a plain lowercase word, `Basic` needs
//! base64 that decodes to `user:pass` (or an `Authorization` header), and
//! `Token` needs an `Authorization` header or a long random-looking value.

#[cfg(test)]
use {super::push, crate::Match, crate::bytes::before, crate::rule::Rule};

use crate::bytes::{Words, any_word_in, at, is_alnum, run_len, starts_ic};

#[inline]
fn token68(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

#[inline]
fn b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn b64_val(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    })
}

/// Whether base64 `s` decodes to printable text containing ':'.
fn decodes_to_userpass(s: &[u8]) -> bool {
    let mut acc = 0u32;
    let mut bits = 0;
    let mut colon = false;
    for &c in s {
        let Some(v) = b64_val(c) else {
            break;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
            if byte == b':' {
                colon = true;
            } else if byte < 0x20 || byte == 0x7f {
                return false;
            }
        }
    }
    colon
}

fn authorization_near(b: &[u8], s: usize) -> bool {
    static AUTH: Words<3> = Words::new([b"authorization", b"auth", b"authenticate"]);
    any_word_in(b, s.saturating_sub(32), s, |w| AUTH.has(w))
}

/// The credential after scheme `scheme` whose first byte is at `c`.
fn credential(b: &[u8], scheme: &[u8], c: usize) -> Option<usize> {
    match scheme {
        b"bearer" | b"token" => {
            let n = run_len(b, c, 8192, token68);
            let mut e = c + n;
            while at(b, e) == b'=' {
                e += 1;
            }
            // An auth-param (`realm="x"`) or a template (`${TOKEN}`), not a credential.
            if matches!(at(b, e), b'"' | b'{' | b'<') && e > c + n || at(b, c + n) == b'=' && at(b, e) == b'"' {
                return None;
            }
            if is_alnum(at(b, e)) || matches!(at(b, e), b'$' | b'{' | b'<' | b'*') || n == 0 {
                return None;
            }
            let v = &b[c..c + n];
            let wordy = v.iter().all(|x| x.is_ascii_lowercase());
            if scheme == b"bearer" {
                (n >= 6 && !(wordy && n < 20)).then_some(e)
            } else {
                let strong = n >= 20 && v.iter().any(u8::is_ascii_digit) && v.iter().any(u8::is_ascii_alphabetic);
                (strong || authorization_near(b, c) && n >= 8 && !wordy).then_some(e)
            }
        }
        b"basic" => {
            let n = run_len(b, c, 8192, b64);
            let mut e = c + n;
            while at(b, e) == b'=' {
                e += 1;
            }
            if n < 4 || is_alnum(at(b, e)) {
                return None;
            }
            let v = &b[c..c + n];
            let ok = decodes_to_userpass(v)
                || authorization_near(b, c) && n >= 8 && !v.iter().all(|x| x.is_ascii_lowercase());
            ok.then_some(e)
        }
        b"digest" => {
            if !starts_ic(b, c, b"username=") {
                return None;
            }
            let mut e = c;
            while e < b.len() && b[e] != b'\n' && b[e] != b'\r' && !(b[e] == b'\\' && at(b, e + 1) == b'n') {
                e += 1;
            }
            while e > c && matches!(b[e - 1], b' ' | b'"' | b'\'' | b'\\') {
                e -= 1;
            }
            (e > c + 9).then_some(e)
        }
        _ => None,
    }
}

/// Find auth-scheme credentials.
/// The credential after a scheme word starting at word start `i`
/// (`Bearer x`): returns (credential start, end).
#[inline]
pub(crate) fn at_word(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let scheme: &[u8] = match b[i] | 0x20 {
        b'b' if starts_ic(b, i, b"bearer ") => b"bearer",
        b'b' if starts_ic(b, i, b"basic ") => b"basic",
        b't' if starts_ic(b, i, b"token ") => b"token",
        b'd' if starts_ic(b, i, b"digest ") => b"digest",
        _ => return None,
    };
    let sp = i + scheme.len();
    let mut c = sp;
    while c < b.len() && b[c] == b' ' && c - sp < 3 {
        c += 1;
    }
    credential(b, scheme, c).map(|e| (c, e))
}

/// Find auth-scheme credentials (whole-text driver, used by tests).
#[cfg(test)]
pub(crate) fn scan(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        if !is_alnum(before(b, i))
            && before(b, i) != b'_'
            && let Some((c, e)) = at_word(b, i)
        {
            push(out, c, e, Rule::BearerToken);
            i = e;
            continue;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        scan(t.as_bytes(), &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    #[test]
    fn positives() {
        assert_eq!(found("Authorization: Bearer abc123def456"), ["abc123def456"]);
        assert_eq!(found(r#"curl -H "Authorization: Bearer xyzTOKEN_42.x" https://x"#), ["xyzTOKEN_42.x"]);
        assert_eq!(found("authorization=Basic dXNlcjpwYXNzd29yZA=="), ["dXNlcjpwYXNzd29yZA=="]);
        assert_eq!(found("got Basic YWxhZGRpbjpvcGVuc2VzYW1l from client"), ["YWxhZGRpbjpvcGVuc2VzYW1l"]);
        assert_eq!(
            found("Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
            ["9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"]
        );
        assert_eq!(
            found(r#"Authorization: Digest username="Mufasa", realm="x", response="6629fae49393a05397450978507c4ef1""#),
            [r#"username="Mufasa", realm="x", response="6629fae49393a05397450978507c4ef1"#]
        );
        assert_eq!(found(r#"{\"auth\":\"Bearer s3cr3tT0ken\"}"#), ["s3cr3tT0ken"]);
    }

    #[test]
    fn negatives() {
        for t in [
            "Bearer token expired for user",
            "Basic auth failed",
            "token refresh failed for user 42",
            r#"WWW-Authenticate: Bearer realm="example", error="invalid_token""#,
            "Authorization: Bearer ${TOKEN}",
            "Authorization: Bearer <redacted>",
            "Bearer undefined",
            "the token abc",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
