//! Values of secret-ish keys inside text: `password=x`, `api_key: x`,
//! `"token":"x"`, `{\"secret\":\"x\"}`, `X-Api-Key: x`, `?access_token=x&`,
//! `Password=x;` (ADO.NET), `AccountKey=x;` (Azure), `Cookie:` /
//! `Set-Cookie:` headers. Only the value is reported. Password-like keys
//! give `secret-value`, token-like keys `api-token`, cloud keys `cloud-key`.
//!
//! Unquoted values end at `&`, whitespace, quotes, `,`, `;`, `\`, brackets;
//! quoted values at the closing quote. Placeholders (`***`, `<redacted>`,
//! `${VAR}`, `null`, booleans) are skipped, and an unquoted `key: value` in
//! prose must not be a status word ("password: required").

use super::kv_values::{AUTH_METHODS, PROSE, cookies, eq_any, placeholder};
use super::push;
use crate::Match;
use crate::bytes::{at, before, is_alnum, starts_ic};
use crate::keys::{KeyKind, classify_key};
use crate::rule::Rule;
use crate::scanner::Cx;

#[inline]
fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

#[inline]
fn stop_unquoted(c: u8, kind: KeyKind) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b',' | b';' | b'\\' | b'<' | b'>' | b')' | b']' | b'}' | b'`'
    ) || c == b'&' && kind != KeyKind::Cloud
}

/// Try a key/value pair around the separator at `p`. Returns the end of the
/// consumed value.
fn pair(b: &[u8], p: usize, cx: &Cx, out: &mut Vec<Match>) -> Option<usize> {
    let sep = b[p];
    if sep == b':' && (at(b, p + 1) == b':' || before(b, p) == b':' || at(b, p + 1) == b'/' && at(b, p + 2) == b'/') {
        return None;
    }
    // Key, backwards.
    let mut k = p;
    while sep != b' ' && k > 0 && b[k - 1] == b' ' && p - k < 2 {
        k -= 1;
    }
    let mut key_quoted = false;
    if matches!(before(b, k), b'"' | b'\'') {
        k -= 1;
        key_quoted = true;
        if before(b, k) == b'\\' {
            k -= 1;
        }
    }
    // Form arrays: `user[password]=x`.
    let bracketed = !key_quoted && before(b, k) == b']';
    if bracketed {
        k -= 1;
    }
    let ke = k;
    while k > 0 && ke - k < 64 && key_char(b[k - 1]) {
        k -= 1;
    }
    if k == ke || key_char(before(b, k)) || bracketed && before(b, k) != b'[' {
        return None;
    }
    // `scheme://token:x@host`: the userinfo of a URL, not a pair.
    if k >= 3 && &b[k - 3..k] == b"://" {
        return None;
    }
    let kind = classify_key(&b[k..ke])?;
    let mut norm = [0u8; 48];
    let nk = crate::keys::normalize_key(&b[k..ke], &mut norm).unwrap_or(0);
    let norm = &norm[..nk];
    // A space separator: CLI flags (`--password x`, `--token x`) and
    // `password 'x'` — the latter only for password words, as "secret 'name'"
    // and "token 'name'" usually name the object, not its value.
    if sep == b' ' {
        let cli = b[k..ke].starts_with(b"--") && !matches!(at(b, p + 1), b'-' | b' ' | 0);
        let quoted = matches!(at(b, p + 1), b'"' | b'\'')
            && (norm.ends_with(b"password") || norm.ends_with(b"passwd") || norm.ends_with(b"passphrase"));
        if !cli && !quoted {
            return None;
        }
    }
    let rule = match kind {
        KeyKind::Authorization => Rule::BearerToken,
        other => other.rule(),
    };
    if !cx.on(rule) {
        return None;
    }
    // Value, forwards.
    let mut v = p + 1;
    while v < b.len() && b[v] == b' ' && v - p <= 3 {
        v += 1;
    }
    let (quote, escaped) = match at(b, v) {
        b'"' | b'\'' => (at(b, v), false),
        b'\\' if matches!(at(b, v + 1), b'"' | b'\'') => (at(b, v + 1), true),
        _ => (0, false),
    };
    let vs = if quote == 0 {
        v
    } else if escaped {
        v + 2
    } else {
        v + 1
    };
    let mut ve = vs;
    if quote != 0 {
        while ve < b.len() && b[ve] != b'\n' && ve - vs < 8192 {
            if b[ve] == quote && (escaped == (before(b, ve) == b'\\')) {
                break;
            }
            if !escaped && b[ve] == b'\\' {
                ve += 2;
                continue;
            }
            ve += 1;
        }
        ve = ve.min(b.len());
        if escaped && before(b, ve) == b'\\' {
            ve -= 1;
        }
    }
    match kind {
        KeyKind::Cookie | KeyKind::SetCookie => {
            let e = if quote != 0 {
                ve
            } else {
                let mut e = vs;
                while e < b.len() && !matches!(b[e], b'\n' | b'\r' | b'"' | b'\\') {
                    e += 1;
                }
                e
            };
            if sep == b':' {
                cookies(b, vs, e, kind == KeyKind::SetCookie, out);
                return Some(e);
            }
            // `cookie=abc` as a plain pair.
            ve = if quote != 0 { ve } else { scan_unquoted(b, vs, kind) };
        }
        _ => {
            if quote == 0 {
                ve = scan_unquoted(b, vs, kind);
            }
        }
    }
    let mut s = vs;
    let mut scheme = false;
    if kind == KeyKind::Authorization {
        const SCHEMES: &[&[u8]] = &[b"bearer", b"basic", b"token", b"digest", b"negotiate", b"ntlm", b"apikey"];
        let space = |i: usize| match at(b, i) {
            b' ' | b'+' => 1,
            b'%' if at(b, i + 1) == b'2' && at(b, i + 2) == b'0' => 3,
            _ => 0,
        };
        if let Some(sc) = SCHEMES.iter().find(|sc| starts_ic(b, s, sc) && space(s + sc.len()) > 0) {
            s += sc.len();
            scheme = true;
            while s < b.len() && space(s) > 0 {
                s += space(s);
            }
            if quote == 0 {
                ve = scan_unquoted(b, s, kind);
            }
        }
    }
    let val = &b[s..ve.max(s)];
    if placeholder(val) || val.starts_with(b"-----BEGIN") {
        return Some(ve);
    }
    // A rejected short value is re-scanned (it may hold a pair itself); a
    // long one is skipped so hostile inputs stay linear.
    let skip = (ve > vs + 256).then_some(ve);
    // `Authorization: Bearer` with nothing after it.
    if kind == KeyKind::Authorization
        && !scheme
        && eq_any(val, &[b"bearer", b"basic", b"token", b"digest", b"negotiate", b"ntlm"])
    {
        return skip;
    }
    // YAML tags (`client_secret: !vault |`) and the shell's working directory.
    if val[0] == b'!' && val[1..].iter().all(u8::is_ascii_alphabetic) || norm == b"pwd" && matches!(val[0], b'/' | b'~')
    {
        return skip;
    }
    if sep == b' ' && val.iter().all(u8::is_ascii_lowercase) {
        return skip;
    }
    if quote == 0 && !scheme && eq_any(val, PROSE) {
        return skip;
    }
    if quote == 0 && sep == b':' && !key_quoted && !scheme {
        let secretish = val.len() >= 6 || val.iter().any(|c| !c.is_ascii_lowercase());
        // `credentials: passwd=x` — the value is itself a pair.
        let pair_inside = val.iter().rposition(|&c| c == b'=').is_some_and(|q| val[..q].iter().any(|&c| c != b'='));
        if !secretish || pair_inside {
            return skip;
        }
    }
    if kind == KeyKind::Token {
        if val.len() < 5 && val.iter().all(u8::is_ascii_digit) {
            return skip;
        }
        if norm == b"auth" && eq_any(val, AUTH_METHODS) {
            return skip;
        }
    }
    push(out, s, ve, rule);
    Some(ve)
}

fn scan_unquoted(b: &[u8], vs: usize, kind: KeyKind) -> usize {
    let mut e = vs;
    while e < b.len() && e - vs < 8192 && !stop_unquoted(b[e], kind) {
        e += 1;
    }
    e
}

/// Find secret key/value pairs.
#[inline(never)]
pub(crate) fn scan(b: &[u8], cx: &Cx, out: &mut Vec<Match>) {
    let mut i = 1;
    while i < b.len() {
        let Some(p) = b[i..].iter().position(|&c| matches!(c, b'=' | b':' | b'"' | b'\'' | b'-')) else {
            return;
        };
        let mut j = i + p;
        if b[j] == b'-' {
            // `--password x`: find the space after the flag name.
            if at(b, j + 1) != b'-' || is_alnum(before(b, j)) {
                i = j + 1;
                continue;
            }
            let mut e = j + 2;
            while e < b.len() && key_char(b[e]) {
                e += 1;
            }
            if at(b, e) != b' ' {
                i = e.max(j + 1);
                continue;
            }
            j = e;
        } else if matches!(b[j], b'"' | b'\'') {
            // `password 'x'`: try the space before the quote.
            if b[j - 1] != b' ' {
                i = j + 1;
                continue;
            }
            j -= 1;
        }
        match pair(b, j, cx, out) {
            Some(e) if e > j => i = e.max(i + p + 1),
            _ => i = i + p + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Summary;
    use crate::keys::Hints;
    use crate::rule::RuleSet;

    fn found(t: &str) -> Vec<&str> {
        let cx = Cx { rules: RuleSet::all(), hints: Hints::default(), sum: Summary::of(t.as_bytes()) };
        let mut v = Vec::new();
        scan(t.as_bytes(), &cx, &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    #[test]
    fn positives() {
        let cases: &[(&str, &[&str])] = &[
            ("GET /cb?code=1&access_token=abc123XYZ&state=x", &["abc123XYZ"]),
            ("password=hunter2 user=bob", &["hunter2"]),
            (r#"{"password":"correct horse battery"}"#, &["correct horse battery"]),
            (r#"{\"client_secret\":\"s3cr3t\"}"#, &["s3cr3t"]),
            ("X-Api-Key: 8f14e45fceea167a5a36dedd4bea2543", &["8f14e45fceea167a5a36dedd4bea2543"]),
            ("Server=tcp:db;Database=x;User Id=app;Password=P@ssw0rd!;", &["P@ssw0rd!"]),
            ("host=db user=app password=s3cret dbname=x", &["s3cret"]),
            ("AccountKey=abc+def/ghi==;EndpointSuffix=core", &["abc+def/ghi=="]),
            ("Cookie: session=abc123def456; theme=dark", &["abc123def456"]),
            ("Set-Cookie: sid=31d4d96e407aad42; Path=/; HttpOnly", &["31d4d96e407aad42"]),
            ("DB_PASSWORD='pa ss'", &["pa ss"]),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                &["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
            ),
            ("password: hunter2", &["hunter2"]),
            ("Authorization: Bearer abc.def.ghi", &["abc.def.ghi"]),
            ("--password=swordfish", &["swordfish"]),
            ("retry with password 'P@ssw0rd' now", &["P@ssw0rd"]),
            ("Invalid credentials: passwd=qwerty123 x", &["qwerty123"]),
            ("Authorization: Bearer%20q8Zr4TmN2pLx7", &["q8Zr4TmN2pLx7"]),
            ("user[email]=a&user[password]=Secr3t!&x=1", &["Secr3t!"]),
            ("Authorization: Bearer abc", &["abc"]),
            ("docker login --password s3cr3tPw -u bob", &["s3cr3tPw"]),
            ("gh auth login --with-token --token ghx123abc", &["ghx123abc"]),
        ];
        for (t, want) in cases {
            assert_eq!(found(t), *want, "{t}");
        }
    }

    #[test]
    fn negatives() {
        for t in [
            "token_count=42",
            "password_reset_required=true",
            "secret_santa_enabled: yes",
            "password=***",
            "password=${DB_PASSWORD}",
            "password: required",
            "auth=basic",
            "https://example.com:8443/x",
            "std::string token",
            "password=",
            "max_tokens=1500",
            "token=42",
            "token: [REDACTED]",
            "ssn: ***-**-6789",
            "secret 'db-credentials' synced",
            "Authorization: Bearer",
            "client_secret: !vault |",
            "PWD=/var/lib/jenkins/workspace",
            "auth=enabled",
            "signature=valid",
            "Authorization: Negotiate",
            "run --password-stdin < file",
            "--token --verbose",
            "api_key=YOUR_API_KEY",
            "secret: your-secret-here",
            "the password \"field\" is",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
