//! IP addresses.
//! - IPv4: a dotted quad, octets 0–255, not part of a longer dotted-number
//!   run (`1.2.3.4.5`), not glued to letters, not a product version
//!   (`v1.2.3.4`, `version 1.2.3.4`, `Chrome/120.0.0.0`). A `:port` suffix
//!   stays outside the span.
//! - IPv6: a hex/colon run at a token start with at least two colons,
//!   validated by `core::net::Ipv6Addr`; compressed forms need two groups
//!   and one group of 3+ hex digits, so `::1`, `a::b`, `std::fmt`,
//!   `10:30:00` and MAC addresses do not match. Brackets, zones and ports
//!   stay outside the span.

use super::push;
use crate::Match;
use crate::bytes::{Words, at, before, ends_ic, is_alnum};
use crate::rule::Rule;
use core::net::Ipv6Addr;
use core::str::FromStr;

fn version_word_before(b: &[u8], i: usize) -> bool {
    let mut k = i;
    let mut skipped = 0;
    while k > 0 && skipped < 3 && matches!(b[k - 1], b' ' | b':' | b'=' | b'"' | b'\'' | b'(') {
        k -= 1;
        skipped += 1;
    }
    let e = k;
    while k > 0 && e - k < 24 && b[k - 1].is_ascii_alphabetic() {
        k -= 1;
    }
    if k == e {
        return false;
    }
    static WORDS: Words<31> = Words::new([
        b"v",
        b"ver",
        b"vsn",
        b"rev",
        b"release",
        b"build",
        b"firmware",
        b"fw",
        b"kernel",
        b"chrome",
        b"firefox",
        b"safari",
        b"edge",
        b"opera",
        b"mozilla",
        b"applewebkit",
        b"android",
        b"ios",
        b"windows",
        b"nt",
        b"python",
        b"java",
        b"version",
        b"sdk",
        b"package",
        b"pkg",
        b"tag",
        b"semver",
        b"openssl",
        b"nginx",
        b"apache",
    ]);
    let w = &b[k..e];
    ends_ic(w, w.len(), b"version") || WORDS.has_word(w)
}

/// Loopback, unspecified and broadcast addresses and netmasks identify no one.
fn non_personal_v4(s: &[u8]) -> bool {
    if s.starts_with(b"127.") || s == b"0.0.0.0" {
        return true;
    }
    // Netmasks: 255.255.255.0, 255.255.240.0, ...
    s.starts_with(b"255.")
        && s.split(|&c| c == b'.')
            .all(|o| matches!(o, b"0" | b"128" | b"192" | b"224" | b"240" | b"248" | b"252" | b"254" | b"255"))
}

/// Find IPv4 addresses.
#[inline(never)]
pub(crate) fn scan_v4(b: &[u8], out: &mut Vec<Match>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        let mut parts = 0;
        let mut ok = true;
        loop {
            let k = i;
            let mut v = 0u32;
            while i < n && b[i].is_ascii_digit() {
                if i - k < 4 {
                    v = v * 10 + (b[i] - b'0') as u32;
                }
                i += 1;
            }
            if i - k > 3 || v > 255 {
                ok = false;
            }
            parts += 1;
            if at(b, i) == b'.' && at(b, i + 1).is_ascii_digit() {
                i += 1;
                continue;
            }
            break;
        }
        if !ok || parts != 4 {
            continue;
        }
        let p = before(b, s);
        let pp = if s >= 2 { b[s - 2] } else { 0 };
        if is_alnum(p)
            || matches!(p, b'_' | b'.' | b'\\')
            || p == b'/' && pp.is_ascii_alphanumeric()
            || p == b'-' && pp.is_ascii_alphabetic()
        {
            continue;
        }
        let nx = at(b, i);
        if is_alnum(nx) || nx == b'_' {
            continue;
        }
        // A network address in CIDR notation (`10.96.0.0/12`) is a range.
        let network = b[i - 2..i] == *b".0" && nx == b'/' && at(b, i + 1).is_ascii_digit();
        if network || version_word_before(b, s) || non_personal_v4(&b[s..i]) {
            continue;
        }
        push(out, s, i, Rule::Ipv4);
    }
}

#[inline]
fn is_v6(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

fn valid_v6(s: &[u8]) -> bool {
    let Ok(txt) = core::str::from_utf8(s) else {
        return false;
    };
    if Ipv6Addr::from_str(txt).is_err() {
        return false;
    }
    if !txt.contains("::") {
        return true;
    }
    let mut groups = 0;
    let mut long = false;
    let mut digit = false;
    for g in txt.split(':').filter(|g| !g.is_empty()) {
        groups += 1;
        long |= g.len() >= 3 || g.contains('.');
        digit |= g.bytes().any(|c| c.is_ascii_digit());
    }
    // `beef::cafe`, `dead::beef` read as words, not addresses.
    groups >= 2 && long && (digit || groups > 2)
}

/// Find IPv6 addresses.
#[inline(never)]
pub(crate) fn scan_v6(b: &[u8], out: &mut Vec<Match>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        let c = b[i];
        if !(c.is_ascii_hexdigit() || c == b':') {
            i += 1;
            continue;
        }
        let p = before(b, i);
        if is_alnum(p) || matches!(p, b':' | b'.' | b'_' | b'-') {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut colons = 0;
        while j < n && j - i < 46 && is_v6(b[j]) {
            colons += (b[j] == b':') as u32;
            j += 1;
        }
        if colons < 2 || is_alnum(at(b, j)) || matches!(at(b, j), b'_' | b'-' | b'(') {
            i = j.max(i + 1);
            continue;
        }
        let mut e = j;
        while e > i && b[e - 1] == b'.' {
            e -= 1;
        }
        if e > i + 2 && b[e - 1] == b':' && b[e - 2] != b':' {
            e -= 1;
        }
        // A prefix (`2001:db8::/32`) is a range, not an address.
        let prefix = b[..e].ends_with(b"::") && at(b, e) == b'/';
        if !prefix && valid_v6(&b[i..e]) {
            push(out, i, e, Rule::Ipv6);
        }
        i = j.max(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        scan_v4(t.as_bytes(), &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    fn v6(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        scan_v6(t.as_bytes(), &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    #[test]
    fn ipv4() {
        assert_eq!(v4("from 192.0.2.10:443."), ["192.0.2.10"]);
        assert_eq!(v4("http://10.0.0.1/x 0.0.0.0"), ["10.0.0.1"]);
        assert_eq!(v4("ip=203.0.113.7,198.51.100.2"), ["203.0.113.7", "198.51.100.2"]);
        assert_eq!(v4("::ffff:192.0.2.1"), ["192.0.2.1"]);
        assert_eq!(v4("range 192.0.2.1-192.0.2.254"), ["192.0.2.1", "192.0.2.254"]);
        for t in [
            "1.2.3.4.5",
            "v1.2.3.4",
            "version 1.2.3.4",
            "1.2.3.4567",
            "256.1.1.1",
            "Chrome/120.0.0.0 Safari",
            "1.2.3",
            "AssemblyVersion(\"1.0.0.0\")",
            "a1.2.3.4",
            "1.3.6.1.4.1.311",
            "bind 0.0.0.0:80",
            "127.0.0.1:8080",
            "netmask 255.255.255.0",
            "service cidr 10.96.0.0/12",
        ] {
            assert!(v4(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn ipv6() {
        assert_eq!(v6("src 2001:db8::1 x"), ["2001:db8::1"]);
        assert_eq!(v6("http://[2001:db8::1]:8080/"), ["2001:db8::1"]);
        assert_eq!(v6("::ffff:192.0.2.1"), ["::ffff:192.0.2.1"]);
        assert_eq!(v6("fe80::1ff:fe23:4567:890a%eth0"), ["fe80::1ff:fe23:4567:890a"]);
        assert_eq!(v6("2001:0db8:85a3:0000:0000:8a2e:0370:7334"), ["2001:0db8:85a3:0000:0000:8a2e:0370:7334"]);
        assert_eq!(v6("addr=2001:db8:0:0:1:0:0:1,"), ["2001:db8:0:0:1:0:0:1"]);
        for t in [
            "10:30:00",
            "std::fmt::Display",
            "Foo::bar",
            "a::b",
            "::1",
            "00:1a:2b:3c:4d:5e",
            "2024-01-15T10:30:00Z",
            "ab::cd",
            "call beef::cafe() now",
            "127.0.0.1",
        ] {
            assert!(v6(t).is_empty(), "{t}: {:?}", v6(t));
        }
    }
}
