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

use super::push;
use crate::Match;
use crate::bytes::{at, before, starts_ic};
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
        b' ' | b'\t'
            | b'\r'
            | b'\n'
            | b'"'
            | b'\''
            | b','
            | b';'
            | b'\\'
            | b'<'
            | b'>'
            | b')'
            | b']'
            | b'}'
            | b'`'
    ) || c == b'&' && kind != KeyKind::Cloud
}

fn eq_any(v: &[u8], list: &[&[u8]]) -> bool {
    list.iter().any(|w| v.eq_ignore_ascii_case(w))
}

const PLACEHOLDERS: &[&[u8]] = &[
    b"null",
    b"nil",
    b"none",
    b"undefined",
    b"true",
    b"false",
    b"redacted",
    b"[redacted]",
    b"<redacted>",
    b"filtered",
    b"[filtered]",
    b"masked",
    b"hidden",
    b"n/a",
    b"-",
    b"?",
    b"<secret>",
    b"<token>",
    b"<password>",
    b"<api_token>",
    b"<cloud_key>",
    b"<credential>",
];

const PROSE: &[&[u8]] = &[
    b"required",
    b"invalid",
    b"incorrect",
    b"expired",
    b"missing",
    b"changed",
    b"reset",
    b"updated",
    b"empty",
    b"mismatch",
    b"ok",
    b"set",
    b"unset",
    b"provided",
    b"present",
    b"absent",
    b"valid",
    b"verified",
    b"failed",
    b"denied",
    b"accepted",
    b"rejected",
    b"wrong",
    b"weak",
    b"strong",
    b"blank",
    b"yes",
    b"no",
    b"enabled",
    b"disabled",
    b"unknown",
    b"default",
    b"not",
    b"is",
    b"was",
    b"the",
    b"a",
    b"for",
    b"must",
    b"should",
    b"too",
    b"refreshed",
    b"revoked",
    b"issued",
    b"generated",
    b"rotated",
    b"sent",
    b"received",
];

const AUTH_METHODS: &[&[u8]] = &[
    b"basic",
    b"bearer",
    b"oauth",
    b"oauth2",
    b"ldap",
    b"saml",
    b"oidc",
    b"jwt",
    b"digest",
    b"kerberos",
    b"ntlm",
    b"sso",
    b"mtls",
    b"token",
    b"password",
    b"apikey",
    b"api_key",
    b"hmac",
    b"required",
    b"optional",
    b"anonymous",
];

/// Whether `v` is a placeholder rather than a secret.
fn placeholder(v: &[u8]) -> bool {
    v.is_empty()
        || eq_any(v, PLACEHOLDERS)
        || matches!(v[0], b'$' | b'{' | b'%' | b'[' | b'(' | b'<')
        || v.iter().filter(|&&c| c == b'*').count() >= 3
        || v.len() >= 3
            && v.iter()
                .all(|&c| matches!(c, b'*' | b'x' | b'X' | b'#' | b'.'))
}

/// The secret-looking span of a cookie list `b[s..e]` (`a=1; b=2`).
fn cookies(b: &[u8], s: usize, e: usize, first_only: bool, out: &mut Vec<Match>) {
    let mut i = s;
    while i < e {
        while i < e && matches!(b[i], b' ' | b';') {
            i += 1;
        }
        let ns = i;
        while i < e && b[i] != b'=' && b[i] != b';' {
            i += 1;
        }
        if i >= e || b[i] != b'=' {
            if first_only {
                return;
            }
            continue;
        }
        let name = &b[ns..i];
        let vs = i + 1;
        let mut ve = vs;
        while ve < e && b[ve] != b';' && b[ve] != b' ' {
            ve += 1;
        }
        let v = &b[vs..ve];
        let lname: [u8; 16] = {
            let mut a = [0u8; 16];
            for (d, c) in a.iter_mut().zip(name) {
                *d = c.to_ascii_lowercase();
            }
            a
        };
        let has = |w: &[u8]| lname.windows(w.len()).any(|x| x == w);
        let secret_name = classify_key(name).is_some()
            || [
                "sess", "sid", "token", "auth", "jwt", "csrf", "xsrf", "remember", "login", "key",
            ]
            .iter()
            .any(|w| has(w.as_bytes()));
        let random = v.len() >= 16
            || v.len() >= 8
                && v.iter().any(u8::is_ascii_digit)
                && v.iter().any(u8::is_ascii_alphabetic);
        if !v.is_empty() && !placeholder(v) && (secret_name || random) {
            push(out, vs, ve, Rule::SecretValue);
        }
        i = ve;
        if first_only {
            return;
        }
    }
}

/// Try a key/value pair around the separator at `p`. Returns the end of the
/// consumed value.
fn pair(b: &[u8], p: usize, cx: &Cx, out: &mut Vec<Match>) -> Option<usize> {
    let sep = b[p];
    // `password 'x'`: a space separator only before a quoted value.
    if sep == b' ' && !matches!(at(b, p + 1), b'"' | b'\'') {
        return None;
    }
    if sep == b':'
        && (at(b, p + 1) == b':'
            || before(b, p) == b':'
            || at(b, p + 1) == b'/' && at(b, p + 2) == b'/')
    {
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
    let kind = classify_key(&b[k..ke])?;
    if sep == b' ' && !matches!(kind, KeyKind::Password | KeyKind::Token | KeyKind::Cloud) {
        return None;
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
            ve = if quote != 0 {
                ve
            } else {
                scan_unquoted(b, vs, kind)
            };
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
        const SCHEMES: &[&[u8]] = &[
            b"bearer",
            b"basic",
            b"token",
            b"digest",
            b"negotiate",
            b"ntlm",
            b"apikey",
        ];
        let space = |i: usize| match at(b, i) {
            b' ' | b'+' => 1,
            b'%' if at(b, i + 1) == b'2' && at(b, i + 2) == b'0' => 3,
            _ => 0,
        };
        if let Some(sc) = SCHEMES
            .iter()
            .find(|sc| starts_ic(b, s, sc) && space(s + sc.len()) > 0)
        {
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
    if sep == b' ' && val.iter().all(u8::is_ascii_lowercase) {
        return None;
    }
    if quote == 0 && sep == b':' && !key_quoted && !scheme {
        let mut w = [0u8; 16];
        let lw = val.len().min(16);
        for (d, c) in w.iter_mut().zip(val) {
            *d = c.to_ascii_lowercase();
        }
        let secretish = val.len() >= 6 || val.iter().any(|c| !c.is_ascii_lowercase());
        // `credentials: passwd=x` — the value is itself a pair.
        let pair_inside = val
            .iter()
            .rposition(|&c| c == b'=')
            .is_some_and(|q| val[..q].iter().any(|&c| c != b'='));
        if eq_any(&w[..lw], PROSE) || !secretish || pair_inside {
            return None;
        }
    }
    if kind == KeyKind::Token {
        if val.len() < 5 && val.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut norm = [0u8; 48];
        if crate::keys::normalize_key(&b[k..ke], &mut norm) == Some(4)
            && &norm[..4] == b"auth"
            && eq_any(val, AUTH_METHODS)
        {
            return None;
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
        let Some(p) = b[i..]
            .iter()
            .position(|&c| matches!(c, b'=' | b':' | b'"' | b'\''))
        else {
            return;
        };
        let mut j = i + p;
        if matches!(b[j], b'"' | b'\'') {
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
        let cx = Cx {
            rules: RuleSet::all(),
            hints: Hints::default(),
            sum: Summary::of(t.as_bytes()),
        };
        let mut v = Vec::new();
        scan(t.as_bytes(), &cx, &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    #[test]
    fn positives() {
        let cases: &[(&str, &[&str])] = &[
            (
                "GET /cb?code=1&access_token=abc123XYZ&state=x",
                &["abc123XYZ"],
            ),
            ("password=hunter2 user=bob", &["hunter2"]),
            (
                r#"{"password":"correct horse battery"}"#,
                &["correct horse battery"],
            ),
            (r#"{\"client_secret\":\"s3cr3t\"}"#, &["s3cr3t"]),
            (
                "X-Api-Key: 8f14e45fceea167a5a36dedd4bea2543",
                &["8f14e45fceea167a5a36dedd4bea2543"],
            ),
            (
                "Server=tcp:db;Database=x;User Id=app;Password=P@ssw0rd!;",
                &["P@ssw0rd!"],
            ),
            ("host=db user=app password=s3cret dbname=x", &["s3cret"]),
            (
                "AccountKey=abc+def/ghi==;EndpointSuffix=core",
                &["abc+def/ghi=="],
            ),
            (
                "Cookie: session=abc123def456; theme=dark",
                &["abc123def456"],
            ),
            (
                "Set-Cookie: sid=31d4d96e407aad42; Path=/; HttpOnly",
                &["31d4d96e407aad42"],
            ),
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
            "the password \"field\" is",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
