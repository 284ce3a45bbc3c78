//! Phone numbers. A digit run (digits grouped by single spaces, dashes, dots,
//! one slash or parentheses, optionally led by `+`) is parsed into groups and
//! classified:
//! - `+cc ...` / `00cc ...`: international, 8–15 digits;
//! - NANP `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `1-415-555-2671`;
//! - trunk-0 national numbers (`030 12345678`, `06 12 34 56 78`,
//!   `020 7946 0958`, `07700 900123`, `0151/23456789`), Spanish `612 34 56 78`,
//!   Brazilian `(11) 91234-5678`;
//! - anything else with 7–15 digits (incl. a bare run like `4155552671`) only
//!   with a phone keyword nearby or a phone-ish field path.
//!
//! Dates, times (a group followed by `:digit` is an hour), versions, IPs,
//! thousands-grouped numbers and runs glued to letters are rejected.

use super::phone_words::{non_ascii_phone_word, phone_words_in, tight_phone_word};
use super::push;
use crate::Match;
use crate::bytes::{at, before, is_alnum};
use crate::rule::Rule;
use crate::scanner::Cx;

const MAX_GROUPS: usize = 12;

#[derive(Clone, Copy, Default)]
struct Group {
    /// Digits span (without parentheses).
    s: usize,
    e: usize,
    paren: bool,
    /// Separator to the next group: b' ', b'-', b'.', b'/', b')' (none after
    /// a parenthesised group) or 0 for the last group.
    sep: u8,
}

impl Group {
    fn len(&self) -> usize {
        self.e - self.s
    }
}

fn left_ok(b: &[u8], i: usize) -> bool {
    let p = before(b, i);
    if is_alnum(p) || p == b'_' || p == b'#' || p >= 0x80 && i >= 2 && b[i - 2] >= 0xC0 {
        return false;
    }
    let pp = if i >= 2 { b[i - 2] } else { 0 };
    match p {
        b'.' | b'-' | b'/' | b'+' | b'\\' => !is_alnum(pp),
        b':' => !pp.is_ascii_digit(),
        _ => true,
    }
}

fn right_ok(b: &[u8], e: usize) -> bool {
    let n = at(b, e);
    if is_alnum(n) || n == b'_' {
        return false;
    }
    !(matches!(n, b'.' | b':' | b'-' | b'/' | b'%') && at(b, e + 1).is_ascii_digit())
}

/// Parse a run at `i` ('+', '(' or digit). Returns (groups, count, plus, end).
fn parse(b: &[u8], i: usize, gs: &mut [Group; MAX_GROUPS]) -> (usize, bool, usize) {
    let mut ng = 0;
    let mut j = i;
    let mut plus = b[j] == b'+';
    if plus {
        j += 1;
    }
    loop {
        let g = if at(b, j) == b'(' {
            // `(+49) 151 ...`: a parenthesised country code.
            let cc = ng == 0 && !plus && at(b, j + 1) == b'+';
            plus |= cc;
            let k = j + 1 + cc as usize;
            let mut m = k;
            while m < b.len() && b[m].is_ascii_digit() && m - k < 5 {
                m += 1;
            }
            if m == k || at(b, m) != b')' {
                break;
            }
            j = m + 1;
            Group { s: k, e: m, paren: true, sep: 0 }
        } else if at(b, j).is_ascii_digit() {
            let k = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            Group { s: k, e: j, paren: false, sep: 0 }
        } else {
            break;
        };
        gs[ng] = g;
        ng += 1;
        if ng == MAX_GROUPS {
            break;
        }
        let c = at(b, j);
        let n1 = at(b, j + 1);
        let (sep, adv) = if matches!(c, b' ' | b'-' | b'.' | b'/') && n1.is_ascii_digit() || c == b' ' && n1 == b'(' {
            (c, 1)
        } else if g.paren && c.is_ascii_digit() || c == b'(' && ng == 1 && plus {
            (b')', 0)
        } else if c == b' ' && matches!(n1, b'-' | b'/') && at(b, j + 2) == b' ' {
            if !at(b, j + 3).is_ascii_digit() {
                break;
            }
            (n1, 3)
        } else {
            break;
        };
        gs[ng - 1].sep = sep;
        j += adv;
    }
    if ng > 0 {
        gs[ng - 1].sep = 0;
    }
    (ng, plus, j)
}

fn digit(b: &[u8], g: &Group, k: usize) -> u8 {
    if k < g.len() { b[g.s + k] } else { 0 }
}

fn num(b: &[u8], g: &Group) -> u32 {
    b[g.s..g.e].iter().take(6).fold(0, |a, &c| a * 10 + (c - b'0') as u32)
}

/// Whether three consecutive groups look like a date.
fn is_date(b: &[u8], gs: &[Group]) -> bool {
    gs.windows(3).any(|w| {
        let (x, y, z) = (&w[0], &w[1], &w[2]);
        if x.sep != y.sep || !matches!(x.sep, b'-' | b'.' | b'/') {
            return false;
        }
        let (lx, ly, lz) = (x.len(), y.len(), z.len());
        let (vx, vy, vz) = (num(b, x), num(b, y), num(b, z));
        let ymd = lx == 4 && (1900..2100).contains(&vx) && ly <= 2 && lz <= 2;
        let dmy = lx <= 2 && ly <= 2 && (lz == 4 || lz == 2) && vx <= 31 && vy <= 31;
        (ymd && (1..=12).contains(&vy) && (1..=31).contains(&vz)) || dmy && vx >= 1 && vy >= 1
    })
}

fn nanp(b: &[u8], gs: &[Group]) -> bool {
    let gs = if gs.len() == 4 && gs[0].len() == 1 && b[gs[0].s] == b'1' { &gs[1..] } else { gs };
    if gs.len() != 3 || gs[0].len() != 3 || gs[1].len() != 3 || gs[2].len() != 4 {
        return false;
    }
    // Area/exchange digits are not checked: fictional `555-123-4567` and
    // `123-456-7890` are what test data and examples use.
    gs[0].paren || gs[0].sep == gs[1].sep || gs[1].sep == b'-'
}

fn trunk0(b: &[u8], gs: &[Group], d: usize) -> bool {
    gs.len() >= 2
        && b[gs[0].s] == b'0'
        && digit(b, &gs[0], 1) != b'0'
        && (9..=12).contains(&d)
        && gs.iter().all(|g| g.len() >= 2)
}

fn regional(b: &[u8], gs: &[Group]) -> bool {
    let lens: ([usize; 4], usize) = {
        let mut l = [0; 4];
        for (x, g) in l.iter_mut().zip(gs) {
            *x = g.len();
        }
        (l, gs.len())
    };
    // Spanish 612 34 56 78.
    if lens == ([3, 2, 2, 2], 4) && matches!(b[gs[0].s], b'6' | b'7' | b'9') && gs[..3].iter().all(|g| g.sep == b' ') {
        return true;
    }
    // Chinese mobile 138 0013 8000.
    if lens == ([3, 4, 4, 0], 3) && b[gs[0].s] == b'1' && gs[0].sep == gs[1].sep && matches!(gs[0].sep, b' ' | b'-') {
        return true;
    }
    // Russian trunk-8: 8 (912) 345-67-89.
    if gs.len() >= 3 && lens.0[0] == 1 && b[gs[0].s] == b'8' && gs[1].paren && gs[1].len() >= 3 {
        return true;
    }
    // Brazilian (11) 91234-5678.
    gs.len() == 3
        && gs[0].paren
        && gs[0].len() == 2
        && (4..=5).contains(&gs[1].len())
        && gs[2].len() == 4
        && gs[1].sep == b'-'
}

/// Whether groups `gs` (with `plus` if led by '+') form a phone number.
fn classify(b: &[u8], gs: &[Group], plus: bool, hint: bool, kw: &mut dyn FnMut() -> u8) -> bool {
    let d: usize = gs.iter().map(Group::len).sum();
    if !(7..=17).contains(&d) || is_date(b, gs) {
        return false;
    }
    let seps = &gs[..gs.len() - 1];
    let dots = seps.iter().filter(|g| g.sep == b'.').count();
    let slashes = seps.iter().filter(|g| g.sep == b'/').count();
    let lens_are = |want: &[usize]| gs.len() == want.len() && gs.iter().zip(want).all(|(g, w)| g.len() == *w);
    let dot_ok = dots == 0 || plus || dots == seps.len() && (lens_are(&[3, 3, 4]) || lens_are(&[2, 2, 2, 2, 2]));
    let slash_ok = slashes == 0 || slashes == 1 && gs[0].sep == b'/';
    if !dot_ok || !slash_ok {
        return false;
    }
    let first = b[gs[0].s];
    if plus {
        return first != b'0' && (8..=15).contains(&d) && (gs.len() >= 2 || d >= 10);
    }
    if first == b'0' && digit(b, &gs[0], 1) == b'0' {
        let cc = digit(b, &gs[0], 2);
        return cc != b'0' && cc != 0 && (3..=5).contains(&gs[0].len()) && gs.len() >= 2 && (11..=17).contains(&d);
    }
    if d <= 15 && (nanp(b, gs) || trunk0(b, gs, d) || regional(b, gs)) {
        return true;
    }
    // Even with a keyword, grouped numbers need phone-like groups.
    if gs.len() > 1 && (gs[0].len() > 5 || gs[1..].iter().any(|g| g.len() > 8)) {
        return false;
    }
    if d > 15 {
        return false;
    }
    if gs.len() == 1 {
        // Epoch seconds / millis are never national numbers.
        if (d == 10 || d == 13) && first == b'1' || d < 8 {
            return false;
        }
        let g = &gs[0];
        let strength = if hint {
            2
        } else {
            tight_phone_word(b, g.s, g.e).max(if non_ascii_phone_word(b, g.s.saturating_sub(48), g.s) { 2 } else { 0 })
        };
        return strength == 2 || strength == 1 && (10..=12).contains(&d);
    }
    // A "call"-like verb must sit right next to the number ("call me on ..."),
    // not anywhere in the sentence ("Call ID 1234 5678 9012").
    match kw() {
        2 => true,
        1 => tight_phone_word(b, gs[0].s - gs[0].paren as usize, gs[gs.len() - 1].e) > 0,
        _ => false,
    }
}

/// Find phone numbers.
#[inline(never)]
pub(crate) fn scan(b: &[u8], cx: &Cx, out: &mut Vec<Match>) {
    let n = b.len();
    let mut gs = [Group::default(); MAX_GROUPS];
    let mut i = 0;
    while i < n {
        let c = b[i];
        let start_ok = c.is_ascii_digit()
            || c == b'+' && (at(b, i + 1).is_ascii_digit() || at(b, i + 1) == b'(')
            || c == b'(' && (at(b, i + 1).is_ascii_digit() || at(b, i + 1) == b'+');
        if !start_ok {
            i += 1;
            continue;
        }
        let (mut ng, plus, end) = parse(b, i, &mut gs);
        let next_i = end.max(i + 1);
        if ng == 0 || !left_ok(b, i) {
            i = next_i;
            continue;
        }
        // A trailing group followed by `:digit` is an hour, not a phone part.
        if ng > 1 && at(b, gs[ng - 1].e) == b':' && at(b, gs[ng - 1].e + 1).is_ascii_digit() {
            ng -= 1;
            if gs[ng - 1].sep != b' ' {
                i = next_i;
                continue;
            }
            gs[ng - 1].sep = 0;
        }
        let total: usize = gs[..ng].iter().map(Group::len).sum();
        if total < 7 {
            i = next_i;
            continue;
        }
        let mut kw_cache: Option<u8> = if cx.hints.phone { Some(2) } else { None };
        let mut a = 0;
        while a < ng {
            if a > 0 && gs[a - 1].sep != b' ' {
                a += 1;
                continue;
            }
            let mut found = None;
            let mut z = ng;
            while z > a {
                let last = gs[z - 1];
                let e = last.e + last.paren as usize;
                let tail_ok = if z == ng { right_ok(b, e) } else { last.sep == b' ' };
                if tail_ok {
                    let s = if a == 0 && plus { i } else { gs[a].s - gs[a].paren as usize };
                    let mut kw = || {
                        *kw_cache.get_or_insert_with(|| {
                            let before = phone_words_in(b, s.saturating_sub(40), s);
                            let after = phone_words_in(b, e, e + 24);
                            let other = if non_ascii_phone_word(b, s.saturating_sub(48), s) { 2 } else { 0 };
                            before.max(after).max(other)
                        })
                    };
                    // `classify` never reads the last group's separator.
                    if classify(b, &gs[a..z], a == 0 && plus, cx.hints.phone, &mut kw) {
                        found = Some((s, e, z));
                        break;
                    }
                }
                z -= 1;
            }
            match found {
                Some((s, e, z)) => {
                    push(out, s, e, Rule::Phone);
                    a = z;
                }
                None => a += 1,
            }
        }
        i = next_i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Summary;
    use crate::keys::Hints;
    use crate::rule::RuleSet;

    fn found_h(t: &str, phone_hint: bool) -> Vec<&str> {
        let cx = Cx {
            rules: RuleSet::all(),
            hints: Hints { phone: phone_hint, ssn: false, trace: false },
            sum: Summary::of(t.as_bytes()),
        };
        let mut v = Vec::new();
        scan(t.as_bytes(), &cx, &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    fn found(t: &str) -> Vec<&str> {
        found_h(t, false)
    }

    #[test]
    fn positives() {
        for p in [
            "+49 151 23456789",
            "+1 (415) 555-2671",
            "+44 20 7946 0958",
            "+33 6 12 34 56 78",
            "0049 30 1234567",
            "+81-3-1234-5678",
            "+91 98765 43210",
            "+55 11 91234-5678",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "030 12345678",
            "06 12 34 56 78",
            "020 7946 0958",
            "07700 900123",
            "0151/23456789",
            "+44 (0)20 7946 0958",
            "+4915123456789",
            "1-415-555-2671",
            "612 34 56 78",
            "(11) 91234-5678",
            "(+49) 151 23456789",
        ] {
            let t = format!("reach me on {p}, thanks");
            assert_eq!(found(&t), [p], "{t}");
        }
        assert_eq!(found("phone: 4155552671"), ["4155552671"]);
        assert_eq!(found("Tel.4155552671"), Vec::<&str>::new());
        assert_eq!(found_h("4155552671", true), ["4155552671"]);
        assert_eq!(found("id 12 415-555-2671"), ["415-555-2671"]);
        assert_eq!(found("tel:+14155552671"), ["+14155552671"]);
        assert_eq!(found("bob,+1 415 555 2671,42"), ["+1 415 555 2671"]);
    }

    #[test]
    fn negatives() {
        for t in [
            "2024-01-15 10:30:00",
            "20240115103000",
            "15.01.2024",
            "2024/01/15",
            "1.2.3",
            "10.0.19045",
            "took 1500 ms",
            "localhost:8080",
            "order 4155552671",
            "1700000000123",
            "550e8400-e29b-41d4-a716-446655440000",
            "192.168.100.200",
            "wrote 123 456 789 bytes",
            "2024-01-15T10:30:00+01:00",
            "at Foo.java:4155552",
            "ORD-2024-0001234",
            "2024-01-15 10:30",
            "01/15/2024 10:30",
            "10.1.2.3",
            "ISBN 978-3-16-148410-0",
            "api-7d9f8b6c5-x2x9z",
            "1,234,567,890",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
        // Keyword present, but dates / IPs still rejected.
        assert!(found("called at 2024-01-15 10:30").is_empty());
        assert!(found("phone home 192.168.1.10").is_empty());
        assert!(found("Call ID 1234 5678 9012 dropped").is_empty());
        assert_eq!(found("call me on 1234 5678 9012"), ["1234 5678 9012"]);
    }
}
