//! Secret-ish key names: classifies a key (a field path's last segment, a
//! `key=value` key, an HTTP header name) as secret or not, and extracts the
//! path hints (phone / ssn) that enable the keyword-gated digit rules.
//!
//! Keys are normalised to lowercase ASCII alphanumerics (`X-Api-Key`,
//! `x_api_key` and `xApiKey` all become `xapikey`) and must *end* with a
//! secret word, so `db_password` and `github_token` are secret while
//! `token_count` and `password_reset_required` are not.

use crate::rule::Rule;

/// What kind of secret a key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Passwords and generic secrets.
    Password,
    /// API / access tokens and keys.
    Token,
    /// Cloud credentials (AWS secret keys, Azure account keys, GCP key ids).
    Cloud,
    /// `Authorization`-style headers: the value may carry an auth scheme.
    Authorization,
    /// `Cookie` header: a list of `name=value` pairs.
    Cookie,
    /// `Set-Cookie` header: one `name=value` pair plus attributes.
    SetCookie,
    /// Personal data keys (ssn, card numbers).
    Personal,
}

impl KeyKind {
    /// The rule reported for values of such a key found inside text.
    pub fn rule(self) -> Rule {
        match self {
            KeyKind::Password | KeyKind::Personal | KeyKind::Cookie | KeyKind::SetCookie => Rule::SecretValue,
            KeyKind::Token => Rule::ApiToken,
            KeyKind::Cloud => Rule::CloudKey,
            KeyKind::Authorization => Rule::BearerToken,
        }
    }
}

/// Normalise `key` into `buf` (lowercase alphanumerics only); returns the length,
/// or `None` if the key is too long to be a plausible secret key name.
#[inline]
pub(crate) fn normalize_key(key: &[u8], buf: &mut [u8; 48]) -> Option<usize> {
    let mut n = 0;
    for &c in key {
        if c.is_ascii_alphanumeric() {
            if n == buf.len() {
                return None;
            }
            buf[n] = c.to_ascii_lowercase();
            n += 1;
        }
    }
    Some(n)
}

/// Classify a raw key (any separators/case).
pub(crate) fn classify_key(key: &[u8]) -> Option<KeyKind> {
    let mut buf = [0u8; 48];
    let n = normalize_key(key, &mut buf)?;
    classify_norm(&buf[..n])
}

/// Classify a normalised key (lowercase alphanumerics).
pub(crate) fn classify_norm(k: &[u8]) -> Option<KeyKind> {
    use KeyKind::*;
    // `password2`, `api_key_1`: numbered variants of the same key.
    let mut k = k;
    while k.len() > 3 && k[k.len() - 1].is_ascii_digit() {
        k = &k[..k.len() - 1];
    }
    const EXACT: &[&[u8]] =
        &[b"pw", b"passwordconfirmation", b"passwordconfirm", b"secretkeybase", b"passcode", b"otp"];
    if (1..=20).contains(&k.len()) && matches!(k[0], b'p' | b's' | b'o') && EXACT.contains(&k) {
        return Some(Password);
    }
    const PAGING: &[&[u8]] = &[b"pagetoken", b"continuationtoken", b"cursortoken", b"paginationtoken", b"synctoken"];
    const KEY_CLOUD: &[&[u8]] = &[b"secretaccess", b"account", b"sharedaccess"];
    const KEY_STEMS: &[&[u8]] = &[
        b"api",
        b"secret",
        b"private",
        b"access",
        b"signing",
        b"encryption",
        b"master",
        b"client",
        b"auth",
        b"license",
        b"session",
        b"storage",
        b"subscription",
        b"app",
        b"admin",
        b"service",
        b"webhook",
        b"consumer",
    ];
    const CARD: &[&[u8]] = &[b"cardnumber", b"ccnumber", b"creditcardnumber", b"socialsecuritynumber"];
    let stem = |n: usize| &k[..k.len() - n];
    // Dispatch on the last byte: most keys are rejected by one comparison.
    match *k.last()? {
        b'd' if ends(k, b"password") || ends(k, b"passwd") || ends(k, b"pwd") => Some(Password),
        b'd' if ends(k, b"sessionid") || ends(k, b"sessid") => Some(Token),
        b'd' if k == b"privatekeyid" => Some(Cloud),
        b't' if ends(k, b"secret") => Some(Password),
        b'n' if ends(k, b"token") => (!PAGING.iter().any(|p| ends(k, p))).then_some(Token),
        b'n' if ends(k, b"authorization") => Some(Authorization),
        b'n' if k == b"ssn" || ends(k, b"ssn") && k.len() <= 8 => Some(Personal),
        b'y' if ends(k, b"key") && KEY_CLOUD.iter().any(|s| ends(stem(3), s)) => Some(Cloud),
        b'y' if ends(k, b"key") && KEY_STEMS.iter().any(|s| ends(stem(3), s)) => Some(Token),
        b'e' if ends(k, b"passphrase") => Some(Password),
        b'e' if ends(k, b"setcookie") => Some(SetCookie),
        b'e' if ends(k, b"cookie") => Some(Cookie),
        b'e' if ends(k, b"sharedaccesssignature") => Some(Cloud),
        b'e' if ends(k, b"signature") => Some(Token),
        b'g' if k == b"sig" => Some(Token),
        b's' if k == b"cookies" => Some(Cookie),
        b's' if ends(k, b"credentials") || k == b"creds" || k == b"pass" => Some(Password),
        b'l' if ends(k, b"credential") => Some(Password),
        b'h' if matches!(k, b"auth" | b"basicauth" | b"httpauth" | b"proxyauth") => Some(Token),
        b'r' if CARD.iter().any(|s| ends(k, s)) => Some(Personal),
        b'o' if ends(k, b"cardno") => Some(Personal),
        b'v' | b'c' if matches!(k, b"cvv" | b"cvc") => Some(Personal),
        b'd' if k == b"creditcard" => Some(Personal),
        b'y' if k == b"socialsecurity" => Some(Personal),
        _ => None,
    }
}

/// Suffix test without a `memcmp` call (keys are short; mismatches show at
/// the last bytes).
#[inline]
fn ends(k: &[u8], suffix: &[u8]) -> bool {
    k.len() >= suffix.len() && k.iter().rev().zip(suffix.iter().rev()).all(|(a, b)| a == b)
}

/// Substring test without `memcmp` calls.
#[inline]
fn has_sub(k: &[u8], w: &[u8]) -> bool {
    k.len() >= w.len()
        && (0..=k.len() - w.len()).any(|i| k[i] == w[0] && k[i..i + w.len()].iter().zip(w).all(|(a, b)| a == b))
}

/// The last meaningful segment of a field path such as
/// `metadata.headers.authorization`, `$.user["x-api-key"]` or `/a/b/0`
/// (numeric array indices are skipped).
pub(crate) fn last_segment(path: &str) -> &[u8] {
    let b = path.as_bytes();
    let mut end = b.len();
    loop {
        while end > 0 && is_path_sep(b[end - 1]) {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && !is_path_sep(b[start - 1]) {
            start -= 1;
        }
        let seg = &b[start..end];
        if seg.is_empty() {
            return seg;
        }
        if seg.iter().all(u8::is_ascii_digit) {
            end = start;
            continue;
        }
        return seg;
    }
}

fn is_path_sep(c: u8) -> bool {
    matches!(c, b'.' | b'/' | b'[' | b']' | b'"' | b'\'' | b'$' | b' ')
}

/// Hints derived from the field path.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hints {
    /// The field is (or is inside) a phone-number field.
    pub phone: bool,
    /// The field is an SSN field.
    pub ssn: bool,
    /// The field holds a trace or span id (`trace_id`, `spanId`,
    /// `parent_span_id`, ...): a random hex number, not PII.
    pub trace: bool,
}

/// Secret classification and hints for a value at `path`, from one
/// normalisation of its last segment.
pub(crate) fn path_info(path: &str) -> (Option<KeyKind>, Hints) {
    let seg = last_segment(path);
    let mut buf = [0u8; 48];
    match normalize_key(seg, &mut buf) {
        Some(n) if n > 0 => {
            let k = &buf[..n];
            (classify_norm(k), Hints::from_norm(seg, k))
        }
        _ => (None, Hints::default()),
    }
}

impl Hints {
    /// Hints for the field at `path`.
    #[cfg(test)]
    pub fn from_path(path: &str) -> Hints {
        path_info(path).1
    }

    /// Hints from a raw last segment and its normalised form.
    fn from_norm(seg: &[u8], k: &[u8]) -> Hints {
        let mut h = Hints::default();
        if k.len() < 3 {
            return h;
        }
        let has = |w: &[u8]| has_sub(k, w);
        h.phone = has(b"phone") || has(b"mobile") || has(b"msisdn") || has(b"fax");
        if !h.phone {
            // Short words only as whole tokens of the raw segment.
            h.phone = seg_tokens(seg).any(|t| {
                t.eq_ignore_ascii_case(b"tel")
                    || t.eq_ignore_ascii_case(b"cell")
                    || t.eq_ignore_ascii_case(b"telefon")
                    || t.eq_ignore_ascii_case(b"telephone")
            });
        }
        h.ssn = has(b"ssn") || has(b"socialsecurity");
        h.trace = has(b"traceid") || has(b"spanid");
        h
    }
}

/// Tokens of a key split on non-letters and lower→upper camel-case humps.
fn seg_tokens(seg: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    core::iter::from_fn(move || {
        while i < seg.len() && !seg[i].is_ascii_alphabetic() {
            i += 1;
        }
        if i >= seg.len() {
            return None;
        }
        let s = i;
        i += 1;
        while i < seg.len()
            && seg[i].is_ascii_alphabetic()
            && !(seg[i].is_ascii_uppercase() && seg[i - 1].is_ascii_lowercase())
        {
            i += 1;
        }
        Some(&seg[s..i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for k in [
            "password",
            "db_password",
            "PGPASSWORD",
            "passwd",
            "pwd",
            "client_secret",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "access_token",
            "refreshToken",
            "github_token",
            "authorization",
            "Proxy-Authorization",
            "cookie",
            "Set-Cookie",
            "private_key",
            "credentials",
            "ssn",
            "credit_card",
            "card_number",
            "aws_secret_access_key",
            "AccountKey",
            "sig",
            "auth",
            "password2",
            "password_confirmation",
            "X-Auth-Token",
        ] {
            assert!(classify_key(k.as_bytes()).is_some(), "{k}");
        }
    }

    #[test]
    fn non_secret_keys() {
        for k in [
            "token_count",
            "password_reset_required",
            "secret_santa_enabled",
            "max_tokens",
            "tokenizer",
            "key",
            "primary_key",
            "public_key",
            "next_page_token",
            "signature_algorithm",
            "user",
            "tokens",
            "oauth_provider",
            "",
        ] {
            assert!(classify_key(k.as_bytes()).is_none(), "{k}");
        }
    }

    #[test]
    fn path_segments_and_hints() {
        assert_eq!(last_segment("metadata.headers.authorization"), b"authorization");
        assert_eq!(last_segment("$.user[\"x-api-key\"]"), b"x-api-key");
        assert_eq!(last_segment("a.phones[0]"), b"phones");
        assert!(Hints::from_path("user.phone_number").phone);
        assert!(Hints::from_path("contact.mobilePhone").phone);
        assert!(Hints::from_path("contact.tel").phone);
        assert!(!Hints::from_path("telemetry.id").phone);
        assert!(!Hints::from_path("hotel").phone);
        assert!(Hints::from_path("user.ssn").ssn);
    }
}
