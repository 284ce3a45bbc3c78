//! Payment card numbers: 13–19 digits, optionally grouped by single spaces
//! or dashes (one separator kind per number), Luhn-valid and with a real
//! brand prefix/length (Visa, Mastercard, Amex, Discover, JCB, Diners,
//! UnionPay, Maestro). Runs glued to letters, hex or other digit groups
//! (digests, UUIDs, trace ids, dotted versions) are rejected.

use super::push;
use crate::Match;
use crate::bytes::{at, before, is_alnum};
use crate::rule::Rule;

/// Whether `d` (digit values) has a known brand prefix and a length that
/// brand issues.
pub(crate) fn brand_ok(d: &[u8]) -> bool {
    let len = d.len();
    if len < 13 {
        return false;
    }
    let p = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + x as u32);
    let (p2, p3, p4) = (p(2), p(3), p(4));
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        2 | 5 if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) => len == 16,
        3 if p2 == 34 || p2 == 37 => len == 15,
        3 if (3528..=3589).contains(&p4) => (16..=19).contains(&len),
        3 if (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 => (14..=19).contains(&len),
        6 if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 => (16..=19).contains(&len),
        6 if p2 == 62 => (16..=19).contains(&len),
        5 | 6 if matches!(p2, 50 | 56..=58) || matches!(p4, 6304 | 6759 | 6761..=6763) => true,
        _ => false,
    }
}

/// Luhn checksum over digit values.
pub(crate) fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &x) in d.iter().rev().enumerate() {
        let mut v = x as u32;
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn left_ok(b: &[u8], i: usize) -> bool {
    let p = before(b, i);
    if is_alnum(p) || p == b'_' {
        return false;
    }
    !(matches!(p, b'-' | b'.' | b'/' | b'+') && i >= 2 && is_alnum(b[i - 2]))
}

fn right_ok(b: &[u8], e: usize) -> bool {
    let n = at(b, e);
    !(is_alnum(n) || n == b'_' || matches!(n, b'-' | b'.' | b'/') && is_alnum(at(b, e + 1)))
}

/// Find card numbers.
#[inline(never)]
pub(crate) fn scan(b: &[u8], out: &mut Vec<Match>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = [0u8; 24];
        let mut nd = 0;
        // (end position, digit count) after each group.
        let mut ends = [(0usize, 0usize); 8];
        let mut ng = 0;
        let mut sep = 0u8;
        let mut j = i;
        loop {
            let gs = j;
            while j < n && b[j].is_ascii_digit() {
                if nd < digits.len() {
                    digits[nd] = b[j] - b'0';
                }
                nd += 1;
                j += 1;
            }
            if ng < ends.len() {
                ends[ng] = (j, nd);
                ng += 1;
            }
            let grouped_ok = (3..=6).contains(&(j - gs));
            let c = at(b, j);
            if grouped_ok
                && (c == b' ' || c == b'-')
                && at(b, j + 1).is_ascii_digit()
                && (sep == 0 || sep == c)
                && ng < ends.len()
                && nd <= 19
            {
                sep = c;
                j += 1;
                continue;
            }
            break;
        }
        i = j;
        if nd < 13 || !left_ok(b, start) {
            continue;
        }
        // Group lengths must be card-like when grouped.
        let grouped = ng > 1;
        for k in (0..ng).rev() {
            let (e, cnt) = ends[k];
            if cnt < 13 {
                break;
            }
            if cnt > 19 || cnt > digits.len() {
                continue;
            }
            let tail_ok = if k == ng - 1 { right_ok(b, e) } else { grouped && sep == b' ' };
            if !tail_ok {
                continue;
            }
            let d = &digits[..cnt];
            if brand_ok(d) && luhn(d) {
                push(out, start, e, Rule::CreditCard);
                break;
            }
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
        for c in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "378282246310005",
            "3782 822463 10005",
            "5555555555554444",
            "2223003122003222",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "6200000000000005",
            "6759649826438453",
            "4222222222222",
        ] {
            let t = format!("card={c};");
            assert_eq!(found(&t), [c], "{t}");
        }
        assert_eq!(found("pay 4111 1111 1111 1111 123"), ["4111 1111 1111 1111"]);
    }

    #[test]
    fn negatives() {
        for t in [
            "4111111111111112",
            "1234567812345678",
            "1700000000123",
            "id 9111111111111111",
            "sha 4111111111111111abcdef",
            "trace 0af7651916cd43dd8448eb211c80319c",
            "v1.4111111111111111",
            "371449635398432",
            "41111111111111111111",
            "order-4111111111111111",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
