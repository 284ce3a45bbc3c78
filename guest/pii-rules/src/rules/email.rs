//! E-mail addresses with a literal `@` (the normalised view turns `%40`,
//! `＠`, `﹫` into one, so those are found here too): `local@domain.tld`,
//! plus-addressing, subdomains, IDN Latin letters, `mailto:`, JSON-in-strings.
//!
//! Rejected on purpose: `@handle`, `@Override`, npm `@scope/pkg@1.2.3`
//! (numeric TLD), `icon@2x.png`, `Foo@1b6d3586`, URL userinfo
//! (`https://user:pass@host`, `ssh://git@host`) and scp-style `git@host:repo`.

use super::push;
use crate::Match;
use crate::bytes::{at, before, is_alnum};
use crate::rule::Rule;

/// Local-part byte (ASCII).
#[inline]
pub(crate) fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

/// Latin-1 / Latin Extended-A/B letter (lead byte 0xC3..=0xC9) ending at `i`
/// (exclusive): returns its start.
#[inline]
fn latin_before(b: &[u8], i: usize) -> Option<usize> {
    if i >= 2 && (0x80..0xC0).contains(&b[i - 1]) && (0xC3..=0xC9).contains(&b[i - 2]) { Some(i - 2) } else { None }
}

/// Latin letter starting at `i`: returns its end.
#[inline]
fn latin_at(b: &[u8], i: usize) -> Option<usize> {
    if (0xC3..=0xC9).contains(&at(b, i)) && (0x80..0xC0).contains(&at(b, i + 1)) { Some(i + 2) } else { None }
}

#[inline]
fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// Start of the local part ending at `end` (the `@`), or `None`.
pub(crate) fn local_start(b: &[u8], end: usize) -> Option<usize> {
    let mut s = end;
    while s > 0 && end - s < 64 {
        let c = b[s - 1];
        if is_local(c) {
            s -= 1;
        } else if let Some(p) = latin_before(b, s) {
            s = p;
        } else {
            break;
        }
    }
    // A percent escape inside the local part is an encoded separator
    // (`q=foo%20john@...`): the address starts after it.
    let mut k = s;
    while k + 2 < end {
        if b[k] == b'%' && hex(b[k + 1]) && hex(b[k + 2]) {
            s = k + 3;
            k += 3;
        } else {
            k += 1;
        }
    }
    while s < end && b[s] < 0x80 && !is_alnum(b[s]) && b[s] != b'_' {
        s += 1;
    }
    // `\njohn@...` inside JSON-in-strings: skip the escape letter.
    if before(b, s) == b'\\' && matches!(at(b, s), b'n' | b't' | b'r') {
        s += 1;
    }
    if s >= end {
        return None;
    }
    Some(s)
}

/// Parse a domain starting at `i`: returns (end, start of the last label,
/// number of labels). Labels are separated by single dots.
pub(crate) fn domain(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let mut j = i;
    let mut labels = 0;
    let mut last = i;
    loop {
        let ls = j;
        while j < b.len() && j - i < 253 {
            let c = b[j];
            if is_alnum(c) || c == b'-' {
                j += 1;
            } else if let Some(e) = latin_at(b, j) {
                j = e;
            } else {
                break;
            }
        }
        if j == ls {
            break;
        }
        if b[ls] == b'-' || b[j - 1] == b'-' {
            return None;
        }
        labels += 1;
        last = ls;
        if at(b, j) == b'.' && (is_alnum(at(b, j + 1)) || latin_at(b, j + 1).is_some()) {
            j += 1;
            continue;
        }
        break;
    }
    if labels == 0 {
        return None;
    }
    Some((j, last, labels))
}

/// Whether `t` is a plausible TLD: 2–24 ASCII letters, or punycode.
#[inline]
pub(crate) fn tld_ok(t: &[u8]) -> bool {
    (2..=24).contains(&t.len()) && t.iter().all(u8::is_ascii_alphabetic)
        || t.len() > 4 && t[..4].eq_ignore_ascii_case(b"xn--")
}

/// `2x`, `3x`, `1.5x`: image scale suffixes, not domains.
fn is_scale(label: &[u8]) -> bool {
    label.len() >= 2 && label[label.len() - 1] == b'x' && label[..label.len() - 1].iter().all(u8::is_ascii_digit)
}

/// Whether the `@` at `a` ends the userinfo of a URL authority
/// (`scheme://...@` with no `/` in between).
pub(crate) fn in_userinfo(b: &[u8], a: usize) -> bool {
    let mut k = a;
    while k > 0 && a - k < 256 {
        let c = b[k - 1];
        if matches!(c, b' ' | b'\t' | b'"' | b'\'' | b'<' | b'(' | b'\n') {
            return false;
        }
        if c == b'/' {
            return k >= 3 && &b[k - 3..k] == b"://" || k >= 2 && &b[k - 2..k] == b":/";
        }
        k -= 1;
    }
    false
}

/// The email whose `@` is at `a`, as (start, end).
fn email_at(b: &[u8], a: usize) -> Option<(usize, usize)> {
    let s = local_start(b, a)?;
    let (e, last, labels) = domain(b, a + 1)?;
    if labels < 2 || !tld_ok(&b[last..e]) {
        return None;
    }
    let first_end = b[a + 1..e].iter().position(|&c| c == b'.').map_or(e, |p| a + 1 + p);
    if is_scale(&b[a + 1..first_end]) {
        return None;
    }
    // URL userinfo: `scheme://user@host`, `scheme://user:p!ss@host`.
    if in_userinfo(b, a) {
        return None;
    }
    // scp-style git remotes: `git@github.com:org/repo.git`.
    if &b[s..a] == b"git" && at(b, e) == b':' {
        return None;
    }
    Some((s, e))
}

/// Find literal-`@` email addresses.
#[inline(never)]
pub(crate) fn scan(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'@') {
        let a = i + p;
        i = a + 1;
        if let Some((s, e)) = email_at(b, a) {
            push(out, s, e, Rule::Email);
            i = e;
        }
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
        assert_eq!(found("mail john.doe+tag@mail.example.co.uk."), ["john.doe+tag@mail.example.co.uk"]);
        assert_eq!(found("mailto:jane@example.org"), ["jane@example.org"]);
        assert_eq!(found(r#"{\"email\":\"a_b@example.com\"}"#), ["a_b@example.com"]);
        assert_eq!(found("WHERE email='o'brien@example.com'"), ["o'brien@example.com"]);
        assert_eq!(found("x\\njohn@example.com"), ["john@example.com"]);
        assert_eq!(found("q=foo%20john@example.com"), ["john@example.com"]);
        assert_eq!(found("zoë@exämple.de a@b.io"), ["zoë@exämple.de", "a@b.io"]);
    }

    #[test]
    fn negatives() {
        for t in [
            "@Override",
            "npm i @babel/core@7.22.0",
            "icon@2x.png",
            "java.lang.Object@1b6d3586",
            "user@localhost",
            "https://user:pass@example.com/x",
            "ssh://git@github.com/org/repo",
            "git@github.com:org/repo.git",
            "follow @example on x.com",
            "image@sha256:abcdef",
            "amqps://svc:Zx8!kq@mq.example.com:5671/vhost",
        ] {
            assert!(found(t).is_empty(), "{t}");
        }
    }
}
