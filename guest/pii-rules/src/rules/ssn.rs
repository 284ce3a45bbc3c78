//! US social security numbers: `123-45-6789` / `123 45 6789` (same separator
//! twice) with the SSA validity rules (area not 000, 666 or 900–999; group
//! not 00; serial not 0000). An undelimited 9-digit run counts only with an
//! "ssn" / "social security" keyword nearby or an ssn-ish field path.

use super::push;
use crate::Match;
use crate::bytes::{Words, any_word_in, at, before, is_alnum};
use crate::rule::Rule;
use crate::scanner::Cx;

/// SSA validity of area/group/serial digit strings.
pub(crate) fn valid(area: &[u8], group: &[u8], serial: &[u8]) -> bool {
    let v = |d: &[u8]| d.iter().fold(0u32, |a, &c| a * 10 + (c - b'0') as u32);
    let (a, g, s) = (v(area), v(group), v(serial));
    a != 0 && a != 666 && a < 900 && g != 0 && s != 0
}

fn left_ok(b: &[u8], i: usize) -> bool {
    let p = before(b, i);
    if is_alnum(p) || p == b'_' || p == b'#' {
        return false;
    }
    !(matches!(p, b'-' | b'.' | b'/' | b':' | b'+') && i >= 2 && b[i - 2].is_ascii_digit()
        || matches!(p, b'-' | b'.' | b'/') && i >= 2 && is_alnum(b[i - 2]))
}

fn right_ok(b: &[u8], e: usize) -> bool {
    let n = at(b, e);
    !(is_alnum(n) || n == b'_' || matches!(n, b'-' | b'.' | b'/' | b':') && at(b, e + 1).is_ascii_digit())
}

fn digits_at(b: &[u8], i: usize, n: usize) -> bool {
    i + n <= b.len() && b[i..i + n].iter().all(u8::is_ascii_digit)
}

static SSN_WORDS: Words<5> = Words::new([b"ssn", b"ssns", b"social", b"socialsecurity", b"ss"]);

fn is_ssn_word(w: u128) -> bool {
    SSN_WORDS.has(w)
}

/// Find SSNs.
#[inline(never)]
pub(crate) fn scan(b: &[u8], cx: &Cx, out: &mut Vec<Match>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && b[i].is_ascii_digit() {
            i += 1;
        }
        if !left_ok(b, s) {
            continue;
        }
        let len = i - s;
        if len == 3 {
            let sep = at(b, i);
            if (sep == b'-' || sep == b' ') && digits_at(b, i + 1, 2) && at(b, i + 3) == sep && digits_at(b, i + 4, 4) {
                let e = i + 8;
                if right_ok(b, e) && valid(&b[s..s + 3], &b[i + 1..i + 3], &b[i + 4..e]) {
                    push(out, s, e, Rule::UsSsn);
                    i = e;
                }
            }
        } else if len == 9
            && right_ok(b, i)
            && valid(&b[s..s + 3], &b[s + 3..s + 5], &b[s + 5..i])
            && (cx.hints.ssn
                || any_word_in(b, s.saturating_sub(40), s, is_ssn_word)
                || any_word_in(b, i, i + 16, is_ssn_word))
        {
            push(out, s, i, Rule::UsSsn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Summary;
    use crate::keys::Hints;
    use crate::rule::RuleSet;

    fn found_h(t: &str, ssn: bool) -> Vec<&str> {
        let cx = Cx {
            rules: RuleSet::all(),
            hints: Hints { phone: false, ssn, trace: false },
            sum: Summary::of(t.as_bytes()),
        };
        let mut v = Vec::new();
        scan(t.as_bytes(), &cx, &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    #[test]
    fn positives() {
        assert_eq!(found_h("ssn 123-45-6789.", false), ["123-45-6789"]);
        assert_eq!(found_h("id: 123 45 6789", false), ["123 45 6789"]);
        assert_eq!(found_h("SSN:123456789", false), ["123456789"]);
        assert_eq!(found_h("social security number 078051120", false), ["078051120"]);
        assert_eq!(found_h("123456789", true), ["123456789"]);
        assert_eq!(found_h("a,4155552671,123-45-6789,7", false), ["123-45-6789"]);
    }

    #[test]
    fn negatives() {
        for t in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123-45 6789",
            "order 123456789",
            "123-45-67890",
            "1-123-45-6789",
            "x123-45-6789",
            "2024-123-45-6789",
        ] {
            assert!(found_h(t, false).is_empty(), "{t}");
        }
    }
}
