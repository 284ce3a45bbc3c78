//! Value-side helpers for the key/value rule: placeholder and prose
//! detection (`***`, `<redacted>`, `${VAR}`, "required"), auth-method names,
//! and cookie-list parsing (`Cookie: a=1; b=2`).

use super::push;
use crate::Match;
use crate::keys::classify_key;
use crate::rule::Rule;

pub(crate) fn eq_any(v: &[u8], list: &[&[u8]]) -> bool {
    list.iter().any(|w| v.eq_ignore_ascii_case(w))
}

pub(crate) const PLACEHOLDERS: &[&[u8]] = &[
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

pub(crate) const PROSE: &[&[u8]] = &[
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

pub(crate) const AUTH_METHODS: &[&[u8]] = &[
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
pub(crate) fn placeholder(v: &[u8]) -> bool {
    v.is_empty()
        || eq_any(v, PLACEHOLDERS)
        || matches!(v[0], b'$' | b'{' | b'%' | b'[' | b'(' | b'<')
        || v.iter().filter(|&&c| c == b'*').count() >= 3
        || v.len() >= 3
            && v.iter()
                .all(|&c| matches!(c, b'*' | b'x' | b'X' | b'#' | b'.'))
        // `YOUR_API_KEY`, `CHANGE_ME`, `your-secret-here`: template values.
        || v.contains(&b'_') && v.iter().all(|&c| c.is_ascii_uppercase() || c == b'_')
        || v.len() > 4 && v[..4].eq_ignore_ascii_case(b"your") && !v[4].is_ascii_alphanumeric()
}

/// The secret-looking span of a cookie list `b[s..e]` (`a=1; b=2`).
pub(crate) fn cookies(b: &[u8], s: usize, e: usize, first_only: bool, out: &mut Vec<Match>) {
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
            || ["sess", "sid", "token", "auth", "jwt", "csrf", "xsrf", "remember", "login", "key"]
                .iter()
                .any(|w| has(w.as_bytes()));
        let random =
            v.len() >= 16 || v.len() >= 8 && v.iter().any(u8::is_ascii_digit) && v.iter().any(u8::is_ascii_alphabetic);
        if !v.is_empty() && !placeholder(v) && (secret_name || random) {
            push(out, vs, ve, Rule::SecretValue);
        }
        i = ve;
        if first_only {
            return;
        }
    }
}
