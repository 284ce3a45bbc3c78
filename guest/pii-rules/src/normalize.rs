//! The normalised view: undoes obfuscations (percent-encoding, `+` for space
//! in form data, look-alike Unicode digits, fullwidth ASCII, small/fullwidth
//! `@` and `.`, exotic spaces and dashes, zero-width characters) into an ASCII
//! buffer plus an offset map back to the original bytes.
//!
//! It is only built when [`needed`] finds a trigger, so plain ASCII texts
//! never pay for it. Spans found in the view are mapped back with
//! [`Normalized::map_back`] so that they cover the *original* obfuscated
//! substring (including zero-width characters inside it).

use crate::Match;
use crate::bytes::{F_AMP, F_BSLASH, F_EQ, F_NONASCII, F_PCT, F_PLUS, Summary, at, before, is_alnum, starts_ic};

/// A normalised copy of a text with, for every output byte, the original
/// byte range it came from.
pub(crate) struct Normalized {
    /// The normalised bytes (mostly ASCII; unmapped non-ASCII kept as-is).
    pub bytes: Vec<u8>,
    starts: Vec<u32>,
    ends: Vec<u32>,
}

/// What to do with one non-ASCII char.
enum Map {
    /// Leave it (copy its bytes).
    Keep,
    /// Remove it (zero-width).
    Drop,
    /// Replace it by one ASCII byte.
    Ascii(u8),
}

fn map_char(c: u32) -> Map {
    match c {
        0x200B..=0x200D | 0x2060..=0x2064 | 0xFEFF | 0x00AD | 0x180E | 0x034F => Map::Drop,
        0x0660..=0x0669 => Map::Ascii(b'0' + (c - 0x0660) as u8),
        0x06F0..=0x06F9 => Map::Ascii(b'0' + (c - 0x06F0) as u8),
        0x0966..=0x096F => Map::Ascii(b'0' + (c - 0x0966) as u8),
        0x09E6..=0x09EF => Map::Ascii(b'0' + (c - 0x09E6) as u8),
        0x1D7CE..=0x1D7FF => Map::Ascii(b'0' + ((c - 0x1D7CE) % 10) as u8),
        0xFF01..=0xFF5E => Map::Ascii((c - 0xFEE0) as u8),
        0xFE6B => Map::Ascii(b'@'),
        0xFE52 | 0x3002 | 0xFF61 | 0x2024 => Map::Ascii(b'.'),
        0xFE63 | 0x2010..=0x2015 | 0x2212 => Map::Ascii(b'-'),
        0xFE62 => Map::Ascii(b'+'),
        0x00A0 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 => Map::Ascii(b' '),
        _ => Map::Keep,
    }
}

/// Decode the UTF-8 char starting at `b[i]` (valid UTF-8 assumed); returns
/// the code point and its length.
#[inline]
fn decode(b: &[u8], i: usize) -> (u32, usize) {
    let c0 = b[i] as u32;
    let cont = |k: usize| (at(b, i + k) & 0x3f) as u32;
    if c0 < 0x80 {
        (c0, 1)
    } else if c0 < 0xE0 {
        (((c0 & 0x1f) << 6) | cont(1), 2)
    } else if c0 < 0xF0 {
        (((c0 & 0x0f) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (((c0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3), 4)
    }
}

#[inline]
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `%XX` at `i` → the byte value.
#[inline]
fn pct_at(b: &[u8], i: usize) -> Option<u8> {
    if at(b, i) != b'%' {
        return None;
    }
    Some(hex_val(at(b, i + 1))? << 4 | hex_val(at(b, i + 2))?)
}

/// Decode a percent-encoded UTF-8 sequence starting at `i` (lead byte `v`);
/// returns the code point and the number of source bytes.
fn pct_utf8(b: &[u8], i: usize, v: u8) -> Option<(u32, usize)> {
    let n = match v {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let mut c = (v as u32) & (0x7f >> n);
    for k in 1..n {
        let x = pct_at(b, i + 3 * k)?;
        if x & 0xC0 != 0x80 {
            return None;
        }
        c = (c << 6) | (x & 0x3f) as u32;
    }
    Some((c, 3 * n))
}

/// An HTML character reference at `i` (`&#64;`, `&#x40;`, `&commat;`, ...):
/// returns the code point and its length.
fn entity_at(b: &[u8], i: usize) -> Option<(u32, usize)> {
    if at(b, i) != b'&' {
        return None;
    }
    const NAMED: &[(&[u8], u32)] = &[
        (b"&commat;", 0x40),
        (b"&period;", 0x2e),
        (b"&plus;", 0x2b),
        (b"&amp;", 0x26),
        (b"&quot;", 0x22),
        (b"&apos;", 0x27),
        (b"&colon;", 0x3a),
        (b"&lpar;", 0x28),
        (b"&rpar;", 0x29),
    ];
    if at(b, i + 1) != b'#' {
        return NAMED.iter().find(|(n, _)| starts_ic(b, i, n)).map(|(n, c)| (*c, n.len()));
    }
    let (radix, mut j) = if matches!(at(b, i + 2), b'x' | b'X') { (16, i + 3) } else { (10, i + 2) };
    let s = j;
    let mut v = 0u32;
    while j - s < 6 {
        let Some(d) = (at(b, j) as char).to_digit(radix) else {
            break;
        };
        v = v * radix + d;
        j += 1;
    }
    (j > s && at(b, j) == b';').then_some((v, j + 1 - i))
}

/// A `\uXXXX` escape at `i`: returns the code point.
fn uescape_at(b: &[u8], i: usize) -> Option<u32> {
    if at(b, i) != b'\\' || at(b, i + 1) != b'u' {
        return None;
    }
    let mut v = 0u32;
    for k in 2..6 {
        v = v * 16 + hex_val(at(b, i + k))? as u32;
    }
    Some(v)
}

/// What an escaped code point becomes in the view, if anything.
fn escaped(c: u32) -> Option<Map> {
    if (0x20..0x7f).contains(&c) {
        return Some(Map::Ascii(c as u8));
    }
    match map_char(c) {
        Map::Keep => None,
        m => Some(m),
    }
}

/// Whether a `+` at `i` stands for a space (form encoding).
#[inline]
fn plus_is_space(b: &[u8], i: usize) -> bool {
    let p = before(b, i);
    let n = at(b, i + 1);
    is_alnum(p) && (is_alnum(n) || n == b'%')
}

/// Whether `b` contains anything the normalised view would change.
pub(crate) fn needed(b: &[u8], sum: &Summary) -> bool {
    if sum.any(F_PCT) {
        let mut i = 0;
        while let Some(p) = b[i..].iter().position(|&c| c == b'%') {
            if pct_at(b, i + p).is_some() {
                return true;
            }
            i += p + 1;
        }
    }
    if sum.has(F_PLUS | F_EQ) && (0..b.len()).any(|i| b[i] == b'+' && plus_is_space(b, i)) {
        return true;
    }
    if sum.any(F_AMP)
        && (0..b.len()).any(|i| b[i] == b'&' && entity_at(b, i).is_some_and(|(c, _)| escaped(c).is_some()))
    {
        return true;
    }
    if sum.any(F_BSLASH)
        && (0..b.len()).any(|i| b[i] == b'\\' && uescape_at(b, i).is_some_and(|c| escaped(c).is_some()))
    {
        return true;
    }
    if sum.any(F_NONASCII) {
        let mut i = 0;
        while i < b.len() {
            if b[i] < 0x80 {
                i += 1;
                continue;
            }
            let (c, n) = decode(b, i);
            match map_char(c) {
                Map::Keep => {}
                // Exotic spaces and dashes matter only inside numbers; CJK
                // punctuation and fullwidth symbols only as digits, `@`, `.`, `+`
                // or letters.
                Map::Ascii(b' ' | b'-') => {
                    if before(b, i).is_ascii_digit() || at(b, i + n).is_ascii_digit() {
                        return true;
                    }
                }
                Map::Ascii(a) if (0xFF01..=0xFF5E).contains(&c) => {
                    if a.is_ascii_alphanumeric() || matches!(a, b'@' | b'.' | b'+') {
                        return true;
                    }
                }
                _ => return true,
            }
            i += n;
        }
    }
    false
}

impl Normalized {
    /// An empty view (reusable scratch space).
    pub const fn new() -> Normalized {
        Normalized { bytes: Vec::new(), starts: Vec::new(), ends: Vec::new() }
    }

    /// Build the normalised view of `b`.
    #[cfg(test)]
    pub fn build(b: &[u8], sum: &Summary) -> Normalized {
        let mut v = Normalized::new();
        v.rebuild(b, sum);
        v
    }

    /// Rebuild this view from `b`, reusing its buffers.
    pub fn rebuild(&mut self, b: &[u8], sum: &Summary) {
        let form = sum.has(F_PLUS | F_EQ);
        let v = self;
        v.bytes.clear();
        v.starts.clear();
        v.ends.clear();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'%' {
                // Double encoding: `%2540` is `%40`.
                if let (Some(0x25), Some(h), Some(l)) = (pct_at(b, i), hex_val(at(b, i + 3)), hex_val(at(b, i + 4))) {
                    let x = h << 4 | l;
                    if (0x20..0x7f).contains(&x) {
                        v.push(x, i, i + 5);
                        i += 5;
                        continue;
                    }
                }
                if let Some(x) = pct_at(b, i) {
                    if (0x20..0x7f).contains(&x) {
                        v.push(x, i, i + 3);
                        i += 3;
                        continue;
                    }
                    if let Some((cp, n)) = pct_utf8(b, i, x) {
                        match map_char(cp) {
                            Map::Drop => {}
                            Map::Ascii(a) => v.push(a, i, i + n),
                            Map::Keep => {
                                for (k, &x) in b.iter().enumerate().skip(i).take(n) {
                                    v.push(x, k, k + 1);
                                }
                            }
                        }
                        i += n;
                        continue;
                    }
                }
                v.push(c, i, i + 1);
                i += 1;
            } else if let Some((m, n)) = (c == b'&' || c == b'\\')
                .then(|| {
                    let (cp, n) = entity_at(b, i).or_else(|| uescape_at(b, i).map(|c| (c, 6)))?;
                    Some((escaped(cp)?, n))
                })
                .flatten()
            {
                if let Map::Ascii(a) = m {
                    v.push(a, i, i + n);
                }
                i += n;
            } else if c == b'+' && form && plus_is_space(b, i) {
                v.push(b' ', i, i + 1);
                i += 1;
            } else if c < 0x80 {
                v.push(c, i, i + 1);
                i += 1;
            } else {
                let (cp, n) = decode(b, i);
                match map_char(cp) {
                    Map::Drop => {}
                    Map::Ascii(a) => v.push(a, i, i + n),
                    Map::Keep => {
                        for &x in &b[i..i + n] {
                            v.push(x, i, i + n);
                        }
                    }
                }
                i += n;
            }
        }
    }

    #[inline]
    fn push(&mut self, c: u8, s: usize, e: usize) {
        self.bytes.push(c);
        self.starts.push(s as u32);
        self.ends.push(e as u32);
    }

    /// Rewrite spans found in the view into spans of the original text.
    pub fn map_back(&self, ms: &mut [Match]) {
        for m in ms {
            if m.start >= m.end || m.end > self.bytes.len() {
                m.end = m.start;
                continue;
            }
            m.start = self.starts[m.start] as usize;
            m.end = self.ends[m.end - 1] as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Rule;

    fn norm(s: &str) -> String {
        let b = s.as_bytes();
        let sum = Summary::of(b);
        assert!(needed(b, &sum), "{s}");
        String::from_utf8(Normalized::build(b, &sum).bytes).unwrap()
    }

    #[test]
    fn decodes_obfuscations() {
        assert_eq!(norm("john%40example.com"), "john@example.com");
        assert_eq!(norm("p=%2B49+151+2345"), "p=+49 151 2345");
        assert_eq!(norm("jo\u{200B}hn＠example．com"), "john@example.com");
        assert_eq!(norm("０１٢३"), "0123");
        assert_eq!(norm("\u{1D7D9}\u{1D7F6}"), "10");
        assert_eq!(norm("a﹫b"), "a@b");
        assert_eq!(norm("x%EF%BC%A0y"), "x@y");
        assert_eq!(norm("u%3Dtina%2540ex.com"), "u=tina@ex.com");
        assert_eq!(norm("john&#64;ex&#x2E;com"), "john@ex.com");
        assert_eq!(norm("john&commat;ex&period;com"), "john@ex.com");
        assert_eq!(norm("john\\u0040ex\\u200b.com"), "john@ex.com");
        assert_eq!(norm("café 1\u{00A0}2"), "café 1 2");
    }

    #[test]
    fn plain_is_not_needed() {
        for s in ["hello world", "a+b", "café", "100%", "x=1+", "a – b", "你好，世界：", "Prix : 12 €"] {
            let b = s.as_bytes();
            assert!(!needed(b, &Summary::of(b)), "{s}");
        }
    }

    #[test]
    fn maps_back_spans() {
        let s = "x jo\u{200B}hn%40ex.com y";
        let b = s.as_bytes();
        let v = Normalized::build(b, &Summary::of(b));
        let t = core::str::from_utf8(&v.bytes).unwrap();
        let st = t.find("john").unwrap();
        let mut m = [Match { start: st, end: st + "john@ex.com".len(), rule: Rule::Email }];
        v.map_back(&mut m);
        assert_eq!(&s[m[0].start..m[0].end], "jo\u{200B}hn%40ex.com");
    }
}
