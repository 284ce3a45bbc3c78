//! IBANs: two-letter country code, two check digits and a BBAN, either
//! compact (`GB82WEST12345698765432`) or printed in groups of four separated
//! by single spaces (`DE89 3704 0044 0532 0130 00`); upper or lower case. The
//! length must match the country's registered length and the mod-97
//! checksum must be 1.

#[cfg(test)]
use {super::push, crate::Match, crate::bytes::before, crate::rule::Rule};

use crate::bytes::{at, is_alnum};

/// Registered IBAN length for a country code (uppercase), or 0.
fn iban_len(c: [u8; 2]) -> usize {
    match &c {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FO" | b"GL" | b"NL" | b"SD" | b"FK" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"XK" | b"MN" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"OM" | b"SO" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"DJ" | b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"NI" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => 0,
    }
}

/// mod-97 of the rearranged IBAN (`chars` uppercase alphanumerics).
fn mod97(chars: &[u8]) -> u32 {
    let mut r = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        if c.is_ascii_digit() {
            r = (r * 10 + (c - b'0') as u32) % 97;
        } else {
            r = (r * 100 + (c - b'A' + 10) as u32) % 97;
        }
    }
    r
}

/// Find IBANs.
/// The IBAN starting at word start `i`, if any: returns its end.
#[inline]
pub(crate) fn at_word(b: &[u8], i: usize) -> Option<usize> {
    let n = b.len();
    if i + 15 > n
        || !b[i].is_ascii_alphabetic()
        || !b[i + 1].is_ascii_alphabetic()
        || !b[i + 2].is_ascii_digit()
        || !b[i + 3].is_ascii_digit()
    {
        return None;
    }
    let len = iban_len([b[i].to_ascii_uppercase(), b[i + 1].to_ascii_uppercase()]);
    if len == 0 {
        return None;
    }
    let mut chars = [0u8; 34];
    let mut k = 0;
    let mut j = i;
    let mut spaced = false;
    while k < len && j < n {
        let c = b[j];
        if is_alnum(c) {
            chars[k] = c.to_ascii_uppercase();
            k += 1;
            j += 1;
        } else if c == b' ' && k % 4 == 0 && k > 0 && is_alnum(at(b, j + 1)) && (spaced || k == 4) {
            spaced = true;
            j += 1;
        } else {
            break;
        }
    }
    let nx = at(b, j);
    (k == len && !is_alnum(nx) && nx != b'_' && mod97(&chars[..len]) == 1).then_some(j)
}

/// Find IBANs (whole-text driver, used by tests).
#[cfg(test)]
pub(crate) fn scan(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        if !is_alnum(before(b, i))
            && let Some(e) = at_word(b, i)
        {
            push(out, i, e, Rule::Iban);
            i = e;
            continue;
        }
        i += 1;
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
        for x in [
            "DE89 3704 0044 0532 0130 00",
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "FR14 2004 1010 0505 0001 3M02 606",
            "de89370400440532013000",
            "NL91ABNA0417164300",
            "BE68539007547034",
            "NO9386011117947",
            "CH9300762011623852957",
            "ES9121000418450200051332",
            "IT60X0542811101000000123456",
        ] {
            let t = format!("iban: {x}.");
            assert_eq!(found(&t), [x], "{t}");
        }
    }

    #[test]
    fn negatives() {
        for t in [
            "DE89 3704 0044 0532 0130 01",
            "DE8937040044053201300",
            "DE893704004405320130001",
            "XX89370400440532013000",
            "GB82WEST1234569876543Z",
        ] {
            assert!(found(t).is_empty(), "{t}");
        }
    }
}
