//! Byte-level helpers shared by every rule: character classes, the one-pass
//! [`Summary`] prefilter, case-insensitive comparisons and keyword windows.
//!
//! All scanners work on bytes. Bytes `>= 0x80` are never word characters
//! here, so every span a scanner produces starts and ends next to ASCII bytes
//! (or at the ends of the text) and therefore on UTF-8 char boundaries.

/// The text contains '@'.
pub(crate) const F_AT: u32 = 1;
/// ':'
pub(crate) const F_COLON: u32 = 1 << 1;
/// '='
pub(crate) const F_EQ: u32 = 1 << 2;
/// '%'
pub(crate) const F_PCT: u32 = 1 << 3;
/// '+'
pub(crate) const F_PLUS: u32 = 1 << 4;
/// A byte >= 0x80.
pub(crate) const F_NONASCII: u32 = 1 << 5;
/// '.'
pub(crate) const F_DOT: u32 = 1 << 6;
/// '-'
pub(crate) const F_DASH: u32 = 1 << 7;
/// ' ' (or tab)
pub(crate) const F_SPACE: u32 = 1 << 8;
/// An ASCII uppercase letter.
pub(crate) const F_UPPER: u32 = 1 << 9;
/// An ASCII lowercase letter.
pub(crate) const F_LOWER: u32 = 1 << 10;
/// '/'
pub(crate) const F_SLASH: u32 = 1 << 11;
/// '[', '(', '{' or '<' (bracketed obfuscations).
pub(crate) const F_OPEN: u32 = 1 << 12;
/// '_'
pub(crate) const F_UNDERSCORE: u32 = 1 << 13;
/// '"' or '\''
pub(crate) const F_QUOTE: u32 = 1 << 14;
/// '&' (HTML entities)
pub(crate) const F_AMP: u32 = 1 << 15;
/// '\\' (escapes)
pub(crate) const F_BSLASH: u32 = 1 << 16;

const fn build_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let f: u32 = match b {
            b'@' => F_AT,
            b':' => F_COLON,
            b'=' => F_EQ,
            b'%' => F_PCT,
            b'+' => F_PLUS,
            b'.' => F_DOT,
            b'-' => F_DASH,
            b' ' | b'\t' => F_SPACE,
            b'/' => F_SLASH,
            b'_' => F_UNDERSCORE,
            b'"' | b'\'' => F_QUOTE,
            b'&' => F_AMP,
            b'\\' => F_BSLASH,
            b'[' | b'(' | b'{' | b'<' => F_OPEN,
            b'A'..=b'Z' => F_UPPER,
            b'a'..=b'z' => F_LOWER,
            0x80..=0xff => F_NONASCII,
            _ => 0,
        };
        t[i] = f;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = build_table();

const LANE: u32 = 21;
const LANE_MASK: u64 = (1 << LANE) - 1;

/// Per-byte counter increments packed in 21-bit lanes: digits, dots, colons.
const fn build_counts() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match b {
            b'0'..=b'9' => 1,
            b'.' => 1 << LANE,
            b':' => 1 << (2 * LANE),
            _ => 0,
        };
        i += 1;
    }
    t
}

static COUNTS: [u64; 256] = build_counts();

/// What a text contains, computed in one pass so each rule can skip texts
/// that cannot possibly match.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Summary {
    /// Union of the `F_*` flags.
    pub flags: u32,
    /// Number of ASCII digits.
    pub digits: u32,
    /// Number of '.'.
    pub dots: u32,
    /// Number of ':'.
    pub colons: u32,
}

/// Most digits in one run of digits and group separators (space - . / ( ) +):
/// phones need 7, SSNs 9, cards 13. Only computed for texts with 7+ digits.
pub(crate) fn digit_run(b: &[u8]) -> u32 {
    let mut run = 0;
    let mut best = 0;
    for &c in b {
        if c.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else if !matches!(c, b' ' | b'-' | b'.' | b'/' | b'(' | b')' | b'+') {
            run = 0;
        }
    }
    best
}

impl Summary {
    /// Summarise `b`.
    #[inline]
    pub fn of(b: &[u8]) -> Summary {
        let mut s = Summary::default();
        // Lanes hold 21 bits: sum at most 2^20 bytes at a time.
        for chunk in b.chunks(1 << 20) {
            let mut counts = 0u64;
            for &c in chunk {
                s.flags |= TABLE[c as usize];
                counts += COUNTS[c as usize];
            }
            s.digits += (counts & LANE_MASK) as u32;
            s.dots += ((counts >> LANE) & LANE_MASK) as u32;
            s.colons += ((counts >> (2 * LANE)) & LANE_MASK) as u32;
        }
        s
    }

    /// Whether every flag in `f` is present.
    #[inline]
    pub fn has(&self, f: u32) -> bool {
        self.flags & f == f
    }

    /// Whether any flag in `f` is present.
    #[inline]
    pub fn any(&self, f: u32) -> bool {
        self.flags & f != 0
    }
}

/// ASCII letter or digit.
#[inline]
pub(crate) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// base64url alphabet (letters, digits, '-', '_').
#[inline]
pub(crate) fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Byte at `i`, or 0 when out of range.
#[inline]
pub(crate) fn at(b: &[u8], i: usize) -> u8 {
    if i < b.len() { b[i] } else { 0 }
}

/// Byte before `i`, or 0 at the start.
#[inline]
pub(crate) fn before(b: &[u8], i: usize) -> u8 {
    if i > 0 && i <= b.len() { b[i - 1] } else { 0 }
}

/// Whether `b[i..]` starts with `needle` ignoring ASCII case (`needle` lowercase).
#[inline]
pub(crate) fn starts_ic(b: &[u8], i: usize, needle: &[u8]) -> bool {
    i <= b.len()
        && b.len() - i >= needle.len()
        && b[i..i + needle.len()].iter().zip(needle).all(|(x, y)| x.to_ascii_lowercase() == *y)
}

/// Whether `b[..end]` ends with `needle` ignoring ASCII case (`needle` lowercase).
#[inline]
pub(crate) fn ends_ic(b: &[u8], end: usize, needle: &[u8]) -> bool {
    end >= needle.len() && starts_ic(b, end - needle.len(), needle)
}

/// Length of the run starting at `i` whose bytes satisfy `f` (at most `max`).
#[inline]
pub(crate) fn run_len(b: &[u8], i: usize, max: usize, f: impl Fn(u8) -> bool) -> usize {
    let mut j = i;
    while j < b.len() && j - i < max && f(b[j]) {
        j += 1;
    }
    j - i
}

/// Position of the first occurrence of `needle` in `b[from..]`.
#[inline]
pub(crate) fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || from >= b.len() || b.len() - from < needle.len() {
        return None;
    }
    let first = needle[0];
    let last = b.len() - needle.len();
    let mut i = from;
    while i <= last {
        match b[i..=last].iter().position(|&c| c == first) {
            None => return None,
            Some(p) => i += p,
        }
        if starts(b, i, needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// A word of at most 16 bytes packed little-endian into a `u128`, lowercased
/// (ASCII); 0 for longer or empty words. Keyword sets compare packed words
/// as integers instead of calling `memcmp` per candidate.
#[inline]
pub(crate) const fn pack(w: &[u8]) -> u128 {
    if w.is_empty() || w.len() > 16 {
        return 0;
    }
    let mut x = 0u128;
    let mut i = 0;
    while i < w.len() {
        x |= (w[i].to_ascii_lowercase() as u128) << (8 * i);
        i += 1;
    }
    x
}

/// A fixed set of (lowercase, at most 16-byte) words.
pub(crate) struct Words<const N: usize>([u128; N]);

impl<const N: usize> Words<N> {
    /// Build the set (at compile time).
    pub const fn new(list: [&[u8]; N]) -> Self {
        let mut a = [0u128; N];
        let mut i = 0;
        while i < N {
            assert!(!list[i].is_empty() && list[i].len() <= 16);
            a[i] = pack(list[i]);
            i += 1;
        }
        Words(a)
    }

    /// Whether the packed word `w` is in the set.
    #[inline]
    pub fn has(&self, w: u128) -> bool {
        w != 0 && self.0.contains(&w)
    }

    /// Whether the word `w` (any case) is in the set.
    #[inline]
    pub fn has_word(&self, w: &[u8]) -> bool {
        self.has(pack(w))
    }
}

/// Whether any ASCII-alphabetic word in `b[lo..hi]` satisfies `pred`, which
/// gets the word packed and lowercased (see [`pack`]). Words are maximal
/// runs of ASCII letters; the window edges are widened so that words cut by
/// them are seen whole.
pub(crate) fn any_word_in(b: &[u8], lo: usize, hi: usize, mut pred: impl FnMut(u128) -> bool) -> bool {
    let mut lo = lo.min(b.len());
    let hi = hi.min(b.len());
    while lo > 0 && b[lo - 1].is_ascii_alphabetic() {
        lo -= 1;
    }
    let mut i = lo;
    while i < hi {
        if !b[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let p = pack(&b[s..i]);
        if p != 0 && pred(p) {
            return true;
        }
    }
    false
}

/// Common top-level domains, for plain-word obfuscations that need stronger
/// evidence than "any letters".
static TLDS: Words<72> = Words::new([
    b"com", b"org", b"net", b"edu", b"gov", b"mil", b"int", b"io", b"co", b"ai", b"app", b"dev", b"info", b"biz",
    b"me", b"us", b"uk", b"de", b"fr", b"es", b"it", b"nl", b"be", b"ch", b"at", b"se", b"no", b"dk", b"fi", b"pl",
    b"pt", b"ie", b"cz", b"gr", b"hu", b"ro", b"ru", b"ua", b"tr", b"jp", b"cn", b"kr", b"in", b"br", b"mx", b"ar",
    b"cl", b"au", b"nz", b"ca", b"za", b"eu", b"tv", b"xyz", b"online", b"tech", b"cloud", b"email", b"mail", b"name",
    b"pro", b"sg", b"hk", b"tw", b"il", b"ae", b"sa", b"id", b"my", b"ph", b"vn", b"th",
]);

/// Whether `s` is a common top-level domain (any case).
pub(crate) fn is_known_tld(s: &[u8]) -> bool {
    TLDS.has_word(s)
}

/// Whether `b[i..]` starts with `p` (exact bytes; no `memcmp` call).
#[inline]
pub(crate) fn starts(b: &[u8], i: usize, p: &[u8]) -> bool {
    i <= b.len() && b.len() - i >= p.len() && b[i..i + p.len()].iter().zip(p).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_flags() {
        let s = Summary::of(b"a@b.c 12=x");
        assert!(s.has(F_AT | F_DOT | F_EQ | F_SPACE | F_LOWER));
        assert!(!s.any(F_PCT | F_NONASCII | F_UPPER));
        assert_eq!((s.digits, s.dots, s.colons), (2, 1, 0));
        let s = Summary::of(b"a:b::1.2.3.4");
        assert_eq!((s.digits, s.dots, s.colons), (4, 3, 3));
        assert_eq!(digit_run(b"x 12 ab +1 (415) 555-2671, 99"), 11);
    }

    #[test]
    fn find_and_case() {
        assert_eq!(find(b"hello world", 0, b"wor"), Some(6));
        assert_eq!(find(b"hello world", 7, b"wor"), None);
        assert_eq!(find(b"aaab", 0, b"ab"), Some(2));
        assert!(starts_ic(b"xBeArEr y", 1, b"bearer"));
        assert!(ends_ic(b"the Phone", 9, b"phone"));
        assert!(!starts_ic(b"be", 0, b"bearer"));
    }

    #[test]
    fn words_in_window() {
        let t = b"call me: 123";
        assert!(any_word_in(t, 2, 8, |w| w == pack(b"call")));
        assert!(!any_word_in(t, 5, 8, |w| w == pack(b"cal")));
        static W: Words<2> = Words::new([b"phone", b"tel"]);
        assert!(W.has_word(b"Phone") && W.has_word(b"TEL") && !W.has_word(b"te"));
        assert!(is_known_tld(b"COM") && !is_known_tld(b"matrix"));
    }
}
