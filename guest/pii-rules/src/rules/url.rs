//! Credentials in URLs and DSNs: the userinfo of `scheme://user:pass@host`
//! (`postgres://`, `mysql://`, `mongodb+srv://`, `redis://:pass@`, `amqp://`,
//! `https://`, `ftp://`, ...) is reported whole, so
//! `postgres://app:s3cr3t@db:5432/x` becomes `postgres://<CREDENTIAL>@db:5432/x`.
//! A username without a password (`ssh://git@github.com`) is left alone.
//! Go-style DSNs (`user:pass@tcp(host:3306)/db`) are handled as well.
//! `Password=...;` style DSNs are covered by the key/value rule.

use super::push;
use crate::Match;
use crate::bytes::{at, before, find};
use crate::rule::Rule;

#[inline]
fn userinfo_end(c: u8) -> bool {
    matches!(c, b'/' | b'?' | b'#' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b'<' | b'>' | b'\\' | b'`' | b'[')
}

fn is_placeholder_password(p: &[u8]) -> bool {
    p.is_empty() || p.iter().all(|&c| matches!(c, b'*' | b'x' | b'X')) || matches!(p[0], b'$' | b'{' | b'<' | b'%')
}

/// Find `scheme://user:pass@` userinfo.
#[inline(never)]
pub(crate) fn scan(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while let Some(p) = find(b, i, b"://") {
        i = p + 3;
        // Scheme: letters, digits, + . - and a letter first.
        let mut s = p;
        while s > 0 && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'.' | b'-')) {
            s -= 1;
        }
        if s == p || !b[s].is_ascii_alphabetic() {
            continue;
        }
        let u = p + 3;
        let mut j = u;
        let mut last_at = None;
        while j < b.len() && !userinfo_end(b[j]) && j - u < 512 {
            if b[j] == b'@' {
                last_at = Some(j);
            }
            j += 1;
        }
        let Some(a) = last_at else {
            continue;
        };
        let info = &b[u..a];
        let Some(colon) = info.iter().position(|&c| c == b':') else {
            continue;
        };
        if is_placeholder_password(&info[colon + 1..]) {
            continue;
        }
        push(out, u, a, Rule::UrlCredential);
        i = a + 1;
    }
}

/// Go MySQL-style DSNs: `user:pass@tcp(host:3306)/db`, `user:pass@unix(/sock)/db`.
#[inline(never)]
pub(crate) fn scan_dsn_at(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'@') {
        let a = i + p;
        i = a + 1;
        if !(b[a + 1..].starts_with(b"tcp(") || b[a + 1..].starts_with(b"unix(")) {
            continue;
        }
        let mut s = a;
        while s > 0 && a - s < 256 && !matches!(b[s - 1], b' ' | b'\t' | b'"' | b'\'' | b'=' | b'`' | b'/' | b'\\') {
            s -= 1;
        }
        let info = &b[s..a];
        if let Some(c) = info.iter().position(|&c| c == b':')
            && c > 0
            && !is_placeholder_password(&info[c + 1..])
            && before(b, s) != b':'
            && at(b, s) != b'@'
        {
            push(out, s, a, Rule::UrlCredential);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        scan(t.as_bytes(), &mut v);
        scan_dsn_at(t.as_bytes(), &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    #[test]
    fn positives() {
        let cases: &[(&str, &str)] = &[
            ("postgres://app:s3cr3t@db:5432/x", "app:s3cr3t"),
            ("DATABASE_URL=mysql://root:pa@ss@10.0.0.5/db", "root:pa@ss"),
            ("mongodb+srv://admin:hunter2@cluster0.example.net/test", "admin:hunter2"),
            ("redis://:topsecret@cache:6379/0", ":topsecret"),
            ("amqp://guest:guest@rabbit:5672/", "guest:guest"),
            ("see https://user:pass@example.com/path?q=1", "user:pass"),
            ("ftp://anon:pw123@ftp.example.org", "anon:pw123"),
            ("dsn=app:secret@tcp(127.0.0.1:3306)/shop", "app:secret"),
        ];
        for (t, want) in cases {
            assert_eq!(found(t), [*want], "{t}");
        }
    }

    #[test]
    fn negatives() {
        for t in [
            "ssh://git@github.com/org/repo.git",
            "https://example.com/a@b",
            "postgres://app:***@db/x",
            "https://example.com:8443/path",
            "postgres://app:${PASS}@db/x",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
